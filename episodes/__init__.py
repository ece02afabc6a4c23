"""Episode collections on `datasets`: schema, writer, recorder, JAT import, generation, captions, text corpus.

The schema and its on-disk layout are documented in ``docs/DATA.md``.
"""

from .captions import build_captions_dataset
from .jat_import import import_jat_dataset, jat_task_spec
from .recorder import episode_seed, record_episode, record_episodes, record_task_episode
from .schema import (
    episode_features,
    episode_from_arrow,
    episode_from_row,
    iter_episodes,
    read_episode,
    spec_from_dataset,
)
from .writer import EpisodeWriter, episodes_to_dataset, load_episodes, validate_episode, write_shard

__all__ = [
    "EpisodeWriter",
    "build_captions_dataset",
    "episode_features",
    "episode_from_arrow",
    "episode_from_row",
    "episode_seed",
    "episodes_to_dataset",
    "import_jat_dataset",
    "iter_episodes",
    "jat_task_spec",
    "load_episodes",
    "record_episode",
    "record_episodes",
    "read_episode",
    "record_task_episode",
    "spec_from_dataset",
    "validate_episode",
    "write_shard",
]
