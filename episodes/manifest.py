"""A folder's manifest: every file gato wrote there, with its size and sha256, checked before anything is loaded.

``write_manifest(folder)`` hashes the folder's files into ``folder/manifest.json``::

    {"format": "gato-manifest", "version": 1, "algorithm": "sha256",
     "files": {"model.safetensors": {"size": 20971520, "sha256": "…"}, "atari_breakout/data-00000-of-00001.arrow": …}}

``verify_manifest(folder)`` hashes them again and raises :class:`ManifestError` naming every file that changed or
is missing, so a bit-flipped ``model.safetensors`` or a truncated data shard is never trained on or evaluated as if
it were fine. Files added to the folder after the manifest was written (``eval_results.json`` next to a model,
datasets' cache files) are not checked. Folders written before manifests existed load with a one-line warning.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Iterable
from fnmatch import fnmatch
from pathlib import Path

MANIFEST_FILE = "manifest.json"
MANIFEST_FORMAT = "gato-manifest"
MANIFEST_VERSION = 1
# What a model manifest lists: the files `from_pretrained` loads (weights, configs, processor, tokenizer, the
# remote code) and training's own records. The reports written later (README card, eval_results.*, plots,
# main_job.json) and anything else in the folder are left out, so evaluating or pushing never trips over them.
MODEL_FILE_PATTERNS = (
    "*.safetensors",
    "*.safetensors.index.json",
    "config.json",
    "generation_config.json",
    "processor_config.json",
    "preprocessor_config.json",
    "tokenizer*",
    "special_tokens_map.json",
    "added_tokens.json",
    "chat_template*",
    "*.model",
    "*.py",
    "training_config.yaml",
    "train_results.json",
    "task_specs.json",
)
_CHUNK = 1 << 20

logger = logging.getLogger(__name__)


class ManifestError(ValueError):
    """A file listed in a folder's manifest changed or is missing (or the manifest itself is unreadable)."""


def file_sha256(path: str | os.PathLike) -> str:
    """The sha256 of a file's bytes, read in 1 MiB pieces (constant memory)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while piece := handle.read(_CHUNK):
            digest.update(piece)
    return digest.hexdigest()


def bytes_sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _listed_files(folder: Path, recursive: bool) -> list[str]:
    """Every regular file under ``folder`` except the manifest and hidden files/folders (locks, temporaries)."""
    candidates = folder.rglob("*") if recursive else folder.iterdir()
    names = []
    for path in candidates:
        relative = path.relative_to(folder)
        if not path.is_file() or path.is_symlink() or any(part.startswith(".") for part in relative.parts):
            continue
        if relative.as_posix() != MANIFEST_FILE:
            names.append(relative.as_posix())
    return sorted(names)


def manifest_entries(
    folder: str | os.PathLike, files: Iterable[str] | None = None, recursive: bool = True
) -> dict[str, dict]:
    """``{relative path: {"size", "sha256"}}`` of ``files`` (relative to ``folder``; default: all, see module doc)."""
    folder = Path(folder)
    names = _listed_files(folder, recursive) if files is None else sorted({Path(name).as_posix() for name in files})
    entries = {}
    for name in names:
        path = folder / name
        if not path.is_file():
            raise ManifestError(f"{path}: expected a file to list in the manifest, found none")
        entries[name] = {"size": path.stat().st_size, "sha256": file_sha256(path)}
    return entries


def manifest_bytes(entries: dict[str, dict]) -> bytes:
    """The manifest file's content for ``entries`` (what :func:`write_manifest` writes)."""
    payload = {"format": MANIFEST_FORMAT, "version": MANIFEST_VERSION, "algorithm": "sha256", "files": entries}
    return (json.dumps(payload, indent=1, sort_keys=True) + "\n").encode()


