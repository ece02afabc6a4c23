"""Image observations stored as PNG: lossless, so the pixels (and the tokens the model sees) are exactly the
recorded ones, and 10–20× smaller than raw ``uint8`` for game frames (docs/DATA.md, BENCHMARKS.md).

A frame is one ``datasets.Image()`` value (``{"bytes": PNG, "path": None}``), so an image field is a
``List(Image())`` of ``T`` frames: the Hub's viewer and ``datasets`` decode it like any image column, and
:func:`decode_frames` turns the PNG bytes read through Arrow back into one ``(T, H, W[, 3]) uint8`` array.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
from PIL import Image

# zlib level of the PNG encoder: level 6 (PIL's default) is as fast as 1 on game frames and ~12% smaller; 9 is
# 5× slower for another 5% (measured on Breakout frames, BENCHMARKS.md).
PNG_COMPRESS_LEVEL = 6


def encode_frames(frames: np.ndarray) -> list[dict[str, Any]]:
    """``(T, H, W, 3)`` or ``(T, H, W)`` uint8 → ``T`` ``Image()`` values holding lossless PNG bytes."""
    encoded = []
    for frame in frames:
        buffer = io.BytesIO()
        Image.fromarray(np.ascontiguousarray(frame)).save(buffer, format="PNG", compress_level=PNG_COMPRESS_LEVEL)
        encoded.append({"bytes": buffer.getvalue(), "path": None})
    return encoded


def encoded_size(frames: Sequence[dict[str, Any]]) -> int:
    """Bytes of PNG data in encoded frames (what a shard's size budget counts)."""
    return sum(len(frame["bytes"]) for frame in frames)


def decode_frames(values: Iterable[Any], shape: tuple[int, ...]) -> np.ndarray:
    """PNG bytes, ``{"bytes": …}`` dicts, PIL images or arrays (one per step) → ``(T, *shape)`` uint8."""
    arrays = []
    for value in values:
        if isinstance(value, dict):
            value = value["bytes"]
        if isinstance(value, (bytes, bytearray, memoryview)):
            with Image.open(io.BytesIO(value)) as image:
                value = np.asarray(image)
        arrays.append(np.asarray(value, dtype=np.uint8))
    if not arrays:
        return np.zeros((0, *shape), dtype=np.uint8)
    stacked = np.stack(arrays)
    if stacked.shape[1:] != tuple(shape):
        raise ValueError(f"frames: expected (T, *{tuple(shape)}) per the spec, decoded {stacked.shape}")
    return stacked
