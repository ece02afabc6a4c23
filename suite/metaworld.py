"""Meta-World v3 (MT1) manipulation tasks with Meta-World's scripted expert policies.

Observation: one continuous field ``state`` of shape ``(39,)`` (hand position, gripper opening, object
poses, the previous frame's copies and the goal), μ-law encoded since positions are not bounded in
[-1, 1]. Action: 4 continuous values in [-1, 1] (hand xyz displacement, gripper), binned directly.

Departures from Meta-World's defaults, on purpose:

- Horizon: Meta-World episodes run 500 steps and never terminate on success. The experts succeed
  within ~35–90 steps on these tasks, so each task gets a shorter horizon (:data:`TASKS`) that leaves
  room after success; generation is 3–5× cheaper. Returns (expert and random alike) are measured at that
  horizon, so they are not comparable with 500-step Meta-World returns.
- Goal variation: an episode's goal/object placement is one of MT1's 50 variations (benchmark seed
  :data:`BENCHMARK_SEED`), chosen by the episode's reset seed, so an episode depends on its seed only.
- Expert actions are clipped to the action space [-1, 1] (the scripted policies output up to ~15 on
  the xyz axes; the environment clips them anyway), so what is recorded is what the robot does.

``info["success"]`` is Meta-World's own success flag.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import numpy as np
from gato.suite.task_spec import ObservationField

from .common import box_action_codec, seeded_env
from .registry import Policy, register_env_task, require

DOMAIN = "metaworld"
OBSERVATION_SIZE = 39
ACTION_SIZE = 4
BENCHMARK_SEED = 0

# task name → (Meta-World v3 environment name, horizon in steps)
TASKS: dict[str, tuple[str, int]] = {
    "metaworld_reach": ("reach-v3", 100),
    "metaworld_push": ("push-v3", 150),
    "metaworld_pick_place": ("pick-place-v3", 150),
    "metaworld_door_open": ("door-open-v3", 200),
    "metaworld_drawer_open": ("drawer-open-v3", 150),
    "metaworld_drawer_close": ("drawer-close-v3", 150),
    "metaworld_button_press_topdown": ("button-press-topdown-v3", 150),
    "metaworld_window_open": ("window-open-v3", 150),
    "metaworld_plate_slide": ("plate-slide-v3", 120),
    "metaworld_faucet_open": ("faucet-open-v3", 150),
}


@functools.cache
def _goal_per_seed_wrapper(gym: Any) -> type:
    class GoalPerSeed(gym.Wrapper):
        """Sets one of the benchmark's goal variations at each reset, chosen by the reset seed."""

        def __init__(self, env: Any, variations: list, seed: int) -> None:
            super().__init__(env)
            self.variations = variations
            self.variation_rng = np.random.default_rng(seed)

        def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[Any, dict]:
            rng = np.random.default_rng(seed) if seed is not None else self.variation_rng
            self.env.unwrapped.set_task(self.variations[int(rng.integers(len(self.variations)))])
            if seed is not None:
                self.env.unwrapped.seed(seed)
            return self.env.reset(seed=seed, options=options)

    return GoalPerSeed


@functools.cache
def _benchmark(name: str, env_name: str) -> tuple[type, tuple]:
    """(environment class, the 50 goal variations): building MT1 takes ~1 s, so once per process."""
    benchmark = require("metaworld", task=name).MT1(env_name, seed=BENCHMARK_SEED)
    return benchmark.train_classes[env_name], tuple(benchmark.train_tasks)


def _make_env_factory(name: str, env_name: str, max_episode_steps: int) -> Callable[[int], Any]:
    def make_env(seed: int) -> Any:
        gym = require("gymnasium", task=name)
        env_class, variations = _benchmark(name, env_name)
        env = _goal_per_seed_wrapper(gym)(env_class(), list(variations), seed)
        return seeded_env(gym.wrappers.TimeLimit(env, max_episode_steps=max_episode_steps), seed)

    return make_env


def _expert_factory(name: str, env_name: str) -> Callable[[Any], Policy]:
    def make_expert(env: Any) -> Policy:
        scripted = require("metaworld.policies", task=name).ENV_POLICY_MAP[env_name]()

        def policy(observation: np.ndarray) -> np.ndarray:
            return np.clip(scripted.get_action(observation), -1.0, 1.0).astype(np.float32)

        return policy

    return make_expert


def to_episode_step(observation: np.ndarray) -> dict[str, np.ndarray]:
    """The (39,) float64 state → ``{"state": float32 (39,)}``."""
    return {"state": np.asarray(observation, dtype=np.float32)}


def _register(name: str, env_name: str, max_episode_steps: int) -> None:
    expert = _expert_factory(name, env_name)
    register_env_task(
        name,
        DOMAIN,
        (ObservationField("state", "continuous", shape=(OBSERVATION_SIZE,), mu_law=True),),
        box_action_codec(-1.0, 1.0, ACTION_SIZE),
        make_env=_make_env_factory(name, env_name, max_episode_steps),
        make_expert=expert,
        make_labeler=expert,  # the scripted policy reads the state afresh at every step: it labels any state
        to_episode_step=to_episode_step,
        max_episode_steps=max_episode_steps,
        extra={"env_id": env_name, "has_success": True},
    )


for _name, (_env_name, _steps) in TASKS.items():
    _register(_name, _env_name, _steps)
