"""scripts/generalist.sh and its data plan: the commands it runs, in order, with stand-ins for ``gato`` and ``python``
that only log their arguments (and leave the files a finished command leaves); DAgger rounds chain their models and
a run of the script after a finished one skips every finished training and evaluation. The same for
scripts/cpu_multitask.sh's DAgger rounds."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# `gato` stand-in: log the command; `train` and `eval` leave what a finished run leaves in their --output-dir.
FAKE_GATO = r"""#!/usr/bin/env bash
echo "gato $*" >> "$LOG"
out=""
prev=""
for arg in "$@"; do
    if [ "$prev" = "--output-dir" ]; then out=$arg; fi
    prev=$arg
done
case "$1" in
    train) mkdir -p "$out" && touch "$out/train_results.json" ;;
    eval) mkdir -p "$out" && touch "$out/eval_results.json" ;;
esac
"""
FAKE_PYTHON = """#!/usr/bin/env bash
echo "python $*" >> "$LOG"
"""


def _run_script(
    tmp_path: Path, rounds: int = 0, script: str = "generalist.sh", args: tuple[str, ...] | None = None
) -> list[list[str]]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    for name, text in (("gato", FAKE_GATO), ("python", FAKE_PYTHON)):
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    log = tmp_path / "commands.log"
    log.write_text("")
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "LOG": str(log), "DAGGER_ROUNDS": str(rounds)}
    runs = tmp_path / "runs" / "generalist"
    subprocess.run(
        ["bash", str(ROOT / "scripts" / script), *(args or ("data/generalist", str(runs), "data/held_out"))],
        cwd=tmp_path,
        env=env,
        check=True,
    )
    return [shlex.split(line.replace(str(runs), "RUN")) for line in log.read_text().splitlines()]


def _step(command: list[str]) -> str:
    """``data``, ``train``, ``eval`` (gato's subcommand) or ``python``."""
    return command[0] if command[0] == "python" else command[1]


def _flag(command: list[str], name: str) -> str | None:
    return command[command.index(name) + 1] if name in command else None


def test_dagger_rounds_collect_with_the_latest_model_and_train_from_it(tmp_path):
    commands = _run_script(tmp_path, rounds=2)
    steps = [(_step(command), _flag(command, "--dagger-model"), _flag(command, "--init-from")) for command in commands]
    assert steps == [
        ("data", None, None),  # the expert data
        ("train", None, None),  # pretraining
        ("eval", None, None),
        ("data", "RUN", None),  # round 1: the pretrained model plays …
        ("train", None, "RUN"),  # … and a model starts from it on the data + the round's splits
        ("eval", None, None),
        ("data", "RUN-dagger1", None),  # round 2: round 1's model plays
        ("train", None, "RUN-dagger1"),
        ("eval", None, None),
        ("data", None, None),  # the held-out tasks' expert data
        ("python", None, None),  # the transfer study, from the latest model
    ]
    rounds = [command for command in commands if _flag(command, "--dagger-model")]
    assert [_flag(command, "--dagger-round") for command in rounds] == ["1", "2"]
    for (
        command
    ) in rounds:  # one DAgger round of the plan, for the pretraining tasks only, into the expert data's folder
        assert _flag(command, "--plan") == "training/recipes/generalist_data.yaml"
        assert _flag(command, "--tasks") == "generalist" and _flag(command, "--out") == "data/generalist"
    trainings = [command for command in commands if command[1] == "train"]
    assert [_flag(command, "--output-dir") for command in trainings] == ["RUN", "RUN-dagger1", "RUN-dagger2"]
    assert all(_flag(command, "--data") == "data/generalist" for command in trainings)
    evaluations = [command for command in commands if command[1] == "eval"]
    assert [_flag(command, "--model") for command in evaluations] == ["RUN", "RUN-dagger1", "RUN-dagger2"]
    assert _flag(commands[-1], "--model") == "RUN-dagger2" and _flag(commands[-1], "--out") == "RUN-dagger2/transfer"

    # Run again: trainings and evaluations are finished and skipped (a --resume on the data the rounds changed
    # would be refused); the data commands skip their finished splits themselves.
    again = _run_script(tmp_path, rounds=2)
    assert [_step(command) for command in again] == ["data", "data", "data", "data", "python"]


def test_without_dagger_rounds_the_script_is_pretraining_evaluation_and_transfer(tmp_path):
    commands = _run_script(tmp_path, rounds=0)
    assert [_step(command) for command in commands] == ["data", "train", "eval", "data", "python"]
    assert not any(_flag(command, "--dagger-model") for command in commands)
    assert _flag(commands[-1], "--model") == "RUN" and _flag(commands[-1], "--out") == "RUN/transfer"


def test_the_generalist_plan_asks_dagger_of_labeled_pretraining_tasks_only_and_keeps_its_expert_calls():
    """The DAgger groups name tasks of the `generalist` suite whose expert labels states, never a held-out task nor
    Meta-World (too slow a round, the YAML says why); the expert calls are those that recorded data/generalist
    before the DAgger fields existed, so that folder stays finished."""
    from gato.episodes.plan import DataPlan
    from gato.suite.registry import HELD_OUT_TASKS, resolve_tasks

    plan = DataPlan.from_yaml(ROOT / "training" / "recipes" / "generalist_data.yaml")
    dagger = plan.dagger_recipes("generalist")
    pretraining = {task.name: task for task in resolve_tasks("generalist")}
    assert set(dagger) <= set(pretraining) and not set(dagger) & set(HELD_OUT_TASKS)
    assert set(plan.dagger_recipes()) == set(dagger)  # every task the plan names is a pretraining task
    assert all(pretraining[name].make_labeler is not None for name in dagger)
    assert {pretraining[name].domain for name in dagger} == {"classic_control", "babyai", "babyai_rgb", "atari"}
    labeled = {name for name, task in pretraining.items() if task.make_labeler and task.domain != "metaworld"}
    assert set(dagger) == labeled  # every other labeled pretraining task gets DAgger episodes
    assert [(call.tasks_argument, call.episodes_per_task, call.action_noise) for call in plan.calls("generalist")] == [
        ("acrobot,cartpole,mountain_car", 100, 0.0),
        ("atari_breakout", 120, 0.0),
        ("atari_pong", 60, 0.0),
        (
            "babyai_goto_local,babyai_goto_obj,babyai_goto_red_ball,babyai_goto_red_ball_grey,babyai_key_corridor_s3r1,"
            "babyai_open_door,babyai_pickup_loc,babyai_put_next_local,babyai_unlock_local",
            5000,
            0.0,
        ),
        ("babyai_rgb_goto_local,babyai_rgb_open_door,babyai_rgb_pickup_loc,babyai_rgb_put_next_local", 2000, 0.0),
        (
            "lunar_lander,lunar_lander_continuous,metaworld_button_press_topdown,metaworld_door_open,"
            "metaworld_drawer_open,metaworld_faucet_open,metaworld_pick_place,metaworld_plate_slide,metaworld_push,"
            "metaworld_reach,metaworld_window_open",
            200,
            0.0,
        ),
        ("pendulum", 1000, 1.0),
    ]


def test_a_dagger_round_in_miniature_as_the_script_runs_it(tmp_path, save_tiny_checkpoint, one_torch_thread, capsys):
    """Expert data → pretraining → a DAgger round of the plan by the pretrained model → the pretraining cannot
    `--resume` on the changed data (why the script skips a finished training) → a run `--init-from` the pretrained
    model trains on the expert and the DAgger split (unnamed in task_weights: default_weight, 1)."""
    import yaml
    from gato.episodes.generate import generate

    from gato.cli import main

    data, pretrained, round1 = tmp_path / "data", tmp_path / "pretrained", tmp_path / "round1"
    generate("cartpole", 4, data, progress=False)
    tiny = ["--batch-size", "2", "--warmup-steps", "0", "--eval-batches", "1", "--num-workers", "0"]
    tiny += ["--report-to", "none", "--max-steps", "2", "--data", str(data)]
    pretrain = ["train", "--preset", "gato-tiny", "--max-length", "64", *tiny, "--output-dir", str(pretrained)]
    assert main([*pretrain, "--resume"]) == 0
    plan = tmp_path / "plan.yaml"
    plan.write_text(yaml.safe_dump({"groups": [{"tasks": "cartpole", "episodes_per_task": 4, "dagger_episodes": 3}]}))
    assert main(["data", "generate", "--plan", str(plan), "--out", str(data), "--dagger-model", str(pretrained)]) == 0
    assert (
        main(["data", "generate", "--plan", str(plan), "--out", str(data), "--no-progress"]) == 0
    )  # expert: finished
    capsys.readouterr()
    assert main([*pretrain, "--resume"]) != 0
    assert "data_fingerprint" in capsys.readouterr().err
    assert main(["train", *tiny, "--init-from", str(pretrained), "--output-dir", str(round1)]) == 0
    results = json.loads((round1 / "train_results.json").read_text())
    assert results["init_from"] == str(pretrained)
    assert set(results["train_episodes"]) == {"cartpole", "cartpole_dagger"}  # the splits of weight > 0
    assert results["train_episodes"]["cartpole_dagger"] == 3 - 1  # one held out for validation


def test_the_generalist_recipe_weighs_each_dagger_split_like_a_task():
    """README "The generalist": the recipe's task_weights name no DAgger split, so each takes default_weight, the
    weight of every task the recipe does not name (all of them)."""
    from gato.training.config import TrainingConfig

    config = TrainingConfig.from_yaml(ROOT / "training" / "recipes" / "generalist.yaml")
    assert set(config.task_weights) == {"captions", "text"} and config.default_weight == 1.0


def test_a_rerun_of_the_cpu_multitask_script_skips_its_finished_rounds(tmp_path):
    """Rounds 1 and 2 train before DAgger splits are added to the data; resuming them on the changed data would be
    refused, so a second run of the script skips them (their train_results.json) and resumes only the last round."""
    runs = tmp_path / "runs" / "generalist"  # where _run_script's log replaces the path by RUN
    first = _run_script(tmp_path, script="cpu_multitask.sh", args=("data/multitask", str(runs)))
    trained = [_flag(command, "--output-dir") for command in first if _step(command) == "train"]
    assert trained == ["RUN-round1", "RUN-round2", "RUN"]
    again = _run_script(tmp_path, script="cpu_multitask.sh", args=("data/multitask", str(runs)))
    assert [_flag(command, "--output-dir") for command in again if _step(command) == "train"] == ["RUN"]
