"""Atari specifics (suite/atari.py): Breakout launches every ball itself (FIRE_ON_LIFE_START) and its
frames are max-pooled so that the ball survives the downscale (max_pool_frame)."""

from __future__ import annotations

import numpy as np
import pytest

from gato.suite.atari import FIRE_ON_LIFE_START, FRAME_SIZE, max_pool_frame, to_episode_step
from gato.suite.registry import get_task

BALL = (200, 72, 72)  # Breakout's ball colour

NOOP = 0


def _play_noops(env, max_steps=1000):
    """Step NOOP until the episode ends; return (steps, terminated, lives at the end)."""
    env.reset(seed=3)
    for step in range(1, max_steps + 1):
        _, _, terminated, truncated, info = env.step(NOOP)
        if terminated or truncated:
            return step, terminated, info["lives"]
    return max_steps, False, info["lives"]


def _screen_with_ball(top: int, left: int) -> np.ndarray:
    screen = np.zeros((210, 160, 3), dtype=np.uint8)
    screen[top : top + 4, left : left + 2] = BALL  # the ball: 2 pixels wide, 4 tall
    return screen


@pytest.mark.parametrize(("top", "left"), [(100, 80), (101, 81), (150, 3), (0, 0), (206, 158)])
def test_max_pooling_keeps_the_ball_at_full_colour(top, left):
    screen = _screen_with_ball(top, left)
    frame = max_pool_frame(screen)
    assert frame.shape == (*FRAME_SIZE, 3) and frame.dtype == np.uint8
    ball = np.all(frame == BALL, axis=-1)
    assert 1 <= ball.sum() <= 6 and np.all(frame[~ball] == 0)  # nowhere else
    rows, cols = np.nonzero(ball)  # where the ball is, in target pixels
    assert abs(rows.mean() - (top + 2) * FRAME_SIZE[0] / 210) <= 1.5
    assert abs(cols.mean() - (left + 1) * FRAME_SIZE[1] / 160) <= 1.5
    # the bilinear downscale the other games use dims the same ball (to 25–85% of its red, by alignment)
    assert to_episode_step(screen)["frame"][..., 0].max() < BALL[0] - 25


def test_max_pooling_partitions_the_screen():
    rows = np.broadcast_to(np.arange(210, dtype=np.uint8)[:, None, None], (210, 160, 3))
    pooled_rows = max_pool_frame(rows)[:, 0, 0].astype(int)
    starts = np.arange(FRAME_SIZE[0]) * 210 // FRAME_SIZE[0]
    np.testing.assert_array_equal(pooled_rows, np.append(starts[1:], 210) - 1)  # each cell's last source row
    cols = np.broadcast_to(np.arange(160, dtype=np.uint8)[None, :, None], (210, 160, 3))
    np.testing.assert_array_equal(max_pool_frame(cols)[0, :, 0], np.arange(1, 161, 2))  # 2 columns a cell


def test_max_pooling_rejects_a_screen_smaller_than_the_frame():
    with pytest.raises(ValueError, match=r"screen must be \(H, W, C\).*got \(40, 160, 3\)"):
        max_pool_frame(np.zeros((40, 160, 3), dtype=np.uint8))


def test_breakout_frames_are_max_pooled_and_the_other_games_bilinear():
    screen = _screen_with_ball(100, 80)
    np.testing.assert_array_equal(get_task("atari_breakout").to_episode_step(screen)["frame"], max_pool_frame(screen))
    np.testing.assert_array_equal(get_task("atari_pong").to_episode_step(screen)["frame"], to_episode_step(screen)["frame"])


def test_breakout_launches_the_ball_at_every_life_start():
    pytest.importorskip("ale_py")
    assert "atari_breakout" in FIRE_ON_LIFE_START
    env = get_task("atari_breakout").make_env(0)
    # An agent that never presses FIRE still gets every ball: it misses all five and the game ends.
    steps, terminated, lives = _play_noops(env)
    assert terminated and lives == 0
    assert steps < 1000


def test_without_the_launch_a_noop_agent_never_loses_a_life():
    """The control: the raw ale-py game waits for FIRE, which is why the suite presses it."""
    pytest.importorskip("ale_py")
    import ale_py
    import gymnasium as gym

    gym.register_envs(ale_py)
    raw = gym.make("ALE/Breakout-v5", max_episode_steps=300)
    steps, terminated, lives = _play_noops(raw, max_steps=300)
    assert not terminated and lives == 5


def test_the_launch_keeps_the_expert_ahead_of_random():
    pytest.importorskip("ale_py")
    from gato.suite.measure import measure, summarize

    task = get_task("atari_breakout")
    expert = summarize(measure(task, "expert", 1, seed=100))
    random = summarize(measure(task, "random", 1, seed=200))
    assert expert["mean_return"] > random["mean_return"] + 5
