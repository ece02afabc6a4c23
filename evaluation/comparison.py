"""Two evaluations of the same tasks side by side (``gato compare BASELINE CANDIDATE``): is the candidate better,
task by task, per domain and over all tasks, with the statistics of Agarwal et al. (2021) that ``gato eval``
already reports for one model (:mod:`gato.evaluation.statistics`):

- the **difference of interquartile means** (candidate − baseline) with a stratified-bootstrap interval;
- the **probability of improvement** (rliable's ``probability_of_improvement``): for each task, the chance that an
  episode of the candidate scores above one of the baseline (ties count half: the Mann–Whitney U statistic over all
  pairs of episodes), averaged over the tasks, with its interval;
- per task, the two mean normalized scores, their difference with its interval (none when a side has a single
  episode) and the probability of improvement (without an interval).

Only the tasks both evaluations scored are compared, so the IQMs here can differ from each ``gato eval``'s own. The
two sides must normalize a task with the same expert and random returns (else the comparison is refused).

**Paired episodes.** ``gato eval`` records each episode's reset seed: when a task's two evaluations played the same
seeds (the same ``--seed`` and ``--episodes``), episode *i* of both started from the same state, and the bootstrap
resamples those pairs together (tighter intervals, as a paired test); otherwise each side's episodes are resampled
on their own. The table says which tasks were paired.

Both sides' scores are the expert-normalized episode scores of ``eval_results.json``
(:func:`gato.evaluation.statistics.episode_scores`); a task is compared when both evaluations scored it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from scipy.stats import rankdata

from .report import RESULTS_FILE, check_results, markdown_table
from .statistics import DEFAULT_CONFIDENCE, DEFAULT_REPS, episode_scores, iqm

THRESHOLD = 0.5  # the bar: a task counts when its mean normalized score reaches half the expert's


def probability_of_improvement(candidate: Sequence[np.ndarray], baseline: Sequence[np.ndarray]) -> np.ndarray:
    """P(candidate episode > baseline episode) + ½ P(tie) per task over all pairs of episodes, averaged over the
    tasks; batched like the statistics of :mod:`~gato.evaluation.statistics` (arrays ``(..., n_t)``)."""
    return np.mean([_task_improvement(x, y) for x, y in zip(candidate, baseline, strict=True)], axis=0)


def _task_improvement(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Mann–Whitney ``U / (n·m)`` from the mid-ranks of the pooled episodes: the fraction of pairs the candidate
    wins, ties half, in ``O((n + m) log(n + m))`` memory and time instead of the ``n·m`` pairs (a bootstrap of 2,000
    replicates over 500 episodes a side would hold 4 GB of pairs)."""
    n, m = x.shape[-1], y.shape[-1]
    ranks = rankdata(np.concatenate([x, y], axis=-1), axis=-1)  # ties take the mean of their ranks
    return (ranks[..., :n].sum(axis=-1) - n * (n + 1) / 2) / (n * m)


def _iqm_difference(candidate: Sequence[np.ndarray], baseline: Sequence[np.ndarray]) -> np.ndarray:
    return iqm(candidate) - iqm(baseline)


def _mean_difference(candidate: Sequence[np.ndarray], baseline: Sequence[np.ndarray]) -> np.ndarray:
    return np.mean([x.mean(axis=-1) - y.mean(axis=-1) for x, y in zip(candidate, baseline, strict=True)], axis=0)


def _seed_order(candidate: Mapping[str, Any], baseline: Mapping[str, Any]) -> np.ndarray | None:
    """The candidate's episode indices in the order of the baseline's seeds when both played the same seeds, one
    episode each (pairs are matched by seed, not by position: the order episodes finish in may differ); else None."""
    seeds, reference = candidate.get("seeds") or [], baseline.get("seeds") or []
    if (
        len(seeds) != len(candidate["returns"])
        or len(reference) != len(baseline["returns"])
        or len(set(seeds)) != len(seeds)
        or sorted(seeds) != sorted(reference)
        or not seeds
    ):
        return None
    index = {seed: position for position, seed in enumerate(seeds)}
    return np.asarray([index[seed] for seed in reference])


def _bootstrap(
    pairs: Sequence[tuple[np.ndarray, np.ndarray, bool]],
    statistic: Any,
    reps: int,
    confidence: float,
    seed: int,
) -> dict[str, float]:
    """``{"value", "low", "high"}`` of ``statistic(candidate scores, baseline scores)``: every task's episodes
    resampled with replacement, a paired task's two sides with the same indices (module docstring)."""
    rng = np.random.default_rng(seed)
    candidate_reps, baseline_reps = [], []
    for x, y, paired in pairs:
        x_index = rng.integers(0, x.size, size=(reps, x.size))
        y_index = x_index if paired else rng.integers(0, y.size, size=(reps, y.size))
        candidate_reps.append(x[x_index])
        baseline_reps.append(y[y_index])
    replicates = np.asarray(statistic(candidate_reps, baseline_reps), dtype=np.float64).reshape(reps)
    tail = 100 * (1 - confidence) / 2
    low, high = np.percentile(replicates, [tail, 100 - tail])
    value = statistic([x for x, _, _ in pairs], [y for _, y, _ in pairs])
    return {"value": float(value), "low": float(low), "high": float(high)}


