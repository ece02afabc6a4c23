"""DAgger as an option of a data plan (``dagger_episodes``, ``expert_mix``; ``gato.episodes.plan.run_dagger_plan``,
``gato data generate --plan FILE --dagger-model RUN``): parsing with errors naming the field's path, refusal of tasks
without a state labeler, exactly the plan's episodes per task, the hand-written calls' data, and resuming."""

from __future__ import annotations

import json

import pytest
import yaml
from datasets import load_from_disk
from gato.episodes.dagger import DEFAULT_EXPERT_MIX, dagger_command_line, generate_dagger
from gato.episodes.plan import DataPlan, PlanDaggerCall, PlanGroup, run_dagger_plan

# cartpole and BabyAI GoTo: episodes of a few dozen steps at most with an untrained actor.
PLAN = {
    "episodes_per_task": 2,
    "groups": [
        {"tasks": "cartpole", "dagger_episodes": 3, "expert_mix": 0.25},
        {"tasks": ["babyai_goto_red_ball"], "episodes_per_task": 4, "dagger_episodes": 2},
        {"tasks": "acrobot"},
    ],
}


class PushFirst:
    """A model-free actor factory: action 0 of any discrete task at every step (CartPole's left push, BabyAI's left
    turn). Equal by value, as ``ActorFactory`` asks."""

    name = "push-first"

    def __eq__(self, other):
        return isinstance(other, PushFirst)

    def __hash__(self):
        return hash(PushFirst)

    def check(self, tasks):
        if any(task.spec.action.kind != "discrete" for task in tasks):
            raise ValueError("tasks: push-first acts in discrete tasks only")

    def __call__(self, task, seed):
        class Actor:
            def reset(self):
                pass

            def __call__(self, observation):
                return 0

        return Actor()


def _fingerprints(folder) -> dict[str, dict]:
    """Every split's manifest (size and sha256 of each file, its dataset card included)."""
    return {path.parent.name: json.loads(path.read_text())["files"] for path in sorted(folder.glob("*/manifest.json"))}


def test_the_dagger_fields_parse_round_trip_and_the_last_group_wins():
    plan = DataPlan.from_dict(PLAN)
    assert plan.groups[:2] == (
        PlanGroup(("cartpole",), dagger_episodes=3, expert_mix=0.25),
        PlanGroup(("babyai_goto_red_ball",), episodes_per_task=4, dagger_episodes=2),
    )
    assert plan.groups[2].dagger_episodes == 0 and plan.groups[2].expert_mix is None
    assert DataPlan.from_dict(plan.to_dict()) == plan
    assert plan.to_dict()["groups"][2] == {"tasks": ["acrobot"], "action_noise": 0.0}  # no DAgger: no new keys
    # The expert recipe does not change with the DAgger fields.
    assert plan.recipes() == {"cartpole": (2, 0.0), "babyai_goto_red_ball": (4, 0.0), "acrobot": (2, 0.0)}
    assert plan.dagger_recipes() == {"cartpole": (3, 0.25), "babyai_goto_red_ball": (2, DEFAULT_EXPERT_MIX)}
    assert plan.dagger_recipes("acrobot,babyai_goto_red_ball") == {"babyai_goto_red_ball": (2, DEFAULT_EXPERT_MIX)}
    # A later group naming a task gives it its whole recipe: here no DAgger episodes for cartpole.
    later = DataPlan(groups=(*plan.groups, PlanGroup(("cartpole",), 10)))
    assert later.dagger_recipes() == {"babyai_goto_red_ball": (2, DEFAULT_EXPERT_MIX)}
    assert DataPlan.from_dict(
        {**PLAN, "groups": [*PLAN["groups"], {"tasks": "cartpole,babyai_goto_red_ball", "dagger_episodes": 2}]}
    ).dagger_calls() == [PlanDaggerCall(("cartpole", "babyai_goto_red_ball"), 2, DEFAULT_EXPERT_MIX)]
    assert plan.dagger_calls() == [
        PlanDaggerCall(("cartpole",), 3, 0.25),
        PlanDaggerCall(("babyai_goto_red_ball",), 2, DEFAULT_EXPERT_MIX),
    ]


