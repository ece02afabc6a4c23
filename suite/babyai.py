"""BabyAI levels (minigrid) with the BabyAI bot as the expert, as symbols and as rendered images.

Two domains share this file (same levels, same bot, same actions; only the view differs):

``babyai`` — the symbolic view. Observation fields, in layout order:

- ``mission`` (text): the instruction, e.g. ``"go to the red ball"``.
- ``grid`` (discrete, ``(7, 7)``): the agent's egocentric view, one value per cell encoding its
  (object type, colour, state) — minigrid's ``OBJECT_TO_IDX`` (11 values), ``COLOR_TO_IDX`` (6),
  ``STATE_TO_IDX`` (3) — as ``type + 11·(colour + 6·state)``, below :data:`GRID_VALUES` = 198
  (:func:`cell_tokens`).
- ``direction`` (discrete, scalar): the agent's heading in [0, 4).

``babyai_rgb`` — the same egocentric 7×7 view rendered as an RGB image (minigrid's
``RGBImgPartialObsWrapper``) at :data:`TILE_SIZE` = 16 pixels per cell: ``mission`` (text), ``frame``
(image, 112×112×3, so each 16×16 patch is exactly one grid cell), ``direction`` (discrete).

Action: one discrete token in [0, 7) (left, right, forward, pickup, drop, toggle, done).

The levels were chosen so that the bot solves them every time and an expert episode is short (mean
4–20 steps, docs/SUITE.md): each episode of a level is cheap to generate and fits in a few
1024-token sequences. The horizon is the level's own ``max_steps`` (the env truncates itself), so
rewards keep the BabyAI definition ``1 − 0.9·steps/max_steps`` on success.
"""

from __future__ import annotations

import contextlib
import functools
import io
from collections.abc import Callable
from typing import Any

import numpy as np
from gato.suite.task_spec import ObservationField
from gato.suite.token_layout import PATCH_SIZE

from .common import discrete_action_codec, seeded_env
from .registry import Policy, register_env_task, require

DOMAIN = "babyai"
RGB_DOMAIN = "babyai_rgb"
VIEW_SHAPE = (7, 7, 3)  # minigrid's egocentric view: per cell (object type, colour, state)
# len() of minigrid.core.constants OBJECT_TO_IDX / COLOR_TO_IDX / STATE_TO_IDX (a test checks them against
# the installed minigrid, which is not imported here so that listing tasks needs no env).
NUM_OBJECT_TYPES, NUM_COLOURS, NUM_STATES = 11, 6, 3
GRID_SHAPE = VIEW_SHAPE[:2]
GRID_VALUES = NUM_OBJECT_TYPES * NUM_COLOURS * NUM_STATES  # one token per cell: 198 values
NUM_DIRECTIONS = 4
NUM_ACTIONS = 7
TILE_SIZE = PATCH_SIZE  # pixels per rendered cell: one patch per cell
# The actions noise-injected recording (``--action-noise``) executes at random: turning and moving, which
# the bot replans around. Not pickup/drop/toggle: a random toggle opens a box (it vanishes), after which
# the bot gives up (DisappearedBoxError); the drift that matters for imitation is the agent's pose.
NOISE_ACTIONS = (0, 1, 2)  # left, right, forward
FRAME_SHAPE = (VIEW_SHAPE[0] * TILE_SIZE, VIEW_SHAPE[1] * TILE_SIZE, 3)
LEFT, PICKUP, DROP = 0, 3, 4  # minigrid's actions

# task name → (BabyAI level id, max_episode_steps = the level's own max_steps)
LEVELS: dict[str, tuple[str, int]] = {
    "babyai_goto_red_ball_grey": ("BabyAI-GoToRedBallGrey-v0", 64),
    "babyai_goto_red_ball": ("BabyAI-GoToRedBall-v0", 64),
    "babyai_goto_obj": ("BabyAI-GoToObj-v0", 64),
    "babyai_goto_local": ("BabyAI-GoToLocal-v0", 64),
    "babyai_open_door": ("BabyAI-OpenDoor-v0", 576),
    "babyai_open_two_doors": ("BabyAI-OpenTwoDoors-v0", 720),
    "babyai_pickup_loc": ("BabyAI-PickupLoc-v0", 64),
    "babyai_put_next_local": ("BabyAI-PutNextLocal-v0", 128),
    "babyai_unlock_local": ("BabyAI-UnlockLocal-v0", 576),
    "babyai_key_corridor_s3r1": ("BabyAI-KeyCorridorS3R1-v0", 270),
}
# The levels whose states :class:`BabyAIStateLabeler` can label (missions that go to or pick up one object; in
# the others carrying an object is part of the plan, which a bot rebuilt mid-episode cannot take up).
LABELED_LEVELS: tuple[str, ...] = (
    "babyai_goto_red_ball_grey",
    "babyai_goto_red_ball",
    "babyai_goto_obj",
    "babyai_goto_local",
    "babyai_pickup_loc",
)
# The levels also offered with rendered observations (domain "babyai_rgb"), named babyai_rgb_<level>.
RGB_LEVELS: tuple[str, ...] = (
    "babyai_goto_red_ball",
    "babyai_goto_local",
    "babyai_open_door",
    "babyai_pickup_loc",
    "babyai_put_next_local",
)


