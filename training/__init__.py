"""The training loop: task mixture, Accelerate/DeepSpeed loop, checkpoints (see the training issue)."""
