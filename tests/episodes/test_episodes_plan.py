"""Data plans (``gato.episodes.plan``): YAML in and out, every malformed value named by its path, the last group
naming a task wins, and a plan run writes exactly what the hand-written ``generate`` calls write (and skips them)."""

from __future__ import annotations

import json

import pytest
from gato.episodes.generate import generate
from gato.episodes.plan import DataPlan, PlanCall, PlanGroup, run_plan

# Cheap tasks: cartpole and BabyAI GoTo episodes take milliseconds, a noisy pendulum episode 200 steps.
TINY = {
    "episodes_per_task": 2,
    "captions": 10,
    "text": False,
    "groups": [
        {"tasks": "cartpole,babyai_goto_red_ball"},
        {"tasks": ["pendulum"], "episodes_per_task": 1, "action_noise": 0.5},
    ],
}


def test_a_plan_round_trips_through_yaml(tmp_path):
    plan = DataPlan.from_dict(TINY)
    assert plan.groups == (
        PlanGroup(("cartpole", "babyai_goto_red_ball")),
        PlanGroup(("pendulum",), episodes_per_task=1, action_noise=0.5),
    )
    plan.to_yaml(tmp_path / "plan.yaml")
    assert DataPlan.from_yaml(tmp_path / "plan.yaml") == plan
    assert DataPlan.from_dict(plan.to_dict()).to_dict() == plan.to_dict()
    assert plan.to_dict()["groups"][0] == {"tasks": ["cartpole", "babyai_goto_red_ball"], "action_noise": 0.0}


@pytest.mark.parametrize(
    "data, message",
    [
        ({"episodes_per_task": 0}, "episodes_per_task: expected an integer ≥ 1, got 0"),
        ({"episodes_per_task": 2.5}, "episodes_per_task: expected an integer ≥ 1, got 2.5"),
        ({"captions": -1}, "captions: expected an integer ≥ 0, got -1"),
        ({"text": "yes"}, "text: expected true or false, got 'yes'"),
        ({"episode_per_task": 3}, "episode_per_task: unknown data plan field (expected one of episodes_per_task"),
        ({"groups": {"tasks": "cartpole"}}, "groups: expected a list of groups"),
        ({"groups": ["cartpole"]}, "groups[0]: expected a mapping with tasks, episodes_per_task, action_noise"),
        ({"groups": [{"episodes_per_task": 3}]}, "groups[0].tasks: missing"),
        ({"groups": [{"tasks": []}]}, "groups[0].tasks: expected at least one task, domain or suite name"),
        ({"groups": [{"tasks": " , "}]}, "groups[0].tasks: expected at least one task, domain or suite name"),
        ({"groups": [{"tasks": [3]}]}, "groups[0].tasks: expected task, domain or suite names"),
        ({"groups": [{"tasks": "cartpole", "noise": 1}]}, "groups[0].noise: unknown group field"),
        (
            {"groups": [{"tasks": "cartpole"}, {"tasks": "cartpole", "episodes_per_task": 0}]},
            "groups[1].episodes_per_task: expected an integer ≥ 1, got 0",
        ),
        (
            {"groups": [{"tasks": "cartpole"}, {"tasks": "acrobot"}, {"tasks": "pendulum", "action_noise": -1}]},
            "groups[2].action_noise: expected ≥ 0, got -1",
        ),
        ({"groups": [{"tasks": "pendulum", "action_noise": "lots"}]}, "groups[0].action_noise: expected ≥ 0"),
        ({"groups": [{"tasks": "pendulum", "action_noise": float("nan")}]}, "groups[0].action_noise: expected ≥ 0"),
        (
            {"groups": [{"tasks": "pendulum,cartpole", "action_noise": 1.5}]},
            "groups[0].action_noise: cartpole: expected a probability in [0, 1] for discrete actions, got 1.5",
        ),
        ([{"tasks": "cartpole"}], "expected a mapping of data plan fields"),
    ],
)
def test_a_malformed_plan_is_refused_naming_the_path_and_what_was_expected(data, message):
    with pytest.raises(ValueError) as error:
        DataPlan.from_dict(data, where="plan.yaml")
    assert str(error.value).startswith(f"plan.yaml: {message}")


def test_an_unknown_task_name_is_refused_naming_the_group_and_the_name():
    with pytest.raises(ValueError, match=r"^groups\[1\]\.tasks: unknown task, domain or suite 'cartpol';"):
        DataPlan.from_dict({"groups": [{"tasks": "pendulum"}, {"tasks": "acrobot,cartpol"}]})


def test_a_file_that_is_not_yaml_is_refused_naming_it(tmp_path):
    path = tmp_path / "plan.yaml"
    path.write_text("groups: [\n")
    with pytest.raises(ValueError, match=r"plan.yaml: cannot be read as YAML"):
        DataPlan.from_yaml(path)


def test_the_last_group_that_names_a_task_wins():
    domain_then_task = DataPlan.from_dict(
        {
            "episodes_per_task": 5,
            "groups": [
                {"tasks": "classic_control", "episodes_per_task": 100},
                {"tasks": "pendulum", "episodes_per_task": 300, "action_noise": 1.0},
            ],
        }
    )
    recipes = domain_then_task.recipes()
    assert recipes["pendulum"] == (300, 1.0)
    assert recipes["cartpole"] == recipes["acrobot"] == recipes["mountain_car"] == (100, 0.0)
    task_then_domain = DataPlan(groups=tuple(reversed(domain_then_task.groups)))
    assert task_then_domain.recipes()["pendulum"] == (100, 0.0)  # the domain group now comes last
    # Built in Python, a group's tasks may be one comma-separated string, as in YAML.
    in_python = DataPlan(groups=[PlanGroup("cartpole, pendulum", 3), PlanGroup(["pendulum"], 4, action_noise=0.2)])
    assert in_python.recipes() == {"cartpole": (3, 0.0), "pendulum": (4, 0.2)}


