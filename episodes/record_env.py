"""Record a gymnasium environment the suite does not know, with a user's policy, into a gato episode collection.

What ``gato data record`` runs: the spec comes from the environment's spaces (``gato.suite.spaces.spec_from_env``) and
carries the environment id, its ``gym.make`` arguments and the policy reference (``module:callable`` or
``sb3:PATH.zip``), so that ``gato train`` takes the folder as it is and ``gato eval`` / ``load_agent`` rebuild the task
from the model's ``task_specs.json`` (and prompt it with a demonstration by the same policy). With
``measure_references`` the policy's and a uniformly random policy's mean returns are measured on episodes of their own
seeds and stored in the spec, so that evaluations report expert-normalized scores.

Output: a new folder holds the task's one dataset; a ``gato data generate`` folder (a ``DatasetDict``) gets the task as
one more split beside the suite's tasks, and its index is rebuilt.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from datasets import Dataset
from gato.suite.policies import policy_factory
from gato.suite.registry import make_gym_env, parse_env_kwargs
from gato.suite.spaces import spec_from_env
from gato.suite.task_spec import TaskSpec

from .cards import EPISODE_TASK_CATEGORIES, build_card, write_card
from .recorder import episode_seed, record_episode, record_episodes

REFERENCE_STREAMS = ("references/expert/", "references/random/")  # seeds apart from the recorded episodes'
TASK_NAME = re.compile(r"^\w+$")


def default_task_name(env_id: str) -> str:
    """A task name (a valid split name) from an environment id: ``ALE/Pong-v5`` → ``ale_pong_v5``."""
    return re.sub(r"\W+", "_", env_id).strip("_").lower()


@dataclass
class RecordConfig:
    """What ``gato data record`` records.

    Args:
        env: a registered gymnasium id (ALE, minigrid and Meta-World ids register themselves).
        policy: ``module:callable`` (``callable(observation) -> action``, or a factory ``callable(env) -> policy``) or
            ``sb3:PATH.zip`` / ``sb3:ALGO:PATH.zip`` (a stable-baselines3 model; the ``sb3`` extra).
        episodes: episodes to record.
        out: a new folder for the task's dataset, or a ``gato data generate`` folder to add it to as one more split.
        env_kwargs: ``gym.make`` keyword arguments, as a JSON object.
        name: the task's name (default: from the id, ``CartPole-v1`` → ``cartpole_v1``).
        domain: the task's domain (default: its name).
        seed: episode ``i`` is reset with ``episode_seed(seed, name, i)``.
        max_steps: cut episodes after this many steps (default: the id's registered horizon).
        measure_references: measure the policy's and a random policy's mean returns (``reference_episodes`` each).
        overwrite: replace the task's folder when it exists.
    """

    env: str
    policy: str
    episodes: int
    out: str
    env_kwargs: str | None = None
    name: str | None = None
    domain: str | None = None
    seed: int = 0
    max_steps: int | None = None
    measure_references: bool = False
    reference_episodes: int = 10
    overwrite: bool = False
    parsed_kwargs: dict[str, Any] = field(default_factory=dict, init=False, repr=False)

    def validate(self) -> None:
        if self.episodes < 1:
            raise ValueError(f"episodes: expected ≥ 1, got {self.episodes}")
        if self.reference_episodes < 1:
            raise ValueError(f"reference_episodes: expected ≥ 1, got {self.reference_episodes}")
        if self.max_steps is not None and self.max_steps < 1:
            raise ValueError(f"max_steps: expected ≥ 1, got {self.max_steps}")
        if self.env_kwargs:
            self.parsed_kwargs = parse_env_kwargs(self.env_kwargs)
        name = self.task_name
        if not TASK_NAME.match(name):
            raise ValueError(f"name: expected letters, digits and underscores (a split name), got {name!r}")

    @property
    def task_name(self) -> str:
        return self.name or default_task_name(self.env)


def _mean_return(env: Any, make_policy: Any, spec: TaskSpec, stream: str, config: RecordConfig) -> float:
    returns = [
        float(
            np.sum(
                record_episode(
                    env,
                    None,
                    spec,
                    seed=episode_seed(config.seed, stream + spec.name, index),
                    make_policy=make_policy,
                    max_steps=config.max_steps,
                )["rewards"]
            )
        )
        for index in range(config.reference_episodes)
    ]
    return float(np.mean(returns))


def record_env_task(config: RecordConfig, command: str = "") -> tuple[Dataset, TaskSpec, Path]:
    """Record ``config.episodes`` episodes of ``config.env`` with ``config.policy``; returns the dataset, its spec and
    the folder it was written to (module docstring)."""
    config.validate()
    env = make_gym_env(config.env, config.parsed_kwargs, config.max_steps)
    make_policy = policy_factory(config.policy)
    base = spec_from_env(
        env,
        config.task_name,
        domain=config.domain or config.task_name,
        env_id=config.env,
        env_kwargs=config.parsed_kwargs,
    )
    extra = {**base.extra, "policy": config.policy}
    if config.max_steps is not None:
        extra["max_episode_steps"] = config.max_steps
    spec = TaskSpec(base.name, base.observations, base.action, base.domain, extra)
    if config.measure_references:
        expert = _mean_return(env, make_policy, spec, REFERENCE_STREAMS[0], config)
        # record_episode seeds the action space with the episode's seed: the random episodes are reproducible.
        random = _mean_return(
            env, lambda env: lambda observation: env.action_space.sample(), spec, REFERENCE_STREAMS[1], config
        )
        spec = TaskSpec(
            spec.name,
            spec.observations,
            spec.action,
            spec.domain,
            {
                **spec.extra,
                "expert_return": expert,
                "random_return": random,
                "reference_episodes": config.reference_episodes,
            },
        )
    out = Path(config.out)
    into_collection = (out / "dataset_dict.json").exists()
    path = out / spec.name if into_collection else out
    dataset = record_episodes(
        env,
        None,
        spec,
        config.episodes,
        seed=config.seed,
        out=path,
        make_policy=make_policy,
        max_steps=config.max_steps,
        overwrite=config.overwrite,
    )
    env.close()
    _write_card(path, spec, dataset, config, command)
    if into_collection:
        from .generate import write_index

        write_index(out)
    return dataset, spec, path


def _write_card(path: Path, spec: TaskSpec, dataset: Dataset, config: RecordConfig, command: str) -> None:
    returns = dataset["episode_return"]
    references = (
        f" Reference returns (mean of {config.reference_episodes} episodes each, seeds of their own): policy "
        f"{spec.extra['expert_return']:.2f}, uniformly random {spec.extra['random_return']:.2f}."
        if "expert_return" in spec.extra
        else ""
    )
    details = (
        f"Episodes of the gymnasium environment `{config.env}` (arguments `{json.dumps(config.parsed_kwargs)}`) "
        f"recorded with the policy `{config.policy}`: {len(dataset)} episodes, {sum(dataset['num_steps'])} steps, "
        f"mean return {float(np.mean(returns)):.2f}. Episode `i` is reset with "
        f"`gato.episodes.episode_seed({config.seed}, {spec.name!r}, i)`. The spec — built from the environment's "
        "spaces, with the environment id, its arguments and the policy — is stored as JSON in `info.description`."
        + references
    )
    write_card(
        path,
        build_card(
            pretty_name=f"gato episodes: {spec.name}",
            summary="One row per episode; per-step observations, actions and rewards.",
            features=dataset.features,
            command=command
            or f"gato data record --env {config.env} --policy {config.policy} "
            f"--episodes {config.episodes} --out {config.out}",
            task_categories=EPISODE_TASK_CATEGORIES,
            tags=("gato", "generalist-agent", "imitation-learning", spec.domain),
            details=details,
            size_rows=len(dataset),
        ),
    )


__all__ = ["RecordConfig", "default_task_name", "record_env_task"]
