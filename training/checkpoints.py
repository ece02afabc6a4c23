"""Training checkpoints that resume exactly, refuse what they cannot resume, and never unpickle.

A checkpoint is a folder ``output_dir/checkpoints/checkpoint-<step>`` of safetensors and JSON files:

    model.safetensors                 the weights (shared tensors stored once)
    optimizer.safetensors             the optimizer's tensors; its param groups and scalars in the metadata
    scheduler.json                    the learning-rate schedule's state
    rng_state_<rank>.safetensors      every RNG of each process (torch, CUDA, numpy, Python)
    deepspeed/                        instead of model + optimizer under DeepSpeed (its own partitioned format)
    checkpoint.json                   the manifest, written last: step, the run's settings, sha256 of every file

It is written into ``checkpoint-<step>.tmp`` and renamed when complete, so a kill mid-save leaves no folder
that looks finished. Resuming verifies the manifest and every file's sha256 before reading anything, falls
back to the previous complete checkpoint when the newest is damaged (and says so), and refuses settings that
differ from the checkpoint's (a new batch size would skip data never trained on; a new learning rate would be
overwritten by the optimizer's saved one). Nothing here calls ``pickle`` or ``torch.load`` without
``weights_only=True``: a crafted checkpoint cannot run code.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
from collections.abc import Callable, Collection, Mapping
from pathlib import Path
from pickle import UnpicklingError
from typing import Any

import numpy as np
import torch
from accelerate import Accelerator
from accelerate.utils import DistributedType
from safetensors import SafetensorError
from safetensors.torch import load_model, save_file, save_model

from .config import TrainingConfig

CHECKPOINT_PREFIX = "checkpoint-"
MANIFEST_FILE = "checkpoint.json"
MODEL_FILE = "model.safetensors"
OPTIMIZER_FILE = "optimizer.safetensors"
SCHEDULER_FILE = "scheduler.json"
DEEPSPEED_DIR = "deepspeed"
DEEPSPEED_TAG = "state"
FORMAT_VERSION = 1

# Settings that do not change what the run computes: a resume may change them. Everything else (batch size,
# learning rate, schedule, steps, model, data, seed, precision, process count, …) must match the checkpoint.
# ``data`` is the folder's path; its contents are compared through ``data_fingerprint`` (a moved folder resumes).
RESUME_FREE_SETTINGS = frozenset(
    {"resume", "output_dir", "data", "logging_steps", "report_to", "num_workers", "save_steps", "save_total_limit"}
)


class CheckpointError(ValueError):
    """A checkpoint that cannot be resumed; the message names the file or setting and what to do."""


def rng_file(rank: int) -> str:
    return f"rng_state_{rank}.safetensors"


def checkpoint_step(path: Path) -> int | None:
    """The step of a ``checkpoint-<step>`` folder; None for anything else (``.tmp`` folders of an interrupted save)."""
    suffix = path.name[len(CHECKPOINT_PREFIX) :]
    return int(suffix) if path.name.startswith(CHECKPOINT_PREFIX) and suffix.isdigit() else None


def is_checkpoint(path: str | Path) -> bool:
    """A checkpoint folder that :func:`save_checkpoint` completed: its manifest, written last, is there."""
    return (Path(path) / MANIFEST_FILE).is_file()


def checkpoint_dirs(output_dir: str | Path, complete_only: bool = True) -> list[Path]:
    """Checkpoint folders in ``output_dir/checkpoints``, oldest first (with ``complete_only``: those with a manifest)."""
    root = Path(output_dir) / "checkpoints"
    found = [
        path for path in root.glob(f"{CHECKPOINT_PREFIX}*") if path.is_dir() and checkpoint_step(path) is not None
    ]
    if complete_only:
        found = [path for path in found if is_checkpoint(path)]
    return sorted(found, key=checkpoint_step)


def config_differences(
    saved: Mapping[str, Any],
    wanted: Mapping[str, Any],
    ignore: Collection[str] = ("resume",),
    absent: Mapping[str, Any] | None = None,
) -> list[str]:
    """``"field: old → new"`` for every setting that differs between two settings dicts (``ignore`` aside).

    The one comparison behind ``gato train --resume`` (checkpoint vs. command) and ``gato run`` (finished or
    started run vs. this job's training settings). A setting missing from ``saved`` (written before the setting
    existed) counts as its value in ``absent``, by default ``TrainingConfig``'s defaults: a new field's default is
    what runs did before it (``init_from: ""`` trained from scratch), so older checkpoints and run folders resume.
    """
    absent = TrainingConfig().to_dict() if absent is None else absent
    missing = object()
    differences = []
    for key in sorted(set(saved) | set(wanted)):
        if key in ignore:
            continue
        old, new = saved.get(key, absent.get(key, missing)), wanted.get(key, missing)
        if old != new:
            differences.append(
                f"{key}: {'(absent)' if old is missing else repr(old)} → {'(absent)' if new is missing else repr(new)}"
            )
    return differences


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# --- saving ------------------------------------------------------------------------------------------------


def save_checkpoint(
    accelerator: Accelerator,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    output_dir: str | Path,
    step: int,
    settings: Mapping[str, Any],
    keep: int = 0,
    environment: Mapping[str, Any] | None = None,
    write_model_folder: Callable[[Path], None] | None = None,
) -> Path:
    """Write ``checkpoint-<step>`` (collective: every process calls it) and keep the newest ``keep`` (0: all).

    ``settings`` (JSON-able) describe the run; a resume must present the same ones (``RESUME_FREE_SETTINGS`` aside).
    ``environment`` (thread count, versions) is recorded; a resume in another one is told it may not be bitwise exact.
    ``write_model_folder`` (main process, not under DeepSpeed, whose weights are partitioned) writes what else a
    model folder needs beside ``model.safetensors`` (config, processor, task specs) into the checkpoint, as the
    Trainer's checkpoints are loadable models: ``from_pretrained``/``gato eval`` read a checkpoint mid-run. Its
    files go into the manifest like the others.
    """
    root = Path(output_dir) / "checkpoints"
    final = root / f"{CHECKPOINT_PREFIX}{step}"
    staging = root / f"{CHECKPOINT_PREFIX}{step}.tmp"
    if accelerator.is_main_process:
        shutil.rmtree(staging, ignore_errors=True)  # left by a save that was killed
        staging.mkdir(parents=True)
    accelerator.wait_for_everyone()

    if accelerator.distributed_type == DistributedType.DEEPSPEED:
        # The engine owns the (partitioned) weights and optimizer state; every rank writes its shard.
        model.save_checkpoint(str(staging / DEEPSPEED_DIR), tag=DEEPSPEED_TAG)
    elif accelerator.is_main_process:
        save_model(accelerator.unwrap_model(model), str(staging / MODEL_FILE))
        tensors, metadata = _optimizer_to_flat(optimizer.state_dict())
        save_file(tensors, str(staging / OPTIMIZER_FILE), metadata=metadata)
        if write_model_folder is not None:
            write_model_folder(staging)
    if accelerator.is_main_process:
        _write_json(staging / SCHEDULER_FILE, scheduler.state_dict())
    tensors, metadata = _rng_state()
    save_file(tensors, str(staging / rng_file(accelerator.process_index)), metadata=metadata)
    accelerator.wait_for_everyone()

    if accelerator.is_main_process:
        files = sorted(path for path in staging.rglob("*") if path.is_file())
        manifest = {
            "format": FORMAT_VERSION,
            "step": step,
            "settings": dict(settings),
            "environment": dict(environment or {}),
            "files": {path.relative_to(staging).as_posix(): sha256_of(path) for path in files},
        }
        _write_json(staging / MANIFEST_FILE, manifest)
        if final.exists():  # a damaged checkpoint of the same step that a resume fell back past
            shutil.rmtree(final)
        os.replace(staging, final)
        if keep:
            for old in checkpoint_dirs(output_dir)[:-keep]:
                shutil.rmtree(old, ignore_errors=True)
    accelerator.wait_for_everyone()
    return final


def _optimizer_to_flat(state_dict: Mapping[str, Any]) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """A torch optimizer ``state_dict`` → safetensors tensors + string metadata (param groups, non-tensor state)."""
    tensors, scalars = {}, {}
    for index, entry in state_dict["state"].items():
        for name, value in entry.items():
            if torch.is_tensor(value):
                tensors[f"state.{index}.{name}"] = value.detach().cpu().contiguous()
            else:
                scalars.setdefault(str(index), {})[name] = value
    metadata = {"param_groups": json.dumps(state_dict["param_groups"]), "scalars": json.dumps(scalars)}
    return tensors, metadata


def _rng_state() -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Every RNG a training step can draw from, as tensors + string metadata."""
    numpy_state = np.random.get_state()
    tensors = {"torch": torch.get_rng_state(), "numpy": torch.from_numpy(numpy_state[1].astype(np.int64))}
    if torch.cuda.is_available():
        for index, state in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"cuda.{index}"] = state
    python_version, python_state, python_gauss = random.getstate()
    metadata = {
        "python": json.dumps([python_version, list(python_state), python_gauss]),
        "numpy": json.dumps([numpy_state[0], *numpy_state[2:]]),
    }
    return tensors, metadata