def _group(
    name: str, pairs: Sequence[tuple[np.ndarray, np.ndarray, bool]], reps: int, confidence: float, seed: int
) -> dict[str, Any]:
    candidate, baseline = [x for x, _, _ in pairs], [y for _, y, _ in pairs]
    return {
        "group": name,
        "tasks": len(pairs),
        "baseline_iqm": float(iqm(baseline)),
        "candidate_iqm": float(iqm(candidate)),
        "iqm_difference": _bootstrap(pairs, _iqm_difference, reps, confidence, seed),
        "probability_of_improvement": _bootstrap(pairs, probability_of_improvement, reps, confidence, seed),
        "baseline_tasks_above": sum(float(y.mean()) >= THRESHOLD for y in baseline),
        "candidate_tasks_above": sum(float(x.mean()) >= THRESHOLD for x in candidate),
    }


def compare_results(
    baseline: Mapping[str, Any],
    candidate: Mapping[str, Any],
    reps: int = DEFAULT_REPS,
    confidence: float = DEFAULT_CONFIDENCE,
    seed: int = 0,
) -> dict[str, Any]:
    """The comparison of two ``eval_results.json`` contents (module docstring): ``tasks`` (one row per task both
    scored, in the baseline's order), ``groups`` (per domain, then ``all``), the tasks only one side scored, and how
    the intervals were computed.

    Raises:
        ValueError: when no task is scored by both evaluations, or a task's two evaluations normalize with other
            expert or random returns (their scores would not be on one scale).
    """
    scored = {task["task"]: task for task in candidate["tasks"] if episode_scores(task) is not None}
    rows, pairs_by_domain = [], {}
    for base in baseline["tasks"]:
        cand = scored.get(base["task"])
        y = episode_scores(base)
        if cand is None or y is None:
            continue
        for field in ("expert_return", "random_return"):
            if not np.isclose(cand[field], base[field]):
                raise ValueError(
                    f"{base['task']}: the baseline's {field} is {base[field]}, the candidate's {cand[field]} "
                    "(expected the same references on both sides: evaluate both with one version of the suite)"
                )
        x = episode_scores(cand)
        order = _seed_order(cand, base)
        paired = order is not None
        pair = (x[order] if paired else x, y, paired)
        pairs_by_domain.setdefault(base["domain"], []).append(pair)
        rows.append(
            {
                "task": base["task"],
                "domain": base["domain"],
                "paired": paired,
                "baseline": float(y.mean()),
                "candidate": float(x.mean()),
                # One episode resamples to itself: a zero-width interval that would look certain.
                "difference": _bootstrap([pair], _mean_difference, reps, confidence, seed)
                if min(x.size, y.size) > 1
                else {"value": float(x.mean() - y.mean()), "low": None, "high": None},
                "probability_of_improvement": float(probability_of_improvement([x], [y])),
            }
        )
    if not rows:
        raise ValueError(
            f"{baseline.get('model')} and {candidate.get('model')}: no task is scored by both (a score needs the "
            "task's returns and its expert and random returns; baseline's tasks: "
            f"{', '.join(task['task'] for task in baseline['tasks']) or 'none'}; candidate's: "
            f"{', '.join(task['task'] for task in candidate['tasks']) or 'none'})"
        )
    compared = {row["task"] for row in rows}
    all_pairs = [pair for pairs in pairs_by_domain.values() for pair in pairs]
    groups = [_group(name, pairs_by_domain[name], reps, confidence, seed) for name in sorted(pairs_by_domain)]
    return {
        "baseline": baseline.get("model"),
        "candidate": candidate.get("model"),
        "method": "stratified bootstrap over each task's episodes (paired where both played the same seeds), "
        "percentile interval (Agarwal et al. 2021)",
        "reps": reps,
        "confidence": confidence,
        "seed": seed,
        "tasks": rows,
        "groups": [*groups, _group("all", all_pairs, reps, confidence, seed)],
        "only_baseline": [task["task"] for task in baseline["tasks"] if task["task"] not in compared],
        "only_candidate": [task["task"] for task in candidate["tasks"] if task["task"] not in compared],
    }


