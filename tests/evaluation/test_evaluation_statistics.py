"""Aggregate statistics with stratified-bootstrap intervals (`evaluation/statistics.py`) and their tables and plot
(`evaluation/report.py`)."""

from __future__ import annotations

import numpy as np
import pytest
from gato.evaluation import statistics as st
from gato.evaluation.report import PROFILE_FILE, markdown_report, statistics_rows, write_results


def test_point_estimates_match_their_definitions_by_hand():
    # Two tasks of four episodes: pooled scores 0.0 … 0.7 and 1.0 … 1.6.
    scores = [np.array([0.0, 0.1, 0.2, 0.3]), np.array([1.0, 1.2, 1.4, 1.6])]
    pooled = np.sort(np.concatenate(scores))
    assert st.iqm(scores) == pytest.approx(pooled[2:6].mean())  # the middle 50% of 8 scores
    assert st.mean_of_means(scores) == pytest.approx((0.15 + 1.3) / 2)
    assert st.median_of_means([*scores, np.array([0.5])]) == pytest.approx(0.5)
    # Scores above the expert's do not make up for the others: 1 − mean(min(s, 1)) per task, then over tasks.
    assert st.optimality_gap(scores) == pytest.approx(1 - (0.15 + 1.0) / 2)


def test_iqm_is_robust_to_one_outlying_episode_where_the_mean_is_not():
    scores = [np.array([0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 50.0])]
    assert st.iqm(scores) == pytest.approx(0.5)
    assert st.mean_of_means(scores) > 6


def test_bootstrap_resamples_within_each_task_and_is_seeded():
    seen_sizes = []

    def record(batch):
        seen_sizes.append([b.shape for b in batch])
        return st.mean_of_means(batch)

    scores = [np.arange(3.0), np.arange(7.0)]
    replicates = st.stratified_bootstrap(scores, record, reps=50, seed=3)
    assert seen_sizes == [[(50, 3), (50, 7)]]  # every replicate keeps every task and its episode count
    np.testing.assert_array_equal(replicates, st.stratified_bootstrap(scores, st.mean_of_means, reps=50, seed=3))
    assert not np.array_equal(replicates, st.stratified_bootstrap(scores, st.mean_of_means, reps=50, seed=4))


def test_constant_scores_have_a_zero_width_interval_and_noisy_ones_cover_the_truth():
    constant = st.interval([np.full(5, 0.7), np.full(3, 0.7)], st.mean_of_means, reps=200)
    assert constant == pytest.approx({"value": 0.7, "low": 0.7, "high": 0.7})
    rng = np.random.default_rng(0)
    scores = [rng.normal(0.6, 0.2, 400)]
    estimate = st.interval(scores, st.mean_of_means, reps=2000)
    # The percentile interval of a mean of 400 draws: about ±1.96·σ/√n = ±0.0196 around the sample mean.
    assert estimate["low"] < estimate["value"] < estimate["high"]
    assert estimate["high"] - estimate["low"] == pytest.approx(2 * 1.96 * 0.2 / 20, rel=0.15)
    assert estimate["low"] < 0.6 < estimate["high"]


def test_performance_profile_falls_from_one_to_zero_with_its_band():
    scores = [np.array([0.1, 0.4, 0.9]), np.array([0.2, 0.6, 1.2])]
    profile = st.performance_profile(scores, np.array([-1.0, 0.5, 2.0]), reps=100)
    assert profile["fraction"] == pytest.approx([1.0, (1 / 3 + 2 / 3) / 2, 0.0])
    assert all(low <= value <= high for low, value, high in zip(profile["low"], profile["fraction"], profile["high"]))


@pytest.mark.parametrize(
    ("scores", "named"),
    [
        ([], "at least one task"),
        ([np.array([])], "scores[0]"),
        ([np.ones(2), np.array([0.1, np.nan])], "scores[1]: expected finite"),
    ],
)
def test_bad_scores_are_refused_naming_the_task(scores, named):
    with pytest.raises(ValueError, match=named.replace("[", r"\[").replace("]", r"\]")):
        st.aggregate_intervals(scores, reps=10)