def _write_json(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data, indent=1) + "\n")


# --- resuming ----------------------------------------------------------------------------------------------


def resume_from_checkpoint(
    accelerator: Accelerator,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    output_dir: str | Path,
    settings: Mapping[str, Any],
    environment: Mapping[str, Any] | None = None,
) -> int:
    """Load the newest complete checkpoint whose files verify; return its step (0 when there is none).

    A damaged checkpoint (missing or changed file, no manifest, unreadable content) is skipped with a message
    naming the file; if every checkpoint is damaged, or the newest complete one was written with other settings
    (``RESUME_FREE_SETTINGS`` aside), raises :class:`CheckpointError`.
    """
    candidates = list(reversed(checkpoint_dirs(output_dir, complete_only=False)))
    if not candidates:
        accelerator.print(f"--resume: no checkpoint in {Path(output_dir) / 'checkpoints'}; starting from step 0")
        return 0
    problems: list[str] = []
    for path in candidates:
        try:
            manifest = verify_checkpoint(path, processes=accelerator.num_processes)
        except CheckpointError as error:
            problems.append(str(error))
            accelerator.print(f"--resume: skipping damaged {error}")
            continue
        differences = config_differences(manifest["settings"], settings, ignore=RESUME_FREE_SETTINGS)
        if differences:
            raise CheckpointError(
                f"--resume: the settings differ from those {path} was trained with: "
                + "; ".join(differences)
                + ". Resume with the checkpoint's settings, or train into another --output-dir"
            )
        try:
            _load(accelerator, model, optimizer, scheduler, path)
        except CheckpointError as error:
            problems.append(str(error))
            accelerator.print(f"--resume: skipping damaged {error}")
            continue
        _agree_across_processes(accelerator, manifest["step"])
        if problems:
            accelerator.print(f"--resume: fell back to {path.name}, the newest complete checkpoint")
        accelerator.print(f"resumed from {path} at step {manifest['step']}")
        if changed := config_differences(manifest.get("environment", {}), environment or {}, ignore=()):
            accelerator.print(
                "--resume: the environment differs from the checkpoint's ("
                + "; ".join(changed)
                + "): the rest of the run may differ from an uninterrupted one in the last bits"
            )
        return int(manifest["step"])
    raise CheckpointError(
        f"--resume: no complete checkpoint in {Path(output_dir) / 'checkpoints'}: "
        + "; ".join(problems)
        + ". Delete those folders to train from step 0, or train into another --output-dir"
    )


