"""Episode collections on `datasets`: schema, writer, recorder, JAT import, generation, captions, text corpus.

The schema and its on-disk layout are documented in ``docs/DATA.md``.

The names below are imported on first use (as in ``gato/__init__.py``): importing a light module of this folder,
such as ``gato.episodes.record_config`` (what ``gato data record --help`` reads), does not import ``datasets``.
"""

from importlib import import_module

# Public names → the submodule that defines them.
_LAZY_ATTRIBUTES = {
    "build_captions_dataset": ".captions",
    "import_jat_dataset": ".jat_import",
    "jat_task_spec": ".jat_import",
    "episode_seed": ".recorder",
    "record_episode": ".recorder",
    "record_episodes": ".recorder",
    "record_task_episode": ".recorder",
    "episode_features": ".schema",
    "episode_from_arrow": ".schema",
    "episode_from_row": ".schema",
    "iter_episodes": ".schema",
    "read_episode": ".schema",
    "spec_from_dataset": ".schema",
    "EpisodeWriter": ".writer",
    "episodes_to_dataset": ".writer",
    "load_episodes": ".writer",
    "validate_episode": ".writer",
    "write_shard": ".writer",
}

__all__ = sorted(_LAZY_ATTRIBUTES)


def __getattr__(name: str):
    if name in _LAZY_ATTRIBUTES:
        return getattr(import_module(_LAZY_ATTRIBUTES[name], __name__), name)
    raise AttributeError(f"module 'gato.episodes' has no attribute {name!r}")
