"""Atari 2600 games through ale-py, with experts that read the game state from the console's RAM.

Observation: one image field ``frame``: the RGB screen (210×160) downscaled to :data:`FRAME_SIZE`
(80×80, a multiple of the 16-pixel patch: 25 patches per step). Action: one discrete token, the game's
minimal action set.

Environment: ``ALE/<Game>-v5`` as ale-py defines it — frameskip 4, sticky actions with probability
0.25 — with the episode bounded by :data:`TASKS`' horizon so that an episode costs at most that many
agent steps (a full game of Pong is ~4000). Returns are measured at that horizon.

Breakout launches every ball itself (:data:`FIRE_ON_LIFE_START`, the "fire on reset" convention of
DQN-style Atari evaluations): in ale-py's game the ball only comes into play after FIRE, which the
expert presses once per life (about 0.4% of its actions), and a policy imitating it that never
samples that rare action would score 0 whatever its paddle play. The launch is an environment step
the agent does not take; its reward, if any, counts.

Experts: paddle controllers that move the paddle towards the ball's predicted position (RAM
addresses from the Atari annotated-RAM work, Anand et al. 2019, "AtariARI"):

- Pong: ball x = RAM[49], ball y = RAM[54], player paddle y = RAM[51]; actions RIGHT (2) / LEFT (3)
  move the paddle up / down.
- Breakout: ball x = RAM[99], ball y = RAM[101], paddle x = RAM[72]; FIRE launches a new ball (the
  environment presses it at each life's start, see above; the expert still fires if no ball is in play).
- Freeway: chicken y = RAM[14], the ten lanes' car x = RAM[108:118]; the expert walks up and waits
  when a car is about to cross the chicken's column in the lane it is in or entering (lane geometry
  measured from recorded collisions). "Always up" scores 11 per 1000 steps; the expert ~14.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from gato.suite.task_spec import ObservationField
from gato.suite.token_layout import PATCH_SIZE

from .common import discrete_action_codec, seeded_env
from .registry import Policy, register_env_task, require

DOMAIN = "atari"
FRAME_SIZE = (5 * PATCH_SIZE, 5 * PATCH_SIZE)  # (height, width) = 80×80: 25 patches, the ball still visible

# task name → (ALE id, number of actions in the minimal action set, horizon in agent steps)
TASKS: dict[str, tuple[str, int, int]] = {
    "atari_pong": ("ALE/Pong-v5", 6, 1000),
    "atari_breakout": ("ALE/Breakout-v5", 4, 1000),
    "atari_freeway": ("ALE/Freeway-v5", 3, 1000),
}
# Games whose environment presses FIRE (action 1 of their minimal set) at the start of every life.
FIRE_ON_LIFE_START = frozenset({"atari_breakout"})
FIRE = 1


def _ram(env: Any) -> np.ndarray:
    return env.unwrapped.ale.getRAM()


def pong_expert(env: Any) -> Policy:
    """Meet the ball where it will cross the paddle's column, bouncing it off the walls.

    While the ball comes towards the player, its straight-line path (from the last two frames'
    positions) is extended to the paddle's x and folded at the top and bottom walls; while it goes
    away, the paddle returns to the centre. The paddle is aimed slightly off-centre, which sends the
    ball back at steeper angles.
    """
    noop, up, down = 0, 2, 3
    paddle_x, wall_top, wall_bottom, centre_y = 130, 48, 186, 117  # RAM units (ball y bounces in [48, 186])
    aim_offset, dead_zone = 6, 3  # tuned on seeds 0–3, checked on seeds 20–31
    previous = {"ball": None}

    def policy(observation: Any) -> int:
        ram = _ram(env)
        ball_x, ball_y, paddle_y = int(ram[49]), int(ram[54]), int(ram[51])
        last, previous["ball"] = previous["ball"], (ball_x, ball_y)
        target = centre_y
        if ball_x and ball_y and last is not None and last[0]:
            velocity_x, velocity_y = ball_x - last[0], ball_y - last[1]
            if velocity_x > 0 and ball_x < paddle_x:  # incoming: predict the crossing, folded at the walls
                span = wall_bottom - wall_top
                unfolded = (ball_y + velocity_y * (paddle_x - ball_x) / velocity_x - wall_top) % (2 * span)
                target = wall_top + (unfolded if unfolded <= span else 2 * span - unfolded)
            elif velocity_x > 0:  # already at the paddle: follow it
                target = ball_y
        error = target - (paddle_y + aim_offset)
        return down if error > dead_zone else up if error < -dead_zone else noop

    return policy


def breakout_expert(env: Any) -> Policy:
    """Keep the paddle under the ball's predicted x; FIRE when no ball is in play."""
    noop, fire, right, left = 0, 1, 2, 3
    paddle_centre_offset, dead_zone, lead = 8, 2, 2  # RAM units; tuned on seeds 0–1
    previous = {"ball_x": None}

    def policy(observation: Any) -> int:
        ram = _ram(env)
        ball_x, ball_y, paddle_x = int(ram[99]), int(ram[101]), int(ram[72])
        velocity = 0 if previous["ball_x"] is None else ball_x - previous["ball_x"]
        previous["ball_x"] = ball_x
        if ball_x == 0 or ball_y == 0:
            return fire
        error = ball_x + lead * velocity - (paddle_x + paddle_centre_offset)
        return right if error > dead_zone else left if error < -dead_zone else noop

    return policy