def verify_checkpoint(path: Path, processes: int) -> dict[str, Any]:
    """The manifest of ``path`` if every file it lists is present with its sha256 and nothing else is there."""
    manifest_path = path / MANIFEST_FILE
    if not manifest_path.is_file():
        raise CheckpointError(
            f"{manifest_path}: missing (an interrupted save, or a checkpoint of an older gato, "
            "whose pickled state is not loaded)"
        )
    try:
        manifest = json.loads(manifest_path.read_text())
        files, step, settings = manifest["files"], manifest["step"], manifest["settings"]
    except (ValueError, KeyError, TypeError) as error:
        raise CheckpointError(f"{manifest_path}: unreadable manifest ({error})") from None
    if manifest.get("format") != FORMAT_VERSION or not isinstance(files, dict) or not isinstance(settings, dict):
        raise CheckpointError(f"{manifest_path}: expected a format-{FORMAT_VERSION} manifest")
    if step != checkpoint_step(path):
        raise CheckpointError(f"{manifest_path}: says step {step}, but the folder is {path.name}")
    present = {file.relative_to(path).as_posix() for file in path.rglob("*") if file.is_file()} - {MANIFEST_FILE}
    if unlisted := sorted(present - set(files)):
        raise CheckpointError(f"{path / unlisted[0]}: not listed in {MANIFEST_FILE} (not written by this checkpoint)")
    required = [rng_file(rank) for rank in range(processes)] + [SCHEDULER_FILE]
    if not any(name.startswith(DEEPSPEED_DIR + "/") for name in files):
        required += [MODEL_FILE, OPTIMIZER_FILE]
    for name in [*required, *files]:
        if name not in files or name not in present:
            raise CheckpointError(f"{path / name}: missing")
    for name, expected in files.items():
        if sha256_of(path / name) != expected:
            raise CheckpointError(f"{path / name}: its sha256 differs from {MANIFEST_FILE} (truncated or changed)")
    return manifest


