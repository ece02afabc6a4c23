"""`gato eval` under `accelerate launch` on two CPU processes: the tasks are shared out, the main process
gathers and writes them, and the results equal a one-process evaluation's.

Launched as in tests/training/test_training_distributed.py (``ACCELERATE_USE_CPU=1`` and the ``--multi_gpu``
launcher start two gloo ranks on a machine without a GPU).
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from gato.cli import main

TASKS = "cartpole,mountain_car,pendulum"  # three tasks on two processes: one process evaluates two
EVAL_FLAGS = [
    "--tasks",
    TASKS,
    "--episodes",
    "2",
    "--num-envs",
    "2",
    "--max-steps",
    "15",
    "--threads",
    "1",
    "--no-progress",
]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory, save_tiny_checkpoint):
    return save_tiny_checkpoint(tmp_path_factory.mktemp("model"), 64)


def test_two_processes_evaluate_their_share_and_the_main_one_writes_the_same_results(model_dir, tmp_path, free_port):
    accelerate = Path(sys.executable).with_name("accelerate")
    command = [
        str(accelerate),
        "launch",
        "--multi_gpu",
        "--num_processes",
        "2",
        "--num_machines",
        "1",
        "--mixed_precision",
        "no",
        "--dynamo_backend",
        "no",
        "--main_process_port",
        str(free_port()),
        "-m",
        "gato.cli",
        "eval",
        "--model",
        model_dir,
        "--output-dir",
        str(tmp_path / "two"),
        *EVAL_FLAGS,
    ]
    env = {**os.environ, "ACCELERATE_USE_CPU": "1", "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    try:
        launched = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
    except subprocess.TimeoutExpired:  # a rank waiting on a gather the other never joins hangs
        pytest.fail("the two-process evaluation hung")
    assert launched.returncode == 0, launched.stdout[-3000:] + launched.stderr[-3000:]
    reports = [line for line in launched.stdout.splitlines() if line.startswith("results: ")]
    assert reports == [f"results: {tmp_path / 'two'}"]  # only the main process reports

    assert main(["eval", "--model", model_dir, "--output-dir", str(tmp_path / "one"), *EVAL_FLAGS]) == 0
    two = json.loads((tmp_path / "two" / "eval_results.json").read_text())
    one = json.loads((tmp_path / "one" / "eval_results.json").read_text())
    assert (two["processes"], one["processes"]) == (2, 1)
    assert [task["task"] for task in two["tasks"]] == TASKS.split(",")  # the tasks' order, not the processes'
    for task_two, task_one in zip(two["tasks"], one["tasks"]):
        assert task_two["seeds"] == task_one["seeds"]
        assert task_two["returns"] == pytest.approx(task_one["returns"])
        assert task_two["lengths"] == task_one["lengths"]
    assert two["summary"] == pytest.approx(one["summary"])
