"""The analysis scripts in ``scripts/`` run as their docstrings say (tiny untrained model, a few episodes)."""

import json
import re
import runpy
import sys
from pathlib import Path

import pytest

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"


def test_babyai_failures_groups_each_evaluation_episode_by_mission_and_expert_length(
    tmp_path, save_tiny_checkpoint, one_torch_thread, monkeypatch, capsys
):
    from gato.episodes.recorder import record_task_episode
    from gato.suite.registry import resolve_tasks

    model = save_tiny_checkpoint(tmp_path / "model", 256)
    out = tmp_path / "episodes.json"
    monkeypatch.setattr(sys, "argv", ["babyai_failures.py", "--model", model, "--episodes", "3", "--out", str(out)])
    runpy.run_path(str(SCRIPTS / "babyai_failures.py"), run_name="__main__")
    episodes = json.loads(out.read_text())
    assert len(episodes) == 3 and len({e["seed"] for e in episodes}) == 3
    (task,) = resolve_tasks("babyai_pickup_loc")
    for episode in episodes:
        expert = record_task_episode(task, episode["seed"])
        assert episode["mission"] == expert["observations"]["mission"][0]
        assert episode["expert_length"] == len(expert["actions"]) > 0
        assert 1 <= episode["length"] <= task.max_episode_steps
    table = capsys.readouterr().out
    rows = {
        line.split(" | ")[0].lstrip("| "): int(line.split(" | ")[1])
        for line in table.splitlines()
        if line.startswith("| ") and "---" not in line and "count" not in line
    }
    assert sum(count for name, count in rows.items() if name.startswith("expert")) == 3
    assert sum(count for name, count in rows.items() if name.startswith("mission location")) == 3
    assert sum(count for name, count in rows.items() if name.startswith("first pickup")) == 3
    # The script plays the episodes `gato eval --num-envs 1` plays: same seeds, returns and lengths.
    from gato.evaluation.rollout import evaluate_task
    from gato.evaluation.run_evaluation import load_model_and_processor

    network, processor = load_model_and_processor(model)
    reference = evaluate_task(network, processor, task, 3, num_envs=1, progress=False)
    assert [e["seed"] for e in episodes] == reference.seeds
    assert [e["length"] for e in episodes] == reference.lengths
    assert [e["return"] for e in episodes] == pytest.approx(reference.returns)
    for episode in episodes:
        assert set(episode["pickups"]) <= {"nothing", "target", "wrong", "full hand", "drop"}
        assert episode["first_pickup"] == next((e for e in episode["pickups"] if e != "drop"), "none")
        assert episode["success"] == ("target" in episode["pickups"])  # PickupLoc ends on the right pickup


def test_first_pickup_names_the_first_pickup_not_a_drop():
    first_pickup = runpy.run_path(str(SCRIPTS / "babyai_failures.py"))["first_pickup"]
    assert first_pickup(["drop", "wrong", "target"]) == "wrong"
    assert first_pickup(["drop"]) == "none" and first_pickup([]) == "none"


def test_babyai_failures_refuses_a_model_trained_on_another_encoding(tmp_path, save_tiny_checkpoint, monkeypatch):
    from dataclasses import replace

    import pytest
    from gato.suite.registry import resolve_tasks
    from gato.suite.task_spec import ObservationField, save_task_specs

    (task,) = resolve_tasks("babyai_pickup_loc")
    model = save_tiny_checkpoint(tmp_path / "model", 256)
    old_grid = tuple(
        ObservationField("grid", "discrete", shape=(7, 7, 3)) if f.name == "grid" else f
        for f in task.spec.observations
    )
    save_task_specs([replace(task.spec, observations=old_grid)], model)
    monkeypatch.setattr(sys, "argv", ["babyai_failures.py", "--model", model, "--episodes", "1"])
    with pytest.raises(ValueError, match=r"babyai_pickup_loc: observation 'grid': discrete \(7, 7, 3\)"):
        runpy.run_path(str(SCRIPTS / "babyai_failures.py"), run_name="__main__")


def test_mission_location_reads_the_four_babyai_phrases():
    location = runpy.run_path(str(SCRIPTS / "babyai_failures.py"))["mission_location"]
    assert [
        location(m)
        for m in (
            "pick up the red key on your left",
            "pick up a ball behind you",
            "pick up the box in front of you",
            "pick up the key on your right",
            "pick up a grey ball",
        )
    ] == ["left", "behind", "front", "right", "none"]


