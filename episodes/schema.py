"""The episode schema: one `datasets` row per episode, typed by the task's :class:`TaskSpec`.

A task's episodes are one :class:`datasets.Dataset` whose rows are whole episodes of ``T`` time steps:

=====================  ==========================================================  ============================
column                 feature                                                     per row
=====================  ==========================================================  ============================
``task``               ``Value("string")``                                         the task name (= spec.name)
``seed``               ``Value("int64")``                                          the ``env.reset`` seed, -1 if none
``observations``       a struct, one entry per :class:`ObservationField`           see below
``actions``            ``Array2D((None, action.size), dtype)``                     ``(T, action_size)``
``rewards``            ``List(Value("float32"))``                                  ``(T,)``; ``rewards[t]`` follows ``actions[t]``
``episode_return``     ``Value("float64")``                                        ``sum(rewards)``
``num_steps``          ``Value("int64")``                                          ``T`` (cheap to read for statistics)
``terminated``         ``Value("bool")``                                           True: the env ended it; False: cut at the horizon
=====================  ==========================================================  ============================

Observation fields, by kind (``T`` is dynamic, the per-step shape is fixed by the spec):

=============  ============================================  ===========================================
kind           feature                                       dtype
=============  ============================================  ===========================================
``image``      ``List(Value("binary"))``: one zlib-compressed frame per step    ``uint8`` pixels, ``(H, W, 3)`` or ``(H, W)``
``discrete``   ``List(Value)`` for scalars, ``Array{k+1}D((None, *shape))``           ``uint8`` if ``num_values ≤ 256``, else ``int16``
``continuous`` same as discrete                              ``float32``
``text``       ``List(Value("string"))``                     one string per step
=============  ============================================  ===========================================

Frames are compressed (:mod:`gato.episodes.frames`): each step's raw pixels through zlib, lossless, so the pixels
the processor tokenizes are exactly the recorded ones, and 15–20× smaller than raw ``uint8`` for game frames (an
Atari episode of 1000 80×80 frames: 19 MB raw, ~1 MB compressed). :func:`read_episode` decodes them straight
from the Arrow bytes (~0.1 ms a frame; ``steps=`` decodes only a window). Datasets written before schema
version 2 hold raw ``Array4D``/``Array3D`` frames and are read as before.

Reading fast: ``Dataset.__getitem__`` in the default (python) or ``"numpy"`` format converts nested
array columns element by element through Python (~15 s for a 1000-frame 80×80 Atari episode). Use
:func:`read_episode` / :func:`iter_episodes`, which take the row as Arrow and view the memory-mapped
buffers as numpy arrays (milliseconds, dtypes kept).

The spec travels with the data: :func:`dataset_info` writes ``{"gato_task_spec": spec}`` as JSON into
``DatasetInfo.description`` (kept by ``save_to_disk``/``load_from_disk``), and :func:`spec_from_dataset`
reads it back, so the processor needs nothing but the dataset.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from datasets import Array2D, Array3D, Array4D, Array5D, Dataset, DatasetInfo, Features, IterableDataset, List, Value
from gato.suite.task_spec import ObservationField, TaskSpec

from .frames import FRAME_CODEC, decode_frames

SPEC_KEY = "gato_task_spec"
SCHEMA_VERSION = 2  # 2: image fields as zlib-compressed frames (List(binary)); 1: raw Array4D/Array3D (still read)
# The non-episode splits of a data folder: captions (train, held-out colour×shape pairs, new scenes) and text.
CAPTIONS_SPLITS = ("captions", "captions_validation", "captions_test")
TEXT_SPLITS = ("text", "text_validation")
_ARRAY_FEATURES = {1: Array2D, 2: Array3D, 3: Array4D, 4: Array5D}  # per-step rank → feature with a dynamic T
MAX_STEP_RANK = max(_ARRAY_FEATURES)


def discrete_dtype(num_values: int) -> str:
    """Smallest integer dtype that holds values in [0, num_values): ``uint8`` up to 256, else ``int16``."""
    return "uint8" if num_values <= 256 else "int16"


def field_dtype(field: ObservationField) -> str:
    """Storage dtype of an observation field (``"string"`` for text)."""
    if field.kind == "image":
        return "uint8"
    if field.kind == "discrete":
        return discrete_dtype(field.num_values)
    if field.kind == "continuous":
        return "float32"
    return "string"


def action_dtype(spec: TaskSpec) -> str:
    """Storage dtype of a task's actions."""
    return discrete_dtype(spec.action.num_values) if spec.action.kind == "discrete" else "float32"