def write_manifest(folder: str | os.PathLike, files: Iterable[str] | None = None, *, recursive: bool = True) -> Path:
    """Hash ``files`` of ``folder`` (default: every file, recursively unless ``recursive=False``, except the manifest
    and hidden ones) into ``folder/manifest.json``, atomically (a temporary file and one rename); returns its path."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ManifestError(f"{folder}: expected a folder to write a manifest into")
    target = folder / MANIFEST_FILE
    tmp = folder / f".{MANIFEST_FILE}.tmp-{os.getpid()}"
    tmp.write_bytes(manifest_bytes(manifest_entries(folder, files, recursive)))
    os.replace(tmp, target)
    return target


def write_model_manifest(folder: str | os.PathLike) -> Path:
    """The manifest of a saved model folder: its top-level files that match :data:`MODEL_FILE_PATTERNS` (weights,
    configs, processor, tokenizer, code, training records); reports, checkpoints and logs are not listed."""
    folder = Path(folder)
    names = [path.name for path in folder.iterdir() if path.is_file()] if folder.is_dir() else []
    return write_manifest(
        folder, [name for name in names if any(fnmatch(name, pattern) for pattern in MODEL_FILE_PATTERNS)]
    )


def read_manifest(folder: str | os.PathLike) -> dict[str, dict] | None:
    """The manifest's ``files`` entries, or None when the folder has no manifest (written before manifests)."""
    path = Path(folder) / MANIFEST_FILE
    if not path.exists():
        return None
    try:
        payload = json.loads(path.read_text())
        if payload.get("format") != MANIFEST_FORMAT or payload.get("algorithm") != "sha256":
            raise ValueError(f"expected format {MANIFEST_FORMAT!r} with algorithm 'sha256'")
        files = payload["files"]
        if not isinstance(files, dict) or not all({"size", "sha256"} <= set(entry) for entry in files.values()):
            raise ValueError("expected 'files': {path: {'size', 'sha256'}}")
    except (ValueError, KeyError, TypeError, AttributeError) as error:
        raise ManifestError(f"{path}: unreadable manifest ({error}); restore it or write the folder again") from None
    return files


def verify_manifest(folder: str | os.PathLike) -> None:
    """Check every file the manifest of ``folder`` lists: present, same size, same sha256.

    Raises:
        ManifestError: naming each file that is missing or changed since it was written (and the folder when it
            is not one). A folder without a manifest (an older one) passes with a one-line warning.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise ManifestError(
            f"{folder}: expected a folder written by gato, found {'a file' if folder.exists() else 'nothing'}"
        )
    entries = read_manifest(folder)
    if entries is None:
        logger.warning(
            "%s: no %s (written before gato kept manifests); its files are not checked", folder, MANIFEST_FILE
        )
        return
    problems = []
    for name, entry in sorted(entries.items()):
        path = folder / name
        if Path(name).is_absolute() or ".." in Path(name).parts:
            problems.append(f"{name}: not a path inside the folder")
        elif not path.is_file():
            problems.append(f"{path}: missing")
        elif path.stat().st_size != entry["size"]:
            problems.append(f"{path}: changed ({path.stat().st_size} bytes, {entry['size']} when written)")
        elif file_sha256(path) != entry["sha256"]:
            problems.append(f"{path}: changed (sha256 differs from the one recorded when it was written)")
    if problems:
        raise ManifestError(
            f"{folder}: {len(problems)} file(s) differ from {MANIFEST_FILE}: "
            + "; ".join(problems)
            + ". The folder is damaged; write it again (or restore the files) before using it"
        )


def verify_data_folder(folder: str | os.PathLike) -> None:
    """Verify a ``gato data generate`` folder before loading it: its own manifest (``dataset_dict.json``, the card)
    and the manifest of every split its ``dataset_dict.json`` names; a single dataset folder is verified alone.
    Raises :class:`ManifestError` naming the changed files; older folders without manifests warn once."""
    folder = Path(folder)
    index = folder / "dataset_dict.json"
    if not folder.is_dir() or not index.is_file():
        verify_manifest(folder)
        return
    try:
        splits = json.loads(index.read_text())["splits"]
    except (ValueError, KeyError, TypeError) as error:
        raise ManifestError(f"{index}: unreadable ({error}); expected the index `gato data generate` writes") from None
    folders = [folder, *(folder / str(split) for split in splits)]
    unlisted = [path for path in folders if path.is_dir() and not (path / MANIFEST_FILE).exists()]
    if unlisted:
        logger.warning(
            "%s: %d folder(s) without %s (written before gato kept manifests); their files are not checked",
            folder,
            len(unlisted),
            MANIFEST_FILE,
        )
    for path in folders:
        if path not in unlisted:
            verify_manifest(path)


__all__ = [
    "MANIFEST_FILE",
    "ManifestError",
    "file_sha256",
    "manifest_bytes",
    "manifest_entries",
    "read_manifest",
    "verify_data_folder",
    "verify_manifest",
    "write_manifest",
    "write_model_manifest",
]
