"""The task registry: each built-in task is an environment factory, an expert, a spec and reference returns.

Domain modules (``suite/classic_control.py``, ``suite/babyai.py``, …) call :func:`register_task` at
import time; :func:`load_builtin_tasks` imports them. Everything that needs "the tasks" (``gato data``,
generation, evaluation) goes through :func:`get_task`, :func:`list_tasks` and :func:`resolve_tasks`.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from gato.processing.task_spec import TaskSpec

# A policy maps one observation (the environment's own format) to one action (the environment's own format).
Policy = Callable[[Any], Any]


@dataclass
class Task:
    """A built-in task.

    Args:
        spec: observation fields and action spec (the processor lays episodes out by it).
        make_env: ``make_env(seed) -> gymnasium.Env``.
        make_expert: ``make_expert(env) -> policy``; the policy may keep state for one episode and is
            rebuilt for every episode.
        to_episode_step: ``to_episode_step(observation) -> {field_name: value}`` turns the
            environment's observation into the spec's observation fields; ``to_env_action(action)``
            turns a spec action (array of shape ``(spec.action.size,)``) into the environment's action,
            and ``from_env_action`` does the reverse.
        expert_return / random_return: measured mean episode returns (the table in the docs says how
            many episodes) used for expert-normalized scores.
        max_episode_steps: the horizon used when generating and evaluating.
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

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def domain(self) -> str:
        return self.spec.domain

    def normalized_score(self, episode_return: float) -> float:
        """(return − random) / (expert − random), GATO_SPEC.md section 8."""
        return (episode_return - self.random_return) / (self.expert_return - self.random_return)


_TASKS: dict[str, Task] = {}
# Named groups of tasks, e.g. "default" (the CPU main job's small suite) and "full".
_SUITES: dict[str, list[str]] = {}
_DOMAIN_MODULES: tuple[str, ...] = ()  # filled in as domain modules are added, e.g. "gato.suite.classic_control"


def register_task(task: Task) -> Task:
    if task.name in _TASKS:
        raise ValueError(f"task {task.name!r} is already registered")
    _TASKS[task.name] = task
    return task


def register_suite(name: str, task_names: list[str]) -> None:
    _SUITES[name] = list(task_names)


def load_builtin_tasks() -> None:
    for module in _DOMAIN_MODULES:
        importlib.import_module(module)


def get_task(name: str) -> Task:
    load_builtin_tasks()
    if name not in _TASKS:
        raise KeyError(f"unknown task {name!r}; known tasks: {', '.join(sorted(_TASKS))}")
    return _TASKS[name]


def list_tasks() -> list[Task]:
    load_builtin_tasks()
    return [_TASKS[name] for name in sorted(_TASKS)]


def resolve_tasks(names_or_suite: str) -> list[Task]:
    """``"default"`` / ``"full"`` (a suite name), a domain name, or comma-separated task names → tasks."""
    load_builtin_tasks()
    if names_or_suite in _SUITES:
        return [get_task(name) for name in _SUITES[names_or_suite]]
    domain_tasks = [task for task in list_tasks() if task.domain == names_or_suite]
    if domain_tasks:
        return domain_tasks
    return [get_task(name.strip()) for name in names_or_suite.split(",") if name.strip()]
