"""The ``gato`` commands' checks of their files and folders, run before any long work starts.

Each check raises :class:`InputError` (a ``ValueError``) whose message is one line: the path, what is wrong
with it, and what was expected there — the command prints it and exits with status 2. The checks read only
what is cheap (headers, small JSON/YAML files); deep integrity (checksums of weights and shards) belongs to the
loaders.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import yaml


class InputError(ValueError):
    """A command-line path that cannot be used; the message names the path and what was expected."""


def refuse(command: str, error: BaseException) -> int:
    """Print ``error`` as one line ``<command>: <message>`` on stderr and return the exit status 2. A ``KeyError``'s
    message is printed without the quotes that ``str`` gives it."""
    message = error.args[0] if len(error.args) == 1 else error
    print(f"{command}: {message}", file=sys.stderr)
    return 2


def _problem(path: Path, what: str, expected: str) -> InputError:
    return InputError(f"{path}: {what} (expected {expected})")


def existing_file(path: str | Path, expected: str) -> Path:
    path = Path(path)
    if not path.exists():
        raise _problem(path, "not found", expected)
    if path.is_dir():
        raise _problem(path, "is a folder", expected)
    if not os.access(path, os.R_OK):
        raise _problem(path, "cannot be read (permissions)", expected)
    return path


def existing_folder(path: str | Path, expected: str) -> Path:
    path = Path(path)
    if not path.exists():
        raise _problem(path, "not found", expected)
    if not path.is_dir():
        raise _problem(path, "is a file, not a folder", expected)
    if not os.access(path, os.R_OK | os.X_OK):
        raise _problem(path, "cannot be read (permissions)", expected)
    return path


def writable_folder(path: str | Path, expected: str) -> Path:
    """A folder that exists and can be written into, or that can be created (nothing is created here)."""
    path = Path(path)
    probe = path
    while not probe.exists():
        if probe.parent == probe:
            break
        probe = probe.parent
    if not probe.is_dir():
        where = "is a file" if probe == path else f"cannot be created: {probe} is a file"
        raise _problem(path, where, expected)
    if not os.access(probe, os.W_OK | os.X_OK):
        where = (
            "cannot be written into (permissions)" if probe == path else f"cannot be created: {probe} is not writable"
        )
        raise _problem(path, where, expected)
    return path


def yaml_mapping(path: str | Path, expected: str) -> dict[str, Any]:
    """A readable YAML file whose top level is a mapping (empty file → ``{}``)."""
    path = existing_file(path, expected)
    try:
        data = yaml.safe_load(path.read_text())
    except (yaml.YAMLError, UnicodeDecodeError) as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        raise _problem(path, f"is not valid YAML{where}", expected) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise _problem(path, f"holds a YAML {type(data).__name__}, not a mapping", expected)
    return data


def _json_file(path: Path, expected: str) -> Any:
    existing_file(path, expected)
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise _problem(path, "is not valid JSON", expected) from None


def dataset_folder(path: str | Path) -> Path:
    """A ``gato data generate`` folder (a ``DatasetDict`` saved with ``save_to_disk`` whose splits are present), or
    one recorded task's collection (``record_episodes``, ``gato data record``: a ``Dataset`` folder)."""
    expected = "a `gato data generate` folder (a DatasetDict saved to disk) or one recorded task's collection"
    path = existing_folder(path, expected)
    if (path / "state.json").is_file() and not (path / "dataset_dict.json").exists():
        return path  # one collection: `load_from_disk` reads its state.json and arrow files
    if not (path / "dataset_dict.json").exists():
        raise _problem(path, "has no dataset_dict.json", expected)
    index = _json_file(path / "dataset_dict.json", expected)
    if not isinstance(index, dict) or not isinstance(index.get("splits"), list):
        raise _problem(path / "dataset_dict.json", "does not list the splits", expected)
    for split in index["splits"]:
        if not (path / str(split) / "state.json").is_file():
            raise _problem(
                path / str(split), "is missing or incomplete (no state.json)", f"the split {split!r} of {expected}"
            )
    return path


def model_folder(path: str | Path) -> Path:
    """A ``gato train`` / ``gato run`` output folder: ``config.json`` and readable safetensors weights."""
    expected = "a model folder written by `gato train` or `gato run`"
    path = existing_folder(path, expected)
    config = _json_file(path / "config.json", expected)
    if not isinstance(config, dict) or config.get("model_type") != "gato":
        raise _problem(path / "config.json", "is not a Gato config (model_type 'gato')", expected)
    if (path / "model.safetensors.index.json").exists():  # sharded weights: the loader checks the shards
        _json_file(path / "model.safetensors.index.json", expected)
        return path
    weights = path / "model.safetensors"
    existing_file(weights, expected)
    from safetensors import safe_open

    try:
        with safe_open(str(weights), framework="numpy"):  # reads and checks the header only
            pass
    except Exception as error:  # safetensors raises its own SafetensorError for a bad header
        raise _problem(weights, f"is not a readable safetensors file ({error})", expected) from None
    return path


__all__ = [
    "InputError",
    "dataset_folder",
    "existing_file",
    "existing_folder",
    "model_folder",
    "writable_folder",
    "yaml_mapping",
]
