"""`gato train` through Accelerate + DeepSpeed ZeRO-2 (the shipped config), one CPU process: the loss falls.

Launched exactly as the shipped ``training/deepspeed/accelerate_zero2.yaml`` says, with ``--num_processes 1``
(``accelerate launch --cpu --use_deepspeed`` is refused, and ``Accelerator(cpu=True)`` drops DeepSpeed).
The loop hands DeepSpeed its own torch AdamW, so no DeepSpeed optimizer op is compiled; DeepSpeed's CPU
backend does JIT-build its shared-memory communication op once per machine (~70 s measured on the busy
2-core machine, then cached in ``~/.cache/torch_extensions``; the run itself takes ~20 s).

This file is also the launched script: run as ``__main__`` it calls ``run_training`` (what ``gato train``
calls) and records the losses and Accelerate's view of the run.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
ZERO2_ACCELERATE_CONFIG = REPO / "training" / "deepspeed" / "accelerate_zero2.yaml"
MAX_STEPS = 20


@pytest.fixture(scope="module")
def zero2_run(tiny_data_dir, tmp_path_factory, free_port):
    pytest.importorskip("deepspeed")
    out = tmp_path_factory.mktemp("zero2")
    command = [
        str(Path(sys.executable).with_name("accelerate")),
        "launch",
        "--config_file",
        str(ZERO2_ACCELERATE_CONFIG),
        "--num_processes",
        "1",
        "--main_process_port",
        str(free_port()),
        __file__,
        tiny_data_dir,
        str(out),
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    # The yaml names the DeepSpeed json relative to the repository root.
    result = subprocess.run(command, capture_output=True, text=True, env=env, cwd=REPO, timeout=400)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return out, json.loads((out / "record.json").read_text())


@pytest.mark.slow
def test_zero2_run_is_deepspeed_stage_2(zero2_run):
    out, record = zero2_run
    assert record["distributed_type"] == "DEEPSPEED" and record["zero_stage"] == 2
    # The checkpoint is DeepSpeed's: ZeRO-partitioned optimizer state beside the module states.
    (checkpoint,) = (out / "run" / "checkpoints").glob("checkpoint-*")
    assert list(checkpoint.rglob("*zero_pp_rank_0_*optim_states.pt"))  # "bf16_zero_pp_…" when training in bf16


@pytest.mark.slow
def test_zero2_loss_is_finite_and_falls(zero2_run):
    _, record = zero2_run
    losses = record["losses"]
    assert len(losses) == MAX_STEPS and all(loss == loss and abs(loss) < float("inf") for loss in losses)
    assert sum(losses[-5:]) / 5 < 0.85 * sum(losses[:5]) / 5, losses


@pytest.mark.slow
def test_zero2_run_writes_a_loadable_model(zero2_run):
    import torch
    from gato.modeling_gato import GatoForCausalLM

    out, _ = zero2_run
    model = GatoForCausalLM.from_pretrained(out / "run")
    assert all(torch.isfinite(parameter).all() for parameter in model.parameters())


def _worker(data_dir: str, out: str) -> None:
    from accelerate.state import AcceleratorState, PartialState
    from gato.training.config import TrainingConfig
    from gato.training.run_training import run_training

    config = TrainingConfig(
        preset="gato-tiny",
        data=data_dir,
        output_dir=str(Path(out) / "run"),
        max_steps=MAX_STEPS,
        batch_size=4,
        max_length=64,
        learning_rate=3e-3,
        warmup_steps=2,
        logging_steps=5,
        save_steps=MAX_STEPS,
        eval_batches=1,
        report_to="none",
    )
    result = run_training(config)
    state = AcceleratorState()
    record = {
        "distributed_type": PartialState().distributed_type.value,
        "zero_stage": state.deepspeed_plugin.zero_stage if state.deepspeed_plugin else None,
        "losses": result.losses,
    }
    (Path(out) / "record.json").write_text(json.dumps(record))


if __name__ == "__main__":
    _worker(sys.argv[1], sys.argv[2])