def _load(
    accelerator: Accelerator,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    path: Path,
) -> None:
    """Read a verified checkpoint into the run's objects; content that does not fit raises ``CheckpointError``."""
    current = None
    try:
        current = path / SCHEDULER_FILE
        scheduler_state = json.loads(current.read_text())
        if set(scheduler_state) != set(scheduler.state_dict()):
            raise ValueError(f"expected the keys {sorted(scheduler.state_dict())}")
        if accelerator.distributed_type == DistributedType.DEEPSPEED:
            current = path / DEEPSPEED_DIR
            from .deepspeed_checkpoints import load_deepspeed_checkpoint

            load_deepspeed_checkpoint(model, current, DEEPSPEED_TAG)
        else:
            current = path / MODEL_FILE
            missing, unexpected = load_model(accelerator.unwrap_model(model), str(current), strict=False)
            if missing or unexpected:
                raise ValueError(f"missing weights {sorted(missing)[:3]}, unexpected weights {sorted(unexpected)[:3]}")
            current = path / OPTIMIZER_FILE
            optimizer.load_state_dict(_optimizer_from_flat(str(current), optimizer.state_dict()))
        scheduler.load_state_dict(scheduler_state)
        current = path / rng_file(accelerator.process_index)
        _set_rng_state(str(current))
    except (
        OSError,
        ValueError,
        KeyError,
        TypeError,
        RuntimeError,
        AssertionError,
        SafetensorError,
        UnpicklingError,
    ) as error:  # UnpicklingError: a weights-only load refused a DeepSpeed file
        raise CheckpointError(f"{current}: cannot be loaded ({error})") from None


def _optimizer_from_flat(path: str, like: Mapping[str, Any]) -> dict[str, Any]:
    """The inverse of ``_optimizer_to_flat``, checked against the run's own optimizer (``like``)."""
    from safetensors import safe_open

    with safe_open(path, framework="pt") as handle:
        metadata = handle.metadata() or {}
        tensors = {key: handle.get_tensor(key) for key in handle.keys()}
    groups, scalars = json.loads(metadata["param_groups"]), json.loads(metadata["scalars"])
    if [group["params"] for group in groups] != [group["params"] for group in like["param_groups"]]:
        raise ValueError("its parameter groups do not match the model's")
    for group, current in zip(groups, like["param_groups"]):
        for key, value in current.items():  # JSON turned tuples (betas) into lists
            if isinstance(value, tuple) and isinstance(group.get(key), list):
                group[key] = tuple(group[key])
    state: dict[int, dict[str, Any]] = {int(index): dict(entry) for index, entry in scalars.items()}
    for key, tensor in tensors.items():
        _, index, name = key.split(".", 2)
        state.setdefault(int(index), {})[name] = tensor
    return {"state": state, "param_groups": groups}


def _set_rng_state(path: str) -> None:
    from safetensors import safe_open

    with safe_open(path, framework="pt") as handle:
        metadata = handle.metadata() or {}
        tensors = {key: handle.get_tensor(key) for key in handle.keys()}
    python_version, python_state, python_gauss = json.loads(metadata["python"])
    numpy_kind, numpy_position, numpy_has_gauss, numpy_gauss = json.loads(metadata["numpy"])
    random.setstate((python_version, tuple(python_state), python_gauss))
    np.random.set_state(
        (numpy_kind, tensors["numpy"].numpy().astype(np.uint32), numpy_position, numpy_has_gauss, numpy_gauss)
    )
    torch.set_rng_state(tensors["torch"])
    if torch.cuda.is_available():
        cuda = [tensors[f"cuda.{index}"] for index in range(torch.cuda.device_count()) if f"cuda.{index}" in tensors]
        if len(cuda) != torch.cuda.device_count():
            raise ValueError(f"holds {len(cuda)} CUDA RNG states for {torch.cuda.device_count()} devices")
        torch.cuda.set_rng_state_all(cuda)


def _agree_across_processes(accelerator: Accelerator, step: int) -> None:
    """Every process must resume the same checkpoint (they verify the same files; a mismatch is a broken disk)."""
    if accelerator.num_processes == 1:
        return
    steps = accelerator.gather(torch.tensor([step], device=accelerator.device))
    if len(set(steps.tolist())) != 1:
        raise CheckpointError(f"--resume: the processes found different complete checkpoints (steps {steps.tolist()})")
