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
from pathlib import Path
from typing import Any

import numpy as np
from datasets import Dataset
from gato.suite.policies import policy_factory
from gato.suite.registry import make_gym_env
from gato.suite.spaces import spec_from_env
from gato.suite.task_spec import TaskSpec

from .cards import EPISODE_TASK_CATEGORIES, build_card, write_card
from .record_config import RecordConfig, default_task_name
from .recorder import episode_seed, record_episode, record_episodes

REFERENCE_STREAMS = ("references/expert/", "references/random/")  # seeds apart from the recorded episodes'


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
