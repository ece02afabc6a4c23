"""A tiny CartPole task built as a suite ``Task`` (the registry's contract), shared by the episode tests.

A module of its own (not ``conftest``): ``from conftest import`` would resolve to whichever of the
suite's several ``conftest.py`` files was imported first.

The suite's own tasks are not needed: the episode code only relies on the ``Task`` interface.
"""

from __future__ import annotations

import numpy as np
from gato.suite.registry import Task
from gato.suite.task_spec import ActionSpec, ObservationField, TaskSpec

CARTPOLE_SPEC = TaskSpec(
    name="test-cartpole",
    observations=(ObservationField("state", "continuous", (4,)),),
    action=ActionSpec("discrete", size=1, num_values=2),
    domain="test",
)


def cartpole_heuristic(observation: np.ndarray) -> int:
    """Push towards where the pole falls: keeps CartPole up for hundreds of steps."""
    return int(observation[2] + 0.5 * observation[3] > 0)


def make_cartpole_task(name: str = "test-cartpole", max_episode_steps: int = 30) -> Task:
    import gymnasium as gym

    spec = TaskSpec(name=name, observations=CARTPOLE_SPEC.observations, action=CARTPOLE_SPEC.action, domain="test")
    return Task(
        spec=spec,
        make_env=lambda seed: gym.make("CartPole-v1"),
        make_expert=lambda env: cartpole_heuristic,
        to_episode_step=lambda observation: {"state": np.asarray(observation, dtype=np.float32)},
        to_env_action=lambda action: int(np.asarray(action).reshape(())),
        from_env_action=lambda action: np.asarray([action], dtype=np.int64),
        expert_return=float(max_episode_steps),
        random_return=20.0,
        max_episode_steps=max_episode_steps,
    )
