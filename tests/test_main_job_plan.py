"""``gato run``'s data plan, task weights and ``--quick``: what the flags resolve to in the data, training and
evaluation configs (no stage runs here; tests/test_main_job.py runs a micro job end to end)."""

from __future__ import annotations

import pytest
import yaml
from gato.episodes.plan import DataPlan
from gato.suite.registry import list_suites

from gato import main_job
from gato.cli import build_parser, main
from gato.commands import run
from gato.main_job import CPU_MODEL_OVERRIDES, DEFAULT_DATA_PLAN, run_main_job

TINY_PLAN = {
    "episodes_per_task": 2,
    "captions": 10,
    "text": False,
    "groups": [{"tasks": "cartpole"}, {"tasks": "pendulum", "episodes_per_task": 1, "action_noise": 0.5}],
}


def _config(tmp_path, *flags):
    args = build_parser("run").parse_args(["run", "--output-dir", str(tmp_path / "out"), *flags])
    return run.config_from_args(args)


@pytest.fixture
def plan_file(tmp_path):
    path = tmp_path / "plan.yaml"
    path.write_text(yaml.safe_dump(TINY_PLAN))
    return path


def test_quick_resolves_to_the_old_defaults(tmp_path, monkeypatch):
    """The smoke run of the main job before data plans: 20 clean episodes of each default task, 200 captions, text,
    400 steps with equal task weights, 4 evaluation episodes a task and 8 captions."""
    monkeypatch.setattr(main_job, "DEFAULT_TASK_WEIGHTS", {"cartpole": 2.0})  # the full job's, not the smoke run's
    config = _config(tmp_path, "--quick")
    assert config.data_plan() == DataPlan(episodes_per_task=20, captions=200, text=True)
    assert config.data_plan().recipes(config.task_selection) == dict.fromkeys(list_suites()["default"], (20, 0.0))
    training = config.training()
    assert (training.max_steps, training.warmup_steps, training.batch_size, training.max_length) == (400, 30, 8, 384)
    assert training.learning_rate == 1e-3 and training.task_weights == {}
    assert training.model_overrides == CPU_MODEL_OVERRIDES and training.preset == "gato-tiny"
    evaluation = config.evaluation()
    assert (evaluation.tasks, evaluation.episodes, evaluation.captions, evaluation.text) == ("default", 4, 8, True)


def test_flags_given_with_quick_win(tmp_path, plan_file):
    config = _config(tmp_path, "--quick", "--max-steps", "7", "--episodes-per-task", "3", "--eval-episodes", "2")
    assert config.training().max_steps == 7 and config.evaluation().episodes == 2
    assert config.data_plan() == DataPlan(episodes_per_task=3, captions=200, text=True)
    # A plan given with --quick is explicit: its episodes, captions and text win; the rest of the preset stays.
    config = _config(tmp_path, "--quick", "--data-plan", str(plan_file))
    assert config.data_plan() == DataPlan.from_dict(TINY_PLAN)
    assert config.training().max_steps == 400 and config.evaluation().episodes == 4
    assert _config(tmp_path, "--quick", "--data-plan", str(plan_file), "--captions", "3").data_plan().captions == 3


def test_without_flags_the_built_in_plan_and_weights_are_used(tmp_path, monkeypatch):
    monkeypatch.setattr(main_job, "DEFAULT_TASK_WEIGHTS", {"pendulum": 2.0, "text": 0.25})
    config = _config(tmp_path)
    assert config.data_plan() == DataPlan.from_dict(DEFAULT_DATA_PLAN)
    recipes = config.data_plan().recipes(config.task_selection)
    assert recipes["pendulum"] == (300, 1.0) and recipes["babyai_pickup_loc"] == (2000, 0.0)
    assert sorted(recipes) == sorted(list_suites()["default"])
    assert config.training().task_weights == {"pendulum": 2.0, "text": 0.25}
    assert config.evaluation().tasks.split(",") == list(recipes)