def _task(name, domain, returns, expert=10.0, random=0.0):
    return {
        "task": name,
        "domain": domain,
        "episodes": len(returns),
        "returns": returns,
        "expert_return": expert,
        "random_return": random,
        "normalized_score": (np.mean(returns) - random) / (expert - random),
        "mean_return": float(np.mean(returns)),
        "std_return": float(np.std(returns)),
        "success_rate": None,
        "lengths": [1] * len(returns),
        "seeds": list(range(len(returns))),
    }


def _results(tasks):
    from gato.evaluation.scores import domain_summaries, score_summary

    return {
        "model": "runs/x",
        "episodes_per_task": 4,
        "tasks": tasks,
        "domains": domain_summaries(tasks),
        "summary": score_summary([t["normalized_score"] for t in tasks]),
        "statistics": st.score_statistics(tasks, reps=200, seed=0),
    }


def test_score_statistics_per_domain_and_overall_from_episode_returns():
    tasks = [
        _task("a", "d1", [0.0, 5.0, 10.0, 10.0]),
        _task("b", "d1", [10.0, 10.0, 10.0, 10.0]),
        _task("c", "d2", [2.0, 2.0, 4.0, 4.0]),
        {**_task("u", "d2", [1.0, 2.0]), "expert_return": None},
    ]
    statistics = st.score_statistics(tasks, reps=200, seed=0)
    assert statistics["all"]["tasks"] == 3 and statistics["all"]["episodes"] == 12  # "u" has no reference returns
    assert statistics["domains"]["d1"]["mean"]["value"] == pytest.approx((0.625 + 1.0) / 2)
    assert statistics["domains"]["d2"]["iqm"]["value"] == pytest.approx(0.3)
    assert statistics["reps"] == 200 and statistics["seed"] == 0 and statistics["confidence"] == 0.95
    assert st.score_statistics([{**tasks[3]}]) is None


def test_report_shows_the_statistics_table_and_writes_the_profile_plot(tmp_path):
    results = _results([_task("a", "d1", [0.0, 5.0, 10.0, 10.0]), _task("c", "d2", [2.0, 2.0, 4.0, 4.0])])
    rows = statistics_rows(results)
    assert [row[0] for row in rows] == ["d1", "d2", "all"]
    assert rows[-1][1:3] == ["2", "8"] and rows[1][2:6] == ["4", "30% [20, 40]", "30% [20, 40]", "30% [20, 40]"]
    report = markdown_report(results)
    assert "| domain | tasks | episodes | IQM | median | mean | optimality gap |" in report
    assert "stratified-bootstrap" in report
    assert "GATO_SPEC" not in report and "docs/" not in report  # uploaded beside the model: cites nothing outside it
    paths = write_results(results, tmp_path)
    assert paths["profile"] == tmp_path / PROFILE_FILE and (tmp_path / PROFILE_FILE).read_bytes()[:4] == b"\x89PNG"
    # Results without statistics (written before they existed) still report, with neither table nor profile.
    old = {**results, "statistics": None}
    assert statistics_rows(old) == [] and "IQM" not in markdown_report(old)
    assert "profile" not in write_results(old, tmp_path / "old")


def test_tables_printed_to_a_log_or_a_pipe_keep_every_cell_whole(capsys, monkeypatch):
    # Under pytest stdout is no terminal, as in `gato eval ... > eval.log`: rich would lay out 80 columns and cut.
    from gato.evaluation.report import print_results

    monkeypatch.delenv("COLUMNS", raising=False)
    results = _results([_task("babyai_rgb_put_next_local", "babyai_rgb", [0.0, 5.0, 10.0, 10.0])])
    print_results({**results, "captions": None, "captions_test": None, "text": None})
    printed = capsys.readouterr().out
    assert "…" not in printed
    for cell in ("babyai_rgb_put_next_local", "normalized", "optimality gap", "62% [25, 100]"):
        assert cell in printed, cell
