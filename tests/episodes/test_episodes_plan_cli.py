"""``gato data generate --plan FILE`` through ``gato.cli.main``: a tiny plan end to end, the task selection, the
flags it takes as overrides and the ones it refuses."""

from __future__ import annotations

import json

import datasets
import pytest
import yaml

from gato.cli import main

PLAN = {
    "episodes_per_task": 2,
    "captions": 10,
    "groups": [
        {"tasks": "cartpole,babyai_goto_red_ball"},
        {"tasks": "pendulum", "episodes_per_task": 1, "action_noise": 0.5},
    ],
}


@pytest.fixture
def plan_file(tmp_path):
    path = tmp_path / "plan.yaml"
    path.write_text(yaml.safe_dump(PLAN))
    return path


def _generate(out, *flags):
    return main(["data", "generate", "--out", str(out), "--no-progress", *flags])


def test_a_tiny_plan_end_to_end(tmp_path, plan_file, capsys):
    out = tmp_path / "data"
    assert _generate(out, "--plan", str(plan_file)) == 0
    printed = capsys.readouterr().out
    collection = datasets.load_from_disk(str(out))
    assert {name: len(split) for name, split in collection.items() if not name.startswith("captions_")} == {
        "cartpole": 2,
        "babyai_goto_red_ball": 2,
        "pendulum": 1,
        "captions": 10,
    }
    assert json.loads((out / "pendulum" / "generation.json").read_text())["action_noise"] == 0.5
    assert json.loads((out / "cartpole" / "generation.json").read_text())["action_noise"] == 0.0
    # Each card records the hand-written call that makes its data again.
    assert "--tasks pendulum --episodes-per-task 1" in (out / "pendulum" / "README.md").read_text()
    assert "--action-noise 0.5" in (out / "pendulum" / "README.md").read_text()
    assert (
        "--tasks cartpole,babyai_goto_red_ball --episodes-per-task 2" in (out / "cartpole" / "README.md").read_text()
    )
    rows = [line.split() for line in printed.splitlines()]
    assert [row[0] for row in rows if row and row[-1] == "generated"] == [
        "cartpole",
        "babyai_goto_red_ball",
        "pendulum",
    ]
    assert "2 generate calls of the plan" in printed
    assert _generate(out, "--plan", str(plan_file)) == 0  # again: every task finished
    rows = [line.split() for line in capsys.readouterr().out.splitlines()]
    assert [row[-1] for row in rows if row and row[0] in ("cartpole", "babyai_goto_red_ball", "pendulum")] == [
        "skipped"
    ] * 3


def test_tasks_selects_among_the_plan_and_captions_text_override_it(tmp_path, plan_file):
    out = tmp_path / "data"
    assert _generate(out, "--plan", str(plan_file), "--tasks", "pendulum", "--captions", "0") == 0
    assert sorted(datasets.load_from_disk(str(out))) == ["pendulum"]
    assert len(datasets.load_from_disk(str(out))["pendulum"]) == 1  # the plan's count for it


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--episodes-per-task", "3"], "--episodes-per-task cannot go with --plan"),
        (["--action-noise", "0.1"], "--action-noise cannot go with --plan"),
        (["--episodes-per-task", "3", "--action-noise", "0"], "--episodes-per-task, --action-noise cannot go with"),
        (["--expert-mix", "0.5"], "--expert-mix needs --dagger-model"),
    ],
)
def test_flags_the_plan_sets_per_task_are_refused_with_it(tmp_path, plan_file, flags, message, capsys):
    assert _generate(tmp_path / "data", "--plan", str(plan_file), *flags) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "data").exists()


def test_a_bad_plan_or_no_count_at_all_is_refused_in_one_line(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"groups": [{"tasks": "cartpole"}, {"tasks": "pendulum", "action_noise": -1}]}))
    assert _generate(tmp_path / "data", "--plan", str(bad)) == 2
    assert capsys.readouterr().err.strip() == (
        f"gato data generate: {bad}: groups[1].action_noise: expected ≥ 0, got -1"
    )
    assert _generate(tmp_path / "data", "--plan", str(tmp_path / "missing.yaml")) == 2
    assert "missing.yaml: not found (expected a data plan YAML file)" in capsys.readouterr().err
    assert _generate(tmp_path / "data", "--tasks", "cartpole") == 2
    assert "--episodes-per-task N is required (or --plan FILE" in capsys.readouterr().err
    assert not (tmp_path / "data").exists()