@functools.cache
def _quiet_reset_wrapper(gym: Any) -> type:
    class QuietBabyAI(gym.Wrapper):
        """Silences level generation (it prints "Sampling rejected: …" to stdout) and reports success.

        ``info["success"]`` is True on the step that completes the mission (positive reward on
        termination); BabyAI never terminates otherwise except by the ``done`` action's failure.
        """

        def reset(self, **kwargs: Any) -> tuple[Any, dict]:
            with contextlib.redirect_stdout(io.StringIO()):
                return self.env.reset(**kwargs)

        def step(self, action: Any) -> tuple[Any, float, bool, bool, dict]:
            observation, reward, terminated, truncated, info = self.env.step(action)
            info = {**info, "success": bool(terminated and reward > 0)}
            return observation, reward, terminated, truncated, info

    return QuietBabyAI


def _make_env_factory(name: str, level: str, max_episode_steps: int, rgb: bool) -> Callable[[int], Any]:
    def make_env(seed: int) -> Any:
        gym = require("gymnasium", task=name)
        require("minigrid", task=name)  # importing minigrid registers the BabyAI ids
        env = gym.make(level, max_episode_steps=max_episode_steps)
        if rgb:  # replaces observation["image"] by the rendered view; the bot reads the env, not the view
            env = require("minigrid.wrappers", task=name).RGBImgPartialObsWrapper(env, tile_size=TILE_SIZE)
        return seeded_env(_quiet_reset_wrapper(gym)(env), seed)

    return make_env


class BabyAIBotPolicy:
    """The BabyAI bot (``minigrid.utils.baby_ai_bot.BabyAIBot``), rebuilt at each episode's first step.

    The bot plans from the environment's internal state (the mission's instruction tree and the grid),
    not from the observation; it must be built after ``reset``, so it is built lazily on the first
    call of an episode (``step_count == 0``), which also makes one policy reusable across episodes.

    The bot keeps a stack of subgoals and assumes its suggestion was taken unless told otherwise: when the
    environment executes another action (noise-injected recording, ``gato data generate --action-noise``),
    :meth:`executed` passes that action to the next ``replan``, which undoes or replans around it (a
    PickupSubgoal would otherwise count an object as picked up that never was).
    """

    def __init__(self, env: Any) -> None:
        self._bot_module = require("minigrid.utils.baby_ai_bot", task="babyai")
        self._env = env
        self._bot: Any = None
        self._suggested: int | None = None
        self._taken: int | None = None  # the executed action when it differs from the suggestion

    def __call__(self, observation: Any) -> int:
        if self._bot is None or self._env.unwrapped.step_count == 0:
            self._bot, self._taken = self._bot_module.BabyAIBot(self._env), None
        self._suggested = int(self._bot.replan(self._taken))
        self._taken = None
        return self._suggested

    def executed(self, action: Any) -> None:
        action = int(action)
        self._taken = None if action == self._suggested else action


