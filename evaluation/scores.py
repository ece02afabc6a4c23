"""Expert-normalized scores and their aggregates (GATO_SPEC.md section 8).

Per task, the score of a mean return ``R`` is ``(R − random) / (expert − random)``: 0 at the random
policy's mean return, 1 at the expert's (``gato.suite.registry.normalized_score``). The paper's headline
is the number of tasks whose score reaches 50% of the expert's; we report that count and its fraction
among the tasks that have a score, and mean/median scores per domain and overall.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
from gato.suite.registry import normalized_score

# The paper's threshold: "above 50% of the expert score" (section 4).
SCORE_THRESHOLD = 0.5


def normalized_scores(
    returns: Sequence[float], expert_returns: Sequence[float], random_returns: Sequence[float]
) -> np.ndarray:
    """``(tasks,)`` expert-normalized scores of mean returns, NaN where a task's reference returns are
    missing (NaN) or equal. Vectorized form of :func:`gato.suite.registry.normalized_score`."""
    returns, expert, random = (
        np.asarray(values, dtype=np.float64) for values in (returns, expert_returns, random_returns)
    )
    if not returns.shape == expert.shape == random.shape:
        raise ValueError(
            f"returns, expert_returns, random_returns: expected equal shapes, got {returns.shape}, {expert.shape}, {random.shape}"
        )
    scale = expert - random
    defined = np.isfinite(expert) & np.isfinite(random) & (scale != 0)
    return np.where(defined, (returns - random) / np.where(defined, scale, 1.0), np.nan)


def score_summary(scores: Iterable[float | None], threshold: float = SCORE_THRESHOLD) -> dict[str, Any]:
    """Aggregate per-task scores (``None``/NaN = no score) into the summary fields of ``eval_results.json``.

    Returns:
        ``{"tasks", "tasks_scored", "mean_normalized_score", "median_normalized_score", "tasks_above_threshold",
        "fraction_above_threshold", "threshold"}``; means are ``None`` when no task has a score.
    """
    values = np.asarray([np.nan if score is None else float(score) for score in scores], dtype=np.float64)
    scored = values[np.isfinite(values)]
    above = int((scored >= threshold).sum())
    return {
        "tasks": int(values.size),
        "tasks_scored": int(scored.size),
        "mean_normalized_score": float(scored.mean()) if scored.size else None,
        "median_normalized_score": float(np.median(scored)) if scored.size else None,
        "tasks_above_threshold": above,
        "fraction_above_threshold": above / scored.size if scored.size else None,
        "threshold": threshold,
    }


def domain_summaries(
    results: Sequence[Mapping[str, Any]], threshold: float = SCORE_THRESHOLD
) -> dict[str, dict[str, Any]]:
    """Per-domain :func:`score_summary` of task results (dicts with ``domain`` and ``normalized_score``),
    domains in sorted order."""
    domains: dict[str, list[float | None]] = {}
    for result in results:
        domains.setdefault(result["domain"], []).append(result["normalized_score"])
    return {domain: score_summary(domains[domain], threshold) for domain in sorted(domains)}


__all__ = ["SCORE_THRESHOLD", "normalized_score", "normalized_scores", "score_summary", "domain_summaries"]
