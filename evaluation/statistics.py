"""Aggregate statistics of expert-normalized scores with stratified-bootstrap confidence intervals.

The recommendations of Agarwal et al. (2021), "Deep Reinforcement Learning at the Edge of the Statistical Precipice"
(the ``rliable`` library), computed from the episode-level scores ``gato eval`` keeps: a few episodes per task make
a mean over tasks noisy, so point estimates come with 95% intervals, and the interquartile mean (IQM) and the
optimality gap are reported beside the mean and median.

Scores: episode ``i`` of task ``t`` scores ``(return_i − random_t) / (expert_t − random_t)``. With ``s[t]`` the scores
of task ``t`` (its episodes play the part of rliable's runs; tasks may have different episode counts):

- **IQM**: the mean of the middle 50% of all episode scores pooled over the tasks (``scipy.stats.trim_mean`` with 25%
  cut from each end, as rliable's ``aggregate_iqm``);
- **median** and **mean** of the per-task mean scores;
- **optimality gap**: ``1 − mean_t mean_i min(s[t]_i, 1)``, how far the tasks fall short of the expert (scores above
  the expert's do not make up for others below it);
- **performance profile**: for each threshold τ, the fraction of episode scores above τ (averaged over tasks).

**Stratified bootstrap** (rliable's ``StratifiedBootstrap``): each replicate resamples, within every task, that task's
episodes with replacement and recomputes the statistic; the 95% interval is the 2.5th–97.5th percentile of the
replicates. The replicates are drawn from ``numpy.random.default_rng(seed)``: the same scores and seed give the same
intervals.

Written here rather than called from rliable because rliable takes a runs × tasks matrix (every task the same number
of episodes) and pins old ``arch`` releases; where it can take the scores, the two agree
(``tests/evaluation/test_evaluation_statistics_rliable.py``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
from scipy.stats import trim_mean

DEFAULT_REPS = 2000
DEFAULT_CONFIDENCE = 0.95
OPTIMALITY_GAMMA = 1.0  # the expert's score: the optimality gap counts shortfalls below it
AGGREGATES = ("iqm", "median", "mean", "optimality_gap")

# A statistic of a list of per-task score arrays; batched over bootstrap replicates: arrays of shape (reps, n_t).
Statistic = Callable[[Sequence[np.ndarray]], np.ndarray]


def iqm(scores: Sequence[np.ndarray]) -> np.ndarray:
    """Interquartile mean of the pooled episode scores; ``scores[t]`` is ``(..., n_t)``, the result ``(...)``."""
    return trim_mean(np.concatenate(scores, axis=-1), 0.25, axis=-1)


def median_of_means(scores: Sequence[np.ndarray]) -> np.ndarray:
    """Median over tasks of each task's mean score."""
    return np.median(np.stack([s.mean(axis=-1) for s in scores], axis=-1), axis=-1)


def mean_of_means(scores: Sequence[np.ndarray]) -> np.ndarray:
    """Mean over tasks of each task's mean score."""
    return np.stack([s.mean(axis=-1) for s in scores], axis=-1).mean(axis=-1)


def optimality_gap(scores: Sequence[np.ndarray], gamma: float = OPTIMALITY_GAMMA) -> np.ndarray:
    """``gamma − mean over tasks of mean(min(score, gamma))``: 0 when every episode reaches the expert."""
    return gamma - np.stack([np.minimum(s, gamma).mean(axis=-1) for s in scores], axis=-1).mean(axis=-1)


STATISTICS: dict[str, Statistic] = {
    "iqm": iqm,
    "median": median_of_means,
    "mean": mean_of_means,
    "optimality_gap": optimality_gap,
}


def _check(scores: Sequence[Any]) -> list[np.ndarray]:
    arrays = [np.asarray(s, dtype=np.float64).reshape(-1) for s in scores]
    if not arrays:
        raise ValueError("scores: expected at least one task's episode scores, got none")
    for index, array in enumerate(arrays):
        if array.size == 0:
            raise ValueError(f"scores[{index}]: expected at least one episode score, got none")
        if not np.isfinite(array).all():
            raise ValueError(f"scores[{index}]: expected finite scores, got NaN or inf")
    return arrays


def stratified_bootstrap(
    scores: Sequence[Any], statistic: Statistic, reps: int = DEFAULT_REPS, seed: int = 0
) -> np.ndarray:
    """``(reps,)`` values of ``statistic`` on replicates that resample every task's episodes with replacement."""
    arrays = _check(scores)
    if reps < 1:
        raise ValueError(f"reps: expected ≥ 1, got {reps}")
    rng = np.random.default_rng(seed)
    resampled = [array[rng.integers(0, array.size, size=(reps, array.size))] for array in arrays]
    return np.asarray(statistic(resampled), dtype=np.float64).reshape(reps)


