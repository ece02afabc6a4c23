"""Two evaluations side by side (`evaluation/comparison.py`, `gato compare`): differences and the probability of
improvement with bootstrap intervals, episodes paired by their seeds."""

from __future__ import annotations

import json

import numpy as np
import pytest
from gato.evaluation.comparison import compare_results, markdown_comparison, probability_of_improvement, read_results

from gato.cli import main


def _task(name: str, domain: str, scores, seeds=None) -> dict:
    """A task of ``gato eval`` results whose expert scores 1 and random 0 (returns are the normalized scores)."""
    returns = [float(score) for score in scores]
    return {
        "task": name,
        "domain": domain,
        "episodes": len(returns),
        "returns": returns,
        "seeds": list(range(len(returns))) if seeds is None else list(seeds),
        "mean_return": float(np.mean(returns)),
        "std_return": float(np.std(returns)),
        "expert_return": 1.0,
        "random_return": 0.0,
        "normalized_score": float(np.mean(returns)),
        "success_rate": None,
    }


def _results(*tasks, model: str = "model") -> dict:
    summary = {
        "tasks": len(tasks),
        "tasks_scored": len(tasks),
        "mean_normalized_score": 0.0,
        "median_normalized_score": 0.0,
        "tasks_above_threshold": 0,
        "fraction_above_threshold": 0.0,
    }
    return {
        "model": model,
        "episodes_per_task": len(tasks[0]["returns"]) if tasks else 0,
        "tasks": list(tasks),
        "domains": {task["domain"]: summary for task in tasks},
        "summary": summary,
    }


def test_probability_of_improvement_counts_pairs_of_episodes_with_ties_as_half():
    # 1 < 2 (0), 2 = 2 (½), 3 > 2 (1), against both baseline episodes: (0 + ½ + 1) / 3.
    assert probability_of_improvement([np.array([1.0, 2.0, 3.0])], [np.array([2.0, 2.0])]) == pytest.approx(0.5)
    # Averaged over tasks: one task always better (1), one always worse (0).
    two_tasks = probability_of_improvement([np.array([3.0, 4.0]), np.array([0.0])], [np.array([1.0, 2.0]), np.ones(3)])
    assert two_tasks == pytest.approx(0.5)
    assert probability_of_improvement([np.array([3.0, 4.0])], [np.array([1.0, 2.0])]) == pytest.approx(1.0)
    # Batched over replicates, with many ties, sides of different sizes: every pair counted by hand.
    rng = np.random.default_rng(0)
    x, y = rng.integers(0, 4, (6, 9)).astype(float), rng.integers(0, 4, (6, 5)).astype(float)
    by_hand = ((x[:, :, None] > y[:, None, :]) + 0.5 * (x[:, :, None] == y[:, None, :])).mean(axis=(1, 2))
    np.testing.assert_allclose(probability_of_improvement([x], [y]), by_hand)


def test_a_better_candidate_shows_a_positive_difference_whose_interval_excludes_zero():
    rng = np.random.default_rng(0)
    base = _results(_task("a", "d1", rng.uniform(0.0, 0.4, 40)), _task("b", "d2", rng.uniform(0.4, 0.8, 40)))
    cand = _results(_task("a", "d1", rng.uniform(0.6, 1.0, 40)), _task("b", "d2", rng.uniform(0.4, 0.8, 40)))
    comparison = compare_results(base, cand, reps=500)
    rows = {row["task"]: row for row in comparison["tasks"]}
    assert rows["a"]["difference"]["low"] > 0.2 and rows["a"]["probability_of_improvement"] == pytest.approx(1.0)
    assert rows["b"]["difference"]["low"] < 0 < rows["b"]["difference"]["high"]  # same distribution: no change
    groups = {group["group"]: group for group in comparison["groups"]}
    assert [group["group"] for group in comparison["groups"]] == ["d1", "d2", "all"]
    assert groups["all"]["iqm_difference"]["low"] > 0
    assert groups["d1"]["probability_of_improvement"]["value"] == pytest.approx(1.0)
    assert (groups["all"]["baseline_tasks_above"], groups["all"]["candidate_tasks_above"]) == (1, 2)
    text = markdown_comparison(comparison, "old", "new")
    assert "| all | 2 |" in text and "1 → 2" in text and "| IQM old | IQM new |" in text


def test_episodes_played_from_the_same_seeds_are_paired_by_seed_whatever_their_order():
    rng = np.random.default_rng(1)
    baseline_scores = rng.uniform(0.0, 1.0, 30)
    seeds = rng.permutation(1000)[:30]
    shuffle = rng.permutation(30)
    # The candidate scores exactly 0.1 more than the baseline on every starting state, its episodes listed in
    # another order: paired by seed, the difference is 0.1 in every bootstrap replicate.
    base = _results(_task("a", "d", baseline_scores, seeds))
    cand = _results(_task("a", "d", baseline_scores[shuffle] + 0.1, seeds[shuffle]))
    row = compare_results(base, cand, reps=300)["tasks"][0]
    assert row["paired"] is True
    assert row["difference"] == pytest.approx({"value": 0.1, "low": 0.1, "high": 0.1})
    # Other seeds: resampled independently, the same shift comes with a wide interval.
    other = _results(_task("a", "d", baseline_scores[shuffle] + 0.1, seeds[shuffle] + 5000))
    unpaired = compare_results(base, other, reps=300)["tasks"][0]
    assert unpaired["paired"] is False
    assert unpaired["difference"]["high"] - unpaired["difference"]["low"] > 0.1
    # Identical scores from other seeds: the two sides are resampled on their own, so the interval is not a point.
    same_scores = compare_results(base, _results(_task("a", "d", baseline_scores, seeds + 5000)), reps=300)
    assert same_scores["tasks"][0]["difference"]["low"] < -0.02 < 0.02 < same_scores["tasks"][0]["difference"]["high"]


