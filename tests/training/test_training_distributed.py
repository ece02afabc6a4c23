"""`gato train` under `accelerate launch` on two CPU processes — DDP over gloo, DeepSpeed ZeRO-2 and ZeRO-3 —
runs both ranks to the end with the losses and weights of one process at the same global batch.

On a machine without a GPU, ``training/distributed.py`` joins the launched processes over gloo. Measured with
accelerate 1.16 before it did:

    accelerate launch --multi_gpu --num_processes 2 ...                  → 2 independent, unsynchronised runs
    accelerate launch --config_file accelerate_zero2.yaml --num_processes 2 → "a group of 1" (DeepSpeed on CPU)
    accelerate launch --cpu --num_processes 2 ...                        → 1 process (now refused)

This file is also the launched script: run as ``__main__`` it trains through ``gato train``'s own code path
(``gato.cli.main``, the loop building its own Accelerator), recording which mixture items this rank tokenized,
its losses and Accelerate's view of the run.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

REPO = Path(__file__).resolve().parents[2]
DEEPSPEED_CONFIGS = {stage: REPO / "training" / "deepspeed" / f"accelerate_zero{stage}.yaml" for stage in (2, 3)}
MAX_STEPS, GLOBAL_BATCH, PROCESSES = 4, 4, 2


def _train_args(data_dir: str, output_dir: Path, batch_size: int) -> list[str]:
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
        str(batch_size),
        "--max-length",
        "64",
        "--learning-rate",
        "3e-3",
        "--warmup-steps",
        "1",
        "--save-steps",
        "2",
        "--eval-steps",
        str(MAX_STEPS),
        "--eval-batches",
        "1",
        "--report-to",
        "none",
        "--num-workers",
        "0",  # items are recorded by patching __getitem__ in this process
        "--mixed-precision",
        "no",  # exact comparisons across process counts: float32 (auto is bf16 on CPUs with native bf16)
    ]


def _launch(
    launcher_args: list[str], data_dir: str, record_dir: Path, port: int, *worker_args: str, timeout: float = 400
) -> subprocess.CompletedProcess:
    accelerate = Path(sys.executable).with_name("accelerate")
    command = [
        str(accelerate),
        "launch",
        *launcher_args,
        "--main_process_port",
        str(port),
        __file__,
        data_dir,
        str(record_dir),
        *worker_args,
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    env.pop("ACCELERATE_USE_CPU", None)
    try:  # the DeepSpeed yaml names its json relative to the repository root
        return subprocess.run(command, capture_output=True, text=True, env=env, cwd=REPO, timeout=timeout)
    except subprocess.TimeoutExpired:  # a collective mismatch between ranks hangs instead of failing
        pytest.fail(f"the launch {launcher_args} hung")


def _ranks(record_dir: Path) -> list[dict]:
    return [json.loads((record_dir / f"rank{rank}.json").read_text()) for rank in range(PROCESSES)]


@pytest.fixture(scope="module")
def one_process(tiny_data_dir, tmp_path_factory):
    """The reference: one process at the same global batch, in this test process."""
    from gato.cli import main

    out = tmp_path_factory.mktemp("one_process")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        assert main(_train_args(tiny_data_dir, out / "run", GLOBAL_BATCH)) == 0
    finally:
        torch.set_num_threads(threads)
    results = json.loads((out / "run" / "train_results.json").read_text())
    return load_file(out / "run" / "model.safetensors"), results


def _assert_matches_one_process(record_dir: Path, one_process, tolerance: float) -> None:
    ranks = _ranks(record_dir)
    reference_weights, reference = one_process
    assert all(len(rank["losses"]) == MAX_STEPS for rank in ranks)
    assert ranks[0]["losses"] == ranks[1]["losses"]  # every rank reports the global mean
    assert ranks[0]["losses"][-1] == pytest.approx(reference["final_loss"], rel=tolerance)
    weights = load_file(record_dir / "run" / "model.safetensors")
    # DeepSpeed's gathered state dict also lists the tied output layer (the embedding, stored twice).
    assert set(reference_weights) <= set(weights) <= set(reference_weights) | {"lm_head.weight"}
    for name, tensor in reference_weights.items():
        torch.testing.assert_close(weights[name], tensor, rtol=tolerance, atol=tolerance, msg=name)


def test_accumulation_trains_like_one_large_batch(tiny_data_dir, tmp_path, one_process, one_torch_thread):
    """Two micro-batches of 2 per step = one batch of 4: every target token weighs the same in loss and gradient
    (the micro-batches hold different numbers of targets; a mean per micro-batch would weigh them differently)."""
    from gato.cli import main

    args = _train_args(tiny_data_dir, tmp_path / "run", GLOBAL_BATCH // 2)
    assert main([*args, "--gradient-accumulation-steps", "2"]) == 0
    results = json.loads((tmp_path / "run" / "train_results.json").read_text())
    assert results["final_loss"] == pytest.approx(one_process[1]["final_loss"], rel=1e-5)
    weights = load_file(tmp_path / "run" / "model.safetensors")
    for name, tensor in one_process[0].items():
        torch.testing.assert_close(weights[name], tensor, rtol=1e-5, atol=1e-5, msg=name)


@pytest.fixture(scope="module")
def ddp_run(tiny_data_dir, tmp_path_factory, free_port):
    record_dir = tmp_path_factory.mktemp("ddp")
    launcher = [
        "--multi_gpu",
        "--num_processes",
        str(PROCESSES),
        "--num_machines",
        "1",
        "--mixed_precision",
        "no",
        "--dynamo_backend",
        "no",
    ]
    result = _launch(launcher, tiny_data_dir, record_dir, free_port(), str(GLOBAL_BATCH // PROCESSES))
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return record_dir


@pytest.mark.slow
def test_ddp_ranks_join_one_gloo_group(ddp_run):
    assert [rank["state"] for rank in _ranks(ddp_run)] == [
        {"process_index": index, "num_processes": PROCESSES, "distributed_type": "MULTI_CPU", "backend": "gloo"}
        for index in range(PROCESSES)
    ]


@pytest.mark.slow
def test_ddp_ranks_read_different_items_and_together_all_of_them(ddp_run):
    seen = [set(rank["items"]) for rank in _ranks(ddp_run)]
    assert all(len(items) == MAX_STEPS * GLOBAL_BATCH // PROCESSES for items in seen)
    assert not seen[0] & seen[1]
    # The mixture is sized for every process (run_training reads WORLD_SIZE) and each item is read once.
    assert seen[0] | seen[1] == set(range(MAX_STEPS * GLOBAL_BATCH))


@pytest.mark.slow
def test_ddp_two_processes_train_like_one_at_the_same_global_batch(ddp_run, one_process):
    _assert_matches_one_process(ddp_run, one_process, tolerance=1e-4)


# The mixture gives one rank's batch images and not the other's: the image-free rank runs the patch embedding on an
# empty input (modeling_gato.py), so that DeepSpeed sees the same modules and gradients on every rank. Before, its
# zero-gradient stand-in left ZeRO-2's reduced gradient ~1% off and failed ZeRO-3; docs/TRAINING.md section 4.


def _deepspeed_launch(stage: int, data_dir: str, record_dir: Path, port: int, *extra: str) -> None:
    pytest.importorskip("deepspeed")
    launcher = ["--config_file", str(DEEPSPEED_CONFIGS[stage]), "--num_processes", str(PROCESSES)]
    result = _launch(launcher, data_dir, record_dir, port, str(GLOBAL_BATCH // PROCESSES), *extra)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]


@pytest.fixture(scope="module")
def zero2_run(tiny_data_dir, tmp_path_factory, free_port):
    record_dir = tmp_path_factory.mktemp("zero2")
    _deepspeed_launch(2, tiny_data_dir, record_dir, free_port())
    return record_dir


@pytest.mark.slow
def test_deepspeed_zero2_two_processes_train_like_one_at_the_same_global_batch(zero2_run, one_process):
    ranks = _ranks(zero2_run)
    assert [rank["state"]["distributed_type"] for rank in ranks] == ["DEEPSPEED"] * PROCESSES
    assert [rank["zero_stage"] for rank in ranks] == [2] * PROCESSES
    _assert_matches_one_process(zero2_run, one_process, tolerance=1e-4)


@pytest.mark.slow
def test_deepspeed_zero3_two_processes_train_like_one_at_the_same_global_batch(
    tiny_data_dir, tmp_path, free_port, one_process
):
    """Failed before with 'RuntimeError: 0 != 8192 Cannot reduce scatter gradients whose size is not same as the
    params' on image-free data (a zero-gradient stand-in read the patch embeddings' parameters outside their modules'
    forward, where ZeRO-3 keeps them partitioned), and with a collective mismatch with images on one rank only."""
    _deepspeed_launch(3, tiny_data_dir, tmp_path, free_port())
    ranks = _ranks(tmp_path)
    assert [rank["zero_stage"] for rank in ranks] == [3] * PROCESSES
    _assert_matches_one_process(tmp_path, one_process, tolerance=1e-4)


@pytest.mark.slow
def test_deepspeed_zero2_resumes_through_a_weights_only_load(zero2_run, tiny_data_dir, tmp_path, free_port):
    """DeepSpeed reads its files with torch.load(weights_only=False); gato's resume reads them weights-only: a
    crafted pickle in the newest checkpoint (manifest rewritten to match) is refused without running, and the
    run falls back to the previous checkpoint and ends with the uninterrupted run's weights."""
    import shutil

    from gato.training.checkpoints import MANIFEST_FILE, sha256_of

    run = tmp_path / "run"
    shutil.copytree(zero2_run / "run" / "checkpoints", run / "checkpoints")
    newest = run / "checkpoints" / f"checkpoint-{MAX_STEPS}"
    marker = tmp_path / "pwned"
    (model_states,) = newest.rglob("mp_rank_00_model_states.pt")
    torch.save({"module": _Payload(marker)}, model_states)
    manifest = json.loads((newest / MANIFEST_FILE).read_text())
    manifest["files"] = {name: sha256_of(newest / name) for name in manifest["files"]}
    (newest / MANIFEST_FILE).write_text(json.dumps(manifest))

    _deepspeed_launch(2, tiny_data_dir, tmp_path, free_port(), "--resume")
    assert not marker.exists()
    ranks = _ranks(tmp_path)
    assert all(rank["losses"] == _ranks(zero2_run)[0]["losses"][2:] for rank in ranks)  # steps 3-4, from checkpoint-2
    expected, actual = load_file(zero2_run / "run" / "model.safetensors"), load_file(run / "model.safetensors")
    assert all(torch.equal(expected[name], actual[name]) for name in expected)


