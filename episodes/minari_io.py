"""Minari datasets (the Farama Foundation's format for offline RL) ↔ gato episode collections.

:func:`import_minari` reads a local :class:`minari.MinariDataset` (or a local dataset id; nothing is downloaded) into a
gato collection: the spec comes from the dataset's spaces (``gato.suite.spaces.spec_from_spaces``) and carries the
environment id and arguments of its ``env_spec``, so the imported task trains and evaluates like a recorded one.
:func:`export_minari` writes a gato collection as a Minari dataset (``data_format="arrow"``, frames stored raw, not
JPEG: lossless).

Episodes differ in one way: a Minari episode of ``T`` steps stores ``T + 1`` observations (the last one is what the
final action led to), a gato episode the ``T`` an action was chosen from. Import drops the final observation; export
repeats the last one in its place. What round trips keep, exactly: the episode count, every observation an action was
chosen from, the actions, the rewards and whether the episode terminated; continuous actions of a Box other than
[-1, 1] are rescaled to [-1, 1] on import and back on export (equal up to float32 rounding).

Two forms on export:

- a collection imported from Minari, or recorded from a gymnasium id with a spec from its spaces, is written **in the
  environment's own spaces** (the Minari dataset's, kept in ``spec.extra["minari"]``, else ``gym.make``'s): Minari
  users read it as the environment gives it;
- any other collection (the suite's tasks, hand-written specs) is written **in the spec's terms**: a ``Dict`` space
  of the spec's fields, the action as ``Discrete`` / ``MultiDiscrete`` / ``Box`` of the spec; the spec itself is stored
  in the Minari metadata (``gato_task_spec``) so that importing it back gives the same spec.
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np
from datasets import Dataset
from gato.suite.spaces import SPACES_KEY, env_adapters, env_kwargs_of, spec_from_spaces
from gato.suite.task_spec import TaskSpec

from .schema import iter_episodes, spec_from_dataset
from .writer import EpisodeWriter, episodes_to_dataset

SPEC_METADATA_KEY = "gato_task_spec"  # a gato spec in Minari metadata: the dataset is in the spec's own terms
MINARI_EXTRA_KEY = "minari"  # spec.extra: the Minari dataset id and serialized spaces an import came from
MINARI_HINT = "pip install 'minari>=0.5,<0.6'"


def _minari():
    try:
        import minari
    except ModuleNotFoundError as error:
        raise ModuleNotFoundError(f"Minari import/export needs the minari package: {MINARI_HINT}") from error
    return minari


def _at(value: Any, index: int) -> Any:
    """Step ``index`` of a batched Minari observation (nested dicts / tuples of arrays, or lists of strings)."""
    if isinstance(value, Mapping):
        return {key: _at(child, index) for key, child in value.items()}
    if isinstance(value, tuple):
        return tuple(_at(child, index) for child in value)
    return value[index]


def _spec_of(dataset: Any, name: str | None, domain: str) -> tuple[TaskSpec, bool]:
    """The gato spec of a Minari dataset and whether its observations are in the spec's own terms."""
    from minari.serialization import serialize_space

    metadata = dataset.storage.metadata
    stored = metadata.get(SPEC_METADATA_KEY)
    if stored:
        spec = TaskSpec.from_json(stored)
        if name and name != spec.name:
            spec = TaskSpec(name, spec.observations, spec.action, spec.domain, spec.extra)
        return spec, True
    env_spec = dataset.spec.env_spec
    extra: dict[str, Any] = {
        MINARI_EXTRA_KEY: {
            "dataset_id": dataset.spec.dataset_id,
            "observation_space": serialize_space(dataset.observation_space),
            "action_space": serialize_space(dataset.action_space),
        }
    }
    if env_spec is not None:
        extra["env_id"] = env_spec.id
        extra["env_kwargs"] = env_kwargs_of(type("Env", (), {"spec": env_spec})())
        if env_spec.max_episode_steps:
            extra["max_episode_steps"] = int(env_spec.max_episode_steps)
    default_name = name or dataset.spec.dataset_id.replace("/", "_").replace("-", "_")
    return spec_from_spaces(
        dataset.observation_space, dataset.action_space, default_name, domain=domain, extra=extra
    ), False