def freeway_expert(env: Any) -> Policy:
    """Walk up; wait while a car will be in the chicken's column next step in this lane or the next."""
    noop, up = 0, 1
    chicken_x, half_width, look_ahead = 44, 8, 1  # RAM x units / steps; tuned on seeds 0–2, checked on 20–29
    first_lane_y, lane_height, num_lanes = 16, 16, 10  # lane i is centred at y ≈ 16 + 16·i
    previous = {"cars": None}

    def policy(observation: Any) -> int:
        ram = _ram(env)
        cars, chicken_y = ram[108:118].astype(np.int64), int(ram[14])
        last, previous["cars"] = previous["cars"], cars
        if last is None:
            return up
        speed = cars - last
        speed = np.where(np.abs(speed) > lane_height, 0, speed)  # a car wrapping round the screen
        entering = int(np.floor((chicken_y - first_lane_y + lane_height / 2) / lane_height)) + 1
        lanes = np.array([entering, entering - 1])
        lanes = lanes[(lanes >= 0) & (lanes < num_lanes)]
        future = cars[lanes, None] + speed[lanes, None] * np.arange(look_ahead + 1)  # (lanes, steps)
        return noop if np.any(np.abs(future - chicken_x) < half_width) else up

    return policy


def to_episode_step(observation: np.ndarray) -> dict[str, np.ndarray]:
    """The (210, 160, 3) uint8 screen → ``{"frame": uint8 (80, 80, 3)}`` (PIL bilinear, antialiased)."""
    from PIL import Image

    frame = Image.fromarray(np.asarray(observation, dtype=np.uint8)).resize(FRAME_SIZE[::-1], Image.BILINEAR)
    return {"frame": np.asarray(frame, dtype=np.uint8)}


def fire_on_life_start(env: Any) -> Any:
    """Wrap an ALE environment so that it presses FIRE after ``reset`` and after every lost life.

    The agent never has to take the game's launch action; the launch's own step is not an agent step
    (the episode's ``TimeLimit`` inside still counts it). A launch that ends the episode ends it.
    """
    gym = require("gymnasium")

    class FireOnLifeStart(gym.Wrapper):
        def reset(self, **kwargs: Any) -> tuple[Any, dict[str, Any]]:
            observation, info = self.env.reset(**kwargs)
            observation, _, terminated, truncated, info = self.env.step(FIRE)
            if terminated or truncated:  # cannot happen in a fresh game; reset rather than start "done"
                observation, info = self.env.reset()
            self.lives = info.get("lives", 0)
            return observation, info

        def step(self, action: Any) -> tuple[Any, float, bool, bool, dict[str, Any]]:
            observation, reward, terminated, truncated, info = self.env.step(action)
            if not (terminated or truncated) and info.get("lives", 0) < self.lives:
                observation, launch_reward, terminated, truncated, info = self.env.step(FIRE)
                reward += launch_reward
            self.lives = info.get("lives", 0)
            return observation, reward, terminated, truncated, info

    return FireOnLifeStart(env)


def _make_env_factory(name: str, env_id: str, max_episode_steps: int) -> Callable[[int], Any]:
    def make_env(seed: int) -> Any:
        gym = require("gymnasium", task=name)
        ale_py = require("ale_py", task=name, pip_name="ale-py")
        gym.register_envs(ale_py)
        env = gym.make(env_id, max_episode_steps=max_episode_steps)
        if name in FIRE_ON_LIFE_START:
            env = fire_on_life_start(env)
        return seeded_env(env, seed)

    return make_env


EXPERTS: dict[str, Callable[[Any], Policy]] = {
    "atari_pong": pong_expert,
    "atari_breakout": breakout_expert,
    "atari_freeway": freeway_expert,
}


def _register(name: str, env_id: str, num_actions: int, max_episode_steps: int) -> None:
    register_env_task(
        name,
        DOMAIN,
        (ObservationField("frame", "image", shape=(*FRAME_SIZE, 3)),),
        discrete_action_codec(num_actions),
        make_env=_make_env_factory(name, env_id, max_episode_steps),
        make_expert=EXPERTS[name],
        make_labeler=EXPERTS[name],  # the expert reads the state afresh at every step: it labels any state
        to_episode_step=to_episode_step,
        max_episode_steps=max_episode_steps,
        extra={"env_id": env_id, "has_success": False},
    )


for _name, (_env_id, _num_actions, _steps) in TASKS.items():
    _register(_name, _env_id, _num_actions, _steps)
