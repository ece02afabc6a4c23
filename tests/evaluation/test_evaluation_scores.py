"""Expert-normalized score arithmetic and its aggregates."""

import math

import numpy as np
import pytest
from gato.evaluation.scores import domain_summaries, normalized_scores, score_summary
from gato.suite.registry import get_task, normalized_score


def test_normalized_score_is_zero_at_random_and_one_at_expert():
    scores = normalized_scores([10.0, 110.0, 60.0, -40.0], [110.0] * 4, [10.0] * 4)
    np.testing.assert_allclose(scores, [0.0, 1.0, 0.5, -0.5])


def test_negative_returns_normalize_the_same_way():
    # acrobot-like: random -500, expert -80; a return of -290 is half way.
    assert normalized_scores([-290.0], [-80.0], [-500.0])[0] == pytest.approx(0.5)


def test_missing_or_equal_reference_returns_give_nan_not_an_error():
    scores = normalized_scores([1.0, 1.0, 1.0], [math.nan, 2.0, 5.0], [0.0, 2.0, 0.0])
    assert math.isnan(scores[0]) and math.isnan(scores[1]) and scores[2] == pytest.approx(0.2)


def test_vectorized_scores_match_the_registry_formula_on_real_tasks():
    tasks = [get_task(name) for name in ("cartpole", "pendulum", "acrobot")]
    returns = [50.0, -600.0, -200.0]
    expected = [normalized_score(r, t.expert_return, t.random_return) for r, t in zip(returns, tasks)]
    got = normalized_scores(returns, [t.expert_return for t in tasks], [t.random_return for t in tasks])
    np.testing.assert_allclose(got, expected)


def test_summary_counts_tasks_at_or_above_half_of_expert_among_scored_tasks():
    summary = score_summary([0.5, 0.49, 1.2, None, float("nan"), -0.1])
    assert summary["tasks"] == 6 and summary["tasks_scored"] == 4
    assert summary["tasks_above_threshold"] == 2 and summary["fraction_above_threshold"] == pytest.approx(0.5)
    assert summary["mean_normalized_score"] == pytest.approx((0.5 + 0.49 + 1.2 - 0.1) / 4)
    assert summary["median_normalized_score"] == pytest.approx(0.495)


def test_summary_without_scores_has_null_means():
    summary = score_summary([None])
    assert (
        summary["tasks_scored"] == 0
        and summary["mean_normalized_score"] is None
        and summary["fraction_above_threshold"] is None
    )


def test_domain_summaries_group_by_domain():
    results = [
        {"domain": "classic_control", "normalized_score": 1.0},
        {"domain": "classic_control", "normalized_score": 0.0},
        {"domain": "atari", "normalized_score": 0.8},
    ]
    domains = domain_summaries(results)
    assert list(domains) == ["atari", "classic_control"]
    assert domains["classic_control"]["mean_normalized_score"] == pytest.approx(0.5)
    assert (
        domains["classic_control"]["tasks_above_threshold"] == 1
        and domains["atari"]["fraction_above_threshold"] == 1.0
    )


def test_mismatched_shapes_are_refused_naming_the_arguments():
    with pytest.raises(ValueError, match="expert_returns"):
        normalized_scores([1.0, 2.0], [1.0], [0.0])


def test_the_score_plot_names_the_model_folder_without_the_machine_path():
    from gato.evaluation.report import score_plot_title

    title = score_plot_title({"model": "/home/someone/runs/multitask", "episodes_per_task": 20})
    assert title == "multitask: 20 episodes per task"
