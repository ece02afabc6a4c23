"""Pushing a run folder to the Hub, and checking offline that it is what the Hub and ``from_pretrained`` expect.

``push_run`` is ``huggingface_hub``'s ``create_repo`` + ``upload_folder`` with the run's training leftovers
(checkpoints, logs, the generated data) ignored; ``dry_run=True`` touches no network: it lists exactly the files
``upload_folder`` would send (the same listing and pattern filter) and validates the folder and the card's metadata.
``model.push_to_hub`` / ``processor.push_to_hub`` are transformers' own and need nothing from here.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from huggingface_hub import EvalResult, ModelCard, ModelCardData
from huggingface_hub.repocard_data import model_index_to_eval_results
from huggingface_hub.utils import filter_repo_objects
from huggingface_hub.utils._paths import DEFAULT_IGNORE_PATTERNS

from .model_card import CARD_FILE, LIBRARY_NAME, build_model_card

# Training leftovers that do not belong in a model repository: optimizer checkpoints, tracker logs, the generated
# data (a dataset repository of its own), and temporary files.
IGNORE_PATTERNS: list[str] = ["checkpoints/*", "logs/*", "data/*", "*.tmp", "**/__pycache__/*", ".*"]
# What `from_pretrained` needs: the weights, the config, the processor (with its image processor inside) and tokenizer.
REQUIRED_FILES = ("config.json", "model.safetensors", "processor_config.json", "tokenizer_config.json")
TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model")  # one of them
REQUIRED_METADATA = ("license", "library_name", "pipeline_tag", "tags")


@dataclass
class PushPlan:
    """What a push sends: the files (paths relative to the folder, sorted) and the card's parsed model-index."""

    run_dir: str
    repo_id: str
    private: bool
    files: list[str]
    eval_results: list[EvalResult] = field(default_factory=list)
    url: str | None = None  # the commit URL after a real push

    @property
    def total_bytes(self) -> int:
        # A dry run's rebuilt card exists only in memory: count the files on disk.
        paths = [Path(self.run_dir) / name for name in self.files]
        return sum(path.stat().st_size for path in paths if path.exists())


def upload_plan(run_dir: str | Path) -> list[str]:
    """The files ``upload_folder(run_dir, ignore_patterns=IGNORE_PATTERNS)`` uploads, relative and sorted.

    Lists and filters the way ``HfApi.upload_folder`` does (every file under the folder, ``filter_repo_objects``
    with our patterns plus ``huggingface_hub``'s defaults such as ``.git``), so a dry run shows the real upload.
    """
    folder = Path(run_dir)
    files = sorted(path.relative_to(folder).as_posix() for path in folder.glob("**/*") if path.is_file())
    return list(filter_repo_objects(files, ignore_patterns=[*IGNORE_PATTERNS, *DEFAULT_IGNORE_PATTERNS]))


def validate_model_card(source: str | Path | ModelCard) -> list[EvalResult]:
    """Parse a card the way the Hub does and check its metadata offline; returns the model-index results.

    ``source`` is a README path, a folder holding one, or a ``ModelCard``. Checks: the YAML front matter parses
    into ``ModelCardData`` (``huggingface_hub`` raises on a malformed model-index), the required fields are set,
    ``library_name`` is transformers, the model-index round-trips through ``model_index_to_eval_results`` to the
    same results, and every metric value is a finite number. Raises ``ValueError`` naming the problem.
    """
    if isinstance(source, ModelCard):
        card = source
    else:
        path = Path(source)
        path = path / CARD_FILE if path.is_dir() else path
        if not path.exists():
            raise ValueError(f"model card: {path} does not exist")
        card = ModelCard.load(path, ignore_metadata_errors=False)
    metadata = card.data.to_dict()
    missing = [name for name in REQUIRED_METADATA if not metadata.get(name)]
    if missing:
        raise ValueError(f"model card metadata: missing {missing}; expected {list(REQUIRED_METADATA)}")
    if metadata["library_name"] != LIBRARY_NAME:
        raise ValueError(f"model card metadata: library_name must be {LIBRARY_NAME!r}, got {metadata['library_name']!r}")
    if "model-index" not in metadata:
        return []
    name, results = model_index_to_eval_results(metadata["model-index"])
    rebuilt = ModelCardData(model_name=name, eval_results=results).to_dict()["model-index"]
    if rebuilt != metadata["model-index"]:
        raise ValueError("model card metadata: the model-index does not round-trip through huggingface_hub's EvalResult")
    bad = [f"{r.dataset_type}/{r.metric_type}" for r in results if not isinstance(r.metric_value, (int, float)) or r.metric_value != r.metric_value]
    if bad:
        raise ValueError(f"model card metadata: metric values must be finite numbers; not so for {bad}")
    return results


