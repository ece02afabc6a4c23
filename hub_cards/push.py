"""Pushing a run folder to the Hub, and checking offline that it is what the Hub and ``from_pretrained`` expect.

``push_run`` is ``huggingface_hub``'s ``create_repo`` + ``create_commit`` of exactly the planned files, with the
run's training leftovers (checkpoints, logs, the generated data) ignored; ``dry_run=True`` touches no network: it
lists exactly the files that would be sent and validates the folder and the card's metadata; ``local_dir=DIR``
touches no network either: it writes exactly the bytes that would be sent into ``DIR`` (:func:`export_files`), a
Hub-ready folder to keep in a repository or to upload later.

What never leaves the machine:

- **secrets**: token files, tracker settings and credentials (:data:`SECRET_PATTERNS`, e.g. ``.env``, ``token``,
  ``wandb/``, ``.netrc``) are never listed; a file that would be sent but holds a Hugging Face token (the one in
  use, or anything shaped like ``hf_…``) stops the push, naming the file;
- **machine paths**: absolute paths in the run's records (:data:`PATH_SCRUBBED_FILES`: ``eval_results.json``,
  ``training_config.yaml``, the model card's commands, …) are sent relative to the run folder (``/home/me/run/eval``
  → ``eval``) or as their last component (``/home/me/data/default`` → ``default``); the files on disk are untouched.

The folder's manifest is verified first (a changed ``model.safetensors`` stops the push, naming it), and the
manifest that is sent lists the bytes that are sent. ``model.push_to_hub`` / ``processor.push_to_hub`` are
transformers' own and need nothing from here.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from dataclasses import dataclass, field
from fnmatch import fnmatch
from pathlib import Path

from gato.episodes.manifest import MANIFEST_FILE, bytes_sha256, file_sha256, manifest_bytes, verify_manifest
from gato.evaluation.transfer_report import RESULTS_FILE as TRANSFER_RESULTS_FILE
from gato.evaluation.transfer_report import STUDY_DIR as TRANSFER_DIR
from huggingface_hub import EvalResult, ModelCard, ModelCardData
from huggingface_hub.repocard_data import model_index_to_eval_results
from huggingface_hub.utils import filter_repo_objects
from huggingface_hub.utils._paths import DEFAULT_IGNORE_PATTERNS

from .model_card import CARD_FILE, LIBRARY_NAME, build_model_card

# Training leftovers that do not belong in a model repository: optimizer checkpoints and their evaluations (`gato eval`
# of RUN/checkpoints/checkpoint-N writes RUN/eval/checkpoint-N: another model's scores), tracker logs, the generated
# data (a dataset repository of its own), the transfer study's own models (RUN/transfer/<task>/…: only its results,
# table and plot go), and temporary files.
IGNORE_PATTERNS: list[str] = [
    "checkpoints/*",
    f"{TRANSFER_DIR}/*/*",
    "eval/checkpoint-*",
    "logs/*",
    "data/*",
    "*.tmp",
    "**/__pycache__/*",
    ".*",
]
# Secrets, at any depth: env files, token files, tracker settings and credentials. (fnmatch's ``*`` crosses ``/``.)
SECRET_PATTERNS: list[str] = [
    ".env",
    ".env.*",
    "*.env",
    "*/.env",
    "*/.env.*",
    "*/.*",  # env files, and hidden files in sub-folders
    "token",
    "*/token",
    "*.token",
    "hf_token*",
    "*/hf_token*",
    "stored_tokens",
    "*/stored_tokens",
    "*.netrc",
    "netrc",
    "*/netrc",
    "*credentials*",
    "*.pem",
    "*.key",
    "id_rsa*",
    "*/id_rsa*",
    "wandb/*",
    "*/wandb/*",
    "wandb-*",
    "*/wandb-*",
    "mlruns/*",
    "*/mlruns/*",
    "comet.config",
    "*/comet.config",
    "clearml.conf",
    "*/clearml.conf",
    "neptune*",
    "*/neptune*",
    "accelerate_config*.yaml",
    "*/accelerate_config*.yaml",
]
# The run's own records, where commands and settings carry paths of this machine; sent with those paths scrubbed.
# (Not tokenizer.json and the like: their "/…" strings are vocabulary.)
PATH_SCRUBBED_FILES: tuple[str, ...] = (
    "README.md",
    "eval_results.json",
    "eval_results.md",
    "training_config.yaml",
    "train_results.json",
    "main_job.json",
    f"{TRANSFER_DIR}/{TRANSFER_RESULTS_FILE}",
    "*.md",
    "*.yaml",
    "*.yml",
)
_HF_TOKEN = re.compile(rb"hf_[A-Za-z0-9]{30,}")
# An absolute POSIX path (not inside a URL, a word or a fraction) or a Windows drive path.
_ABSOLUTE_PATH = re.compile(r"""(?<![\w.:/<>~-])/[^\s"'`,;|<>)\]}]+|\b[A-Za-z]:\\[^\s"'`,;|<>)\]}]+""")
_TEXT_SCAN_LIMIT = 64 * 2**20  # files larger than this (weights) are not scanned for tokens
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
    scrubbed: list[str] = field(default_factory=list)  # files sent with this machine's paths made relative
    local_dir: str | None = None  # where the files were written instead of uploaded (``push_run(local_dir=...)``)
    kept: list[str] = field(default_factory=list)  # files of an earlier export in local_dir this one did not write

    @property
    def total_bytes(self) -> int:
        # A dry run's rebuilt card exists only in memory: count the files on disk (the export's, once written).
        paths = [Path(self.local_dir or self.run_dir) / name for name in self.files]
        return sum(path.stat().st_size for path in paths if path.exists())


def upload_plan(run_dir: str | Path) -> list[str]:
    """The files a push sends, relative and sorted.

    Lists and filters the way ``HfApi.upload_folder`` does (every file under the folder, ``filter_repo_objects``
    with our patterns plus ``huggingface_hub``'s defaults such as ``.git``); secrets (:data:`SECRET_PATTERNS`) are
    never listed. The push sends exactly these files, so a dry run shows the real upload.
    """
    folder = Path(run_dir)
    files = sorted(path.relative_to(folder).as_posix() for path in folder.glob("**/*") if path.is_file())
    return list(
        filter_repo_objects(files, ignore_patterns=[*IGNORE_PATTERNS, *SECRET_PATTERNS, *DEFAULT_IGNORE_PATTERNS])
    )


def scrub_machine_paths(text: str, run_dir: str | Path) -> str:
    """``text`` with every absolute path made relative to ``run_dir`` when inside it (``.`` for the folder itself),
    else cut to its last component: commands and settings stay readable, this machine's layout stays home."""
    roots = sorted({str(Path(run_dir).absolute()), str(Path(run_dir).resolve())}, key=len, reverse=True)

    def relative(match: re.Match) -> str:
        path = match.group(0)
        trimmed = path.rstrip(".:")  # sentence punctuation after a path
        tail = path[len(trimmed) :]
        for root in roots:
            if trimmed == root or trimmed.startswith(root + "/"):
                return (trimmed[len(root) + 1 :] or ".") + tail
        name = re.split(r"[\\/]", trimmed.rstrip("\\/"))[-1]
        return (name or ".") + tail

    return _ABSOLUTE_PATH.sub(relative, text)


def _is_scrubbed(name: str) -> bool:
    return any(fnmatch(name, pattern) for pattern in PATH_SCRUBBED_FILES)


def check_no_tokens(
    folder: str | Path, files: list[str], contents: dict[str, bytes], token: str | None = None
) -> None:
    """Refuse, naming the file, when a file to be sent holds a Hugging Face token (``token`` or any ``hf_…``)."""
    for name in files:
        path = Path(folder) / name
        data = contents.get(name)
        if data is None:
            if not path.exists() or path.stat().st_size > _TEXT_SCAN_LIMIT:
                continue
            data = path.read_bytes()
        if _HF_TOKEN.search(data) or (token and token.encode() in data):
            raise ValueError(
                f"{path}: holds what looks like a Hugging Face token; refusing to upload it "
                "(remove the token from the file, or move the file out of the run folder)"
            )


def upload_contents(folder: str | Path, files: list[str], card_text: str | None) -> tuple[dict[str, bytes], list[str]]:
    """The bytes sent for files whose content differs from the disk: the rebuilt card and the path-scrubbed records
    (``{name: bytes}``), plus the names that were changed by scrubbing; every other file is sent as it is."""
    folder = Path(folder)
    contents: dict[str, bytes] = {}
    scrubbed = []
    for name in files:
        if name == MANIFEST_FILE:
            continue
        if name == CARD_FILE and card_text is not None:
            original = card_text
        elif _is_scrubbed(name) and (folder / name).exists():
            original = (folder / name).read_text(errors="replace")
        else:
            continue
        clean = scrub_machine_paths(original, folder)
        if clean != original:
            scrubbed.append(name)
        contents[name] = clean.encode()
    if MANIFEST_FILE in files:  # the manifest that is sent describes the bytes that are sent
        entries = {}
        for name in files:
            if name == MANIFEST_FILE:
                continue
            data = contents.get(name)
            entries[name] = (
                {"size": len(data), "sha256": bytes_sha256(data)}
                if data is not None
                else {"size": (folder / name).stat().st_size, "sha256": file_sha256(folder / name)}
            )
        contents[MANIFEST_FILE] = manifest_bytes(entries)
    return contents, sorted(scrubbed)


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
        raise ValueError(
            f"model card metadata: library_name must be {LIBRARY_NAME!r}, got {metadata['library_name']!r}"
        )
    if "model-index" not in metadata:
        return []
    name, results = model_index_to_eval_results(metadata["model-index"])
    rebuilt = ModelCardData(model_name=name, eval_results=results).to_dict()["model-index"]
    if rebuilt != metadata["model-index"]:
        raise ValueError(
            "model card metadata: the model-index does not round-trip through huggingface_hub's EvalResult"
        )
    bad = [
        f"{r.dataset_type}/{r.metric_type}"
        for r in results
        if not isinstance(r.metric_value, (int, float)) or r.metric_value != r.metric_value
    ]
    if bad:
        raise ValueError(f"model card metadata: metric values must be finite numbers; not so for {bad}")
    return results


def check_run_folder(run_dir: str | Path) -> list[str]:
    """Problems that would make the pushed repository fail ``from_pretrained`` (empty list: none).

    Checks the files of :data:`REQUIRED_FILES`, a tokenizer file, and an ``auto_map`` (and ``custom_pipelines``) in
    ``config.json`` naming code files that are in the folder (for ``trust_remote_code=True`` where ``gato`` is not
    installed).
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
        # The caption pipeline for both task names where gato is not installed (modeling_gato/pipeline_gato.py).
        for task, entry in sorted((config.get("custom_pipelines") or {}).items()):
            reference = str(entry.get("impl", "")) if isinstance(entry, dict) else ""
            module = reference.split(".")[0]
            if not module or not (folder / f"{module}.py").exists():
                problems.append(
                    f"config.json: custom_pipelines[{task!r}] names {reference or 'no impl'} but {module or '?'}.py "
                    "is not in the folder"
                )
    return problems


def _inside(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def check_export_target(local_dir: str | Path, run_dir: str | Path) -> list[str]:
    """Refuse (``ValueError`` naming the folder) an export target that could lose or mix up data; returns the files
    of an earlier export found there (relative, sorted; empty for a new or empty folder).

    ``local_dir`` may be missing, empty, or an **earlier export**: a folder that :func:`check_run_folder` accepts
    (it loads with ``from_pretrained``) and that holds nothing a push would leave out (no ``checkpoints/``,
    ``logs/``, ``data/``, secrets or temporary files; hidden files such as ``.gitattributes`` are allowed and left
    alone). Anything else — a file, a folder of other files, a run folder, the run folder itself or a folder inside
    or around it — is refused, so an export never overwrites or hides files it did not write.
    """
    target, source = Path(local_dir).absolute(), Path(run_dir).absolute()
    if _inside(target, source) or _inside(source, target):
        raise ValueError(
            f"local_dir: {local_dir} overlaps the run folder {run_dir}; expected a folder outside it "
            "(an export inside the run would be sent by its next push)"
        )
    if target.exists() and not target.is_dir():
        raise ValueError(f"local_dir: {local_dir} is a file; expected a folder to write the export into")
    if not target.exists():
        return []
    visible = sorted(
        path.relative_to(target).as_posix()
        for path in target.rglob("*")
        if path.is_file() and not any(part.startswith(".") for part in path.relative_to(target).parts)
    )
    if not visible:
        return []
    left_out = sorted(set(visible) - set(upload_plan(target)))
    problems = check_run_folder(target)
    if problems or left_out:
        what = "; ".join(
            problems + ([f"holds files a push leaves out: {', '.join(left_out[:5])}"] if left_out else [])
        )
        raise ValueError(
            f"local_dir: {local_dir} is not empty and is not an earlier export ({what}); expected a new or empty "
            "folder, or one written by an earlier `gato push --local-dir`"
        )
    return visible


def export_files(folder: str | Path, files: list[str], contents: dict[str, bytes], local_dir: str | Path) -> None:
    """Write ``files`` of ``folder`` into ``local_dir`` as a push sends them: ``contents[name]`` where given (the
    rebuilt card, scrubbed records, the manifest of the sent bytes), else the file's own bytes. Each file is written
    beside its place and renamed into it, so an interrupted export leaves every file whole (old or new)."""
    source, target = Path(folder), Path(local_dir)
    for name in files:
        path = target / name
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f".{path.name}.tmp-{os.getpid()}")
        try:
            if name in contents:
                partial.write_bytes(contents[name])
            else:
                shutil.copyfile(source / name, partial)
            os.replace(partial, path)
        finally:
            partial.unlink(missing_ok=True)


def push_run(
    run_dir: str | Path,
    repo_id: str,
    *,
    private: bool = False,
    dry_run: bool = False,
    token: str | None = None,
    commit_message: str = "Upload Gato run folder",
    update_card: bool = True,
    local_dir: str | Path | None = None,
) -> PushPlan:
    """Upload a run folder (model, processor, card, plot, eval results) to the Hub model repo ``repo_id``.

    Args:
        run_dir: a ``gato run`` / ``gato train`` folder.
        repo_id: ``ORG/NAME``.
        private: create the repository private.
        dry_run: list the files and validate, without any network access and without writing anything.
        token: the Hub token; default: ``HF_TOKEN`` from the environment, else the one ``hf auth login`` stored
            (keeps it out of shell history).
        update_card: (re)build ``README.md`` with ``repo_id`` in its loading snippets (in memory for a dry run
            and an export: the run folder is left as it is).
        local_dir: write exactly the files (and bytes) a push would send into this folder instead of uploading; no
            network. It must be new, empty or an earlier export (:func:`check_export_target`); files of an earlier
            export that this one does not write are kept and listed in ``PushPlan.kept``, never deleted.

    Raises ``ValueError`` when the folder would not load with ``from_pretrained``, a file listed in its manifest
    changed, a file to be sent holds a token, the card's metadata is invalid, or ``local_dir`` is not a folder to
    export into.
    """
    folder = Path(run_dir)
    if not folder.is_dir():
        raise ValueError(f"run_dir: {folder} is not a folder")
    if repo_id.count("/") != 1 or not all(repo_id.split("/")):
        raise ValueError(f"repo_id: expected ORG/NAME, got {repo_id!r}")
    if dry_run and local_dir is not None:
        raise ValueError("dry_run and local_dir: a dry run writes nothing, an export writes a folder; pick one")
    problems = check_run_folder(folder)
    if problems:
        raise ValueError(f"run_dir {folder}: " + "; ".join(problems))
    earlier = check_export_target(local_dir, folder) if local_dir is not None else []
    verify_manifest(folder)  # a changed weights file is named here, never uploaded as if it were fine
    token = token if token is not None else (os.environ.get("HF_TOKEN") or None)
    card = build_model_card(folder, repo_id=repo_id) if update_card else None
    eval_results = validate_model_card(card if card is not None else folder)
    files = upload_plan(folder)
    if card is not None and CARD_FILE not in files:
        files = sorted([*files, CARD_FILE])
    contents, scrubbed = upload_contents(folder, files, str(card) if card is not None else None)
    check_no_tokens(folder, files, contents, token)
    plan = PushPlan(str(folder), repo_id, private, files, eval_results, scrubbed=scrubbed)
    if dry_run:
        return plan
    if local_dir is not None:
        export_files(folder, files, contents, local_dir)
        plan.local_dir, plan.kept = str(local_dir), sorted(set(earlier) - set(files))
        return plan
    from huggingface_hub import CommitOperationAdd, create_commit, create_repo

    if card is not None:
        card.save(folder / CARD_FILE)  # the local card keeps the local paths; the one sent is scrubbed
    operations = [
        CommitOperationAdd(
            path_in_repo=name, path_or_fileobj=contents[name] if name in contents else str(folder / name)
        )
        for name in files
    ]
    create_repo(repo_id, private=private, exist_ok=True, token=token, repo_type="model")
    commit = create_commit(repo_id, operations, commit_message=commit_message, token=token, repo_type="model")
    plan.url = str(getattr(commit, "commit_url", commit))
    return plan


__all__ = [
    "IGNORE_PATTERNS",
    "PATH_SCRUBBED_FILES",
    "SECRET_PATTERNS",
    "PushPlan",
    "check_export_target",
    "check_no_tokens",
    "check_run_folder",
    "export_files",
    "push_run",
    "scrub_machine_paths",
    "upload_contents",
    "upload_plan",
    "validate_model_card",
]
