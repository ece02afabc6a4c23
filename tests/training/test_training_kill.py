"""A real kill: `gato train` SIGKILLed mid-run in a subprocess, resumed with `--resume`, ends with the weights of
an uninterrupted run, bit for bit."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch
from gato.training.checkpoints import MANIFEST_FILE
from gato.training.run_training import TRAIN_RESULTS_FILE
from safetensors.torch import load_file

from gato.cli import main

MAX_STEPS, SAVE_STEPS = 30, 5

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # the subprocess runs on one thread too: same kernels


def _args(data_dir, output_dir):
    return [
        "train",
        "--preset",
        "gato-tiny",
        "--data",
        data_dir,
        "--output-dir",
        str(output_dir),
        "--max-steps",
        str(MAX_STEPS),
        "--batch-size",
        "2",
        "--max-length",
        "64",
        "--learning-rate",
        "3e-3",
        "--warmup-steps",
        "3",
        "--save-steps",
        str(SAVE_STEPS),
        "--eval-steps",
        str(MAX_STEPS),
        "--eval-batches",
        "1",
        "--report-to",
        "none",
        "--num-workers",
        "0",
        "--save-total-limit",
        "2",
    ]


def _kill_after_first_checkpoint(data_dir, output_dir) -> int:
    """Start `gato train` in a subprocess, SIGKILL it as soon as its first checkpoint is complete."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    process = subprocess.Popen(
        [sys.executable, "-m", "gato.cli", *_args(data_dir, output_dir)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    first = output_dir / "checkpoints" / f"checkpoint-{SAVE_STEPS}" / MANIFEST_FILE
    deadline = time.monotonic() + 240
    while not first.exists():
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"gato train ended before its first checkpoint: {process.stderr.read().decode()[-2000:]}")
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    return process.wait(timeout=30)


def test_sigkilled_run_resumes_to_the_uninterrupted_weights_bit_for_bit(tiny_data_dir, tmp_path):
    assert main(_args(tiny_data_dir, tmp_path / "uninterrupted")) == 0
    killed = tmp_path / "killed"
    assert _kill_after_first_checkpoint(tiny_data_dir, killed) == -signal.SIGKILL
    assert not (killed / "model.safetensors").exists(), "the run finished before it was killed"

    assert main([*_args(tiny_data_dir, killed), "--resume"]) == 0
    resumed = json.loads((killed / TRAIN_RESULTS_FILE).read_text())
    assert resumed["global_step"] == MAX_STEPS and 0 < resumed["start_step"] < MAX_STEPS
    expected = load_file(tmp_path / "uninterrupted" / "model.safetensors")
    actual = load_file(killed / "model.safetensors")
    assert expected.keys() == actual.keys()
    assert all(torch.equal(expected[name], actual[name]) for name in expected)
    assert (
        resumed["final_loss"]
        == json.loads((tmp_path / "uninterrupted" / TRAIN_RESULTS_FILE).read_text())["final_loss"]
    )
