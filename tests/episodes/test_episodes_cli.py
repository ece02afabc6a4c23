"""``gato data list`` / ``gato data generate`` through ``gato.cli.main``."""

from __future__ import annotations

import datasets
from gato.suite.registry import list_tasks

from gato.cli import main


def test_data_list_prints_one_line_per_task(capsys):
    assert main(["data", "list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    tasks = list_tasks()
    by_name = {line.split()[0]: line.split() for line in lines if line.strip()}
    for task in tasks:
        name, domain, observations, action, expert, random = by_name[task.name]
        assert domain == task.domain
        assert set(observations.split("+")) == {field.kind for field in task.spec.observations}
        assert action.startswith(task.spec.action.kind)
        assert float(expert) == round(task.expert_return, 2) and float(random) == round(task.random_return, 2)
    assert by_name["cartpole"][3] == "discrete(2)"


def test_data_generate_writes_a_dataset_dict_and_prints_the_table(tmp_path, capsys):
    out = tmp_path / "data"
    argv = [
        "data",
        "generate",
        "--tasks",
        "cartpole,mountain_car",
        "--episodes-per-task",
        "2",
        "--out",
        str(out),
        "--seed",
        "1",
        "--no-progress",
    ]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    dataset_dict = datasets.load_from_disk(str(out))
    assert sorted(dataset_dict) == ["cartpole", "mountain_car"]
    cartpole = dataset_dict["cartpole"]
    assert len(cartpole) == 2
    row = next(line.split() for line in printed.splitlines() if line.startswith("cartpole"))
    assert row[2:4] == ["2", str(sum(cartpole["num_steps"]))] and row[-1] == "generated"
    assert float(row[4]) > float(row[6])  # the data's mean return beats the random reference
    assert main(argv) == 0 and "skipped" in capsys.readouterr().out  # a second run resumes: nothing to do


def test_data_generate_unknown_task_exits_2(tmp_path, capsys):
    assert (
        main(["data", "generate", "--tasks", "no_such_task", "--episodes-per-task", "1", "--out", str(tmp_path)]) == 2
    )
    assert "no_such_task" in capsys.readouterr().err


def test_data_generate_action_noise_reaches_the_recorder_and_bad_values_exit_2(tmp_path, capsys):
    common = ["data", "generate", "--tasks", "pendulum", "--episodes-per-task", "1", "--no-progress"]
    assert main([*common, "--out", str(tmp_path / "clean")]) == 0
    assert main([*common, "--out", str(tmp_path / "noisy"), "--action-noise", "0.5"]) == 0
    clean, noisy = (datasets.load_from_disk(str(tmp_path / name))["pendulum"] for name in ("clean", "noisy"))
    assert clean["seed"] == noisy["seed"]  # same episodes' resets, other executed actions
    assert clean[0]["episode_return"] != noisy[0]["episode_return"]
    assert "--action-noise 0.5" in (tmp_path / "noisy" / "pendulum" / "README.md").read_text()
    capsys.readouterr()
    assert main([*common, "--tasks", "cartpole", "--out", str(tmp_path / "bad"), "--action-noise", "3"]) == 2
    assert "action_noise" in capsys.readouterr().err