def minari_episodes(dataset: Any, spec: TaskSpec, in_spec_terms: bool):
    """Yield the gato episode dicts of a Minari dataset's episodes (final observations dropped)."""
    to_episode_step, _, from_env_action = env_adapters(spec)
    for episode in dataset.iterate_episodes():
        steps = len(episode.rewards)
        if in_spec_terms:
            observations = {
                f.name: (
                    list(episode.observations[f.name][:steps])
                    if f.kind == "text"
                    else np.asarray(episode.observations[f.name])[:steps]
                )
                for f in spec.observations
            }
            actions = np.asarray(episode.actions).reshape(steps, spec.action.size)
        else:
            per_step = [to_episode_step(_at(episode.observations, t)) for t in range(steps)]
            observations = {
                f.name: (
                    [str(step[f.name]) for step in per_step]
                    if f.kind == "text"
                    else np.stack([np.asarray(step[f.name]) for step in per_step])
                )
                for f in spec.observations
            }
            actions = np.stack([from_env_action(_at(episode.actions, t)) for t in range(steps)])
        yield {
            "task": spec.name,
            "observations": observations,
            "actions": actions,
            "rewards": np.asarray(episode.rewards, dtype=np.float64),
            "terminated": bool(episode.terminations[-1]),
        }


def import_minari(
    dataset: Any,
    out: str | os.PathLike | None = None,
    *,
    name: str | None = None,
    domain: str = "",
    overwrite: bool = False,
) -> Dataset:
    """A Minari dataset (a ``MinariDataset`` or the id of a local one) → a gato episode collection.

    Args:
        dataset: the dataset, or its id (``minari.load_dataset(id)``: local datasets only, nothing is downloaded).
        out: write the collection there (validated, sharded, resumable, as ``record_episodes``); default in memory.
        name / domain: the task's name (default: the dataset id, ``/`` and ``-`` → ``_``) and domain.
    """
    minari = _minari()
    if isinstance(dataset, str):
        try:
            dataset = minari.load_dataset(dataset, download=False)
        except (FileNotFoundError, ValueError) as error:
            raise ValueError(f"dataset: no local Minari dataset {dataset!r} ({error})") from error
    spec, in_spec_terms = _spec_of(dataset, name, domain)
    episodes = minari_episodes(dataset, spec, in_spec_terms)
    if out is None:
        return episodes_to_dataset(episodes, spec)
    with EpisodeWriter(out, spec, overwrite=overwrite) as writer:
        for episode in episodes:
            writer.add(episode)
    return writer.dataset


# --- export --------------------------------------------------------------------------------------------------------


def _spec_spaces(spec: TaskSpec, dataset: Dataset) -> tuple[Any, Any]:
    """A ``Dict`` space of the spec's fields and the spec's action space."""
    from gymnasium import spaces

    fields: dict[str, Any] = {}
    for f in spec.observations:
        if f.kind == "image":
            fields[f.name] = spaces.Box(0, 255, f.shape, dtype=np.uint8)
        elif f.kind == "discrete":
            fields[f.name] = (
                spaces.Discrete(f.num_values) if not f.shape else spaces.MultiDiscrete(np.full(f.shape, f.num_values))
            )
        elif f.kind == "continuous":
            fields[f.name] = spaces.Box(-np.inf, np.inf, f.shape, dtype=np.float32)
        else:
            texts = [text for row in dataset["observations"] for text in row[f.name]]
            charset = frozenset("".join(texts)) or frozenset("a")
            fields[f.name] = spaces.Text(max_length=max([len(t) for t in texts] + [1]), min_length=0, charset=charset)
    action = spec.action
    if action.kind == "discrete":
        action_space = (
            spaces.Discrete(action.num_values)
            if action.size == 1
            else spaces.MultiDiscrete([action.num_values] * action.size)
        )
    else:
        action_space = spaces.Box(action.low, action.high, (action.size,), dtype=np.float32)
    return spaces.Dict(fields), action_space


def _env_spaces(spec: TaskSpec) -> tuple[Any, Any] | None:
    """The environment's own spaces of a spec built from them: the Minari dataset's it was imported from, else
    ``gym.make``'s; None when neither is available."""
    if SPACES_KEY not in spec.extra:
        return None
    stored = spec.extra.get(MINARI_EXTRA_KEY)
    if stored:
        from minari.serialization import deserialize_space

        return (
            deserialize_space(json.loads(stored["observation_space"])),
            deserialize_space(json.loads(stored["action_space"])),
        )
    if "env_id" in spec.extra:
        from gato.suite.registry import make_gym_env

        env = make_gym_env(spec.extra["env_id"], spec.extra.get("env_kwargs") or {})
        try:
            return env.observation_space, env.action_space
        finally:
            env.close()
    return None