def _per_step_feature(shape: tuple[int, ...], dtype: str, where: str):
    """A feature holding ``(T, *shape)`` values with a dynamic ``T``."""
    if len(shape) == 0:
        return List(Value(dtype))
    if len(shape) > MAX_STEP_RANK:
        raise ValueError(
            f"{where}: per-step shape {shape} has rank {len(shape)}; at most {MAX_STEP_RANK} is supported"
        )
    return _ARRAY_FEATURES[len(shape)]((None, *shape), dtype)


def observation_feature(field: ObservationField):
    """The `datasets` feature of one observation field (``T`` steps)."""
    if field.kind == "text":
        return List(Value("string"))
    if field.kind == "image" and (len(field.shape) not in (2, 3) or (len(field.shape) == 3 and field.shape[-1] != 3)):
        raise ValueError(
            f"observation field {field.name!r}: image shape must be (H, W, 3) or (H, W), got {field.shape}"
        )
    if field.kind == "image":
        return List(Value("binary"))
    return _per_step_feature(field.shape, field_dtype(field), f"observation field {field.name!r}")


def episode_features(spec: TaskSpec) -> Features:
    """The :class:`datasets.Features` of ``spec``'s episodes (the table in this module's docstring)."""
    return Features(
        {
            "task": Value("string"),
            "seed": Value("int64"),
            "observations": {field.name: observation_feature(field) for field in spec.observations},
            "actions": Array2D((None, spec.action.size), action_dtype(spec)),
            "rewards": List(Value("float32")),
            "episode_return": Value("float64"),
            "num_steps": Value("int64"),
            "terminated": Value("bool"),
        }
    )


def dataset_info(spec: TaskSpec, description: str = "") -> DatasetInfo:
    """A :class:`DatasetInfo` carrying the features and the spec (JSON in ``description``)."""
    payload = {SPEC_KEY: spec.to_dict(), "schema_version": SCHEMA_VERSION, "frame_codec": FRAME_CODEC}
    if description:
        payload["description"] = description
    return DatasetInfo(description=json.dumps(payload, sort_keys=True), features=episode_features(spec))


def spec_from_dataset(dataset: Dataset | IterableDataset) -> TaskSpec:
    """Read the :class:`TaskSpec` stored in a dataset written by :mod:`gato.episodes` back."""
    try:
        payload = json.loads(dataset.info.description or "")
        return TaskSpec.from_dict(payload[SPEC_KEY])
    except (json.JSONDecodeError, KeyError, TypeError) as error:
        raise ValueError(
            "dataset.info.description: expected the JSON that gato.episodes writes (with a 'gato_task_spec' key); "
            "was this dataset written by gato.episodes?"
        ) from error


def _as_array(values: Any, dtype: str) -> np.ndarray:
    if dtype == "string":
        return np.asarray(values, dtype=object)
    return np.asarray(values).astype(dtype, copy=False)


