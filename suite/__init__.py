"""The built-in task suite: environments, experts, specs and reference returns (docs/SUITE.md).

``gato.suite.registry`` is the interface (``get_task``, ``list_tasks``, ``resolve_tasks``, ``Task``);
one module per domain registers its tasks: ``classic_control``, ``babyai`` (also ``babyai_rgb``),
``metaworld``, ``atari``.
"""

from .registry import (
    MissingEnvPackageError,
    Task,
    get_task,
    list_suites,
    list_tasks,
    normalized_score,
    register_suite,
    register_task,
    resolve_tasks,
)

__all__ = [
    "MissingEnvPackageError",
    "Task",
    "get_task",
    "list_suites",
    "list_tasks",
    "normalized_score",
    "register_suite",
    "register_task",
    "resolve_tasks",
]
