"""Import episodes in the schema of Hugging Face's JAT dataset (``jat-project/jat-dataset``).

JAT stores one episode per row with per-step columns (names and layouts as in the dataset card's
``dataset_info`` and in ``huggingface/jat``, ``jat/processing_jat.py``, ``JatProcessor.__call__``):

============================  =========================================  =================================
column                        feature                                    domains
============================  =========================================  =================================
``continuous_observations``   ``Sequence(Sequence(float32))`` (T, d)     mujoco-*, metaworld-*
``discrete_observations``     ``Sequence(Sequence(int64))`` (T, d)       babyai-*
``text_observations``         ``Sequence(string)`` (T,)                  babyai-* (the mission)
``image_observations``        ``Sequence(Image)`` (T,) PIL images        atari-* (84×84, 4 stacked frames as channels)
``continuous_actions``        ``Sequence(Sequence(float32))`` (T, a)     mujoco-*, metaworld-*
``discrete_actions``          ``Sequence(int64)`` (T,)                   atari-*, babyai-*
``rewards``                   ``Sequence(float32)`` (T,)                 all
============================  =========================================  =================================

Each present observation column becomes one observation field of the same name. Deviation: a frame
with 4 channels (JAT's Atari frame stack) is imported as its most recent frame, greyscale ``(H, W)``
(``frame_channel``), because Gato's image tokens are one RGB or greyscale image per field.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import numpy as np
from datasets import Dataset
from gato.suite.task_spec import ActionSpec, ObservationField, TaskSpec
from gato.suite.token_layout import DISCRETE_VALUES

from .writer import EpisodeWriter, episodes_to_dataset

JAT_OBSERVATION_KINDS: dict[str, str] = {
    "text_observations": "text",
    "image_observations": "image",
    "discrete_observations": "discrete",
    "continuous_observations": "continuous",
}
JAT_ACTION_COLUMNS: dict[str, str] = {"discrete_actions": "discrete", "continuous_actions": "continuous"}
JAT_REWARDS = "rewards"


def _frames(images: Any, frame_channel: int) -> np.ndarray:
    """A list of T images (PIL or arrays) → uint8 ``(T, H, W, 3)`` or ``(T, H, W)``."""
    frames = np.stack([np.asarray(image) for image in images])
    if frames.ndim == 4 and frames.shape[-1] == 4:
        frames = frames[..., frame_channel]
    elif frames.ndim == 4 and frames.shape[-1] == 1:
        frames = frames[..., 0]
    return frames.astype(np.uint8, copy=False)


def _columns(dataset: Dataset, table: Mapping[str, str]) -> list[str]:
    return [column for column in table if column in dataset.column_names]


def jat_task_spec(
    dataset: Dataset,
    task_name: str,
    domain: str = "jat",
    frame_channel: int = -1,
    action_num_values: int | None = None,
    observation_num_values: int | None = None,
) -> TaskSpec:
    """Infer the :class:`TaskSpec` of a JAT task dataset from its columns and first episode.

    Discrete value ranges are the dataset's maximum + 1 unless given. Continuous actions are binned
    directly when they all lie in [-1, 1] (JAT's MuJoCo and Meta-World actions do) and μ-law encoded
    otherwise; continuous observations are μ-law encoded.
    """
    action_columns = _columns(dataset, JAT_ACTION_COLUMNS)
    if len(action_columns) != 1:
        raise ValueError(
            f"JAT dataset for {task_name!r}: expected exactly one of {list(JAT_ACTION_COLUMNS)}, "
            f"got columns {dataset.column_names}"
        )
    observation_columns = _columns(dataset, JAT_OBSERVATION_KINDS)
    if not observation_columns:
        raise ValueError(
            f"JAT dataset for {task_name!r}: expected some of {list(JAT_OBSERVATION_KINDS)}, "
            f"got columns {dataset.column_names}"
        )
    first = dataset[0]
    fields = []
    for column in observation_columns:
        kind = JAT_OBSERVATION_KINDS[column]
        if kind == "text":
            fields.append(ObservationField(column, "text"))
        elif kind == "image":
            fields.append(ObservationField(column, "image", _frames(first[column][:1], frame_channel).shape[1:]))
        elif kind == "discrete":
            num_values = observation_num_values or _max_plus_one(dataset, column)
            fields.append(
                ObservationField(column, "discrete", np.asarray(first[column]).shape[1:], num_values=num_values)
            )
        else:
            fields.append(ObservationField(column, "continuous", np.asarray(first[column]).shape[1:], mu_law=True))
    action_column = action_columns[0]
    if JAT_ACTION_COLUMNS[action_column] == "discrete":
        action = ActionSpec("discrete", size=1, num_values=action_num_values or _max_plus_one(dataset, action_column))
    else:
        values = dataset.with_format("numpy")[action_column]
        bounded = all(np.abs(np.asarray(episode)).max() <= 1.0 for episode in values)
        action = ActionSpec("continuous", size=int(np.asarray(first[action_column]).shape[1]), mu_law=not bounded)
    return TaskSpec(
        name=task_name,
        observations=tuple(fields),
        action=action,
        domain=domain,
        extra={"source": "jat", "action_column": action_column},
    )


def _max_plus_one(dataset: Dataset, column: str) -> int:
    maximum = max(int(np.max(np.asarray(episode))) for episode in dataset.with_format("numpy")[column])
    if maximum + 1 > DISCRETE_VALUES:
        raise ValueError(
            f"JAT column {column!r}: values up to {maximum}, Gato's discrete values stop at {DISCRETE_VALUES - 1}"
        )
    return maximum + 1


def episode_from_jat_row(row: Mapping[str, Any], spec: TaskSpec, frame_channel: int = -1) -> dict[str, Any]:
    """One JAT row → the episode dict of :mod:`gato.suite.task_spec` (validated by the writer)."""
    observations: dict[str, Any] = {}
    for field in spec.observations:
        if field.name not in row:
            raise ValueError(f"JAT row, field {field.name!r}: missing")
        if field.kind == "text":
            observations[field.name] = [str(text) for text in row[field.name]]
        elif field.kind == "image":
            observations[field.name] = _frames(row[field.name], frame_channel)
        else:
            observations[field.name] = np.asarray(row[field.name])
    action_column = spec.extra.get("action_column") or (
        "discrete_actions" if spec.action.kind == "discrete" else "continuous_actions"
    )
    actions = np.asarray(row[action_column])
    return {
        "task": spec.name,
        "observations": observations,
        "actions": actions.reshape(len(actions), spec.action.size),
        "rewards": np.asarray(row[JAT_REWARDS], dtype=np.float64),
        "terminated": True,  # JAT rows are whole episodes, cut where the environment said done
    }


def import_jat_dataset(
    dataset: Dataset,
    task_name: str,
    out: str | os.PathLike | None = None,
    spec: TaskSpec | None = None,
    frame_channel: int = -1,
    overwrite: bool = False,
) -> Dataset:
    """Convert one JAT task's :class:`Dataset` (e.g. ``load_dataset("jat-project/jat-dataset",
    "babyai-goto", split="train")``) into gato's episode schema.

    Every episode is validated (a malformed one raises a ValueError naming its index and field). With
    ``out`` the result is written through :class:`~gato.episodes.writer.EpisodeWriter` and returned
    memory-mapped; without it, in memory.
    """
    spec = spec or jat_task_spec(dataset, task_name, frame_channel=frame_channel)
    episodes = (episode_from_jat_row(row, spec, frame_channel) for row in dataset)
    if out is None:
        return episodes_to_dataset(episodes, spec)
    with EpisodeWriter(out, spec, overwrite=overwrite) as writer:
        for index, episode in enumerate(episodes):
            if index >= writer.num_episodes:  # resume after episodes already in shards
                writer.add(episode)
    return writer.dataset