def check_run_folder(run_dir: str | Path) -> list[str]:
    """Problems that would make the pushed repository fail ``from_pretrained`` (empty list: none).

    Checks the files of :data:`REQUIRED_FILES`, a tokenizer file, and an ``auto_map`` in ``config.json`` naming
    code files that are in the folder (for ``trust_remote_code=True`` where ``gato`` is not installed).
    """
    folder = Path(run_dir)
    problems = [f"missing {name}" for name in REQUIRED_FILES if not (folder / name).exists()]
    if not any((folder / name).exists() for name in TOKENIZER_FILES):
        problems.append(f"missing a tokenizer file (one of {list(TOKENIZER_FILES)})")
    if (folder / "config.json").exists():
        config = json.loads((folder / "config.json").read_text())
        auto_map = config.get("auto_map") or {}
        if "AutoModelForCausalLM" not in auto_map:
            problems.append("config.json: no auto_map entry for AutoModelForCausalLM")
        for reference in auto_map.values():
            module = reference.split(".")[0]
            if not (folder / f"{module}.py").exists():
                problems.append(f"config.json: auto_map names {reference} but {module}.py is not in the folder")
    return problems


def push_run(
    run_dir: str | Path,
    repo_id: str,
    *,
    private: bool = False,
    dry_run: bool = False,
    token: str | None = None,
    commit_message: str = "Upload Gato run folder",
    update_card: bool = True,
) -> PushPlan:
    """Upload a run folder (model, processor, card, plot, eval results) to the Hub model repo ``repo_id``.

    Args:
        run_dir: a ``gato run`` / ``gato train`` folder.
        repo_id: ``ORG/NAME``.
        private: create the repository private.
        dry_run: list the files and validate, without any network access and without writing anything.
        update_card: (re)build ``README.md`` with ``repo_id`` in its loading snippets (in memory for a dry run).

    Raises ``ValueError`` when the folder would not load with ``from_pretrained`` or the card's metadata is invalid.
    """
    folder = Path(run_dir)
    if not folder.is_dir():
        raise ValueError(f"run_dir: {folder} is not a folder")
    if repo_id.count("/") != 1 or not all(repo_id.split("/")):
        raise ValueError(f"repo_id: expected ORG/NAME, got {repo_id!r}")
    problems = check_run_folder(folder)
    if problems:
        raise ValueError(f"run_dir {folder}: " + "; ".join(problems))
    card = build_model_card(folder, repo_id=repo_id) if update_card else None
    eval_results = validate_model_card(card if card is not None else folder)
    files = upload_plan(folder)
    if card is not None and CARD_FILE not in files:
        files = sorted([*files, CARD_FILE])
    plan = PushPlan(str(folder), repo_id, private, files, eval_results)
    if dry_run:
        return plan
    from huggingface_hub import create_repo, upload_folder

    if card is not None:
        card.save(folder / CARD_FILE)
    create_repo(repo_id, private=private, exist_ok=True, token=token, repo_type="model")
    commit = upload_folder(folder_path=str(folder), repo_id=repo_id, ignore_patterns=IGNORE_PATTERNS, token=token,
                           commit_message=commit_message, repo_type="model")
    plan.url = str(getattr(commit, "commit_url", commit))
    return plan


__all__ = ["IGNORE_PATTERNS", "PushPlan", "upload_plan", "validate_model_card", "check_run_folder", "push_run"]
