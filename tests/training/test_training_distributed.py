"""`gato train` under `accelerate launch` on two CPU processes: the ranks read different data and end identical.

On a machine without a GPU, Accelerate needs to be told that the processes are CPU processes
(``ACCELERATE_USE_CPU=1``; it then uses gloo), and the launcher that starts several processes is the
``--multi_gpu`` one (``--cpu`` alone starts one process). Measured with accelerate 1.15:

    accelerate launch --cpu --num_processes 2 ...                         → 1 process
    accelerate launch --multi_gpu --num_processes 2 ...                   → 2 independent, unsynchronised runs
    ACCELERATE_USE_CPU=1 accelerate launch --multi_gpu --num_processes 2  → 2 ranks, MULTI_CPU, gloo

This file is also the launched script: run as ``__main__`` it trains through ``gato train``'s own code
path (``gato.cli.main``, the loop building its own Accelerator), recording which mixture items this rank
tokenized and its final weights. The tiny mixture puts batches with and without images on different
ranks: the model runs its patch embedding on zero patches in training, so every rank's graph has the
same parameters and DDP's all-reduces stay in step.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

MAX_STEPS, BATCH_SIZE, PROCESSES = 4, 2, 2


def _launch(data_dir: str, record_dir: Path, port: int, timeout: float = 300) -> subprocess.CompletedProcess:
    accelerate = Path(sys.executable).with_name("accelerate")
    command = [
        str(accelerate), "launch", "--multi_gpu", "--num_processes", str(PROCESSES), "--num_machines", "1",
        "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", str(port),
        __file__, data_dir, str(record_dir),
    ]
    env = {**os.environ, "ACCELERATE_USE_CPU": "1", "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=timeout)


@pytest.fixture(scope="module")
def two_rank_run(tiny_data_dir, tmp_path_factory, free_port):
    record_dir = tmp_path_factory.mktemp("two_ranks")
    try:
        result = _launch(tiny_data_dir, record_dir, free_port())
    except subprocess.TimeoutExpired:  # a collective mismatch between ranks hangs instead of failing
        pytest.fail("the two-process run hung")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    ranks = [torch.load(record_dir / f"rank{rank}.pt") for rank in range(PROCESSES)]
    return record_dir, ranks


def test_both_ranks_join_one_gloo_group(two_rank_run):
    _, ranks = two_rank_run
    assert [rank["state"] for rank in ranks] == [
        {"process_index": index, "num_processes": PROCESSES, "distributed_type": "MULTI_CPU", "backend": "gloo"}
        for index in range(PROCESSES)
    ]


def test_ranks_read_different_items_and_together_all_of_them(two_rank_run):
    _, ranks = two_rank_run
    seen = [set(rank["items"]) for rank in ranks]
    assert all(len(items) == MAX_STEPS * BATCH_SIZE for items in seen)
    assert not seen[0] & seen[1]
    # The mixture is sized for every process (run_training reads WORLD_SIZE) and each item is read once.
    assert seen[0] | seen[1] == set(range(MAX_STEPS * BATCH_SIZE * PROCESSES))


def test_ranks_end_with_identical_trained_weights(two_rank_run):
    record_dir, ranks = two_rank_run
    first, second = ranks[0]["weights"], ranks[1]["weights"]
    assert first.keys() == second.keys()
    assert all(torch.equal(first[name], second[name]) for name in first)
    assert ranks[0]["losses"] == ranks[1]["losses"] and len(ranks[0]["losses"]) == MAX_STEPS
    # Training happened: the weights moved from the (seeded, shared) initialisation.
    assert any(not torch.equal(first[name], ranks[0]["initial"][name]) for name in first)
    # The Hub-ready folder is written once, by the main process, with those weights.
    from gato.modeling_gato import GatoForCausalLM

    saved = GatoForCausalLM.from_pretrained(record_dir / "run").state_dict()
    assert all(torch.equal(saved[name], first[name]) for name in first)


def _worker(data_dir: str, record_dir: str) -> None:
    """One rank of the launched run: ``gato train`` with the mixture and the loop observed."""
    from accelerate import PartialState

    from gato.cli import main
    from gato.training import run_training
    from gato.training.mixture import MixtureDataset

    items: list[int] = []
    record: dict = {}
    read_item = MixtureDataset.__getitem__

    def observed_getitem(self, index):
        if len(self) == MAX_STEPS * BATCH_SIZE * PROCESSES:  # the training mixture, not a validation set
            items.append(int(index))
        return read_item(self, index)

    real_train = run_training.train

    def observed_train(config, model, *args, **kwargs):
        record["initial"] = {name: tensor.clone() for name, tensor in model.state_dict().items()}
        result = real_train(config, model, *args, **kwargs)
        record["weights"] = {name: tensor.detach().clone() for name, tensor in model.state_dict().items()}
        record["losses"] = result.losses
        return result

    MixtureDataset.__getitem__ = observed_getitem
    run_training.train = observed_train
    status = main([
        "train", "--preset", "gato-tiny", "--data", data_dir, "--output-dir", str(Path(record_dir) / "run"),
        "--max-steps", str(MAX_STEPS), "--batch-size", str(BATCH_SIZE), "--max-length", "64", "--learning-rate", "3e-3",
        "--warmup-steps", "1", "--save-steps", str(MAX_STEPS), "--eval-batches", "1", "--report-to", "none",
        "--num-workers", "0",  # items are recorded by patching __getitem__ in this process
    ])
    state = PartialState()
    record["state"] = {
        "process_index": state.process_index,
        "num_processes": state.num_processes,
        "distributed_type": state.distributed_type.value,
        "backend": state.backend,
    }
    record["items"] = items
    torch.save(record, Path(record_dir) / f"rank{state.process_index}.pt")
    print(json.dumps({"rank": state.process_index, "status": status}))
    sys.exit(status)


if __name__ == "__main__":
    _worker(sys.argv[1], sys.argv[2])
