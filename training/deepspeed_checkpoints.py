"""Loading a DeepSpeed engine's checkpoint without unpickling code.

DeepSpeed writes its (ZeRO-partitioned) module and optimizer states with ``torch.save`` and reads them with
``torch.load(weights_only=False)``, which runs whatever a crafted file asks for. The engine reads through its
``checkpoint_engine``; for the load we swap in one that calls ``torch.load(weights_only=True)``: tensors,
containers and numbers only, plus the few plain DeepSpeed value classes its checkpoints hold (listed below),
so a file that names any other callable is refused instead of run.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch


def _deepspeed_safe_globals() -> list[Any]:
    """The non-tensor classes DeepSpeed's checkpoints contain: enums and plain value holders, no code."""
    from deepspeed.runtime.fp16.loss_scaler import DynamicLossScaler, LossScaler
    from deepspeed.runtime.zero.config import ZeroStageEnum
    from deepspeed.utils.tensor_fragment import fragment_address

    return [ZeroStageEnum, LossScaler, DynamicLossScaler, fragment_address]


@contextlib.contextmanager
def weights_only_checkpoint_engine(engine: Any) -> Iterator[None]:
    """Within the block, ``engine`` (a ``DeepSpeedEngine``) loads its checkpoint files with ``weights_only=True``."""
    original = engine.checkpoint_engine.load
    safe_globals = _deepspeed_safe_globals()

    def load(path: str, map_location: Any = None) -> Any:
        with torch.serialization.safe_globals(safe_globals):
            return torch.load(path, map_location=map_location, weights_only=True)

    engine.checkpoint_engine.load = load
    try:
        yield
    finally:
        engine.checkpoint_engine.load = original


def load_deepspeed_checkpoint(engine: Any, folder: Path, tag: str) -> None:
    """Load module and optimizer states (every rank its partition) from ``folder/tag``; the LR schedule is the loop's."""
    with weights_only_checkpoint_engine(engine):
        path, _ = engine.load_checkpoint(
            str(folder), tag=tag, load_module_strict=True, load_optimizer_states=True, load_lr_scheduler_states=False
        )
    if path is None:
        raise ValueError(f"DeepSpeed found no checkpoint under {folder / tag}")