class BabyAIStateLabeler:
    """The BabyAI bot's action for whatever state another policy reached (DAgger labels, ``gato data generate
    --dagger-model``), for the go-to and pick-up levels (:data:`LABELED_LEVELS`).

    :class:`BabyAIBotPolicy` keeps a plan and, told that another action was executed, plans to *undo* it
    first (walk back, turn back): the right labels for a few noisy actions, the wrong ones for a learner that
    drives a whole episode (its labels would be a growing stack of undos). This labeler instead builds a fresh
    bot at every step, which plans from the current state to the mission, and hands it the cells seen so far
    in the episode (the bot's ``vis_mask``), so it knows what the agent has already seen as the recording bot
    does. Carrying an object — in these levels only a wrong pickup, the right one ends the episode — is
    labelled ``drop`` when the cell ahead is free and ``left`` (turn to find a free one) when it is not: the
    bot itself cannot plan with a full hand.
    """

    def __init__(self, env: Any) -> None:
        self._bot_module = require("minigrid.utils.baby_ai_bot", task="babyai")
        self._env = env
        self._seen: np.ndarray | None = None

    def __call__(self, observation: Any) -> int:
        state = self._env.unwrapped
        if state.step_count == 0:
            self._seen = None
        if state.carrying is not None:
            return DROP if state.grid.get(*state.front_pos) is None else LEFT
        bot = self._bot_module.BabyAIBot(self._env)
        if self._seen is not None:
            bot.vis_mask = self._seen
        action = int(bot.replan())
        self._seen = bot.vis_mask
        return action


def babyai_labeler(env: Any) -> Policy:
    """:class:`BabyAIStateLabeler` for ``env``."""
    return BabyAIStateLabeler(env)


def babyai_expert(env: Any) -> Policy:
    """The BabyAI bot as a policy for ``env`` (:class:`BabyAIBotPolicy`)."""
    return BabyAIBotPolicy(env)


def cell_tokens(view: Any) -> np.ndarray:
    """minigrid's (7, 7, 3) view → one value per cell, ``type + 11·(colour + 6·state)`` in [0, 198).

    A deviation from the plain flattening of the observation (147 values, GATO_SPEC §1): one token per cell
    names the object outright ("red ball" is one token the mission's words can attend to), and a time step
    of the default levels is 57 tokens instead of 155, so a 384-token context holds a whole episode (6 steps
    on average) instead of two and a half steps (BENCHMARKS.md, "BabyAI: one token per cell").
    """
    view = np.asarray(view, dtype=np.int64)
    if view.shape != VIEW_SHAPE:
        raise ValueError(f"observation['image'] must have shape {VIEW_SHAPE}, got {view.shape}")
    object_type, colour, state = view[..., 0], view[..., 1], view[..., 2]
    return object_type + NUM_OBJECT_TYPES * (colour + NUM_COLOURS * state)


def to_episode_step(observation: dict[str, Any]) -> dict[str, Any]:
    """minigrid's dict observation → ``{"mission": str, "grid": int64 (7, 7), "direction": int64 ()}``."""
    return {
        "mission": str(observation["mission"]),
        "grid": cell_tokens(observation["image"]),
        "direction": np.asarray(observation["direction"], dtype=np.int64),
    }


def to_episode_step_rgb(observation: dict[str, Any]) -> dict[str, Any]:
    """The rendered view → ``{"mission": str, "frame": uint8 (112, 112, 3), "direction": int64 ()}``."""
    return {
        "mission": str(observation["mission"]),
        "frame": np.asarray(observation["image"], dtype=np.uint8),
        "direction": np.asarray(observation["direction"], dtype=np.int64),
    }


def _register(name: str, level: str, max_episode_steps: int, rgb: bool = False, labeled: bool = False) -> None:
    view = (
        ObservationField("frame", "image", shape=FRAME_SHAPE)
        if rgb
        else ObservationField("grid", "discrete", shape=GRID_SHAPE, num_values=GRID_VALUES)
    )
    register_env_task(
        name,
        RGB_DOMAIN if rgb else DOMAIN,
        (
            ObservationField("mission", "text"),
            view,
            ObservationField("direction", "discrete", shape=(), num_values=NUM_DIRECTIONS),
        ),
        discrete_action_codec(NUM_ACTIONS),
        make_env=_make_env_factory(name, level, max_episode_steps, rgb),
        make_expert=babyai_expert,
        make_labeler=babyai_labeler if labeled else None,
        to_episode_step=to_episode_step_rgb if rgb else to_episode_step,
        max_episode_steps=max_episode_steps,
        extra={"env_id": level, "has_success": True, "noise_actions": NOISE_ACTIONS},
    )


for _name, (_level, _steps) in LEVELS.items():
    _register(_name, _level, _steps, labeled=_name in LABELED_LEVELS)
for _name in RGB_LEVELS:
    _register(_name.replace("babyai_", "babyai_rgb_", 1), *LEVELS[_name], rgb=True, labeled=_name in LABELED_LEVELS)
