"""The statistics of `gato eval` and `gato compare` agree with the field's reference implementation, rliable
(Agarwal et al. 2021), on scores it can take: the same number of episodes for every task (its runs × tasks matrix).

Ours are hand-written because rliable needs that rectangle (a `gato eval` may give tasks different episode counts)
and draws its replicates through `arch`; the point estimates must match to rounding, the 95% intervals to the Monte
Carlo error of two independent bootstraps of 20,000 replicates (about 0.001 here; the tolerance is four times that).
"""

from __future__ import annotations

import numpy as np
import pytest
from gato.evaluation import statistics as st
from gato.evaluation.comparison import probability_of_improvement
from rliable import library as rly
from rliable import metrics

# rliable 1.2 passes arch a numpy RandomState, which arch 7 warns it will stop taking.
pytestmark = pytest.mark.filterwarnings("ignore:random_state is deprecated:FutureWarning")

REPS = 20_000
INTERVAL_TOLERANCE = 0.004

RLIABLE_AGGREGATES = {
    "iqm": metrics.aggregate_iqm,
    "median": metrics.aggregate_median,
    "mean": metrics.aggregate_mean,
    "optimality_gap": metrics.aggregate_optimality_gap,
}


@pytest.fixture(scope="module")
def runs_by_tasks() -> np.ndarray:
    """40 episodes of three unlike tasks: one around 0.2, one skewed low, one at the expert with some above it."""
    rng = np.random.default_rng(3)
    return np.stack(
        [rng.normal(0.2, 0.3, 40), rng.beta(2, 5, 40), np.clip(rng.normal(0.9, 0.2, 40), None, 1.3)], axis=1
    )


def _tasks(matrix: np.ndarray) -> list[np.ndarray]:
    return [matrix[:, task] for task in range(matrix.shape[1])]


def test_aggregates_and_their_intervals_match_rliable(runs_by_tasks):
    ours = st.aggregate_intervals(_tasks(runs_by_tasks), reps=REPS, seed=0)
    point, interval = rly.get_interval_estimates(
        {"model": runs_by_tasks},
        lambda scores: np.array([aggregate(scores) for aggregate in RLIABLE_AGGREGATES.values()]),
        reps=REPS,
        random_state=np.random.RandomState(0),
    )
    for index, name in enumerate(RLIABLE_AGGREGATES):
        assert ours[name]["value"] == pytest.approx(point["model"][index], abs=1e-12), name
        low, high = interval["model"][:, index]
        assert ours[name]["low"] == pytest.approx(low, abs=INTERVAL_TOLERANCE), name
        assert ours[name]["high"] == pytest.approx(high, abs=INTERVAL_TOLERANCE), name


def test_performance_profile_matches_rliables_score_distribution(runs_by_tasks):
    thresholds = np.linspace(0.0, 1.2, 7)
    ours = st.performance_profile(_tasks(runs_by_tasks), thresholds, reps=REPS, seed=0)
    profile, intervals = rly.create_performance_profile({"model": runs_by_tasks}, thresholds, reps=REPS)
    np.testing.assert_allclose(ours["fraction"], profile["model"], atol=1e-12)
    # A fraction of 3 × 40 episodes moves in steps of 1/120, so a percentile of its replicates can land a step off.
    np.testing.assert_allclose(ours["low"], intervals["model"][0], atol=1.5 / 120)
    np.testing.assert_allclose(ours["high"], intervals["model"][1], atol=1.5 / 120)


def test_probability_of_improvement_matches_rliable_with_ties_and_identical_tasks(runs_by_tasks):
    baseline = np.round(runs_by_tasks, 1)  # rounding makes ties between the two sides
    candidate = baseline + np.array([0.2, -0.05, 0.0])  # better, worse, and the very same episodes
    expected = metrics.probability_of_improvement(candidate, baseline)
    assert 0.5 < expected < 1  # the comparison has something to tell apart
    assert probability_of_improvement(_tasks(candidate), _tasks(baseline)) == pytest.approx(expected, abs=1e-12)
    # Sides with different episode counts (rliable's runs_x ≠ runs_y).
    fewer = candidate[:25]
    assert probability_of_improvement(_tasks(fewer), _tasks(baseline)) == pytest.approx(
        metrics.probability_of_improvement(fewer, baseline), abs=1e-12
    )
