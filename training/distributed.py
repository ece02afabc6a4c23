"""The one home of world size and rank: what the launcher started, and the Accelerator that joins it.

On a machine without a GPU Accelerate forms no process group by itself: two processes started by
``accelerate launch --multi_gpu --num_processes 2`` would each train alone, and under DeepSpeed the launcher
starts two processes that Accelerate counts as a group of one. ``build_accelerator`` joins them over gloo
(``Accelerator(cpu=True)`` for DDP; ``PartialState(backend="gloo")`` before the Accelerator under DeepSpeed,
which ``cpu=True`` would switch off). ``accelerate launch --cpu --num_processes N`` (and ``--num_processes N``
without ``--multi_gpu`` on a machine without GPUs) runs Accelerate's single-process launcher: one process,
refused here instead of training alone.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TypeVar

import torch
from accelerate import Accelerator, PartialState
from accelerate.state import AcceleratorState
from accelerate.utils import GradientAccumulationPlugin, ProjectConfiguration, parse_flag_from_env

T = TypeVar("T")


def launched_processes() -> int:
    """Processes the launcher started (``WORLD_SIZE``; 1 without a launcher), readable before any process group."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def launched_rank() -> int:
    """This process's global rank as the launcher numbered it (``RANK``; 0 without a launcher)."""
    return int(os.environ.get("RANK", "0"))


def is_main_rank() -> bool:
    """The process that reports and writes the run's files (rank 0), known before and after the Accelerator exists."""
    return launched_rank() == 0


def uses_deepspeed() -> bool:
    return os.environ.get("ACCELERATE_USE_DEEPSPEED", "false").lower() == "true"


def _has_accelerator_device() -> bool:
    return torch.cuda.is_available() or (hasattr(torch, "xpu") and torch.xpu.is_available())


def check_launch() -> None:
    """Refuse a launch that asked for several processes but started one (Accelerate's single-process launcher
    sets ``MASTER_ADDR``/``MASTER_PORT`` for N > 1 but starts one process, without ``WORLD_SIZE``)."""
    if "WORLD_SIZE" not in os.environ and "MASTER_PORT" in os.environ and "ACCELERATE_MIXED_PRECISION" in os.environ:
        raise ValueError(
            "num_processes: `accelerate launch` was asked for several processes but started one (`--cpu`, or "
            "`--num_processes N` without `--multi_gpu` or a DeepSpeed config, uses its single-process launcher); "
            "on CPU launch `accelerate launch --multi_gpu --num_processes N` (gato joins the processes over gloo)"
        )


def check_process_group(num_processes: int) -> None:
    """Refuse a process group smaller than the launch (``WORLD_SIZE``): N unsynchronised processes would each do
    the whole job into one output_dir."""
    launched = launched_processes()
    if launched != num_processes:
        raise ValueError(
            f"WORLD_SIZE: the launcher started {launched} processes but Accelerate formed a group of "
            f"{num_processes}; on CPU launch with `ACCELERATE_USE_CPU=1 accelerate launch --multi_gpu`"
        )


def build_accelerator(
    mixed_precision: str, gradient_accumulation_steps: int, log_with: str | None, output_dir: str | Path
) -> Accelerator:
    """The run's Accelerator, joined into one process group with every process the launcher started."""
    check_launch()
    earlier = AcceleratorState._shared_state.get("_mixed_precision")
    if earlier is not None and earlier != mixed_precision and launched_processes() == 1:
        # A process that trained before (a notebook, a test session, `gato run` after a bf16 run) keeps Accelerate's
        # process-wide state, which refuses another precision; a single-process run may start it afresh.
        AcceleratorState._reset_state()
    cpu = False
    if launched_processes() > 1 and not _has_accelerator_device():
        if uses_deepspeed():
            PartialState(backend="gloo")  # the shared state the Accelerator below picks up, DeepSpeed kept
        else:
            cpu = True  # Accelerate's MULTI_CPU: DDP over gloo
    accelerator = Accelerator(
        cpu=cpu,
        mixed_precision=mixed_precision,
        # The loop fetches a step's micro-batches before running them: the optimizer steps every N micro-batches,
        # not early when the loader reports its end.
        gradient_accumulation_plugin=GradientAccumulationPlugin(
            num_steps=gradient_accumulation_steps, sync_with_dataloader=False
        ),
        log_with=log_with,
        project_config=ProjectConfiguration(project_dir=str(output_dir), logging_dir=str(Path(output_dir) / "logs")),
    )
    check_process_group(accelerator.num_processes)
    return accelerator


def build_partial_state() -> PartialState:
    """The process group of work without an optimizer (evaluation): one process and no group without a launcher;
    CPU ranks over gloo only when the launch says so (``ACCELERATE_USE_CPU``), as for training; refused when smaller
    than the launch (:func:`check_process_group`)."""
    state = PartialState(cpu=parse_flag_from_env("ACCELERATE_USE_CPU"))
    check_process_group(state.num_processes)
    return state


def process_share(items: Sequence[T], state: PartialState) -> list[T]:
    """This process's share of ``items``: every ``num_processes``-th one from its ``process_index`` (round robin, so
    that every process gets a share of similar size and the shares together are ``items``, each once)."""
    return list(items[state.process_index :: state.num_processes])