def read_results(path: str | Path) -> dict[str, Any]:
    """``eval_results.json`` of a folder (a model or results folder) or the file itself, checked; errors name the
    path and what was expected."""
    path = Path(path)
    file = path / RESULTS_FILE if path.is_dir() else path
    if not file.is_file():
        raise ValueError(
            f"{path}: no {RESULTS_FILE} (expected a folder evaluated by `gato eval`, or its results file)"
        )
    try:
        results = json.loads(file.read_text(encoding="utf-8"))
    except OSError as error:
        raise ValueError(f"{file}: cannot be read ({error.strerror})") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(
            f"{file}: not JSON ({error}) (expected an eval_results.json written by `gato eval`)"
        ) from None
    check_results(results, file)
    for index, task in enumerate(results["tasks"]):
        _check_task(task, f"{file}: tasks[{index}] ({task['task']})")
    if results.get("model") in (None, "", "."):  # evaluated in place (`gato eval --model .`): name its folder
        results = {**results, "model": str(file.parent)}
    return results


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and np.isfinite(value)


def _check_task(task: Mapping[str, Any], where: str) -> None:
    """Refuse, naming the field, what the comparison would misread: returns that are not finite numbers,
    references that are not numbers, seeds that are not integers."""
    for name in ("expert_return", "random_return"):
        if task[name] is not None and not _finite(task[name]):
            raise ValueError(f"{where}.{name}: expected a finite number or null, got {task[name]!r}")
    returns = task.get("returns")
    if returns is not None and (not isinstance(returns, list) or not all(_finite(value) for value in returns)):
        raise ValueError(f"{where}.returns: expected a list of finite numbers, got {str(returns)[:80]}")
    seeds = task.get("seeds")
    if seeds is not None and (
        not isinstance(seeds, list) or not all(isinstance(seed, int) and not isinstance(seed, bool) for seed in seeds)
    ):
        raise ValueError(
            f"{where}.seeds: expected a list of integers (the episodes' reset seeds), got {str(seeds)[:80]}"
        )


def _percent(value: float) -> str:
    return f"{100 * value:.0f}%"


def _points(estimate: Mapping[str, float]) -> str:
    """A difference in percentage points with its interval (``[—]`` without one), signed."""
    if estimate["low"] is None:
        return f"{100 * estimate['value']:+.0f} [—]"
    return f"{100 * estimate['value']:+.0f} [{100 * estimate['low']:+.0f}, {100 * estimate['high']:+.0f}]"


def _probability(estimate: Mapping[str, float]) -> str:
    return f"{estimate['value']:.2f} [{estimate['low']:.2f}, {estimate['high']:.2f}]"


def markdown_comparison(
    comparison: Mapping[str, Any], baseline: str = "baseline", candidate: str = "candidate"
) -> str:
    """The comparison as markdown: per domain and over all, then per task, and a note on the statistics."""
    group_rows = [
        [
            group["group"],
            str(group["tasks"]),
            _percent(group["baseline_iqm"]),
            _percent(group["candidate_iqm"]),
            _points(group["iqm_difference"]),
            _probability(group["probability_of_improvement"]),
            f"{group['baseline_tasks_above']} → {group['candidate_tasks_above']}",
        ]
        for group in comparison["groups"]
    ]
    task_rows = [
        [
            row["task"],
            row["domain"],
            _percent(row["baseline"]),
            _percent(row["candidate"]),
            _points(row["difference"]),
            f"{row['probability_of_improvement']:.2f}",
            "yes" if row["paired"] else "no",
        ]
        for row in comparison["tasks"]
    ]
    level = f"{100 * comparison['confidence']:.0f}%"
    parts = [
        markdown_table(
            [
                "domain",
                "tasks",
                f"IQM {baseline}",
                f"IQM {candidate}",
                "IQM difference (points)",
                "P(improvement)",
                "tasks ≥ 50%",
            ],
            group_rows,
        ),
        markdown_table(
            ["task", "domain", baseline, candidate, "difference (points)", "P(improvement)", "paired"], task_rows
        ),
        f"Expert-normalized episode scores; {baseline}: {comparison['baseline']}, {candidate}: "
        f"{comparison['candidate']}. [brackets]: {level} stratified-bootstrap intervals ({comparison['reps']} "
        f"replicates, seed {comparison['seed']}), resampling the two sides' episodes together where both played the "
        "same seeds (paired). P(improvement): the chance that an episode of the "
        f"{candidate} scores above one of the {baseline} (ties half), averaged over the tasks (Agarwal et al. 2021, "
        "https://arxiv.org/abs/2108.13264).",
    ]
    only = [
        f"only the {side}: {', '.join(comparison[key])}"
        for side, key in ((baseline, "only_baseline"), (candidate, "only_candidate"))
        if comparison[key]
    ]
    if only:
        parts.append("Not compared (scored by one side): " + "; ".join(only) + ".")
    return "\n\n".join(parts) + "\n"


__all__ = ["compare_results", "markdown_comparison", "probability_of_improvement", "read_results"]
