"""Validated, sharded writing of episode collections, and reading them back.

Every episode is checked against its :class:`TaskSpec` *before* it is buffered: a malformed one raises a
``ValueError`` that names the episode index and the field, and is never written. Valid episodes are
written in shards, each a ``save_to_disk`` folder written to a temporary name and renamed into place
(``os.replace`` is atomic on one file system), so a crash or a bad episode never corrupts a shard that
is already on disk. :meth:`EpisodeWriter.finish` concatenates the shards into one dataset folder at the
target path (again through a temporary name and one rename) that ``datasets.load_from_disk`` reads
memory-mapped; :func:`load_episodes` streams it when it is large.

Layout while writing ``PATH``::

    PATH.partial/shard-00000/   # finished shards (save_to_disk folders)
    PATH.partial/shard-00001/
    PATH/                       # appears, complete, only when finish() succeeds
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from datasets import Dataset, IterableDataset, concatenate_datasets, load_from_disk
from datasets import utils as datasets_utils
from gato.suite.task_spec import TaskSpec

from .frames import encode_frames, encoded_size
from .manifest import verify_manifest, write_manifest
from .schema import action_dtype, dataset_info, episode_features, field_dtype

DEFAULT_SHARD_EPISODES = 64
DEFAULT_SHARD_BYTES = 256 * 2**20  # flush earlier than shard_size when frames make episodes large


def _fail(index: int | None, field: str, message: str) -> ValueError:
    where = f"episode {index}" if index is not None else "episode"
    return ValueError(f"{where}, field {field!r}: {message}")


def _check_values(
    values: Any, index: int | None, field: str, shape: tuple[int, ...], kind: str, num_values: int, dtype: str
) -> np.ndarray:
    """One numeric field → a ``(T, *shape)`` array of ``dtype``, or a ValueError naming it."""
    try:
        array = np.asarray(values)
    except (ValueError, TypeError) as error:  # ragged lists
        raise _fail(
            index, field, f"expected an array of shape {shape_text(shape)}, got ragged values ({error})"
        ) from None
    if array.shape != shape:
        raise _fail(index, field, f"expected shape {shape_text(shape)}, got {array.shape}")
    if kind == "continuous":
        if not (
            np.issubdtype(array.dtype, np.floating) or np.issubdtype(array.dtype, np.integer) or array.dtype == bool
        ):
            raise _fail(index, field, f"expected real numbers, got dtype {array.dtype}")
        array = array.astype(dtype, copy=False)
        if not np.isfinite(array).all():
            raise _fail(index, field, "expected finite values, got NaN or inf")
        return array
    # image / discrete: integers, or floats holding integers (gymnasium's Discrete spaces yield numpy ints)
    if np.issubdtype(array.dtype, np.floating):
        if not np.isfinite(array).all():
            raise _fail(index, field, "expected integers, got NaN or inf")
        if (array != np.round(array)).any():
            raise _fail(index, field, "expected integer values, got fractional floats")
    elif not (np.issubdtype(array.dtype, np.integer) or array.dtype == bool):
        raise _fail(index, field, f"expected integers, got dtype {array.dtype}")
    if array.size and (array.min() < 0 or array.max() >= num_values):
        raise _fail(index, field, f"expected values in [0, {num_values}), got range [{array.min()}, {array.max()}]")
    return array.astype(dtype)


def shape_text(shape: tuple[int, ...]) -> str:
    return "(" + ", ".join(str(d) for d in shape) + ("," if len(shape) == 1 else "") + ")"


def validate_episode(episode: Mapping[str, Any], spec: TaskSpec, index: int | None = None) -> dict[str, Any]:
    """Check one episode against ``spec`` and return it as a row of :func:`episode_features`.

    Args:
        episode: ``{"observations": {name: (T, *shape)}, "actions": (T, size) or (T,) when size is 1,
            "rewards": (T,)}``, optionally ``"task"`` (must equal ``spec.name``), ``"seed"``,
            ``"terminated"``.
        index: the episode's index in its collection, named in errors.

    Raises:
        ValueError: naming the episode and the field — a missing field, a wrong shape or dtype,
            NaN/inf, values outside their range, or lengths that differ between fields.
    """
    if not isinstance(episode, Mapping):
        raise _fail(index, "<episode>", f"expected a mapping, got {type(episode).__name__}")
    for key in ("observations", "actions", "rewards"):
        if key not in episode:
            raise _fail(index, key, "missing")
    task = episode.get("task", spec.name)
    if task != spec.name:
        raise _fail(index, "task", f"expected {spec.name!r} (the spec's task), got {task!r}")

    action = spec.action
    actions = np.asarray(episode["actions"]) if not isinstance(episode["actions"], np.ndarray) else episode["actions"]
    if actions.ndim == 1 and action.size == 1:
        actions = actions[:, None]
    if actions.ndim != 2 or len(actions) == 0:
        raise _fail(index, "actions", f"expected shape (T, {action.size}) with T ≥ 1, got {actions.shape}")
    steps = len(actions)
    actions = _check_values(
        actions, index, "actions", (steps, action.size), action.kind, action.num_values, action_dtype(spec)
    )

    observations = episode["observations"]
    if not isinstance(observations, Mapping):
        raise _fail(
            index, "observations", f"expected a mapping of field name → values, got {type(observations).__name__}"
        )
    unknown = sorted(set(observations) - {field.name for field in spec.observations})
    if unknown:
        raise _fail(index, f"observations.{unknown[0]}", f"not a field of task {spec.name!r}")
    checked = {}
    for field in spec.observations:
        name = f"observations.{field.name}"
        if field.name not in observations:
            raise _fail(index, name, "missing")
        values = observations[field.name]
        if field.kind == "text":
            texts = list(values) if not isinstance(values, str) else None
            if texts is None or len(texts) != steps or not all(isinstance(text, str) for text in texts):
                raise _fail(
                    index,
                    name,
                    f"expected {steps} strings (one per action), got {type(values).__name__} of length {len(values) if texts is not None else 'n/a'}",
                )
            checked[field.name] = texts
            continue
        num_values = 256 if field.kind == "image" else field.num_values
        checked[field.name] = _check_values(
            values, index, name, (steps, *field.shape), field.kind, num_values, field_dtype(field)
        )
        if field.kind == "image":  # stored zlib-compressed (schema version 2): the raw frames are not kept
            checked[field.name] = encode_frames(checked[field.name])

    rewards = np.asarray(episode["rewards"], dtype=np.float64) if not isinstance(episode["rewards"], str) else None
    if rewards is None or rewards.shape != (steps,):
        raise _fail(
            index,
            "rewards",
            f"expected shape ({steps},) (one per action), got {getattr(rewards, 'shape', 'a string')}",
        )
    if not np.isfinite(rewards).all():
        raise _fail(index, "rewards", "expected finite values, got NaN or inf")

    return {
        "task": spec.name,
        "seed": int(episode.get("seed", -1)),
        "observations": checked,
        "actions": actions,
        "rewards": rewards.astype(np.float32),
        "episode_return": float(rewards.sum()),
        "num_steps": steps,
        "terminated": bool(episode.get("terminated", False)),
    }


def _episode_bytes(row: dict[str, Any]) -> int:
    arrays = [row["actions"], row["rewards"], *row["observations"].values()]
    return sum(
        array.nbytes
        if isinstance(array, np.ndarray)
        else encoded_size(array)
        if array and isinstance(array[0], bytes)
        else 64 * len(array)
        for array in arrays
    )


def _rows_to_dataset(rows: Sequence[dict[str, Any]], spec: TaskSpec) -> Dataset:
    columns = {key: [row[key] for row in rows] for key in episode_features(spec)}
    columns["observations"] = [row["observations"] for row in rows]
    return Dataset.from_dict(columns, features=episode_features(spec), info=dataset_info(spec))


def episodes_to_dataset(episodes: Iterable[Mapping[str, Any]], spec: TaskSpec, start_index: int = 0) -> Dataset:
    """Validate episodes and build an in-memory :class:`Dataset` of the schema (small collections, tests).

    ``episodes`` may be a generator: each raw episode is validated (its frames compressed) and released before the
    next one is asked for, so recording straight into a shard holds one raw episode at a time."""
    rows = []
    for episode in episodes:  # not enumerate(): its cached result tuple would keep the previous episode alive
        rows.append(validate_episode(episode, spec, start_index + len(rows)))
        del episode
    if not rows:
        raise ValueError(f"task {spec.name!r}: no episodes to write")
    return _rows_to_dataset(rows, spec)


def _save_atomically(dataset: Dataset, path: Path) -> None:
    """``save_to_disk`` to ``path`` through a temporary sibling and one rename (all or nothing)."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    were_disabled = datasets_utils.are_progress_bars_disabled()
    datasets_utils.disable_progress_bars()  # one bar per shard would bury the generation's own progress
    try:
        dataset.save_to_disk(str(tmp))
    finally:
        if not were_disabled:
            datasets_utils.enable_progress_bars()
    if path.exists():
        shutil.rmtree(path)
    os.replace(tmp, path)


