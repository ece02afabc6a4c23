"""Breakout's environment launches every ball itself (suite/atari.py, FIRE_ON_LIFE_START)."""

from __future__ import annotations

import pytest
from gato.suite.atari import FIRE_ON_LIFE_START
from gato.suite.registry import get_task

pytest.importorskip("ale_py")

NOOP = 0


def _play_noops(env, max_steps=1000):
    """Step NOOP until the episode ends; return (steps, terminated, lives at the end)."""
    env.reset(seed=3)
    for step in range(1, max_steps + 1):
        _, _, terminated, truncated, info = env.step(NOOP)
        if terminated or truncated:
            return step, terminated, info["lives"]
    return max_steps, False, info["lives"]


def test_breakout_launches_the_ball_at_every_life_start():
    assert "atari_breakout" in FIRE_ON_LIFE_START
    env = get_task("atari_breakout").make_env(0)
    # An agent that never presses FIRE still gets every ball: it misses all five and the game ends.
    steps, terminated, lives = _play_noops(env)
    assert terminated and lives == 0
    assert steps < 1000


def test_without_the_launch_a_noop_agent_never_loses_a_life():
    """The control: the raw ale-py game waits for FIRE, which is why the suite presses it."""
    import ale_py
    import gymnasium as gym

    gym.register_envs(ale_py)
    raw = gym.make("ALE/Breakout-v5", max_episode_steps=300)
    steps, terminated, lives = _play_noops(raw, max_steps=300)
    assert not terminated and lives == 5


def test_the_launch_keeps_the_expert_ahead_of_random():
    from gato.suite.measure import measure, summarize

    task = get_task("atari_breakout")
    expert = summarize(measure(task, "expert", 1, seed=100))
    random = summarize(measure(task, "random", 1, seed=200))
    assert expert["mean_return"] > random["mean_return"] + 5
