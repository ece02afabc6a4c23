"""The task registry: each built-in task is an environment factory, an expert, a spec and reference returns.

Domain modules (``suite/classic_control.py``, ``suite/babyai.py``, …) call :func:`register_task` at
import time; :func:`load_builtin_tasks` imports them. Everything that needs "the tasks" (``gato data``,
generation, evaluation) goes through :func:`get_task`, :func:`list_tasks` and :func:`resolve_tasks`.

Registering a task needs no environment package: the packages of the ``envs`` extra (gymnasium,
minigrid, metaworld, ale-py, box2d) are imported when an environment or expert is built, and a
missing one raises :class:`MissingEnvPackageError` that names the extra (see :func:`require`).

Conventions every task follows:

- ``make_env(seed)`` builds the environment (a ``gymnasium.Env``, horizon already applied as a
  ``TimeLimit`` of ``max_episode_steps``) and seeds its action space; episodes are then started with
  ``env.reset(seed=episode_seed)``, which fixes the episode (start state, mission, goal).
- ``make_expert(env)`` is called once per episode, before or after ``reset``.
- Environments whose tasks have a notion of success (BabyAI, Meta-World) put ``info["success"]``
  (bool) into every ``step``'s info; ``task.extra["has_success"]`` says so.
"""

from __future__ import annotations

import importlib
import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
from gato.suite.task_spec import ActionSpec, ObservationField, TaskSpec

# A policy maps one observation (the environment's own format) to one action (the environment's own format).
Policy = Callable[[Any], Any]

# Measured expert / random returns, written by ``scripts/measure_returns.py`` (docs/SUITE.md has the table).
REFERENCE_RETURNS_PATH = Path(__file__).with_name("reference_returns.json")

ENVS_EXTRA_HINT = "pip install 'gato[envs]'"


class MissingEnvPackageError(ImportError):
    """An environment package of the ``envs`` extra is not installed."""


def require(module: str, *, task: str = "", pip_name: str | None = None) -> ModuleType:
    """Import ``module`` or raise :class:`MissingEnvPackageError` naming the ``envs`` extra.

    Domain modules call this inside ``make_env`` / ``make_expert`` so that listing tasks works without
    the environment packages and building one without them fails with an actionable message.
    """
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as error:
        top_level = module.split(".")[0]
        if error.name is None or error.name.split(".")[0] != top_level:
            raise  # the package is there but one of *its* imports failed: show that error as it is
        who = f"task {task!r} needs" if task else "this needs"
        raise MissingEnvPackageError(
            f"{who} the {pip_name or top_level!r} package, which is not installed; "
            f"install the environment extra: {ENVS_EXTRA_HINT}"
        ) from error


@dataclass
class Task:
    """A built-in task.

    Args:
        spec: observation fields and action spec (the processor lays episodes out by it).
        make_env: ``make_env(seed) -> gymnasium.Env``.
        make_expert: ``make_expert(env) -> policy``; the policy may keep state for one episode and is
            rebuilt for every episode.
        to_episode_step: ``to_episode_step(observation) -> {field_name: value}`` turns the
            environment's observation into the spec's observation fields (numpy arrays of the field's
            shape, ``str`` for text); ``to_env_action(action)`` turns a spec action (array of shape
            ``(spec.action.size,)``) into the environment's action, and ``from_env_action`` does the
            reverse.
        expert_return / random_return: measured mean episode returns (docs/SUITE.md says how many
            episodes) used for expert-normalized scores; NaN when not measured yet.
        max_episode_steps: the horizon used when generating and evaluating.
        make_labeler: ``make_labeler(env) -> policy`` that gives the expert's action for states *another* policy
            reached (DAgger, ``gato data generate --dagger-model``): built after ``reset``, asked at every step
            whatever was executed before. The suite's experts that read the state afresh at every step are
            their own labelers; ``None``: the task cannot be labelled this way (an expert that keeps a plan).
        extra: free-form metadata (``has_success``, the environment id, …; ``noise_actions``: the discrete
            actions that noise-injected recording may execute at random, when not all of them).
    """

    spec: TaskSpec
    make_env: Callable[[int], Any]
    make_expert: Callable[[Any], Policy]
    to_episode_step: Callable[[Any], dict[str, Any]]
    to_env_action: Callable[[Any], Any]
    from_env_action: Callable[[Any], Any]
    expert_return: float
    random_return: float
    max_episode_steps: int
    extra: dict[str, Any] = field(default_factory=dict)
    make_labeler: Callable[[Any], Policy] | None = None

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def domain(self) -> str:
        return self.spec.domain

    def normalized_score(self, episode_return: float | np.ndarray) -> float | np.ndarray:
        """(return − random) / (expert − random), GATO_SPEC.md section 8; elementwise on arrays."""
        return normalized_score(episode_return, self.expert_return, self.random_return, task=self.name)


