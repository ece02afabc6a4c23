"""AdamW with the paper's decay groups and the warm-up + cosine-by-10× schedule (GATO_SPEC.md section 7)."""

from __future__ import annotations

import torch
from torch import nn
from transformers.optimization import get_cosine_with_min_lr_schedule_with_warmup

from .config import TrainingConfig

# Modules whose weights are not decayed: normalisation scales and lookup tables.
_NO_DECAY_MODULES = (nn.Embedding, nn.LayerNorm, nn.GroupNorm, nn.RMSNorm)


def parameter_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """Two AdamW groups: matrices/kernels decayed; biases, norms, embeddings (and any 1-D parameter) not.

    Shared parameters (a tied output layer) are listed once.
    """
    no_decay_ids = {
        id(parameter)
        for module in model.modules()
        if isinstance(module, _NO_DECAY_MODULES)
        for parameter in module.parameters(recurse=False)
    }
    decay, no_decay, seen = [], [], set()
    for parameter in model.parameters():
        if not parameter.requires_grad or id(parameter) in seen:
            continue
        seen.add(id(parameter))
        (no_decay if parameter.ndim < 2 or id(parameter) in no_decay_ids else decay).append(parameter)
    return [
        {"params": decay, "weight_decay": weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]


def build_optimizer(model: nn.Module, config: TrainingConfig) -> torch.optim.AdamW:
    return torch.optim.AdamW(
        parameter_groups(model, config.weight_decay),
        lr=config.learning_rate,
        betas=(config.adam_beta1, config.adam_beta2),
        eps=config.adam_epsilon,
    )


def build_scheduler(optimizer: torch.optim.Optimizer, config: TrainingConfig) -> torch.optim.lr_scheduler.LambdaLR:
    """Linear warm-up to the peak, then cosine decay to ``min_lr_ratio`` × peak at ``max_steps``."""
    return get_cosine_with_min_lr_schedule_with_warmup(
        optimizer,
        num_warmup_steps=min(config.warmup_steps, config.max_steps),
        num_training_steps=config.max_steps,
        min_lr_rate=config.min_lr_ratio,
    )