def episode_from_row(row: Mapping[str, Any], spec: TaskSpec) -> dict[str, Any]:
    """A dataset row (any format: python, ``"numpy"``, ``"torch"``) → the processor's episode dict.

    Returns ``{"task", "observations": {name: (T, *shape) array}, "actions": (T, action_size),
    "rewards": (T,) float32}`` with the schema's dtypes (``with_format("numpy")`` widens integers to
    int64 and this restores ``uint8`` frames), text fields as a list of ``T`` strings.
    """
    observations = {}
    for field in spec.observations:
        values = row["observations"][field.name]
        if field.kind == "text":
            observations[field.name] = [str(text) for text in values]
        elif field.kind == "image" and not (isinstance(values, np.ndarray) and values.dtype != object):
            observations[field.name] = decode_frames(values, field.shape)  # compressed bytes, PIL images or arrays
        else:
            observations[field.name] = _as_array(values, field_dtype(field)).reshape(-1, *field.shape)
    actions = _as_array(row["actions"], action_dtype(spec)).reshape(-1, spec.action.size)
    if spec.action.kind == "discrete":
        actions = actions.astype(np.int64)  # the processor's tokenizers take int64 ids
    return {
        "task": str(row["task"]),
        "observations": observations,
        "actions": actions,
        "rewards": _as_array(row["rewards"], "float32"),
    }


def _column_to_numpy(array: pa.Array, dtype: str) -> Any:
    """One row of a per-step column (Arrow, length 1) → ``(T, *shape)`` numpy array, T strings, or T frames' bytes."""
    if isinstance(array.type, pa.ExtensionType):  # datasets' Array2D…Array5D: (1, T, *shape)
        return array.to_numpy(zero_copy_only=False)[0]
    values = array.flatten()  # List(Value): drop the row level, keep T values
    if pa.types.is_binary(values.type) or pa.types.is_large_binary(values.type):  # compressed frames
        return values.to_pylist()
    if pa.types.is_struct(values.type):  # List(Image()) (e.g. a user's own dataset): T {bytes, path} structs
        return values.field("bytes").to_pylist()
    if dtype == "string":
        return values.to_pylist()
    return values.to_numpy(zero_copy_only=False)


def episode_from_arrow(table: pa.Table, spec: TaskSpec, steps: slice | None = None) -> dict[str, Any]:
    """A one-row Arrow table (``dataset.with_format("arrow")[i]``) → the processor's episode dict,
    without going through Python lists: raw frames (schema 1) stay ``uint8`` views of the memory-mapped file.

    ``steps`` (a slice of time steps) returns only those steps and decodes only their frames: a training
    window of 30 steps out of a 1000-step Atari episode costs 30 decodes, not 1000.
    """
    if table.num_rows != 1:
        raise ValueError(f"table: expected one row (one episode), got {table.num_rows}")
    observations_struct = table.column("observations").chunk(0)
    children = dict(zip([f.name for f in observations_struct.type], observations_struct.flatten()))
    window = steps if steps is not None else slice(None)
    row = {
        "task": table.column("task")[0].as_py(),
        "observations": {
            field.name: _column_to_numpy(children[field.name], field_dtype(field))[window]
            for field in spec.observations
        },
        "actions": _column_to_numpy(table.column("actions").chunk(0), action_dtype(spec))[window],
        "rewards": _column_to_numpy(table.column("rewards").chunk(0), "float32")[window],
    }
    return episode_from_row(row, spec)


def episode_length(table: pa.Table) -> int:
    """The number of time steps of a one-row Arrow episode table, read from its rewards list (nothing decoded)."""
    return int(pc.list_value_length(table.column("rewards"))[0].as_py())


def read_episode(
    dataset: Dataset, index: int, spec: TaskSpec | None = None, steps: slice | None = None
) -> dict[str, Any]:
    """Episode ``index`` of a memory-mapped episode dataset as the processor's episode dict (fast path);
    ``steps`` reads only those time steps (see :func:`episode_from_arrow`)."""
    spec = spec or spec_from_dataset(dataset)
    return episode_from_arrow(dataset.with_format("arrow")[int(index)], spec, steps)


def iter_episodes(dataset: Dataset | IterableDataset, spec: TaskSpec | None = None):
    """Yield every episode as the processor's episode dict (fast path; streamed datasets too)."""
    spec = spec or spec_from_dataset(dataset)
    if isinstance(dataset, Dataset):
        arrow = dataset.with_format("arrow")
        for index in range(len(dataset)):
            yield episode_from_arrow(arrow[index], spec)
    else:
        for table in dataset.with_format("arrow"):
            yield episode_from_arrow(table, spec)