def test_data_plan_and_task_weights_reach_the_data_and_training_configs(tmp_path, plan_file, monkeypatch):
    yaml_config = tmp_path / "train.yaml"
    yaml_config.write_text(yaml.safe_dump({"task_weights": {"cartpole": 5.0, "pendulum": 3.0}}))
    flags = ["--data-plan", str(plan_file), "--task-weights", "cartpole=2,captions=0.5", "--seed", "3"]
    config = _config(tmp_path, *flags, "--training-config", str(yaml_config), "--workers", "1")
    assert config.data_plan() == DataPlan.from_dict(TINY_PLAN)
    # The flag's weights over the YAML file's, as every TrainSettings field.
    assert config.training().task_weights == {"cartpole": 2.0, "pendulum": 3.0, "captions": 0.5}
    evaluation = config.evaluation()
    assert (evaluation.tasks, evaluation.captions, evaluation.text) == (
        "cartpole,pendulum",
        main_job.EvalSettings().captions,
        False,
    )

    calls = []

    class Stop(Exception):
        pass

    def run_plan(plan, out, **settings):
        calls.append((plan, out, settings))
        raise Stop

    monkeypatch.setattr("gato.episodes.plan.run_plan", run_plan)
    with pytest.raises(Stop):
        run_main_job(config, log=lambda line: None)
    ((plan, out, settings),) = calls
    assert plan == DataPlan.from_dict(TINY_PLAN) and out == tmp_path / "out" / "data"
    assert settings == {"tasks": None, "seed": 3, "workers": 1, "overwrite": False, "progress": True}


def test_episodes_per_task_replaces_the_plan_by_clean_episodes_of_every_task(tmp_path):
    config = _config(tmp_path, "--episodes-per-task", "5", "--tasks", "cartpole,pendulum", "--no-text")
    plan = config.data_plan()
    assert plan.groups == () and plan.recipes(config.task_selection) == {"cartpole": (5, 0.0), "pendulum": (5, 0.0)}
    assert (plan.captions, plan.text) == (DEFAULT_DATA_PLAN["captions"], False)


def test_default_weights_are_kept_only_for_the_datasets_of_the_run(tmp_path, monkeypatch):
    monkeypatch.setattr(
        main_job, "DEFAULT_TASK_WEIGHTS", {"cartpole": 2.0, "atari_breakout": 3.0, "text": 0.5, "captions": 4.0}
    )
    flags = ["--tasks", "cartpole", "--episodes-per-task", "1", "--no-text", "--captions", "10"]
    assert _config(tmp_path, *flags).training().task_weights == {"cartpole": 2.0, "captions": 4.0}
    assert _config(tmp_path, *flags, "--task-weights", "").training().task_weights == {}  # '' = equal weights


@pytest.mark.parametrize(
    "flags, message",
    [
        (
            ["--data-plan", "PLAN", "--episodes-per-task", "3"],
            "data.episodes_per_task (--episodes-per-task) replaces the data plan",
        ),
        (["--task-weights", "cartpole=x"], "train.task_weights (--task-weights): cartpole: expected a number ≥ 0"),
        (["--tasks", "cartpol"], "tasks (--tasks): unknown task, domain or suite 'cartpol'"),
        (["--data-plan", "BAD"], "bad.yaml: groups[0].episodes_per_task: expected an integer ≥ 1, got 0"),
        (["--data-plan", "PLAN", "--captions", "0"], "eval.captions (--eval-captions)"),
    ],
)
def test_bad_data_settings_are_refused_before_any_work(tmp_path, plan_file, flags, message, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"groups": [{"tasks": "cartpole", "episodes_per_task": 0}]}))
    flags = [{"PLAN": str(plan_file), "BAD": str(bad)}.get(flag, flag) for flag in flags]
    assert main(["run", "--output-dir", str(tmp_path / "out"), *flags]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_a_plan_asking_for_dagger_episodes_is_told_how_to_run_the_round(tmp_path, monkeypatch):
    """`gato run` has no DAgger stage: a plan group's `dagger_episodes` is not ignored silently but named, with the
    commands that run the round on the trained model."""
    import types

    plan = {**TINY_PLAN, "groups": [{"tasks": "cartpole", "dagger_episodes": 4}, TINY_PLAN["groups"][1]]}
    path = tmp_path / "dagger_plan.yaml"
    path.write_text(yaml.safe_dump(plan))
    config = _config(tmp_path, "--data-plan", str(path))

    class Stop(Exception):
        pass

    def stop(*args, **kwargs):
        raise Stop

    monkeypatch.setattr(
        "gato.episodes.plan.run_plan", lambda *a, **k: types.SimpleNamespace(summaries=[], dataset_dict={})
    )
    monkeypatch.setattr("gato.training.run_training.run_training", stop)
    lines = []
    with pytest.raises(Stop):
        run_main_job(config, log=lines.append)
    (note,) = [line for line in lines if "DAgger" in line]
    assert f"{path} asks for DAgger episodes of cartpole;" in note  # pendulum's group asks for none
    out = tmp_path / "out"
    assert f"gato data generate --plan {path} --out {out / 'data'} --dagger-model {out}" in note
    assert f"gato train --init-from {out}" in note