@pytest.mark.parametrize(
    "group, message",
    [
        (
            {"dagger_episodes": -1},
            "groups[1].dagger_episodes: expected an integer ≥ 0 (DAgger episodes per task and round; 0: none), got -1",
        ),
        ({"dagger_episodes": True}, "groups[1].dagger_episodes: expected an integer ≥ 0"),
        ({"dagger_episodes": 2.5}, "groups[1].dagger_episodes: expected an integer ≥ 0"),
        (
            {"dagger_episodes": "10"},
            "groups[1].dagger_episodes: expected an integer ≥ 0 (DAgger episodes per task and round; 0: none), got '10'",
        ),
        ({"dagger_episodes": 5, "expert_mix": 1.5}, "groups[1].expert_mix: expected a probability in [0, 1], got 1.5"),
        (
            {"dagger_episodes": 5, "expert_mix": -0.1},
            "groups[1].expert_mix: expected a probability in [0, 1], got -0.1",
        ),
        ({"dagger_episodes": 5, "expert_mix": float("nan")}, "groups[1].expert_mix: expected a probability in [0, 1]"),
        (
            {"dagger_episodes": 5, "expert_mix": True},
            "groups[1].expert_mix: expected a probability in [0, 1], got True",
        ),
        ({"dagger_episodes": 5, "expert_mix": "half"}, "groups[1].expert_mix: expected a probability in [0, 1]"),
        ({"expert_mix": 0.5}, "groups[1].expert_mix: given without dagger_episodes"),
        ({"dagger_episodes": 0, "expert_mix": 0.5}, "groups[1].expert_mix: given without dagger_episodes"),
        (
            {"dagger_episode": 5},
            "groups[1].dagger_episode: unknown group field (expected one of tasks, episodes_per_task, action_noise, dagger_episodes, expert_mix)",
        ),
    ],
)
def test_malformed_dagger_fields_are_refused_naming_their_path(group, message):
    with pytest.raises(ValueError) as error:
        DataPlan.from_dict({"groups": [{"tasks": "acrobot"}, {"tasks": "cartpole", **group}]}, where="plan.yaml")
    assert str(error.value).startswith(f"plan.yaml: {message}")


def test_dagger_episodes_of_a_task_without_a_labeler_are_refused_naming_the_group_and_the_task():
    with pytest.raises(ValueError) as error:
        DataPlan.from_dict(
            {
                "groups": [
                    {"tasks": "cartpole", "dagger_episodes": 5},
                    {"tasks": "babyai_goto_local,babyai_put_next_local", "dagger_episodes": 5},
                ]
            }
        )
    assert str(error.value).startswith(
        "groups[1].dagger_episodes: babyai_put_next_local: no labeler for states its expert did not choose"
    )
    # A whole domain names every unlabeled level of it …
    with pytest.raises(
        ValueError, match=r"^groups\[0\]\.dagger_episodes: babyai_key_corridor_s3r1, .*babyai_unlock_local: no labeler"
    ):
        DataPlan.from_dict({"groups": [{"tasks": "babyai", "dagger_episodes": 5}]})
    # … unless a later group gives those levels a recipe without DAgger episodes (the last group wins).
    unlabeled = [
        "babyai_key_corridor_s3r1",
        "babyai_open_door",
        "babyai_open_two_doors",
        "babyai_put_next_local",
        "babyai_unlock_local",
    ]
    plan = DataPlan.from_dict({"groups": [{"tasks": "babyai", "dagger_episodes": 5}, {"tasks": unlabeled}]})
    assert set(plan.dagger_recipes()) == {
        "babyai_goto_local",
        "babyai_goto_obj",
        "babyai_goto_red_ball",
        "babyai_goto_red_ball_grey",
        "babyai_pickup_loc",
    }


def test_no_dagger_for_the_selection_is_refused_saying_why():
    with pytest.raises(
        ValueError, match=r"^the data plan asks for no DAgger episodes \(no group sets dagger_episodes\)"
    ):
        DataPlan.from_dict({"groups": [{"tasks": "cartpole"}]}).dagger_calls()
    with pytest.raises(
        ValueError,
        match=r"^--tasks acrobot: none of the selected tasks gets DAgger episodes .* to cartpole, babyai_goto_red_ball\)",
    ):
        DataPlan.from_dict(PLAN).dagger_calls("acrobot")