def write_shard(
    episodes: Iterable[Mapping[str, Any]], spec: TaskSpec, path: str | os.PathLike, start_index: int = 0
) -> Dataset:
    """Validate ``episodes`` and write them as one shard folder at ``path``, atomically.

    Nothing is written when any episode is invalid (the error names it by ``start_index + offset``).
    Returns the shard, memory-mapped from disk.
    """
    dataset = episodes_to_dataset(episodes, spec, start_index)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _save_atomically(dataset, path)
    return load_from_disk(str(path))


def consolidate_shards(shard_paths: Sequence[str | os.PathLike], path: str | os.PathLike) -> Dataset:
    """Concatenate shard folders (in the given order) into one dataset folder at ``path``, atomically."""
    if not shard_paths:
        raise ValueError(f"{path}: no shards to consolidate")
    shards = [load_from_disk(str(shard)) for shard in shard_paths]
    dataset = concatenate_datasets(shards) if len(shards) > 1 else shards[0]
    dataset.info.description = shards[0].info.description  # concatenation drops the spec when infos differ
    path = Path(path)
    _save_atomically(dataset, path)
    return load_from_disk(str(path))


class EpisodeWriter:
    """Write a task's episodes to ``path`` in validated, atomically written shards.

    Usage::

        with EpisodeWriter("data/cartpole", spec) as writer:
            for episode in episodes:
                writer.add(episode)          # ValueError names the episode and field; nothing is lost
        dataset = writer.dataset             # memory-mapped, as datasets.load_from_disk("data/cartpole")

    On leaving the ``with`` block normally the shards are consolidated into ``path``. On an exception
    the valid buffered episodes are flushed to a shard and ``path`` is not created; a new writer on the
    same ``path`` resumes after the episodes already in shards (:attr:`num_episodes`).

    Args:
        path: the dataset folder to create (must not exist unless ``overwrite``).
        spec: the task's spec; every episode is validated against it.
        shard_size: episodes per shard (a shard is also flushed at ``shard_bytes`` of arrays).
    """

    def __init__(
        self,
        path: str | os.PathLike,
        spec: TaskSpec,
        shard_size: int = DEFAULT_SHARD_EPISODES,
        shard_bytes: int = DEFAULT_SHARD_BYTES,
        overwrite: bool = False,
    ) -> None:
        self.path = Path(path)
        self.spec = spec
        self.shard_size = shard_size
        self.shard_bytes = shard_bytes
        self.partial = self.path.with_name(self.path.name + ".partial")
        if self.path.exists():
            if not overwrite:
                raise ValueError(
                    f"{self.path}: already exists; pass --overwrite (overwrite=True) or choose another path"
                )
            shutil.rmtree(self.path)
        self._buffer: list[dict[str, Any]] = []
        self._buffer_bytes = 0
        self.dataset: Dataset | None = None
        self._shards = sorted(p for p in self.partial.glob("shard-*") if p.is_dir()) if self.partial.exists() else []
        stored = [load_from_disk(str(shard)) for shard in self._shards]
        for shard, dataset in zip(self._shards, stored):
            if dataset.features != episode_features(spec):
                raise ValueError(
                    f"{shard}: written with other features than this version's (e.g. raw frames before "
                    f"compression); delete {self.partial} to record again, or finish it with the version that began it"
                )
        self._written = sum(len(dataset) for dataset in stored)

    @property
    def num_episodes(self) -> int:
        """Episodes accepted so far (on disk or buffered), including those of a resumed run."""
        return self._written + len(self._buffer)

    def add(self, episode: Mapping[str, Any]) -> None:
        """Validate and buffer one episode; flushes a shard when the buffer is full."""
        row = validate_episode(episode, self.spec, self.num_episodes)
        self._buffer.append(row)
        self._buffer_bytes += _episode_bytes(row)
        if len(self._buffer) >= self.shard_size or self._buffer_bytes >= self.shard_bytes:
            self.flush()

    def flush(self) -> None:
        """Write the buffered episodes as the next shard (atomically)."""
        if not self._buffer:
            return
        shard = self.partial / f"shard-{len(self._shards):05d}"
        self.partial.mkdir(parents=True, exist_ok=True)
        _save_atomically(_rows_to_dataset(self._buffer, self.spec), shard)
        self._shards.append(shard)
        self._written += len(self._buffer)
        self._buffer, self._buffer_bytes = [], 0

    def finish(self) -> Dataset:
        """Flush, consolidate the shards into ``path`` and return the memory-mapped dataset."""
        self.flush()
        self.dataset = consolidate_shards(self._shards, self.path)
        write_manifest(self.path)
        shutil.rmtree(self.partial, ignore_errors=True)
        return self.dataset

    def __enter__(self) -> "EpisodeWriter":
        return self

    def __exit__(self, exc_type, exc, traceback) -> None:
        if exc_type is None:
            self.finish()
        else:
            self.flush()  # keep every valid episode; the caller can resume


def load_episodes(path: str | os.PathLike, streaming: bool = False, num_shards: int = 1) -> Dataset | IterableDataset:
    """Read an episode dataset folder: memory-mapped, or as a stream (``streaming=True``) for large ones.

    The streamed dataset reads the same Arrow files lazily, episode by episode; ``num_shards > 1``
    splits it for several ``DataLoader`` workers. Both keep ``info`` (and so the spec). The folder's manifest is
    verified first (:func:`gato.episodes.manifest.verify_manifest`: a changed file is named, never read).
    """
    verify_manifest(path)
    dataset = load_from_disk(str(path))
    if not isinstance(dataset, Dataset):
        raise ValueError(f"{path}: expected one episode dataset, found a DatasetDict; open one task's folder")
    if not streaming:
        return dataset
    streamed = dataset.to_iterable_dataset(num_shards=num_shards)
    streamed.info.description = dataset.info.description  # to_iterable_dataset keeps only the features
    return streamed
