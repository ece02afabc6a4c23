"""Validation loss on a held-out text split (and any list of processor sequences).

The loss is the model's own masked next-token cross-entropy (GATO_SPEC.md section 3), averaged over
every target token of the split (token-weighted, not batch-weighted), in nats per token; perplexity is
its exponential.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from gato.modeling_gato.modeling_gato import target_mask
from gato.training.precision import float32_output_layer


@torch.no_grad()
def sequences_loss(
    model: torch.nn.Module, processor: Any, sequences: Sequence[Mapping[str, np.ndarray]], batch_size: int = 8
) -> tuple[float, int]:
    """Token-weighted mean masked loss over unpadded processor ``sequences``.

    Returns:
        ``(loss in nats per target token, number of target tokens)``; ``(nan, 0)`` without targets.
    """
    model.eval()
    device = next(model.parameters()).device
    total, count = 0.0, 0
    for start in range(0, len(sequences), batch_size):
        batch = processor.collate(list(sequences[start : start + batch_size]))
        batch = {key: value.to(device) for key, value in batch.items()}
        # The targets the model's loss counts: label set, loss mask on, not padding (modeling_gato.py).
        targets = int(target_mask(batch["labels"], batch["loss_mask"], batch["attention_mask"]).sum())
        if targets == 0:
            continue
        with float32_output_layer(model):  # a bf16 model's loss from float32 logits, as a float32 model's
            total += float(model(**batch).loss) * targets
        count += targets
    return (total / count, count) if count else (math.nan, 0)


def evaluate_text(
    model: torch.nn.Module, processor: Any, texts: Sequence[str], batch_size: int = 8, split: str = "text_validation"
) -> dict[str, Any]:
    """Validation loss on plain ``texts`` (each cut into ``max_length`` chunks, as in training).

    Returns the ``text`` entry of ``eval_results.json``: ``split``, ``documents``, ``sequences``, ``tokens``
    (target tokens), ``loss`` (nats per token) and ``perplexity``.
    """
    sequences = [chunk for text in texts for chunk in processor.tokenize_text_chunks(text)]
    if not sequences:
        raise ValueError(f"text: the split {split!r} has no text")
    loss, tokens = sequences_loss(model, processor, sequences, batch_size=batch_size)
    return {
        "split": split,
        "documents": len(texts),
        "sequences": len(sequences),
        "tokens": tokens,
        "loss": loss if math.isfinite(loss) else None,
        "perplexity": math.exp(loss) if math.isfinite(loss) else None,
    }


__all__ = ["sequences_loss", "evaluate_text"]