def test_pickup_watcher_notes_the_pickups_of_a_known_action_sequence_through_run_episodes():
    """Replaying the expert's own actions of the evaluation seeds: every episode ends on its last step with the
    expert's return, and the watcher saw its final pickup face the mission's object."""
    import numpy as np
    from gato.episodes.recorder import episode_seed, record_task_episode
    from gato.evaluation.rollout import EVALUATION_STREAM, run_episodes
    from gato.suite.registry import resolve_tasks

    watcher = runpy.run_path(str(SCRIPTS / "babyai_failures.py"))["PickupWatcher"]()
    (task,) = resolve_tasks("babyai_pickup_loc")
    experts = [record_task_episode(task, episode_seed(0, EVALUATION_STREAM + task.name, index)) for index in range(3)]

    class Replay:  # the agent interface run_episodes uses: reset per episode (one environment), then one action per step
        def __init__(self):
            self.episode = -1

        def reset(self, prompt=None, num_envs=1):
            self.episode, self.step = self.episode + 1, 0

        def act(self, observations):
            self.step += 1
            return np.array([[experts[self.episode]["actions"].ravel()[self.step - 1]]])

    returns, lengths, _, _ = run_episodes(Replay(), task, 3, num_envs=1, progress=False, before_step=watcher)
    for index, expert in enumerate(experts):
        assert lengths[index] == len(expert["actions"])
        assert returns[index] == pytest.approx(float(expert["rewards"].sum())) and returns[index] > 0
        assert watcher.events[index][-1] == "target"
        assert "wrong" not in watcher.events[index]  # the expert never picks up another object


