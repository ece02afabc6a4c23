"""The training loop: task mixture, Accelerate/DeepSpeed loop, checkpoints, Trainer collator."""

from .config import TrainingConfig
from .trainer_collator import GatoDataCollator

__all__ = ["TrainingConfig", "GatoDataCollator"]