def normalized_score(
    episode_return: float | np.ndarray, expert_return: float, random_return: float, task: str = ""
) -> float | np.ndarray:
    """Expert-normalized score: 0 at the random policy's mean return, 1 at the expert's.

    Raises ``ValueError`` when the reference returns are missing (NaN) or equal, where the score is
    undefined.
    """
    if not (math.isfinite(expert_return) and math.isfinite(random_return)) or expert_return == random_return:
        raise ValueError(
            f"task {task!r}: normalized score needs finite, distinct expert and random returns, "
            f"got expert_return={expert_return}, random_return={random_return}"
        )
    scale = expert_return - random_return
    if isinstance(episode_return, np.ndarray):
        return (episode_return - random_return) / scale
    return (float(episode_return) - random_return) / scale


def load_reference_returns(path: Path = REFERENCE_RETURNS_PATH) -> dict[str, dict[str, Any]]:
    """``{task name: {"expert_return", "random_return", "episodes", ...}}`` from the measured JSON."""
    if not path.exists():
        return {}
    return json.loads(path.read_text())


def reference_returns(name: str) -> tuple[float, float]:
    """The measured (expert, random) mean returns of a task; (NaN, NaN) when not measured yet."""
    entry = _REFERENCE_RETURNS.get(name, {})
    return float(entry.get("expert_return", math.nan)), float(entry.get("random_return", math.nan))


_REFERENCE_RETURNS: dict[str, dict[str, Any]] = load_reference_returns()
_TASKS: dict[str, Task] = {}
# Named groups of tasks: "default" (the CPU main job's small suite), "full" (every task), "held_out" (one task per
# domain kept out of the generalist's pretraining, for the transfer study) and "generalist" (``full`` without them).
_SUITES: dict[str, list[str]] = {}
_DOMAIN_MODULES: tuple[str, ...] = (
    "gato.suite.classic_control",
    "gato.suite.babyai",
    "gato.suite.metaworld",
    "gato.suite.atari",
)
# The CPU main job's suite: a few episodes of each generate in seconds.
DEFAULT_SUITE: tuple[str, ...] = (
    "cartpole",
    "acrobot",
    "mountain_car",
    "pendulum",
    "babyai_goto_red_ball",
    "babyai_pickup_loc",
    "metaworld_reach",
    "atari_breakout",
)
# One task per domain of ``full`` that the generalist never sees in pretraining (its data, prompts or DAgger rounds):
# the transfer study (issue #18 section 3, ``scripts/transfer_study.py``) fine-tunes on them with few episodes.
HELD_OUT_TASKS: tuple[str, ...] = (
    "mountain_car_continuous",
    "babyai_open_two_doors",
    "babyai_rgb_goto_red_ball",
    "metaworld_drawer_close",
    "atari_freeway",
)


def register_task(task: Task) -> Task:
    if task.name in _TASKS:
        raise ValueError(f"task {task.name!r} is already registered")
    _TASKS[task.name] = task
    return task


def register_env_task(
    name: str,
    domain: str,
    observations: tuple[ObservationField, ...],
    action: tuple[ActionSpec, Callable[[Any], Any], Callable[[Any], Any]],
    *,
    make_env: Callable[[int], Any],
    make_expert: Callable[[Any], Policy],
    make_labeler: Callable[[Any], Policy] | None,
    to_episode_step: Callable[[Any], dict[str, Any]],
    max_episode_steps: int,
    extra: dict[str, Any],
) -> Task:
    """Register a task of a domain module: its spec from ``observations`` and an action codec
    (``(spec, to_env_action, from_env_action)``, ``common.py``), its reference returns from
    ``reference_returns.json``."""
    action_spec, to_env_action, from_env_action = action
    expert_return, random_return = reference_returns(name)
    return register_task(
        Task(
            spec=TaskSpec(name=name, observations=observations, action=action_spec, domain=domain),
            make_env=make_env,
            make_expert=make_expert,
            make_labeler=make_labeler,
            to_episode_step=to_episode_step,
            to_env_action=to_env_action,
            from_env_action=from_env_action,
            expert_return=expert_return,
            random_return=random_return,
            max_episode_steps=max_episode_steps,
            extra=extra,
        )
    )