def test_the_selection_defaults_to_the_plans_tasks_and_unnamed_tasks_get_the_default_count():
    plan = DataPlan.from_dict(TINY)
    assert plan.task_names() == ["cartpole", "babyai_goto_red_ball", "pendulum"]
    assert plan.recipes() == {"cartpole": (2, 0.0), "babyai_goto_red_ball": (2, 0.0), "pendulum": (1, 0.5)}
    assert plan.recipes("pendulum,acrobot") == {"pendulum": (1, 0.5), "acrobot": (2, 0.0)}
    with pytest.raises(ValueError, match="names no tasks"):
        DataPlan().recipes()
    with pytest.raises(KeyError, match="no_such_task"):
        plan.recipes("no_such_task")


def test_one_call_per_episodes_and_noise_pair_with_captions_and_text_on_the_last():
    plan = DataPlan.from_dict({**TINY, "text": True, "groups": [*TINY["groups"], {"tasks": "acrobot"}]})
    assert plan.calls() == [
        PlanCall(("cartpole", "babyai_goto_red_ball", "acrobot"), 2, 0.0),
        PlanCall(("pendulum",), 1, 0.5, captions=10, text=True),
    ]
    assert plan.calls("pendulum") == [PlanCall(("pendulum",), 1, 0.5, captions=10, text=True)]


def _fingerprints(folder) -> dict[str, dict]:
    """Every split's manifest (size and sha256 of each file, its dataset card included)."""
    return {path.parent.name: json.loads(path.read_text())["files"] for path in sorted(folder.glob("*/manifest.json"))}


def test_a_plan_run_writes_exactly_what_the_hand_written_calls_write_and_skips_them(tmp_path, monkeypatch):
    from gato.cli import main

    plan = DataPlan.from_dict(TINY)
    # Both write `data` relative to their own folder, so that the cards' recorded commands can match too.
    (tmp_path / "by_hand").mkdir()
    (tmp_path / "by_plan").mkdir()
    monkeypatch.chdir(tmp_path / "by_hand")
    common = ["data", "generate", "--out", "data", "--no-progress"]
    assert main([*common, "--tasks", "cartpole,babyai_goto_red_ball", "--episodes-per-task", "2"]) == 0
    assert (
        main([*common, "--tasks", "pendulum", "--episodes-per-task", "1", "--action-noise", "0.5", "--captions", "10"])
        == 0
    )
    monkeypatch.chdir(tmp_path / "by_plan")
    run = run_plan(plan, "data", progress=False)
    assert [(s.task, s.episodes, s.status) for s in run.summaries] == [
        ("cartpole", 2, "generated"),
        ("babyai_goto_red_ball", 2, "generated"),
        ("pendulum", 1, "generated"),
    ]
    by_hand, by_plan = _fingerprints(tmp_path / "by_hand" / "data"), _fingerprints(tmp_path / "by_plan" / "data")
    assert set(by_plan) == {
        "cartpole",
        "babyai_goto_red_ball",
        "pendulum",
        "captions",
        "captions_validation",
        "captions_test",
    }
    assert by_plan == by_hand  # every file of every split: arrow data, state, info, generation.json, card

    # The plan run over the hand-written data: every task recognised as finished, nothing rewritten.
    monkeypatch.chdir(tmp_path / "by_hand")
    arrows = {path: path.stat().st_mtime_ns for path in (tmp_path / "by_hand" / "data").glob("*/*.arrow")}
    again = run_plan(plan, "data", progress=False)
    assert [s.status for s in again.summaries] == ["skipped"] * 3
    assert {path: path.stat().st_mtime_ns for path in arrows} == arrows
    assert _fingerprints(tmp_path / "by_hand" / "data") == by_hand


def test_a_plan_run_continues_where_another_recipe_for_a_task_differs_only_with_overwrite(tmp_path):
    """A task recorded earlier with another count is not silently kept: the plan run names it (as generate does)."""
    generate("cartpole", 1, tmp_path / "data", progress=False)
    plan = DataPlan.from_dict({"groups": [{"tasks": "cartpole", "episodes_per_task": 2}]})
    with pytest.raises(ValueError, match="holds 1 episodes of 'cartpole' from another generation"):
        run_plan(plan, tmp_path / "data", progress=False)
    run = run_plan(plan, tmp_path / "data", progress=False, overwrite=True)
    assert [(s.task, s.episodes) for s in run.summaries] == [("cartpole", 2)]


def test_the_cpu_multitask_plan_makes_the_calls_the_script_listed_by_hand():
    """training/recipes/cpu_multitask_data.yaml replaced scripts/cpu_multitask.sh's five `gato data generate` lines;
    its calls are those lines (tasks, episodes, noise), so the run's existing data folders are skipped."""
    from pathlib import Path

    recipe = Path(__file__).resolve().parents[2] / "training" / "recipes" / "cpu_multitask_data.yaml"
    calls = DataPlan.from_yaml(recipe).calls()
    assert [(call.tasks_argument, call.episodes_per_task, call.action_noise) for call in calls] == [
        ("babyai_goto_red_ball,babyai_pickup_loc", 8000, 0.0),
        ("cartpole,acrobot,mountain_car", 100, 0.0),
        ("pendulum", 1000, 1.0),
        ("metaworld_reach", 300, 0.0),
        ("atari_breakout", 120, 0.0),
    ]
    assert (calls[-1].captions, calls[-1].text) == (10000, True)
    script = (recipe.parents[2] / "scripts" / "cpu_multitask.sh").read_text()
    assert 'gato data generate --plan training/recipes/cpu_multitask_data.yaml --out "$DATA"' in script