def test_a_plans_dagger_round_records_exactly_its_episodes_per_task_as_the_hand_written_calls_do(
    tmp_path, monkeypatch
):
    plan = DataPlan.from_dict(PLAN)
    (tmp_path / "by_plan").mkdir()
    (tmp_path / "by_hand").mkdir()
    monkeypatch.chdir(tmp_path / "by_plan")  # both write `data` relative to their folder: the cards' commands match
    run = run_dagger_plan(plan, PushFirst(), "data", tasks="cartpole,acrobot,babyai_goto_red_ball", progress=False)
    assert run.status == {"cartpole": "generated", "babyai_goto_red_ball": "generated"}
    assert {name: len(dataset) for name, dataset in run.datasets.items()} == {"cartpole": 3, "babyai_goto_red_ball": 2}
    collection = load_from_disk("data")
    assert {name: len(split) for name, split in collection.items()} == {
        "cartpole_dagger": 3,
        "babyai_goto_red_ball_dagger": 2,
    }
    mixes = {
        name: json.loads((tmp_path / "by_plan" / "data" / f"{name}_dagger" / "generation.json").read_text())["dagger"][
            "expert_mix"
        ]
        for name in run.splits
    }
    assert mixes == {"cartpole": 0.25, "babyai_goto_red_ball": DEFAULT_EXPERT_MIX}
    assert (
        dagger_command_line("cartpole", 3, "data", "push-first", expert_mix=0.25)
        in (tmp_path / "by_plan" / "data" / "cartpole_dagger" / "README.md").read_text()
    )

    monkeypatch.chdir(tmp_path / "by_hand")
    generate_dagger(
        PushFirst(),
        "cartpole",
        3,
        "data",
        expert_mix=0.25,
        progress=False,
        command=dagger_command_line("cartpole", 3, "data", "push-first", expert_mix=0.25),
    )
    generate_dagger(
        PushFirst(),
        "babyai_goto_red_ball",
        2,
        "data",
        progress=False,
        command=dagger_command_line("babyai_goto_red_ball", 2, "data", "push-first", expert_mix=DEFAULT_EXPERT_MIX),
    )
    by_plan, by_hand = _fingerprints(tmp_path / "by_plan" / "data"), _fingerprints(tmp_path / "by_hand" / "data")
    assert set(by_plan) == {"cartpole_dagger", "babyai_goto_red_ball_dagger"} and by_plan == by_hand

    # Again: every split finished with the same generation is skipped, nothing rewritten.
    monkeypatch.chdir(tmp_path / "by_plan")
    arrows = {path: path.stat().st_mtime_ns for path in (tmp_path / "by_plan" / "data").glob("*/*.arrow")}
    again = run_dagger_plan(plan, PushFirst(), "data", progress=False)
    assert again.status == {"cartpole": "skipped", "babyai_goto_red_ball": "skipped"}
    assert {path: path.stat().st_mtime_ns for path in arrows} == arrows and _fingerprints(
        tmp_path / "by_plan" / "data"
    ) == by_plan
    # A second round goes into splits of its own.
    second = run_dagger_plan(plan, PushFirst(), "data", tasks="cartpole", dagger_round=2, progress=False)
    assert second.splits == {"cartpole": "cartpole_dagger2"} and len(load_from_disk("data")["cartpole_dagger2"]) == 3


def test_a_split_of_another_generation_or_a_task_the_actor_refuses_stops_the_round_before_any_episode(tmp_path):
    generate_dagger(PushFirst(), "babyai_goto_red_ball", 1, tmp_path / "data", progress=False)  # 1 episode, not 2
    plan = DataPlan.from_dict(PLAN)
    with pytest.raises(
        ValueError,
        match=r"babyai_goto_red_ball_dagger exists and holds other DAgger episodes \(model 'push-first', expert_mix 0.5, episodes 1,",
    ):
        run_dagger_plan(plan, PushFirst(), tmp_path / "data", progress=False)
    assert not (tmp_path / "data" / "cartpole_dagger").exists()  # the first call did not run either
    run = run_dagger_plan(plan, PushFirst(), tmp_path / "data", overwrite=True, progress=False)
    assert {name: len(dataset) for name, dataset in run.datasets.items()} == {"cartpole": 3, "babyai_goto_red_ball": 2}
    # Two calls (counts differ): the second call's task is refused before the first call records.
    continuous = DataPlan.from_dict(
        {"groups": [{"tasks": "cartpole", "dagger_episodes": 1}, {"tasks": "pendulum", "dagger_episodes": 2}]}
    )
    assert len(continuous.dagger_calls()) == 2
    with pytest.raises(ValueError, match="push-first acts in discrete tasks only"):
        run_dagger_plan(continuous, PushFirst(), tmp_path / "other", progress=False)
    assert not (tmp_path / "other" / "cartpole_dagger").exists()


def _generate(out, *flags):
    from gato.cli import main

    return main(["data", "generate", "--out", str(out), "--no-progress", *flags])


