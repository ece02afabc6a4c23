"""What ``gato data record`` records: :class:`RecordConfig`, validated here, read by :mod:`gato.episodes.record_env`.

A module of its own, importing nothing heavy, so that ``gato data record --help`` builds its flags from this class
without importing ``datasets``, gymnasium or torch (the suite's registry is imported only to validate).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

TASK_NAME = re.compile(r"^\w+$")


def default_task_name(env_id: str) -> str:
    """A task name (a valid split name) from an environment id: ``ALE/Pong-v5`` → ``ale_pong_v5``."""
    return re.sub(r"\W+", "_", env_id).strip("_").lower()


@dataclass
class RecordConfig:
    """What ``gato data record`` records.

    Args:
        env: a registered gymnasium id, e.g. ``CartPole-v1`` (ALE, minigrid and Meta-World ids register themselves).
        policy: ``module:callable`` (``callable(observation) -> action``, or a factory ``callable(env) -> policy``) or
            ``sb3:PATH.zip`` / ``sb3:ALGO:PATH.zip`` (a stable-baselines3 model; the ``sb3`` extra).
        episodes: episodes to record.
        out: a new folder for the task's dataset, or a ``gato data generate`` folder to add it to as one more split.
        env_kwargs: ``gym.make`` keyword arguments, as a JSON object (default: none).
        name: the task's name (default: from the id, ``CartPole-v1`` → ``cartpole_v1``).
        domain: the task's domain (default: its name).
        seed: episode ``i`` is reset with ``episode_seed(seed, name, i)``.
        max_steps: cut episodes after this many steps (default: the id's registered horizon).
        measure_references: measure the policy's and a random policy's mean returns (``reference_episodes`` each), for
            expert-normalized scores.
        reference_episodes: episodes of each reference measurement.
        overwrite: replace the task's folder when it exists.
    """

    env: str = field(metadata={"argparse": {"required": True, "metavar": "ID"}})
    policy: str
    episodes: int = field(metadata={"argparse": {"required": True, "metavar": "N"}})
    out: str = field(metadata={"argparse": {"required": True, "metavar": "DIR"}})
    env_kwargs: str | None = field(default=None, metadata={"argparse": {"metavar": "JSON"}})
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
            from gato.suite.registry import parse_env_kwargs  # imports the suite (torch): only when recording

            self.parsed_kwargs = parse_env_kwargs(self.env_kwargs)
        name = self.task_name
        if not TASK_NAME.match(name):
            raise ValueError(f"name: expected letters, digits and underscores (a split name), got {name!r}")

    @property
    def task_name(self) -> str:
        return self.name or default_task_name(self.env)


__all__ = ["TASK_NAME", "RecordConfig", "default_task_name"]