def _env_observations(spec: TaskSpec, episode: Mapping[str, Any]) -> Any:
    """A gato episode's observations (``T`` steps, the last repeated) back in the environment's nested structure."""
    layout = spec.extra[SPACES_KEY]["observations"]
    kinds = {f.name: f.kind for f in spec.observations}
    root: dict[Any, Any] = {}
    for reader in layout:
        values = episode["observations"][reader["field"]]
        if kinds[reader["field"]] == "text":
            value: Any = [*values, values[-1]]
        else:
            value = np.concatenate([values, values[-1:]])
            if reader["offset"] != 0:
                value = value + np.asarray(reader["offset"], dtype=value.dtype)
            if reader["squeeze"]:
                value = value[..., None]
        if not reader["path"]:
            return value
        node = root
        for part in reader["path"][:-1]:
            node = node.setdefault(part, {})
        node[reader["path"][-1]] = value

    def build(node: Any) -> Any:  # Tuple levels were keyed by int: turn them back into tuples
        if not isinstance(node, dict):
            return node
        if all(isinstance(key, int) for key in node):
            return tuple(build(node[index]) for index in range(len(node)))
        return {key: build(child) for key, child in node.items()}

    return build(root)


def export_minari(
    dataset: Dataset,
    dataset_id: str,
    *,
    spec: TaskSpec | None = None,
    author: str | None = None,
    description: str | None = None,
) -> Any:
    """A gato episode collection → a new local Minari dataset ``dataset_id`` (module docstring: the two forms).

    Returns the :class:`minari.MinariDataset`. Raises ``ValueError`` when a dataset of that id exists already.
    """
    minari = _minari()
    from gymnasium import spaces
    from minari.data_collector.episode_buffer import EpisodeBuffer

    spec = spec or spec_from_dataset(dataset)
    env_spaces = _env_spaces(spec)
    if env_spaces is not None:
        observation_space, action_space = env_spaces
        _, to_env_action, _ = env_adapters(spec)
    else:
        observation_space, action_space = _spec_spaces(spec, dataset)
    buffers = []
    for index, episode in enumerate(iter_episodes(dataset, spec)):
        steps = len(episode["actions"])
        if env_spaces is not None:
            observations = _env_observations(spec, episode)
            actions = np.stack([np.asarray(to_env_action(action)) for action in episode["actions"]])
        else:
            # Values in the spaces' dtypes (Minari's storage checks them); the gato writer narrows them back on import.
            observations = {
                f.name: (
                    [*episode["observations"][f.name], episode["observations"][f.name][-1]]
                    if f.kind == "text"
                    else np.concatenate(
                        [episode["observations"][f.name], episode["observations"][f.name][-1:]]
                    ).astype(observation_space[f.name].dtype)
                )
                for f in spec.observations
            }
            actions = episode["actions"].astype(action_space.dtype)
            actions = actions.reshape(steps) if isinstance(action_space, spaces.Discrete) else actions
        terminated = bool(dataset[index]["terminated"])
        buffers.append(
            EpisodeBuffer(
                id=index,
                observations=observations,
                actions=actions,
                rewards=list(map(float, episode["rewards"])),
                terminations=[False] * (steps - 1) + [terminated],
                truncations=[False] * (steps - 1) + [not terminated],
            )
        )
    env = spec.extra.get("env_id") if env_spaces is not None else None
    try:
        with warnings.catch_warnings():  # Minari warns of every metadata field left empty (permalink, e-mail, …)
            warnings.simplefilter("ignore", UserWarning)
            created = minari.create_dataset_from_buffers(
                dataset_id,
                buffers,
                env=env,
                observation_space=observation_space,
                action_space=action_space,
                algorithm_name="gato episode collection",
                author=author,
                description=description or f"gato task {spec.name}",
                data_format="arrow",
                jpeg_encoding=False,
            )
    except ValueError as error:
        raise ValueError(f"dataset_id: {error}") from error
    created.storage.update_metadata({SPEC_METADATA_KEY: spec.to_json()} if env_spaces is None else {})
    return created


__all__ = ["export_minari", "import_minari", "minari_episodes"]
