"""What a task's observations and actions are: the spec the processor lays episodes out by.

An **episode** (the processor's input, and what the episode datasets store per row) is a mapping::

    {
        "task": str,                                  # a task name
        "observations": {field_name: values, ...},    # one entry per ObservationField, T steps each
        "actions": array (T, action_size),            # float for continuous, int for discrete
        "rewards": array (T,),                        # optional for the processor
    }

with per-field values shaped by kind:

=============  =====================================================  =================================
kind           values for T time steps                                tokens per time step
=============  =====================================================  =================================
``image``      uint8 ``(T, H, W, 3)`` (or ``(T, H, W)`` greyscale)    (h/16)·(w/16) patches after resize
``discrete``   int ``(T, *shape)``, values in [0, num_values)         prod(shape)
``continuous`` float ``(T, *shape)``                                   prod(shape)
``text``       a sequence of T strings                                 SentencePiece pieces (variable)
=============  =====================================================  =================================

The time step layout is ``[text, image patches, discrete/continuous values in field order] | [action]``
(GATO_SPEC.md section 1): within each kind, fields keep the order the spec lists them in.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from .token_layout import DISCRETE_VALUES

ObservationKind = Literal["image", "discrete", "continuous", "text"]
OBSERVATION_KINDS: tuple[str, ...] = ("text", "image", "discrete", "continuous")  # also the layout order
ACTION_KINDS: tuple[str, ...] = ("discrete", "continuous")


@dataclass(frozen=True)
class ObservationField:
    """One named observation field of a task.

    Args:
        name: the key under ``episode["observations"]``.
        kind: ``"image"``, ``"discrete"``, ``"continuous"`` or ``"text"``.
        shape: per-step shape (``()`` for a scalar; ``(H, W, 3)`` for images; ``()`` for text).
        mu_law: continuous fields only — μ-law encode before binning. False for fields bounded in
            [-1, 1] by their spec, which are binned directly (GATO_SPEC.md section 1).
        num_values: discrete fields only — values lie in [0, num_values), at most 1024.
    """

    name: str
    kind: ObservationKind
    shape: tuple[int, ...] = ()
    mu_law: bool = True
    num_values: int = DISCRETE_VALUES

    def __post_init__(self) -> None:
        if self.kind not in OBSERVATION_KINDS:
            raise ValueError(
                f"observation field {self.name!r}: kind must be one of {OBSERVATION_KINDS}, got {self.kind!r}"
            )
        if not 1 <= self.num_values <= DISCRETE_VALUES:
            raise ValueError(
                f"observation field {self.name!r}: num_values must be in [1, {DISCRETE_VALUES}], got {self.num_values}"
            )
        object.__setattr__(self, "shape", tuple(int(d) for d in self.shape))


@dataclass(frozen=True)
class ActionSpec:
    """A task's action.

    Args:
        kind: ``"discrete"`` or ``"continuous"``.
        size: number of action dimensions (tokens per action).
        num_values: discrete only — each dimension takes values in [0, num_values), at most 1024.
        mu_law: continuous only — μ-law encode before binning. Default False: most continuous action
            spaces are bounded in [-1, 1] and are binned directly.
        low / high: continuous only — the environment's bounds, used to clip decoded actions.
    """

    kind: Literal["discrete", "continuous"]
    size: int = 1
    num_values: int = DISCRETE_VALUES
    mu_law: bool = False
    low: float = -1.0
    high: float = 1.0

    def __post_init__(self) -> None:
        if self.kind not in ACTION_KINDS:
            raise ValueError(f"action: kind must be one of {ACTION_KINDS}, got {self.kind!r}")
        if self.size < 1:
            raise ValueError(f"action: size must be ≥ 1, got {self.size}")
        if not 1 <= self.num_values <= DISCRETE_VALUES:
            raise ValueError(f"action: num_values must be in [1, {DISCRETE_VALUES}], got {self.num_values}")


@dataclass(frozen=True)
class TaskSpec:
    """A task: its name, its observation fields (in layout order within each kind) and its action."""

    name: str
    observations: tuple[ObservationField, ...]
    action: ActionSpec
    domain: str = ""
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "observations", tuple(self.observations))
        names = [f.name for f in self.observations]
        if len(set(names)) != len(names):
            raise ValueError(f"task {self.name!r}: observation field names must be unique, got {names}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "TaskSpec":
        return cls(
            name=data["name"],
            observations=tuple(
                ObservationField(**{**f, "shape": tuple(f.get("shape", ()))}) for f in data["observations"]
            ),
            action=ActionSpec(**data["action"]),
            domain=data.get("domain", ""),
            extra=dict(data.get("extra", {})),
        )

    @classmethod
    def from_json(cls, text: str) -> "TaskSpec":
        return cls.from_dict(json.loads(text))


# The specs a model was trained on, beside its weights (``gato train`` writes it): what lets ``gato eval`` refuse a
# model whose tokens for a task differ from the suite's (e.g. trained before that task's encoding changed).
TASK_SPECS_FILE = "task_specs.json"


def save_task_specs(specs: Sequence[TaskSpec], folder: str | Path) -> Path:
    """Write ``specs`` as ``folder/task_specs.json`` (``{task name: spec}``); returns the file's path."""
    path = Path(folder) / TASK_SPECS_FILE
    path.write_text(json.dumps({spec.name: spec.to_dict() for spec in specs}, indent=2, sort_keys=True) + "\n")
    return path


def load_task_specs(folder: str | Path) -> dict[str, TaskSpec]:
    """``folder/task_specs.json`` → ``{task name: spec}``; empty when the folder has none (older models)."""
    path = Path(folder) / TASK_SPECS_FILE
    if not path.exists():
        return {}
    return {name: TaskSpec.from_dict(spec) for name, spec in json.loads(path.read_text()).items()}


def spec_differences(trained: TaskSpec, current: TaskSpec) -> list[str]:
    """What differs between two specs of one task in the tokens they make, one readable line per observation
    field or action (settings a kind ignores, such as μ-law for discrete values, and the domain are not compared)."""
    lines = []
    trained_fields = {f.name: f for f in trained.observations}
    current_fields = {f.name: f for f in current.observations}
    for name in sorted(trained_fields.keys() | current_fields.keys()):
        before, after = _describe(trained_fields.get(name)), _describe(current_fields.get(name))
        if before != after:
            lines.append(f"observation {name!r}: {before} → {after}")
    if _describe(trained.action) != _describe(current.action):
        lines.append(f"action: {_describe(trained.action)} → {_describe(current.action)}")
    # Fields are laid out kind by kind, in spec order within a kind.
    before, after = _layout_order(trained), _layout_order(current)
    if before != after and not lines:
        lines.append(f"observation order: {before} → {after}")
    return lines


def _layout_order(spec: TaskSpec) -> list[str]:
    return [f.name for kind in OBSERVATION_KINDS for f in spec.observations if f.kind == kind]


def _describe(part: ObservationField | ActionSpec | None) -> str:
    if part is None:
        return "absent"
    size = f"×{part.size}" if isinstance(part, ActionSpec) else str(part.shape)
    if part.kind == "discrete":
        return f"discrete {size}, {part.num_values} values"
    if part.kind == "continuous":
        bounds = f", clipped to [{part.low}, {part.high}]" if isinstance(part, ActionSpec) else ""
        return f"continuous {size}, {'μ-law' if part.mu_law else 'no μ-law'}{bounds}"
    return f"{part.kind} {size}"