def test_gato_data_generate_plan_with_dagger_model(tmp_path, save_tiny_checkpoint, one_torch_thread, capsys):
    model = save_tiny_checkpoint(tmp_path / "model", 256)
    plan_file = tmp_path / "plan.yaml"
    plan_file.write_text(
        yaml.safe_dump(
            {
                "groups": [
                    {"tasks": "cartpole", "dagger_episodes": 2, "expert_mix": 0.75},
                    {"tasks": "babyai_goto_red_ball", "dagger_episodes": 1},
                    {"tasks": "acrobot"},
                ]
            }
        )
    )
    out = tmp_path / "data"
    assert _generate(out, "--plan", str(plan_file), "--dagger-model", model) == 0
    printed = capsys.readouterr().out
    assert (
        f"{out}/cartpole_dagger: 2 episodes" in printed and f"{out}/babyai_goto_red_ball_dagger: 1 episodes" in printed
    )
    assert sorted(load_from_disk(str(out))) == ["babyai_goto_red_ball_dagger", "cartpole_dagger"]
    generation = json.loads((out / "cartpole_dagger" / "generation.json").read_text())
    assert generation["dagger"] == {"model": model, "expert_mix": 0.75, "episodes": 2, "round": 1}
    assert f"--dagger-model {model} --expert-mix 0.75" in (out / "cartpole_dagger" / "README.md").read_text()
    assert _generate(out, "--plan", str(plan_file), "--dagger-model", model, "--tasks", "cartpole") == 0
    again = capsys.readouterr().out  # the selection's split only, finished before: skipped
    assert f"{out}/cartpole_dagger: 2 episodes" in again and again.count("skipped") == 1 and "babyai" not in again
    assert (
        _generate(
            out,
            "--plan",
            str(plan_file),
            "--dagger-model",
            model,
            "--dagger-round",
            "2",
            "--tasks",
            "babyai_goto_red_ball",
        )
        == 0
    )
    assert "babyai_goto_red_ball_dagger2: 1 episodes" in capsys.readouterr().out


def test_gato_data_generate_plan_with_dagger_model_refuses_what_it_cannot_record(
    tmp_path, save_tiny_checkpoint, capsys
):
    model = save_tiny_checkpoint(tmp_path / "model", 256)
    no_dagger, unlabeled, with_dagger = (tmp_path / name for name in ("none.yaml", "unlabeled.yaml", "plan.yaml"))
    no_dagger.write_text(yaml.safe_dump({"groups": [{"tasks": "cartpole", "episodes_per_task": 3}]}))
    unlabeled.write_text(yaml.safe_dump({"groups": [{"tasks": "babyai_put_next_local", "dagger_episodes": 3}]}))
    with_dagger.write_text(yaml.safe_dump({"groups": [{"tasks": "cartpole", "dagger_episodes": 1}]}))
    out = tmp_path / "data"
    assert _generate(out, "--plan", str(no_dagger), "--dagger-model", model) == 2
    assert capsys.readouterr().err.strip() == (
        "gato data generate: the data plan asks for no DAgger episodes (no group sets dagger_episodes); add "
        "`dagger_episodes: N` to the groups of the tasks a DAgger round should record"
    )
    assert _generate(out, "--plan", str(unlabeled), "--dagger-model", model) == 2
    assert (
        capsys.readouterr()
        .err.strip()
        .startswith(f"gato data generate: {unlabeled}: groups[0].dagger_episodes: babyai_put_next_local: no labeler")
    )
    for flags, message in (
        (["--expert-mix", "0.5"], "--expert-mix cannot go with --plan and --dagger-model"),
        (["--captions", "3"], "--captions cannot go with --plan and --dagger-model"),
        (["--text"], "--text cannot go with --plan and --dagger-model"),
        (["--episodes-per-task", "3"], "--episodes-per-task cannot go with --plan"),
    ):
        assert _generate(out, "--plan", str(with_dagger), "--dagger-model", model, *flags) == 2
        assert message in capsys.readouterr().err
    assert _generate(out, "--plan", str(with_dagger), "--dagger-round", "2") == 2
    assert "--dagger-round needs --dagger-model" in capsys.readouterr().err
    assert not out.exists() or not any(out.glob("*_dagger*"))


def test_the_expert_run_of_a_plan_with_dagger_fields_records_expert_episodes_and_names_the_round_to_come(
    tmp_path, capsys
):
    plan_file = tmp_path / "plan.yaml"
    plan_file.write_text(
        yaml.safe_dump({"groups": [{"tasks": "cartpole", "episodes_per_task": 1, "dagger_episodes": 5}]})
    )
    out = tmp_path / "data"
    assert _generate(out, "--plan", str(plan_file)) == 0
    assert {name: len(split) for name, split in load_from_disk(str(out)).items()} == {"cartpole": 1}
    assert (
        f"record a round with `gato data generate --plan {plan_file} --out {out} --dagger-model RUN`"
        in capsys.readouterr().out
    )