def interval(
    scores: Sequence[Any],
    statistic: Statistic,
    reps: int = DEFAULT_REPS,
    confidence: float = DEFAULT_CONFIDENCE,
    seed: int = 0,
) -> dict[str, float]:
    """``{"value", "low", "high"}``: the statistic of the scores and its stratified-bootstrap percentile interval."""
    if not 0 < confidence < 1:
        raise ValueError(f"confidence: expected a level in (0, 1), got {confidence}")
    arrays = _check(scores)
    replicates = stratified_bootstrap(arrays, statistic, reps, seed)
    tail = 100 * (1 - confidence) / 2
    low, high = np.percentile(replicates, [tail, 100 - tail])
    return {"value": float(statistic(arrays)), "low": float(low), "high": float(high)}


def aggregate_intervals(
    scores: Sequence[Any], reps: int = DEFAULT_REPS, confidence: float = DEFAULT_CONFIDENCE, seed: int = 0
) -> dict[str, Any]:
    """IQM, median, mean and optimality gap of per-task episode scores, each with its interval (module docstring)."""
    arrays = _check(scores)
    summary: dict[str, Any] = {name: interval(arrays, STATISTICS[name], reps, confidence, seed) for name in AGGREGATES}
    summary["tasks"] = len(arrays)
    summary["episodes"] = int(sum(array.size for array in arrays))
    return summary


def performance_profile(
    scores: Sequence[Any],
    thresholds: np.ndarray,
    reps: int = DEFAULT_REPS,
    confidence: float = DEFAULT_CONFIDENCE,
    seed: int = 0,
) -> dict[str, list[float]]:
    """The fraction of episode scores above each threshold (mean over tasks of each task's fraction), with intervals.

    Returns ``{"thresholds", "fraction", "low", "high"}`` as lists of ``len(thresholds)`` floats.
    """
    arrays = _check(scores)
    taus = np.asarray(thresholds, dtype=np.float64).reshape(-1)

    def above(batch: Sequence[np.ndarray]) -> np.ndarray:  # (..., n_t) per task → (..., thresholds)
        return np.stack([(s[..., None] > taus).mean(axis=-2) for s in batch], axis=-1).mean(axis=-1)

    rng = np.random.default_rng(seed)
    replicates = above([a[rng.integers(0, a.size, size=(reps, a.size))] for a in arrays])  # (reps, thresholds)
    tail = 100 * (1 - confidence) / 2
    low, high = np.percentile(replicates, [tail, 100 - tail], axis=0)
    return {
        "thresholds": taus.tolist(),
        "fraction": above(arrays).tolist(),
        "low": low.tolist(),
        "high": high.tolist(),
    }


def episode_scores(task: Mapping[str, Any]) -> np.ndarray | None:
    """A task result's (``eval_results.json``) per-episode expert-normalized scores; None without reference returns."""
    expert, random = task.get("expert_return"), task.get("random_return")
    if expert is None or random is None or expert == random or not task.get("returns"):
        return None
    return (np.asarray(task["returns"], dtype=np.float64) - random) / (expert - random)


def score_statistics(
    task_results: Sequence[Mapping[str, Any]],
    reps: int = DEFAULT_REPS,
    confidence: float = DEFAULT_CONFIDENCE,
    seed: int = 0,
) -> dict[str, Any] | None:
    """The ``statistics`` entry of ``eval_results.json``: aggregates with intervals over all scored tasks and per
    domain, the performance profile, and how they were computed; None when no task has a score."""
    scored = [(task["domain"], scores) for task in task_results if (scores := episode_scores(task)) is not None]
    if not scored:
        return None
    domains: dict[str, list[np.ndarray]] = {}
    for domain, scores in scored:
        domains.setdefault(domain, []).append(scores)
    all_scores = [scores for _, scores in scored]
    top = max(1.0, float(np.ceil(max(s.max() for s in all_scores) * 10) / 10))
    return {
        "method": "stratified bootstrap over each task's episodes, percentile interval (Agarwal et al. 2021)",
        "reps": reps,
        "confidence": confidence,
        "seed": seed,
        "all": aggregate_intervals(all_scores, reps, confidence, seed),
        "domains": {name: aggregate_intervals(domains[name], reps, confidence, seed) for name in sorted(domains)},
        "performance_profile": performance_profile(all_scores, np.linspace(0.0, top, 21), reps, confidence, seed),
    }


__all__ = [
    "AGGREGATES",
    "aggregate_intervals",
    "episode_scores",
    "interval",
    "iqm",
    "mean_of_means",
    "median_of_means",
    "optimality_gap",
    "performance_profile",
    "score_statistics",
    "stratified_bootstrap",
]
