"""Same seed, same result: two `gato train` runs with one seed end with identical losses and weights, bit for bit
(same machine, same thread count; docs/RELIABILITY.md says what holds beyond that)."""

import json

import pytest
import torch
from gato.training.config import TrainingConfig
from gato.training.run_training import TRAIN_RESULTS_FILE, run_training
from safetensors.torch import load_file

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _train(data, output_dir, **overrides):
    settings = dict(
        preset="gato-tiny",
        data=data,
        output_dir=str(output_dir),
        max_steps=8,
        batch_size=4,
        max_length=64,
        learning_rate=3e-3,
        warmup_steps=2,
        logging_steps=4,
        eval_steps=8,
        save_steps=8,
        eval_batches=1,
        report_to="none",
        num_workers=0,
    )
    settings.update(overrides)
    result = run_training(TrainingConfig(**settings))
    return result, load_file(output_dir / "model.safetensors")


def _same_weights(first, second):
    return first.keys() == second.keys() and all(torch.equal(first[name], second[name]) for name in first)


@pytest.fixture(scope="module")
def first_run(tiny_data_dir, tmp_path_factory):
    # Module-scoped fixtures run before `one_torch_thread`: set the thread count here (another count changes the
    # validation losses in the last bits, measured).
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _train(tiny_data_dir, tmp_path_factory.mktemp("first"))
    finally:
        torch.set_num_threads(threads)


def test_same_seed_gives_identical_losses_and_weights(tiny_data_dir, tmp_path, first_run):
    # The second run loads its data in two worker processes: the data order does not depend on them.
    second = _train(tiny_data_dir, tmp_path / "second", num_workers=2)
    assert first_run[0].losses == second[0].losses and len(second[0].losses) == 8
    assert first_run[0].validation == second[0].validation
    assert _same_weights(first_run[1], second[1])


def test_another_seed_gives_another_run(tiny_data_dir, tmp_path, first_run):
    other = _train(tiny_data_dir, tmp_path / "other", seed=1)
    assert other[0].losses != first_run[0].losses
    assert not _same_weights(first_run[1], other[1])


def test_the_thread_count_is_recorded(tiny_data_dir, tmp_path):
    _train(tiny_data_dir, tmp_path / "run", max_steps=1)
    assert (
        json.loads((tmp_path / "run" / TRAIN_RESULTS_FILE).read_text())["torch_threads"]
        == torch.get_num_threads()
        == 1
    )
