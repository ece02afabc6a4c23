"""gymnasium classic control and Box2D LunarLander, with hand-written control-law experts.

Observations are one continuous field ``state`` (the environment's vector, μ-law encoded because its
entries are not bounded in [-1, 1]). Discrete actions are one token; continuous actions are rescaled to
[-1, 1] (``common.box_action_codec``) and binned directly.

Experts (no learning; each one is a few lines of control theory):

- CartPole: a linear state-feedback law (an LQR-like gain on angle, angular velocity, position and
  velocity), bang-bang because the action is a push left or right.
- Acrobot: energy pumping — torque in the direction of the second joint's angular velocity, which
  swings the tip above the bar in ~80 steps.
- MountainCar (discrete and continuous): push in the direction of the velocity (energy pumping).
- Pendulum: energy-shaping swing-up far from upright, a PD controller near upright.
- LunarLander (discrete and continuous): gymnasium's own PD heuristic (``lunar_lander.heuristic``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from gato.suite.task_spec import ObservationField

from .common import box_action_codec, discrete_action_codec, seeded_env
from .registry import Policy, register_env_task, require

DOMAIN = "classic_control"


# --- experts ----------------------------------------------------------------------------------------------
def cartpole_expert(env: Any) -> Policy:
    """Push towards where the pole falls, corrected for cart position and velocity."""
    gain = np.array([0.4, 1.0, 8.0, 2.0])  # (x, x_dot, theta, theta_dot): the pole dominates

    def policy(observation: np.ndarray) -> int:
        return int(float(gain @ np.asarray(observation, dtype=np.float64)) > 0.0)

    return policy


def acrobot_expert(env: Any) -> Policy:
    """Energy pumping: torque along the actuated joint's velocity adds energy every swing."""

    def policy(observation: np.ndarray) -> int:
        # observation: cos θ1, sin θ1, cos θ2, sin θ2, θ1_dot, θ2_dot; actions 0/1/2 = torque −1/0/+1.
        return 2 if observation[5] > 0 else 0

    return policy


def mountain_car_expert(env: Any) -> Policy:
    """Push along the velocity (left at rest): each swing climbs higher."""

    def policy(observation: np.ndarray) -> int:
        return 2 if observation[1] > 0 else 0

    return policy


def mountain_car_continuous_expert(env: Any) -> Policy:
    """Full throttle along the velocity (the environment's action is already in [-1, 1])."""

    def policy(observation: np.ndarray) -> np.ndarray:
        return np.array([1.0 if observation[1] > 0 else -1.0], dtype=np.float32)

    return policy


def pendulum_expert(env: Any) -> Policy:
    """Energy-shaping swing-up, then a PD controller once the pendulum is near upright.

    Pendulum-v1: θ = 0 is upright, θ̈ = 3g/(2l)·sin θ + 3/(ml²)·u with g = 10, m = l = 1, |u| ≤ 2.
    The energy E = θ̇²/2 + 3g/(2l)·(cos θ − 1) (per unit of the inertia term) is 0 at rest upright.
    """
    max_torque = 2.0
    gravity_term = 3 * 10.0 / 2

    def policy(observation: np.ndarray) -> np.ndarray:
        cos_theta, sin_theta, theta_dot = (float(v) for v in observation)
        theta = np.arctan2(sin_theta, cos_theta)
        if cos_theta > 0.85:  # close to upright: stabilise
            torque = -(10.0 * theta + 2.0 * theta_dot)
        else:  # pump energy towards the upright level
            energy = 0.5 * theta_dot**2 + gravity_term * (cos_theta - 1.0)
            torque = -max_torque * np.sign(theta_dot * energy) if theta_dot != 0 else max_torque
        return np.array([np.clip(torque, -max_torque, max_torque)], dtype=np.float32)

    return policy


def lunar_lander_expert(env: Any) -> Policy:
    """gymnasium's PD heuristic (hover towards the pad, then descend), for both action spaces."""
    heuristic = require("gymnasium.envs.box2d.lunar_lander", task="lunar_lander", pip_name="box2d").heuristic
    lander = env.unwrapped

    def policy(observation: np.ndarray) -> Any:
        return heuristic(lander, observation)

    return policy


# --- tasks ------------------------------------------------------------------------------------------------
def _make_env_factory(name: str, env_id: str, max_episode_steps: int, **kwargs: Any) -> Callable[[int], Any]:
    def make_env(seed: int) -> Any:
        gym = require("gymnasium", task=name)
        if env_id.startswith("LunarLander"):
            require("Box2D", task=name, pip_name="box2d")
        return seeded_env(gym.make(env_id, max_episode_steps=max_episode_steps, **kwargs), seed)

    return make_env


def _state_step(observation: np.ndarray) -> dict[str, np.ndarray]:
    return {"state": np.asarray(observation, dtype=np.float32)}


def _register(
    name: str,
    env_id: str,
    state_size: int,
    action: tuple,
    expert: Callable[[Any], Policy],
    max_episode_steps: int,
    **env_kwargs: Any,
) -> None:
    register_env_task(
        name,
        DOMAIN,
        (ObservationField("state", "continuous", shape=(state_size,), mu_law=True),),
        action,
        make_env=_make_env_factory(name, env_id, max_episode_steps, **env_kwargs),
        make_expert=expert,
        make_labeler=expert,  # the expert reads the state afresh at every step: it labels any state
        to_episode_step=_state_step,
        max_episode_steps=max_episode_steps,
        extra={"env_id": env_id, "env_kwargs": dict(env_kwargs), "has_success": False},
    )


_register("cartpole", "CartPole-v1", 4, discrete_action_codec(2), cartpole_expert, 500)
_register("acrobot", "Acrobot-v1", 6, discrete_action_codec(3), acrobot_expert, 500)
_register("mountain_car", "MountainCar-v0", 2, discrete_action_codec(3), mountain_car_expert, 200)
_register(
    "mountain_car_continuous",
    "MountainCarContinuous-v0",
    2,
    box_action_codec(-1.0, 1.0, 1),
    mountain_car_continuous_expert,
    999,
)
_register("pendulum", "Pendulum-v1", 3, box_action_codec(-2.0, 2.0, 1), pendulum_expert, 200)
_register("lunar_lander", "LunarLander-v3", 8, discrete_action_codec(4), lunar_lander_expert, 1000)
_register(
    "lunar_lander_continuous",
    "LunarLander-v3",
    8,
    box_action_codec(-1.0, 1.0, 2),
    lunar_lander_expert,
    1000,
    continuous=True,
)
