"""The training loop: task mixture, Accelerate/DeepSpeed loop, checkpoints, Trainer collator."""

from .config import TrainingConfig

__all__ = ["TrainingConfig", "GatoDataCollator"]


def __getattr__(name: str):
    # The collator pulls in the processor (transformers, torch): loaded on first use, so that reading a
    # TrainingConfig (`gato train --help`) stays light.
    if name == "GatoDataCollator":
        from .trainer_collator import GatoDataCollator

        return GatoDataCollator
    raise AttributeError(f"module 'gato.training' has no attribute {name!r}")