def test_transfer_study_fills_every_cell_writes_json_table_and_plot_and_skips_finished_cells(
    tmp_path, save_tiny_checkpoint, one_torch_thread, monkeypatch, capsys
):
    from gato.episodes.generate import generate

    generalist = save_tiny_checkpoint(tmp_path / "generalist", 64)
    data = tmp_path / "data"
    generate("cartpole", episodes_per_task=3, out=data, seed=0, progress=False)
    out = tmp_path / "study"
    argv = ["transfer_study.py", "--model", generalist, "--data", str(data), "--tasks", "cartpole"]
    argv += ["--episodes", "2,1", "--max-steps", "2", "--eval-episodes", "1", "--eval-max-steps", "10"]
    argv += ["--out", str(out), "--batch-size", "2", "--warmup-steps", "0", "--train-overrides", "num_workers=0"]
    monkeypatch.setattr(sys, "argv", argv)
    runpy.run_path(str(SCRIPTS / "transfer_study.py"), run_name="__main__")
    printed = capsys.readouterr().out
    assert [line.split(":")[0] for line in printed.splitlines() if re.match(r"\[\d+/5\] ", line)] == [
        "[1/5] cartpole prompt-only",
        "[2/5] cartpole finetune K=1",
        "[3/5] cartpole scratch K=1",
        "[4/5] cartpole finetune K=2",
        "[5/5] cartpole scratch K=2",
    ]
    results = json.loads((out / "transfer.json").read_text())
    assert results["settings"]["episodes"] == [1, 2] and results["settings"]["max_steps"] == 2
    cell = results["tasks"]["cartpole"]
    assert cell["domain"] == "classic_control"
    assert isinstance(cell["prompt_only"]["normalized_score"], float) and cell["prompt_only"]["eval_episodes"] == 1
    for kind, init in (("finetune", str(Path(generalist).resolve())), ("scratch", None)):
        assert set(cell[kind]) == {"1", "2"}
        for k, entry in cell[kind].items():
            assert entry["train_steps"] == 2 and isinstance(entry["normalized_score"], float)
            trained = json.loads((Path(entry["model"]) / "train_results.json").read_text())
            assert (trained["train_episodes"], trained["init_from"]) == ({"cartpole": int(k)}, init)
            assert Path(entry["eval_results"]).is_file()
            statistics = json.loads(Path(entry["eval_results"]).read_text())["statistics"]["all"]["mean"]
            assert entry["score_interval"] == [statistics["low"], statistics["high"]]
    assert (out / "transfer.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    table = (out / "transfer.md").read_text()
    assert sum(line.startswith("| cartpole | classic_control |") for line in table.splitlines()) == 2

    # Run again: every cell is finished and skipped; other settings are refused naming them.
    runpy.run_path(str(SCRIPTS / "transfer_study.py"), run_name="__main__")
    assert capsys.readouterr().out.count("done before") == 5
    monkeypatch.setattr(sys, "argv", [*argv[:-6], "--max-steps", "3", *argv[-6:]])
    with pytest.raises(SystemExit, match="max_steps: 2 → 3"):
        runpy.run_path(str(SCRIPTS / "transfer_study.py"), run_name="__main__")


def test_transfer_study_refuses_data_with_fewer_episodes_than_the_largest_k_before_any_cell(
    tmp_path, save_tiny_checkpoint, monkeypatch
):
    from gato.episodes.generate import generate

    generalist = save_tiny_checkpoint(tmp_path / "generalist", 64)
    generate("cartpole", episodes_per_task=3, out=tmp_path / "data", seed=0, progress=False)
    argv = [
        "transfer_study.py",
        "--model",
        generalist,
        "--data",
        str(tmp_path / "data"),
        "--tasks",
        "cartpole,acrobot",
    ]
    argv += ["--episodes", "1,3", "--max-steps", "1", "--out", str(tmp_path / "study")]
    monkeypatch.setattr(sys, "argv", argv)
    with pytest.raises(
        SystemExit, match="needs ≥ 3 training episodes .*cartpole: 2 training episodes; acrobot: no split"
    ):
        runpy.run_path(str(SCRIPTS / "transfer_study.py"), run_name="__main__")
    assert not (tmp_path / "study" / "cartpole").exists()


def test_transfer_table_gives_each_cell_its_interval_also_for_cells_recorded_before_intervals(tmp_path):
    study = runpy.run_path(str(SCRIPTS / "transfer_study.py"))
    evaluated = tmp_path / "eval_results.json"
    evaluated.write_text(json.dumps({"statistics": {"all": {"mean": {"value": 0.26, "low": 0.1, "high": 0.42}}}}))
    results = {
        "settings": {"episodes": [5], "eval_episodes": 20, "max_steps": 300, "lora": False, "model": "g"},
        "tasks": {
            "babyai_open_two_doors": {
                "domain": "babyai",
                "prompt_only": {"normalized_score": -0.06, "score_interval": None},
                "finetune": {"5": {"normalized_score": 0.469, "score_interval": [0.3, 0.64]}},
                # recorded before cells kept their interval: read from the cell's evaluation
                "scratch": {"5": {"normalized_score": 0.26, "eval_results": str(evaluated)}},
            }
        },
    }
    (row,) = [line for line in study["markdown_table"](results).splitlines() if line.startswith("| babyai")]
    assert row == "| babyai_open_two_doors | babyai | -6% | 5 | 47% [30, 64] | 26% [10, 42] |"
    evaluated.unlink()  # gone: the score alone
    assert study["format_score"](results["tasks"]["babyai_open_two_doors"]["scratch"]["5"], interval=True) == "26%"
    study["plot"](results, tmp_path / "transfer.png")
    assert (tmp_path / "transfer.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_transfer_study_keeps_the_scratch_arm_when_only_the_generalist_weights_change(
    tmp_path, save_tiny_checkpoint, one_torch_thread, monkeypatch, capsys
):
    """The from-scratch cells take the generalist's size and context, not its weights: run from a checkpoint, the
    study keeps them for the finished model of the same size and runs the other cells again; another size is refused."""
    import shutil

    from gato.episodes.generate import generate

    checkpoint = save_tiny_checkpoint(tmp_path / "checkpoint", 64)
    final = shutil.copytree(checkpoint, tmp_path / "final")  # same size, another model folder
    generate("cartpole", episodes_per_task=2, out=tmp_path / "data", seed=0, progress=False)
    out = tmp_path / "study"
    flags = ["--data", str(tmp_path / "data"), "--tasks", "cartpole", "--episodes", "1", "--max-steps", "1"]
    flags += ["--eval-episodes", "1", "--eval-max-steps", "5", "--out", str(out), "--batch-size", "2"]
    flags += ["--warmup-steps", "0", "--train-overrides", "num_workers=0"]
    monkeypatch.setattr(sys, "argv", ["transfer_study.py", "--model", checkpoint, *flags, "--arms", "scratch"])
    runpy.run_path(str(SCRIPTS / "transfer_study.py"), run_name="__main__")
    before = json.loads((out / "transfer.json").read_text())["tasks"]["cartpole"]
    assert set(before) == {"domain", "finetune", "scratch"} and set(before["scratch"]) == {"1"}  # that arm only
    assert before["finetune"] == {}
    monkeypatch.setattr(sys, "argv", ["transfer_study.py", "--model", checkpoint, *flags])  # the other arms too
    runpy.run_path(str(SCRIPTS / "transfer_study.py"), run_name="__main__")
    before = json.loads((out / "transfer.json").read_text())["tasks"]["cartpole"]
    capsys.readouterr()

    monkeypatch.setattr(sys, "argv", ["transfer_study.py", "--model", str(final), *flags])
    runpy.run_path(str(SCRIPTS / "transfer_study.py"), run_name="__main__")
    printed = capsys.readouterr().out
    assert "keeping its 1 from-scratch cell(s)" in printed
    assert "[3/3] cartpole scratch K=1: done before" in printed
    assert "[2/3] cartpole finetune K=1: done before" not in printed  # fine-tuned again, from the new model
    after = json.loads((out / "transfer.json").read_text())
    assert after["settings"]["model"] == str(final)
    assert after["tasks"]["cartpole"]["scratch"] == before["scratch"]
    trained = json.loads(
        (Path(after["tasks"]["cartpole"]["finetune"]["1"]["model"]) / "train_results.json").read_text()
    )
    assert trained["init_from"] == str(Path(final).resolve())
    assert (out / "cartpole" / "finetune-k1.was-checkpoint" / "train_results.json").is_file()  # kept aside

    monkeypatch.setattr(sys, "argv", ["transfer_study.py", "--model", str(final), *flags, "--arms", "scratch,nope"])
    with pytest.raises(SystemExit, match="arms \\(--arms\\): expected some of prompt_only, finetune, scratch"):
        runpy.run_path(str(SCRIPTS / "transfer_study.py"), run_name="__main__")
    other = save_tiny_checkpoint(tmp_path / "other", 128)  # another context: the scratch arm is not this model's
    monkeypatch.setattr(sys, "argv", ["transfer_study.py", "--model", other, *flags])
    with pytest.raises(SystemExit, match="do not record the size and context of"):
        runpy.run_path(str(SCRIPTS / "transfer_study.py"), run_name="__main__")
