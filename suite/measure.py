"""Measure a task's expert and random returns: run seeded episodes and average.

``scripts/measure_returns.py`` uses these to write ``suite/reference_returns.json``; the tests use them
to check that every expert beats random.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from .registry import Policy, Task

PolicyName = Literal["expert", "random"]


@dataclass(frozen=True)
class EpisodeResult:
    """One episode: its return (sum of rewards), its length in steps, whether it succeeded."""

    episode_return: float
    length: int
    success: bool


def random_policy(env: Any) -> Policy:
    """Uniform random actions from the environment's (seeded) action space."""
    return lambda observation: env.action_space.sample()


def run_episode(task: Task, env: Any, policy: PolicyName, seed: int) -> EpisodeResult:
    """Play one episode of ``task`` in ``env`` (from ``task.make_env``) with the expert or random policy.

    ``seed`` fixes the episode through ``env.reset(seed=seed)``; the random policy's action space is
    re-seeded with it too, so a result depends on ``(task, policy, seed)`` only.
    """
    observation, _ = env.reset(seed=seed)
    if policy == "expert":
        act = task.make_expert(env)
    elif policy == "random":
        env.action_space.seed(seed)
        act = random_policy(env)
    else:
        raise ValueError(f"policy: expected 'expert' or 'random', got {policy!r}")
    total, length, success = 0.0, 0, False
    while True:
        observation, reward, terminated, truncated, info = env.step(act(observation))
        total += float(reward)
        length += 1
        success = success or bool(info.get("success", False))
        if terminated or truncated:
            return EpisodeResult(total, length, success)


def measure(task: Task, policy: PolicyName, episodes: int, seed: int = 0, env: Any = None) -> list[EpisodeResult]:
    """``episodes`` episodes with seeds ``seed, seed + 1, …`` in one reused environment."""
    env = env if env is not None else task.make_env(seed)
    return [run_episode(task, env, policy, seed + index) for index in range(episodes)]


def summarize(results: list[EpisodeResult]) -> dict[str, float]:
    """Mean / std of the returns, mean length and success rate of a list of episodes."""
    returns = np.array([result.episode_return for result in results], dtype=np.float64)
    return {
        "mean_return": float(returns.mean()),
        "std_return": float(returns.std()),
        "mean_length": float(np.mean([result.length for result in results])),
        "success_rate": float(np.mean([result.success for result in results])),
        "episodes": len(results),
    }
