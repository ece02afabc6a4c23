"""A task spec from a gymnasium environment's spaces, and the adapters between its observations/actions and the spec's.

:func:`spec_from_env` reads ``env.observation_space`` and ``env.action_space`` and builds the :class:`TaskSpec` the
processor lays episodes out by, so that any gymnasium environment can be recorded, trained on and played without a
hand-written spec. How each space becomes observation fields:

==========================================  ===============================================================
space                                       observation field(s)
==========================================  ===============================================================
``Box`` of floats                           one ``continuous`` field of the box's shape (μ-law unless the
                                            bounds lie within [-1, 1])
``Box`` ``uint8`` ``(H, W, 3)``             an ``image``; ``(H, W, 1)`` and ``(H, W)`` with H, W ≥ 16 are
                                            greyscale images ``(H, W)``
``Box`` of integers, finite bounds          ``discrete`` (values shifted to start at 0) when the range holds
                                            at most 1024 values, else ``continuous`` (μ-law)
``Discrete(n, start)``                      ``discrete`` scalar, ``n`` values (shifted by ``start``)
``MultiDiscrete(nvec, start)``              ``discrete`` of ``nvec``'s shape, ``max(nvec)`` values
``MultiBinary(n)``                          ``discrete`` of shape ``n``, 2 values
``Text`` (or any space of ``str``)           ``text`` (one string per step, e.g. a BabyAI mission)
``Dict`` / ``Tuple``                        their children, depth first, named by their path
==========================================  ===============================================================

**Field names and order** (stable: the same space always gives the same spec). A ``Dict`` is walked in its own key
order (gymnasium sorts the keys of a plain ``dict`` when it builds the space), a ``Tuple`` by index; a field is named
by its path of keys and indices joined with ``.`` (``{"robot": Dict(pos=Box, grip=Discrete)}`` gives ``robot.grip``
then ``robot.pos``; ``Tuple((Box, Discrete))`` gives ``0`` and ``1``); an observation that is a single space is the
field ``observation``. Within a time step the processor lays fields out kind by kind (text, images, discrete,
continuous) and in this order within a kind (``task_spec.py``).

Actions: ``Discrete`` and ``MultiDiscrete`` / ``MultiBinary`` / bounded integer ``Box`` → ``discrete`` (flattened), a
bounded float ``Box`` → ``continuous`` rescaled to [-1, 1] per dimension (``common.box_action_codec``). Spaces with no
place in a Gato token stream — ``Graph``, ``Sequence``, ``OneOf``, integers without bounds, ``Dict``/``Tuple`` actions,
float actions without bounds — raise :class:`UnsupportedSpaceError` naming the field and the space.

How to read the environment's observations and write its actions is stored in ``spec.extra["spaces"]`` (plain JSON),
so a spec saved with a dataset or a model (``task_specs.json``) is enough to rebuild the adapters
(:func:`env_adapters`) — with the environment id and arguments (``spec.extra["env_id"]``, ``["env_kwargs"]``), enough
to rebuild the task (``registry.task_from_env_id``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
from gato.suite.common import box_action_codec
from gato.suite.task_spec import ActionSpec, ObservationField, TaskSpec
from gato.suite.token_layout import DISCRETE_VALUES

SPACES_KEY = "spaces"  # spec.extra[SPACES_KEY]: how the spec's fields and action map to the environment's spaces
SINGLE_FIELD_NAME = "observation"
MIN_GREYSCALE_SIDE = 16  # a 2-D uint8 box at least this large on both sides is a greyscale frame, else discrete values
# Keyword arguments of gym.make that describe how to show an environment, not what it is: not stored with a spec.
_DISPLAY_KWARGS = ("render_mode",)

Adapters = tuple[Callable[[Any], dict[str, Any]], Callable[[Any], Any], Callable[[Any], np.ndarray]]


class UnsupportedSpaceError(ValueError):
    """A gymnasium space that has no Gato tokenization; the message names the field and the space."""


def _gym_spaces():
    try:
        from gymnasium import spaces
    except ModuleNotFoundError as error:  # pragma: no cover - gymnasium is in the envs extra
        raise ModuleNotFoundError("spec_from_env needs gymnasium: pip install 'gato[envs]'") from error
    return spaces


def _path_name(path: tuple[Any, ...]) -> str:
    return ".".join(str(part) for part in path) if path else SINGLE_FIELD_NAME


def _integer_range(space: Any) -> tuple[int, int] | None:
    """``(offset, num_values)`` of an integer Box, or None when it is unbounded (gymnasium's ``is_bounded``, or a bound
    at its dtype's extreme, which is how integer boxes say "no bound")."""
    low, high, limits = np.asarray(space.low), np.asarray(space.high), np.iinfo(space.dtype)
    if not space.is_bounded("both") or (low <= limits.min).any() or (high >= limits.max).any():
        return None
    offset = int(np.min(low))
    return offset, int(np.max(high)) - offset + 1


def _holds_strings(space: Any) -> bool:
    dtype = getattr(space, "dtype", None)
    return dtype is str or (dtype is not None and np.dtype(dtype).kind == "U")


def _leaf_field(space: Any, path: tuple[Any, ...]) -> tuple[ObservationField, dict[str, Any]]:
    """One non-composite space → its observation field and how to read it (``{"path", "offset", "squeeze"}``)."""
    spaces = _gym_spaces()
    name = _path_name(path)
    reader: dict[str, Any] = {"field": name, "path": list(path), "offset": 0, "squeeze": False}
    if isinstance(space, spaces.Text) or _holds_strings(space):  # minigrid's MissionSpace is a Space of str
        return ObservationField(name, "text"), reader
    if isinstance(space, spaces.Discrete):
        if int(space.n) > DISCRETE_VALUES:
            raise UnsupportedSpaceError(
                f"observation field {name!r}: {space} has {int(space.n)} values; "
                f"a discrete field holds at most {DISCRETE_VALUES}"
            )
        reader["offset"] = int(space.start)
        return ObservationField(name, "discrete", (), num_values=int(space.n)), reader
    if isinstance(space, spaces.MultiDiscrete):
        most = int(np.max(space.nvec))
        if most > DISCRETE_VALUES:
            raise UnsupportedSpaceError(
                f"observation field {name!r}: {space} has up to {most} values per element; "
                f"a discrete field holds at most {DISCRETE_VALUES}"
            )
        reader["offset"] = np.asarray(space.start).tolist()
        return ObservationField(name, "discrete", tuple(space.shape), num_values=most), reader
    if isinstance(space, spaces.MultiBinary):
        return ObservationField(name, "discrete", tuple(space.shape), num_values=2), reader
    if isinstance(space, spaces.Box):
        shape = tuple(int(d) for d in space.shape)
        if space.dtype == np.uint8 and (
            (len(shape) == 3 and shape[-1] in (1, 3)) or (len(shape) == 2 and min(shape) >= MIN_GREYSCALE_SIDE)
        ):
            reader["squeeze"] = len(shape) == 3 and shape[-1] == 1
            return ObservationField(name, "image", shape[:2] if reader["squeeze"] else shape), reader
        if space.dtype == np.uint8 and len(shape) == 3:
            raise UnsupportedSpaceError(
                f"observation field {name!r}: {space} is a frame of {shape[-1]} channels; "
                "images have 3 (RGB) or 1 (greyscale): wrap the environment to give those"
            )
        if np.issubdtype(space.dtype, np.integer):
            bounds = _integer_range(space)
            if bounds is None:
                raise UnsupportedSpaceError(
                    f"observation field {name!r}: {space} holds integers without bounds; a "
                    "discrete field needs a finite range (give the Box finite low and high)"
                )
            offset, count = bounds
            if count <= DISCRETE_VALUES:
                reader["offset"] = offset
                return ObservationField(name, "discrete", shape, num_values=count), reader
            return ObservationField(name, "continuous", shape, mu_law=True), reader
        if np.issubdtype(space.dtype, np.floating):
            within_unit = bool(np.all(space.low >= -1.0) and np.all(space.high <= 1.0))
            return ObservationField(name, "continuous", shape, mu_law=not within_unit), reader
    raise UnsupportedSpaceError(
        f"observation field {name!r}: {space} ({type(space).__name__}) has no Gato tokenization; "
        "supported: Box, Discrete, MultiDiscrete, MultiBinary, Text, and Dict/Tuple of them"
    )


def _walk(space: Any, path: tuple[Any, ...], out: list[tuple[ObservationField, dict[str, Any]]]) -> None:
    spaces = _gym_spaces()
    if isinstance(space, spaces.Dict):
        for key, child in space.spaces.items():
            _walk(child, (*path, key), out)
    elif isinstance(space, spaces.Tuple):
        for index, child in enumerate(space.spaces):
            _walk(child, (*path, index), out)
    else:
        out.append(_leaf_field(space, path))


def _action(space: Any) -> tuple[ActionSpec, dict[str, Any]]:
    """The action space → its :class:`ActionSpec` and how to convert (``{"space", "shape", "offset", "low", "high"}``)."""
    spaces = _gym_spaces()
    shape = [int(d) for d in (space.shape or ())]
    size = int(np.prod(shape)) if shape else 1
    writer: dict[str, Any] = {"space": type(space).__name__, "shape": shape, "offset": 0}
    if isinstance(space, spaces.Discrete):
        if int(space.n) > DISCRETE_VALUES:
            raise UnsupportedSpaceError(f"action: {space} has {int(space.n)} values; at most {DISCRETE_VALUES}")
        writer["offset"] = int(space.start)
        return ActionSpec("discrete", size=1, num_values=int(space.n)), writer
    if isinstance(space, (spaces.MultiDiscrete, spaces.MultiBinary)) or (
        isinstance(space, spaces.Box) and np.issubdtype(space.dtype, np.integer)
    ):
        if isinstance(space, spaces.MultiDiscrete):
            writer["offset"], writer["high"] = np.asarray(space.start).tolist(), (np.asarray(space.nvec) - 1).tolist()
            count = int(np.max(space.nvec))
        elif isinstance(space, spaces.MultiBinary):
            writer["high"], count = 1, 2
        else:
            bounds = _integer_range(space)
            if bounds is None:
                raise UnsupportedSpaceError(
                    f"action: {space} holds integers without bounds; give the Box finite bounds"
                )
            writer["offset"], count = bounds[0], bounds[1]
            writer["high"] = (np.asarray(space.high) - bounds[0]).tolist()
        if count > DISCRETE_VALUES:
            raise UnsupportedSpaceError(
                f"action: {space} has up to {count} values per dimension; at most {DISCRETE_VALUES}"
            )
        return ActionSpec("discrete", size=size, num_values=count), writer
    if isinstance(space, spaces.Box) and np.issubdtype(space.dtype, np.floating):
        if not (np.isfinite(space.low).all() and np.isfinite(space.high).all()):
            raise UnsupportedSpaceError(
                f"action: {space} has infinite bounds; continuous actions are binned between "
                "finite bounds (clip the environment's actions, e.g. gymnasium's ClipAction)"
            )
        writer["low"], writer["high"] = (
            np.asarray(space.low).reshape(-1).tolist(),
            np.asarray(space.high).reshape(-1).tolist(),
        )
        spec, _, _ = box_action_codec(np.asarray(writer["low"]), np.asarray(writer["high"]), size)
        return spec, writer
    raise UnsupportedSpaceError(
        f"action: {space} ({type(space).__name__}) has no Gato tokenization; supported: Discrete, "
        "MultiDiscrete, MultiBinary, Box (a Gato action is one flat vector)"
    )


def spec_from_spaces(
    observation_space: Any, action_space: Any, name: str, *, domain: str = "", extra: Mapping[str, Any] | None = None
) -> TaskSpec:
    """The :class:`TaskSpec` of a task whose observations and actions are these gymnasium spaces (module docstring).

    Raises:
        UnsupportedSpaceError: a space with no Gato tokenization, naming the field (its path) and the space.
    """
    fields: list[tuple[ObservationField, dict[str, Any]]] = []
    _walk(observation_space, (), fields)
    if not fields:
        raise UnsupportedSpaceError(f"observation space {observation_space}: holds no field")
    action, writer = _action(action_space)
    readers = [reader for _, reader in fields]
    return TaskSpec(
        name=name,
        observations=tuple(f for f, _ in fields),
        action=action,
        domain=domain,
        extra={**dict(extra or {}), SPACES_KEY: {"observations": readers, "action": writer}},
    )


def env_kwargs_of(env: Any) -> dict[str, Any]:
    """The ``gym.make`` keyword arguments recorded in ``env.spec`` that describe the task (JSON values only; how it is
    displayed, ``render_mode``, is left out)."""
    import json

    kwargs = dict(getattr(getattr(env, "spec", None), "kwargs", None) or {})
    kept = {}
    for key, value in kwargs.items():
        if key in _DISPLAY_KWARGS:
            continue
        try:
            json.dumps(value, allow_nan=False)
        except (TypeError, ValueError):
            continue  # an object (a callable, an array): the environment id's defaults will rebuild it
        kept[key] = value
    return kept


def spec_from_env(
    env: Any,
    name: str | None = None,
    *,
    domain: str = "",
    env_id: str | None = None,
    env_kwargs: Mapping[str, Any] | None = None,
) -> TaskSpec:
    """The :class:`TaskSpec` of a gymnasium environment, from its spaces, carrying how to rebuild the environment.

    Args:
        env: a ``gymnasium.Env`` (made with ``gym.make`` when it is to be rebuilt from the spec).
        name: the task's name (default: the environment id).
        domain: the task's domain (default ``""``: the trainer then groups the task under its own name).
        env_id / env_kwargs: the ``gym.make`` id and keyword arguments stored in ``spec.extra`` (default: read from
            ``env.spec``; JSON-serializable arguments only).
    """
    registered = getattr(env, "spec", None)
    env_id = env_id or getattr(registered, "id", None)
    if name is None:
        if env_id is None:
            raise ValueError("name: the environment has no id (env.spec is None); pass name=")
        name = env_id
    extra: dict[str, Any] = {}
    if env_id is not None:
        extra["env_id"] = env_id
        extra["env_kwargs"] = dict(env_kwargs) if env_kwargs is not None else env_kwargs_of(env)
    steps = getattr(registered, "max_episode_steps", None)
    if steps:
        extra["max_episode_steps"] = int(steps)
    return spec_from_spaces(env.observation_space, env.action_space, name, domain=domain, extra=extra)


def with_env(spec: TaskSpec, env: Any) -> TaskSpec:
    """``spec`` with the environment's id, arguments and horizon in ``extra`` (from ``env.spec``) where it has none yet;
    ``spec`` itself when it has them or the environment has no id."""
    registered = getattr(env, "spec", None)
    if "env_id" in spec.extra or getattr(registered, "id", None) is None:
        return spec
    extra = {**spec.extra, "env_id": registered.id, "env_kwargs": env_kwargs_of(env)}
    if getattr(registered, "max_episode_steps", None):
        extra.setdefault("max_episode_steps", int(registered.max_episode_steps))
    return TaskSpec(
        name=spec.name, observations=spec.observations, action=spec.action, domain=spec.domain, extra=extra
    )


# --- adapters: the environment's formats ↔ the spec's --------------------------------------------------------------


def _read_path(observation: Any, path: list[Any], field: str) -> Any:
    value = observation
    for part in path:
        try:
            value = value[part]
        except (KeyError, IndexError, TypeError) as error:
            raise ValueError(f"observation field {field!r}: the observation has no {part!r} at path {path}") from error
    return value


def _space_adapters(spec: TaskSpec) -> Adapters:
    layout = spec.extra[SPACES_KEY]
    readers = layout["observations"]
    kinds = {f.name: f.kind for f in spec.observations}
    writer = layout["action"]
    size, shape = spec.action.size, tuple(writer["shape"])

    def to_episode_step(observation: Any) -> dict[str, Any]:
        step = {}
        for reader in readers:
            value = _read_path(observation, reader["path"], reader["field"])
            if kinds[reader["field"]] == "text":
                step[reader["field"]] = str(value)
                continue
            value = np.asarray(value)
            if reader["squeeze"]:
                value = value[..., 0]
            if reader["offset"] != 0:
                value = value - np.asarray(reader["offset"], dtype=value.dtype)
            step[reader["field"]] = value
        return step

    if writer["space"] == "Discrete":

        def to_env_action(action: Any) -> int:
            return int(np.asarray(action).reshape(-1)[0]) + writer["offset"]

        def from_env_action(env_action: Any) -> np.ndarray:
            return (np.asarray(env_action, dtype=np.int64) - writer["offset"]).reshape(1)
    elif spec.action.kind == "discrete":
        offset, high = (np.asarray(writer[key], dtype=np.int64).reshape(-1) for key in ("offset", "high"))

        def to_env_action(action: Any) -> np.ndarray:
            # One shared vocabulary of max(nvec) values: a dimension with fewer is clipped to its own range.
            value = np.clip(np.asarray(action, dtype=np.int64).reshape(size), 0, high)
            return (value + offset).reshape(shape)

        def from_env_action(env_action: Any) -> np.ndarray:
            return np.asarray(env_action, dtype=np.int64).reshape(size) - offset
    else:
        _, to_flat_env, from_flat_env = box_action_codec(np.asarray(writer["low"]), np.asarray(writer["high"]), size)

        def to_env_action(action: Any) -> np.ndarray:
            return to_flat_env(np.asarray(action, dtype=np.float32).reshape(size)).reshape(shape)

        def from_env_action(env_action: Any) -> np.ndarray:
            return from_flat_env(np.asarray(env_action, dtype=np.float32).reshape(size))

    return to_episode_step, to_env_action, from_env_action


def _default_adapters(spec: TaskSpec) -> Adapters:
    """A hand-written spec: a dict observation by key (or a bare one for a one-field spec); actions as they are."""
    names = [f.name for f in spec.observations]
    size = spec.action.size

    def to_episode_step(observation: Any) -> dict[str, Any]:
        if isinstance(observation, Mapping):
            missing = [name for name in names if name not in observation]
            if missing:
                raise ValueError(
                    f"task {spec.name!r}: the observation has no key(s) {missing}; keys are {sorted(observation)}"
                )
            return {name: observation[name] for name in names}
        if len(names) != 1:
            raise ValueError(
                f"task {spec.name!r}: a non-dict observation fits a one-field spec only; the spec has {names}"
            )
        return {names[0]: observation}

    def to_env_action(action: Any) -> Any:
        if spec.action.kind == "discrete":
            value = np.asarray(action, dtype=np.int64).reshape(size)
            return int(value[0]) if size == 1 else value
        return np.asarray(action, dtype=np.float32).reshape(size)

    def from_env_action(env_action: Any) -> np.ndarray:
        return np.asarray(env_action).reshape(size)

    return to_episode_step, to_env_action, from_env_action


def env_adapters(spec: TaskSpec) -> Adapters:
    """``(to_episode_step, to_env_action, from_env_action)`` of a task's spec: the space layout stored by
    :func:`spec_from_env` when the spec has one, else the defaults of a hand-written spec (a dict observation by key, or
    the bare observation of a one-field spec; actions reshaped, discrete scalars as ``int``)."""
    return _space_adapters(spec) if SPACES_KEY in spec.extra else _default_adapters(spec)


__all__ = [
    "UnsupportedSpaceError",
    "spec_from_env",
    "with_env",
    "spec_from_spaces",
    "env_adapters",
    "env_kwargs_of",
    "SPACES_KEY",
]