def register_suite(name: str, task_names: list[str]) -> None:
    _SUITES[name] = list(task_names)


def list_suites() -> dict[str, list[str]]:
    """Suite name → task names (builtin suites included)."""
    load_builtin_tasks()
    return {name: list(names) for name, names in _SUITES.items()}


def load_builtin_tasks() -> None:
    """Import the domain modules (each registers its tasks once) and register the builtin suites."""
    for module in _DOMAIN_MODULES:
        importlib.import_module(module)
    if "full" not in _SUITES:
        register_suite("default", list(DEFAULT_SUITE))
        register_suite("full", sorted(_TASKS))
        register_suite("held_out", list(HELD_OUT_TASKS))
        register_suite("generalist", sorted(set(_TASKS) - set(HELD_OUT_TASKS)))


def get_task(name: str) -> Task:
    load_builtin_tasks()
    if name not in _TASKS:
        raise KeyError(f"unknown task {name!r}; known tasks: {', '.join(sorted(_TASKS))}")
    return _TASKS[name]


def list_tasks() -> list[Task]:
    load_builtin_tasks()
    return [_TASKS[name] for name in sorted(_TASKS)]


def resolve_tasks(names_or_suite: str) -> list[Task]:
    """Suite names (``"default"``, ``"full"``, ``"held_out"``, ``"generalist"``), domain names or task names, comma-separated → tasks.

    Each comma-separated item may be any of the three; the result keeps the order given and has no
    duplicates. An unknown item raises ``KeyError`` listing the known suites, domains and tasks.
    """
    load_builtin_tasks()
    domains: dict[str, list[str]] = {}
    for task in list_tasks():
        domains.setdefault(task.domain, []).append(task.name)
    names: list[str] = []
    for item in (part.strip() for part in names_or_suite.split(",")):
        if not item:
            continue
        if item in _SUITES:
            names.extend(_SUITES[item])
        elif item in domains:
            names.extend(domains[item])
        elif item in _TASKS:
            names.append(item)
        else:
            raise KeyError(
                f"unknown task, domain or suite {item!r}; suites: {', '.join(sorted(_SUITES))}; "
                f"domains: {', '.join(sorted(domains))}; tasks: {', '.join(sorted(_TASKS))}"
            )
    if not names:
        raise KeyError(f"no tasks named in {names_or_suite!r}")
    return [_TASKS[name] for name in dict.fromkeys(names)]


# --- tasks the package does not know, carried by their spec ---------------------------------------------------------

# The horizon of a task built from an environment id whose registration sets none (and the spec stores none).
DEFAULT_MAX_EPISODE_STEPS = 1000
# Environment packages that register their ids when imported, by id prefix (gym.make needs them imported first).
_ENV_ID_PACKAGES = {"ALE/": "ale_py", "BabyAI-": "minigrid", "MiniGrid-": "minigrid", "Meta-World/": "metaworld"}


def parse_env_kwargs(text: str | None) -> dict[str, Any] | None:
    """``--env-kwargs`` as the keyword arguments of ``gym.make`` (``None`` when not given); anything but a JSON object
    is refused naming ``env_kwargs``."""
    if text is None:
        return None
    try:
        kwargs = json.loads(text)
    except json.JSONDecodeError as error:
        raise ValueError(
            f'env_kwargs: expected a JSON object such as \'{{"map_name": "8x8"}}\', got {text!r} ({error})'
        ) from None
    if not isinstance(kwargs, dict):
        raise ValueError(f"env_kwargs: expected a JSON object, got {text!r}")
    return kwargs


def _gymnasium_for(env_id: str) -> ModuleType:
    """``gymnasium``, with the package that registers ``env_id`` (ALE, minigrid, Meta-World) imported when it is one
    of those."""
    gym = require("gymnasium")
    for prefix, package in _ENV_ID_PACKAGES.items():
        if env_id.startswith(prefix):
            module = require(package)
            if package == "ale_py":
                gym.register_envs(module)
    return gym


def check_env_id(env_id: str) -> str:
    """``env_id`` when ``gym.make`` takes it (a registered id, an unversioned one that has versions, or
    ``module:id`` whose module registers it); else a ``ValueError`` naming ``env`` with gymnasium's own hint (the
    ids it means, the versions it has)."""
    module, _, name = env_id.rpartition(":")
    if module:  # gym.make imports it first: it registers the id
        try:
            importlib.import_module(module)
        except ImportError as error:
            raise ValueError(
                f"env: {env_id!r}: cannot import {module!r}, the module that registers it ({error})"
            ) from None
    gym = _gymnasium_for(name)
    if name in gym.registry or any(key.startswith(f"{name}-v") for key in gym.registry):  # unversioned: the latest
        return env_id
    try:
        gym.spec(name)
    except gym.error.Error as error:
        raise ValueError(f"env: {env_id!r} is not a registered gymnasium environment ({error})") from None
    return env_id