class _Payload:
    """Unpickling this creates ``marker``: a stand-in for any code a crafted checkpoint could run."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


@pytest.mark.slow
def test_a_launch_that_starts_one_of_several_processes_is_refused(tiny_data_dir, tmp_path, free_port):
    """`accelerate launch --cpu --num_processes 2` starts one process: refused, not trained alone."""
    result = _launch(
        ["--cpu", "--num_processes", str(PROCESSES)], tiny_data_dir, tmp_path, free_port(), "2", timeout=200
    )
    assert result.returncode != 0 and "non-zero exit status 2" in result.stderr  # gato train's usage-error status
    assert "num_processes: `accelerate launch` was asked for several processes but started one" in result.stderr
    assert not (tmp_path / "run" / "checkpoints").exists()


def _worker(data_dir: str, record_dir: str, batch_size: str, *extra: str) -> None:
    """One rank of the launched run: ``gato train`` with the mixture and the loop observed."""
    from accelerate import PartialState
    from accelerate.state import AcceleratorState
    from gato.training import run_training
    from gato.training.mixture import MixtureDataset

    from gato.cli import main

    items: list[int] = []
    record: dict = {}
    read_item = MixtureDataset.__getitem__

    def observed_getitem(self, index):
        if len(self) == MAX_STEPS * GLOBAL_BATCH:  # the training mixture, not a validation set
            items.append(int(index))
        return read_item(self, index)

    real_train = run_training.train

    def observed_train(*args, **kwargs):
        result = real_train(*args, **kwargs)
        record["losses"] = result.losses
        return result

    MixtureDataset.__getitem__ = observed_getitem
    run_training.train = observed_train
    status = main([*_train_args(data_dir, Path(record_dir) / "run", int(batch_size)), *extra])
    if status:
        sys.exit(status)
    state = PartialState()
    record["state"] = {
        "process_index": state.process_index,
        "num_processes": state.num_processes,
        "distributed_type": state.distributed_type.value,
        "backend": state.backend,
    }
    plugin = AcceleratorState().deepspeed_plugin
    record["zero_stage"] = plugin.zero_stage if plugin else None
    record["items"] = items
    (Path(record_dir) / f"rank{state.process_index}.json").write_text(json.dumps(record))


if __name__ == "__main__":
    _worker(*sys.argv[1:])
