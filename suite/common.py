"""Pieces the domain modules share: action codecs between spec actions and environment actions.

A spec action is always a 1-D numpy array of shape ``(spec.action.size,)``: ``int64`` values in
``[0, num_values)`` for discrete actions, ``float32`` values in ``[spec.action.low, spec.action.high]``
for continuous ones (``[-1, 1]`` for every built-in task, so actions are binned directly,
GATO_SPEC.md section 1).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from gato.suite.task_spec import ActionSpec


def discrete_action_codec(num_actions: int) -> tuple[ActionSpec, Callable[[Any], int], Callable[[Any], np.ndarray]]:
    """A ``Discrete(num_actions)`` environment action ↔ a spec action of shape ``(1,)``.

    Returns ``(action_spec, to_env_action, from_env_action)``.
    """
    spec = ActionSpec(kind="discrete", size=1, num_values=num_actions)

    def to_env_action(action: Any) -> int:
        value = np.asarray(action).reshape(-1)
        if value.shape != (1,):
            raise ValueError(f"action: expected shape (1,), got {np.asarray(action).shape}")
        index = int(value[0])
        if not 0 <= index < num_actions:
            raise ValueError(f"action: expected a value in [0, {num_actions}), got {index}")
        return index

    def from_env_action(env_action: Any) -> np.ndarray:
        return np.asarray(env_action, dtype=np.int64).reshape(1)

    return spec, to_env_action, from_env_action


def box_action_codec(
    low: float | np.ndarray, high: float | np.ndarray, size: int
) -> tuple[ActionSpec, Callable[[Any], np.ndarray], Callable[[Any], np.ndarray]]:
    """A ``Box(low, high, (size,))`` environment action ↔ a spec action in ``[-1, 1]``.

    The spec action is the environment action rescaled affinely to ``[-1, 1]`` per dimension, so
    every continuous built-in action is binned directly (no μ-law) whatever the environment's bounds;
    ``to_env_action`` clips to the bounds. For a ``Box(-1, 1)`` both maps are the identity.

    Returns ``(action_spec, to_env_action, from_env_action)``.
    """
    low_array = np.broadcast_to(np.asarray(low, dtype=np.float32), (size,))
    high_array = np.broadcast_to(np.asarray(high, dtype=np.float32), (size,))
    centre, half_range = (high_array + low_array) / 2, (high_array - low_array) / 2
    spec = ActionSpec(kind="continuous", size=size, mu_law=False, low=-1.0, high=1.0)

    def to_env_action(action: Any) -> np.ndarray:
        value = np.asarray(action, dtype=np.float32)
        if value.shape != (size,):
            raise ValueError(f"action: expected shape ({size},), got {value.shape}")
        return np.clip(centre + half_range * value, low_array, high_array).astype(np.float32)

    def from_env_action(env_action: Any) -> np.ndarray:
        value = np.asarray(env_action, dtype=np.float32).reshape(size)
        return np.clip((value - centre) / half_range, -1.0, 1.0).astype(np.float32)

    return spec, to_env_action, from_env_action


def seeded_env(env: Any, seed: int) -> Any:
    """Seed an environment's action space (random policies sample from it) and return the env."""
    env.action_space.seed(seed)
    return env