def make_gym_env(env_id: str, env_kwargs: dict[str, Any] | None = None, max_episode_steps: int | None = None) -> Any:
    """``gym.make(env_id, **env_kwargs)``, after importing the package that registers ``env_id`` (ALE, minigrid,
    Meta-World) when it is one of those; ``max_episode_steps`` overrides the registered horizon.

    Raises:
        ValueError: an id gymnasium does not know (naming ``env``), or a keyword of ``env_kwargs`` that the
            environment's constructor does not take (naming ``env_kwargs``). Other errors of the constructor are
            raised as they are: they are the environment's, not the arguments'.
    """
    gym = _gymnasium_for(env_id)
    kwargs = dict(env_kwargs or {})
    if max_episode_steps is not None:
        kwargs["max_episode_steps"] = int(max_episode_steps)
    try:
        return gym.make(env_id, **kwargs)
    except gym.error.Error as error:
        raise ValueError(f"env: gym.make({env_id!r}, **{env_kwargs or {}}) failed: {error}") from error
    except TypeError as error:
        # gymnasium re-raises the constructor's TypeError with the id and arguments appended: name the keyword the
        # constructor does not take, with its own message.
        refused = re.search(r"unexpected keyword argument '([^']+)'", str(error))
        if refused is None or refused.group(1) not in (env_kwargs or {}):
            raise
        raise ValueError(
            f"env_kwargs: constructing {env_id!r} with {env_kwargs} failed: {error.__cause__ or error} (expected "
            "keyword arguments that its constructor takes)"
        ) from error


def task_from_env_id(
    name: str,
    env_id: str,
    spec: TaskSpec,
    env_kwargs: dict[str, Any] | None = None,
    *,
    make_expert: Callable[[Any], Policy] | None = None,
    max_episode_steps: int | None = None,
    expert_return: float | None = None,
    random_return: float | None = None,
) -> Task:
    """A :class:`Task` for a gymnasium id and a stored spec, without registering it: what ``gato eval --env`` and
    ``load_agent`` play for a task that only a recorded collection and a trained model know.

    The adapters come from the spec (:func:`gato.suite.spaces.env_adapters`: the layout that ``spec_from_env`` stored,
    or a hand-written spec's defaults). The expert, when none is given, is the policy the collection was recorded
    with if the spec names one (``spec.extra["policy"]``, ``module:callable`` or ``sb3:PATH.zip``); without one the
    task has no expert (``make_expert`` is None): it is played unprompted. Reference returns and the horizon default
    to the spec's (``spec.extra``: ``expert_return``, ``random_return``, ``max_episode_steps``), then to the
    environment's registered horizon.
    """
    from gato.suite.policies import load_policy
    from gato.suite.spaces import env_adapters

    if (
        spec.name != name or not spec.domain
    ):  # a task of no domain is reported under its own name, as training groups it
        spec = TaskSpec(
            name=name, observations=spec.observations, action=spec.action, domain=spec.domain or name, extra=spec.extra
        )
    env_kwargs = dict(spec.extra.get("env_kwargs") or {}) if env_kwargs is None else dict(env_kwargs)
    to_episode_step, to_env_action, from_env_action = env_adapters(spec)
    if max_episode_steps is None:
        max_episode_steps = (
            spec.extra.get("max_episode_steps") or _registered_horizon(env_id) or DEFAULT_MAX_EPISODE_STEPS
        )
    policy_ref = spec.extra.get("policy")
    if make_expert is None and policy_ref:

        def make_expert(env: Any, ref: str = policy_ref) -> Policy:
            try:
                return load_policy(ref, env)
            except ValueError as error:
                raise ValueError(
                    f"task {name!r}: its recording policy {ref!r} plays its prompt demonstrations and cannot "
                    f"be loaded here ({error}); run where it imports, or play unprompted (--prompt-tokens 0)"
                ) from None

    def make_env(seed: int) -> Any:
        env = make_gym_env(env_id, env_kwargs, max_episode_steps)
        env.action_space.seed(seed)
        return env

    def reference(value: float | None, key: str) -> float:
        value = spec.extra.get(key) if value is None else value
        return math.nan if value is None else float(value)

    return Task(
        spec=spec,
        make_env=make_env,
        make_expert=make_expert,
        to_episode_step=to_episode_step,
        to_env_action=to_env_action,
        from_env_action=from_env_action,
        expert_return=reference(expert_return, "expert_return"),
        random_return=reference(random_return, "random_return"),
        max_episode_steps=int(max_episode_steps),
        extra={"env_id": env_id, "env_kwargs": env_kwargs},
    )


