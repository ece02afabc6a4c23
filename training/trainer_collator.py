"""A data collator for ``transformers.Trainer``: the processor's unpadded sequences → one padded batch.

``Trainer`` calls ``data_collator(features)`` with a list of dataset items. Gato's items are the
processor's unpadded sequence dicts (:data:`gato.processing.episode_layout.SEQUENCE_KEYS`), e.g. the items
of :class:`gato.training.mixture.MixtureDataset` or of a ``datasets.Dataset`` mapped through
``processor.tokenize_episode``; :meth:`GatoProcessor.collate` pads them. The collator only restores the
arrays' shapes where ``datasets`` loses them (an image-free sequence's ``patch_pixels`` comes back as an
empty list, not an empty ``(0, 3, 16, 16)`` array) and then calls ``collate``.

Trainer settings that go with it:

- ``remove_unused_columns=False``: the collator needs every key of :data:`SEQUENCE_KEYS`. Trainer would keep
  them anyway (they are all ``GatoForCausalLM.forward`` arguments), but a ``datasets.Dataset`` with other
  columns (``task``, …) or a model wrapped in something with another signature would lose them silently.
- ``num_items_in_batch``: ``GatoForCausalLM.forward`` takes it (the loss is then the sum over targets over
  it), and Trainer counts it on ``labels[:, 1:]``, exactly the model's targets, so the loss is right under
  gradient accumulation and across processes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from gato.processing.episode_layout import SEQUENCE_KEYS
from gato.processing.processing_gato import PADDING_STRATEGIES, GatoProcessor
from gato.suite.token_layout import PATCH_SIZE
from transformers.feature_extraction_utils import BatchFeature

# The shape of one element of each key (after the leading sequence / patch axis) and its dtype.
_ELEMENT_LAYOUT: dict[str, tuple[tuple[int, ...], type]] = {
    "input_ids": ((), np.int64),
    "loss_mask": ((), np.int64),
    "local_positions": ((), np.int64),
    "patch_mask": ((), np.bool_),
    "patch_pixels": ((3, PATCH_SIZE, PATCH_SIZE), np.float32),
    "patch_rows": ((2,), np.int64),
    "patch_cols": ((2,), np.int64),
}


class GatoDataCollator:
    """``Trainer``'s ``data_collator`` for Gato: unpadded sequence dicts → ``processor.collate`` batch.

    Args:
        processor: the :class:`GatoProcessor` whose ``collate`` pads the batch.
        padding: ``"longest"`` (pad to the longest sequence of the batch) or ``"max_length"`` (always
            ``processor.max_length`` tokens, fixed shapes for compiled / XLA runs).

    Returns (on call):
        A ``BatchFeature`` of torch tensors: ``input_ids, attention_mask, loss_mask, labels,
        local_positions`` ``(batch, seq)``; with image patches also ``patch_mask (batch, seq)``,
        ``patch_pixels (batch, patches, 3, 16, 16)``, ``patch_rows / patch_cols (batch, patches, 2)`` and
        ``patch_valid (batch, patches)``.
    """

    def __init__(self, processor: GatoProcessor, padding: str = "longest") -> None:
        if padding not in PADDING_STRATEGIES:
            raise ValueError(f"padding: expected one of {PADDING_STRATEGIES}, got {padding!r}")
        self.processor = processor
        self.padding = padding

    def __call__(self, features: Sequence[Mapping[str, Any]]) -> BatchFeature:
        sequences = [_as_sequence(index, feature) for index, feature in enumerate(features)]
        return self.processor.collate(sequences, padding=self.padding, return_tensors="pt")

    def __repr__(self) -> str:
        return f"{type(self).__name__}(padding={self.padding!r}, max_length={self.processor.max_length})"


def _as_sequence(index: int, feature: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """One item as numpy arrays of the processor's shapes and dtypes; other keys are dropped."""
    missing = [key for key in SEQUENCE_KEYS if key not in feature]
    if missing:
        raise ValueError(
            f"features[{index}]: missing keys {missing}; expected the processor's sequence dicts with keys "
            f"{list(SEQUENCE_KEYS)} (with Trainer, set remove_unused_columns=False)"
        )
    sequence = {}
    for key in SEQUENCE_KEYS:
        if key not in _ELEMENT_LAYOUT:  # a key newer than this collator: handed to collate as it is
            sequence[key] = np.asarray(feature[key])
            continue
        element_shape, dtype = _ELEMENT_LAYOUT[key]
        value = np.asarray(feature[key], dtype=dtype)
        if value.size == 0:
            value = value.reshape((0, *element_shape))
        elif value.shape[1:] != element_shape:
            expected = "(" + ", ".join(["n", *map(str, element_shape)]) + ")"
            raise ValueError(f"features[{index}][{key!r}]: expected shape {expected}, got {value.shape}")
        sequence[key] = value
    return sequence


__all__ = ["GatoDataCollator"]
