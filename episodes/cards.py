"""Dataset cards (``README.md`` with YAML metadata) for the datasets :mod:`gato.episodes` generates.

Built with ``huggingface_hub.DatasetCard`` / ``DatasetCardData`` so the Hub reads the license, task
categories and tags; the body documents the schema (the dataset's own features), how the data was
made and the command that makes it again.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from datasets import Features
from huggingface_hub import DatasetCard, DatasetCardData

PROJECT_URL = "https://arxiv.org/abs/2205.06175"
EPISODE_TASK_CATEGORIES = ("reinforcement-learning", "robotics")
CAPTION_TASK_CATEGORIES = ("image-to-text",)
TEXT_TASK_CATEGORIES = ("text-generation",)


def features_table(features: Features) -> str:
    """A markdown table of a dataset's columns and their `datasets` feature types (nested fields dotted)."""
    rows = []

    def walk(prefix: str, feature: Any) -> None:
        if isinstance(feature, Mapping):
            for name, sub in feature.items():
                walk(f"{prefix}.{name}" if prefix else name, sub)
        else:
            rows.append(f"| `{prefix}` | `{feature!r}` |")

    walk("", features)
    return "\n".join(["| column | feature |", "| --- | --- |", *rows])


def build_card(
    *,
    pretty_name: str,
    summary: str,
    features: Features,
    command: str,
    task_categories: Sequence[str],
    license: str = "apache-2.0",
    tags: Sequence[str] = ("gato", "generalist-agent"),
    details: str = "",
    size_rows: int | None = None,
) -> DatasetCard:
    """A :class:`DatasetCard`: YAML metadata, then summary, schema, generation details and the command."""
    data = DatasetCardData(
        license=license,
        pretty_name=pretty_name,
        task_categories=list(task_categories),
        tags=list(tags),
        size_categories=[_size_category(size_rows)] if size_rows is not None else None,
    )
    body = "\n\n".join(
        part
        for part in [
            f"# {pretty_name}",
            summary,
            "## Schema\n\n" + features_table(features),
            "## How it was made\n\n" + details if details else "",
            "## Reproduce\n\n```bash\n" + command + "\n```",
            "## Load\n\n```python\nimport datasets\n\ndataset = datasets.load_from_disk(PATH)\n```",
            f"Part of gato, a reimplementation of Gato ({PROJECT_URL}).",
        ]
        if part
    )
    return DatasetCard("---\n" + data.to_yaml() + "\n---\n\n" + body + "\n")


def write_card(path: str | os.PathLike, card: DatasetCard) -> Path:
    """Save ``card`` as ``path/README.md``; returns the file path."""
    target = Path(path) / "README.md"
    card.save(str(target))
    return target


def _size_category(rows: int) -> str:
    for limit, name in ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M")):
        if rows < limit:
            return name
    return "1M<n<10M"