def _registered_horizon(env_id: str) -> int | None:
    gym = require("gymnasium")
    try:
        return gym.spec(env_id).max_episode_steps
    except gym.error.Error:
        return None


def get_model_task(
    name: str, specs: dict[str, TaskSpec], env_id: str | None = None, env_kwargs: dict[str, Any] | None = None
) -> Task:
    """The task ``name``: the suite's when it has one, else a task of ``specs`` (a trained model's ``task_specs.json``)
    played in ``env_id`` (default: the environment id its spec stores) with :func:`task_from_env_id`.

    Raises:
        KeyError: a name that is neither in the suite nor in ``specs``, or a stored task with no environment id.
    """
    load_builtin_tasks()
    if name in _TASKS or name not in specs:
        if name not in _TASKS and specs:
            raise KeyError(
                f"unknown task {name!r}: not in the suite ({', '.join(sorted(_TASKS))}) nor among the model's "
                f"tasks ({', '.join(sorted(specs))})"
            )
        return get_task(name)
    spec = specs[name]
    stored_id = spec.extra.get("env_id")
    if not (env_id or stored_id):
        raise KeyError(
            f"task {name!r}: the model knows its spec but not its environment; pass the gymnasium id "
            "(`gato eval --env ID`, or load_agent(..., env=ID))"
        )
    # The stored arguments belong to the stored id; another id starts from its own defaults.
    kwargs = env_kwargs if env_kwargs is not None or env_id in (None, stored_id) else {}
    return task_from_env_id(name, env_id or stored_id, spec, kwargs)


def tasks_for_env(specs: dict[str, TaskSpec], env_id: str) -> list[str]:
    """The tasks of ``specs`` (a model's ``task_specs.json``) recorded in the gymnasium id ``env_id``; when none names
    it, the model's tasks that the suite does not know and that store no environment (to be played in ``env_id``).

    Raises:
        KeyError: there are neither (naming ``env``, the model's own tasks and their ids, and the ``--tasks`` of the
            suite's tasks that play ``env_id``): the suite's tasks play their own environments, whatever ``env``.
    """
    load_builtin_tasks()
    own = {name: spec for name, spec in specs.items() if name not in _TASKS}
    recorded = [name for name, spec in own.items() if spec.extra.get("env_id") == env_id]
    tasks = recorded or [name for name, spec in own.items() if not spec.extra.get("env_id")]
    if tasks:
        return tasks
    if own:
        reasons = ["its own tasks: " + ", ".join(f"{name} ({spec.extra['env_id']})" for name, spec in own.items())]
    else:
        reasons = ["it has no tasks of its own, and the suite's play their own environments"]
    in_suite = [name for name in specs if name in _TASKS and _TASKS[name].extra.get("env_id") == env_id]
    if in_suite:
        reasons.append(f"to evaluate the suite's tasks in it: --tasks {','.join(in_suite)}")
    raise KeyError(f"env: the model has no task recorded in {env_id!r} ({'; '.join(reasons)})")


def resolve_model_tasks(
    names_or_suite: str,
    specs: dict[str, TaskSpec],
    env_id: str | None = None,
    env_kwargs: dict[str, Any] | None = None,
) -> list[Task]:
    """:func:`resolve_tasks`, where a name the suite does not know may be a task of ``specs`` (a trained model's
    ``task_specs.json``), built by :func:`get_model_task`."""
    load_builtin_tasks()
    tasks: list[Task] = []
    for item in (part.strip() for part in names_or_suite.split(",")):
        if item and item in specs and item not in _TASKS:
            tasks.append(get_model_task(item, specs, env_id, env_kwargs))
        elif item:
            try:
                tasks += resolve_tasks(item)
            except KeyError as error:
                own = sorted(set(specs) - set(_TASKS))
                if not own:
                    raise
                raise KeyError(f"{error.args[0]}; tasks of the model: {', '.join(own)}") from None
    if not tasks:
        raise KeyError(f"no tasks named in {names_or_suite!r}")
    return list({task.name: task for task in tasks}.values())