def test_a_side_with_one_episode_gets_no_interval_rather_than_a_certain_looking_one():
    comparison = compare_results(_results(_task("a", "d", [0.2])), _results(_task("a", "d", [0.7, 0.9])), reps=50)
    assert comparison["tasks"][0]["difference"] == pytest.approx({"value": 0.6, "low": None, "high": None})
    assert "| a | d | 20% | 80% | +60 [—] |" in markdown_comparison(comparison)


def test_scores_normalized_with_other_references_are_refused_naming_the_task():
    other = _task("a", "d", [0.5, 0.5])
    other["expert_return"] = 2.0
    with pytest.raises(ValueError, match=r"a: the baseline's expert_return is 1.0, the candidate's 2.0"):
        compare_results(_results(_task("a", "d", [0.5, 0.5])), _results(other))


def test_tasks_scored_by_one_side_only_are_named_and_no_common_task_is_refused():
    base = _results(_task("a", "d", [0.1, 0.2]), _task("b", "d", [0.5, 0.6]))
    cand = _results(_task("a", "d", [0.3, 0.4]), _task("c", "d", [0.5, 0.6]))
    comparison = compare_results(base, cand, reps=50)
    assert [row["task"] for row in comparison["tasks"]] == ["a"]
    assert (comparison["only_baseline"], comparison["only_candidate"]) == (["b"], ["c"])
    assert "only the baseline: b; only the candidate: c" in markdown_comparison(comparison)
    with pytest.raises(ValueError, match=r"no task is scored by both .*baseline's tasks: b; candidate's: c\)"):
        compare_results(_results(_task("b", "d", [0.1])), _results(_task("c", "d", [0.1])))


def test_read_results_names_the_path_and_what_it_expected(tmp_path):
    with pytest.raises(ValueError, match=rf"{tmp_path}: no eval_results.json \(expected a folder evaluated"):
        read_results(tmp_path)
    (tmp_path / "eval_results.json").write_text("{not json")
    with pytest.raises(ValueError, match=r"eval_results.json: not JSON"):
        read_results(tmp_path)
    (tmp_path / "eval_results.json").write_text(json.dumps({"tasks": []}))
    with pytest.raises(ValueError, match=r"no 'episodes_per_task' field"):
        read_results(tmp_path / "eval_results.json")
    for field, value, expected in [
        ("returns", [1.0, None], r"tasks\[0\] \(a\)\.returns: expected a list of finite numbers"),
        ("returns", "abc", r"tasks\[0\] \(a\)\.returns: expected a list of finite numbers"),
        ("expert_return", "1", r"tasks\[0\] \(a\)\.expert_return: expected a finite number or null"),
        ("seeds", [1, None], r"tasks\[0\] \(a\)\.seeds: expected a list of integers"),
    ]:
        task = _task("a", "d", [0.5, 0.5])
        task[field] = value
        (tmp_path / "eval_results.json").write_text(json.dumps(_results(task)))
        with pytest.raises(ValueError, match=expected):
            read_results(tmp_path)


def test_results_of_a_folder_evaluated_in_place_are_named_by_their_folder(tmp_path):
    # `gato eval --model .` (as the shipped folder was) records the model as "."; the comparison names the folder.
    (tmp_path / "eval_results.json").write_text(json.dumps(_results(_task("a", "d", [0.5]), model=".")))
    assert read_results(tmp_path)["model"] == str(tmp_path)
    (tmp_path / "eval_results.json").write_text(json.dumps(_results(_task("a", "d", [0.5]), model="runs/x")))
    assert read_results(tmp_path)["model"] == "runs/x"


def test_gato_compare_prints_the_tables_and_writes_them(tmp_path, capsys):
    for name, scores in (("old", [0.1, 0.2, 0.3]), ("new", [0.7, 0.8, 0.9])):
        (tmp_path / name).mkdir()
        (tmp_path / name / "eval_results.json").write_text(json.dumps(_results(_task("a", "d", scores), model=name)))
    out = tmp_path / "cmp"
    status = main(
        [
            "compare",
            str(tmp_path / "old"),
            str(tmp_path / "new"),
            "--labels",
            "old,new",
            "--output-dir",
            str(out),
            "--reps",
            "100",
        ]
    )
    assert status == 0
    printed = capsys.readouterr().out
    assert "| a | d | 20% | 80% | +60 [" in printed
    assert (out / "comparison.md").read_text() in printed
    saved = json.loads((out / "comparison.json").read_text())
    assert saved["tasks"][0]["difference"]["value"] == pytest.approx(0.6) and saved["reps"] == 100


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--labels", "only-one"], "--labels: expected two non-empty names separated by a comma, got 'only-one'"),
        (["--output-dir", "{file}"], "is a file (expected the comparison's folder)"),
    ],
)
def test_gato_compare_refuses_bad_input_in_one_line(tmp_path, capsys, extra, message):
    (tmp_path / "eval_results.json").write_text(json.dumps(_results(_task("a", "d", [0.5]))))
    extra = [part.format(file=tmp_path / "eval_results.json") for part in extra]
    assert main(["compare", str(tmp_path), str(tmp_path), *extra]) == 2
    assert message in capsys.readouterr().err
    assert main(["compare", str(tmp_path / "missing"), str(tmp_path)]) == 2
    assert f"{tmp_path / 'missing'}: no eval_results.json" in capsys.readouterr().err
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "eval_results.json").write_text(json.dumps(_results(_task("b", "d", [0.5]))))
    assert main(["compare", str(tmp_path), str(tmp_path / "other")]) == 2
    assert "no task is scored by both" in capsys.readouterr().err
