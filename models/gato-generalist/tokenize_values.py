"""Continuous and discrete values ↔ token ids (GATO_SPEC.md section 1).

Every function is vectorized over arbitrary shapes and keeps the array type it was given:
numpy in → numpy out, torch in → torch out (same device).
"""

from __future__ import annotations

import math
from typing import TypeVar

import numpy as np
import torch

try:
    from gato.suite.token_layout import (
        CONTINUOUS_BINS,
        CONTINUOUS_OFFSET,
        DEFAULT_DISCRETE_LAYOUT,
        DISCRETE_VALUES,
        MU_LAW_M,
        MU_LAW_MU,
        discrete_offset,
    )
except ImportError:  # a remote-code folder (GatoProcessor.save_pretrained), loaded where gato is not installed
    from .token_layout import (
        CONTINUOUS_BINS,
        CONTINUOUS_OFFSET,
        DEFAULT_DISCRETE_LAYOUT,
        DISCRETE_VALUES,
        MU_LAW_M,
        MU_LAW_MU,
        discrete_offset,
    )

Array = TypeVar("Array", np.ndarray, torch.Tensor)


def _check_finite(x: Array, field: str) -> None:
    finite = torch.isfinite(x).all() if isinstance(x, torch.Tensor) else np.isfinite(x).all()
    if not bool(finite):
        raise ValueError(f"{field}: expected finite values, got NaN or inf")


def _as_float(x) -> np.ndarray | torch.Tensor:
    if isinstance(x, torch.Tensor):
        return x if x.is_floating_point() else x.to(torch.float32)
    return np.asarray(x, dtype=np.float64)


def mu_law_encode(x: Array, mu: float = MU_LAW_MU, M: float = MU_LAW_M) -> Array:
    """μ-law companding F(x) = sign(x)·log(|x|μ + 1) / log(Mμ + 1), elementwise (not clipped)."""
    x = _as_float(x)
    denominator = math.log(M * mu + 1.0)
    if isinstance(x, torch.Tensor):
        return torch.sign(x) * torch.log1p(x.abs() * mu) / denominator
    return np.sign(x) * np.log1p(np.abs(x) * mu) / denominator


def mu_law_decode(y: Array, mu: float = MU_LAW_MU, M: float = MU_LAW_M) -> Array:
    """Inverse of :func:`mu_law_encode`: sign(y)·((Mμ + 1)^|y| − 1) / μ."""
    y = _as_float(y)
    log_base = math.log(M * mu + 1.0)
    if isinstance(y, torch.Tensor):
        return torch.sign(y) * torch.expm1(y.abs() * log_base) / mu
    return np.sign(y) * np.expm1(np.abs(y) * log_base) / mu


def tokenize_continuous(x: Array, mu_law: bool = True, field: str = "continuous values") -> Array:
    """Continuous values → token ids in [32000, 33024).

    ``mu_law=True`` companding first (for fields not bounded in [-1, 1]); then clip to [-1, 1] and
    bin uniformly: bin k covers [-1 + 2k/1024, -1 + 2(k+1)/1024), 1.0 falls in the last bin.
    Shapes are kept; the result is int64.
    """
    x = _as_float(x)
    _check_finite(x, field)
    if mu_law:
        x = mu_law_encode(x)
    if isinstance(x, torch.Tensor):
        # Binned in float64, as numpy does: in float32, (x + 1) can round up onto a bin edge.
        bins = torch.floor((x.double().clamp(-1.0, 1.0) + 1.0) * (CONTINUOUS_BINS / 2.0)).long()
        return bins.clamp_(max=CONTINUOUS_BINS - 1) + CONTINUOUS_OFFSET
    bins = np.floor((np.clip(x, -1.0, 1.0) + 1.0) * (CONTINUOUS_BINS / 2.0)).astype(np.int64)
    return np.minimum(bins, CONTINUOUS_BINS - 1) + CONTINUOUS_OFFSET


def detokenize_continuous(ids: Array, mu_law: bool = True, field: str = "continuous token ids") -> Array:
    """Token ids in [32000, 33024) → values: the bin centre, then inverse μ-law when ``mu_law``."""
    if not isinstance(ids, torch.Tensor):
        ids = np.asarray(ids)
    bins = ids - CONTINUOUS_OFFSET
    if (bins.numel() if isinstance(bins, torch.Tensor) else bins.size) > 0:
        low, high = int(bins.min()), int(bins.max())
        if low < 0 or high >= CONTINUOUS_BINS:
            raise ValueError(
                f"{field}: expected ids in [{CONTINUOUS_OFFSET}, {CONTINUOUS_OFFSET + CONTINUOUS_BINS}), "
                f"got values in [{low + CONTINUOUS_OFFSET}, {high + CONTINUOUS_OFFSET}]"
            )
    if isinstance(bins, torch.Tensor):
        centres = (bins.to(torch.float32) * 2.0 + 1.0) / CONTINUOUS_BINS - 1.0
    else:
        centres = (np.asarray(bins, dtype=np.float64) * 2.0 + 1.0) / CONTINUOUS_BINS - 1.0
    return mu_law_decode(centres) if mu_law else centres


def tokenize_discrete(
    x: Array, layout: str = DEFAULT_DISCRETE_LAYOUT, num_values: int = DISCRETE_VALUES, field: str = "discrete values"
) -> Array:
    """Integers in [0, num_values) (num_values ≤ 1024) → token ids under ``layout`` ("paper" or "shifted")."""
    offset = discrete_offset(layout)
    if num_values > DISCRETE_VALUES:
        raise ValueError(f"{field}: at most {DISCRETE_VALUES} discrete values are supported, got {num_values}")
    if isinstance(x, torch.Tensor):
        if x.is_floating_point():
            _check_finite(x, field)
            if not bool((x == x.round()).all()):
                raise ValueError(f"{field}: expected integers, got non-integer values")
        values = x.long()
        count = values.numel()
    else:
        x = np.asarray(x)
        if x.dtype.kind == "f":
            _check_finite(x, field)
            if not np.all(x == np.round(x)):
                raise ValueError(f"{field}: expected integers, got non-integer values")
        elif x.dtype.kind not in "iub":
            raise ValueError(f"{field}: expected integers, got dtype {x.dtype}")
        values = x.astype(np.int64)
        count = values.size
    if count and (int(values.min()) < 0 or int(values.max()) >= num_values):
        raise ValueError(
            f"{field}: expected integers in [0, {num_values}), got values in [{int(values.min())}, {int(values.max())}]"
        )
    return values + offset


def detokenize_discrete(
    ids: Array,
    layout: str = DEFAULT_DISCRETE_LAYOUT,
    num_values: int = DISCRETE_VALUES,
    field: str = "discrete token ids",
) -> Array:
    """Token ids → integers in [0, num_values); ids outside that range raise."""
    offset = discrete_offset(layout)
    if not isinstance(ids, torch.Tensor):
        ids = np.asarray(ids)
    values = ids - offset
    count = values.numel() if isinstance(values, torch.Tensor) else values.size
    if count and (int(values.min()) < 0 or int(values.max()) >= num_values):
        raise ValueError(
            f"{field}: expected ids in [{offset}, {offset + num_values}), "
            f"got values in [{int(values.min()) + offset}, {int(values.max()) + offset}]"
        )
    return values
