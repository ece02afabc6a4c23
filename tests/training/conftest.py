"""A tiny generated data folder shared by the training tests: two control tasks, captions and a little text."""

from __future__ import annotations

import pytest
from datasets import Dataset, DatasetDict, load_from_disk
from gato.episodes.generate import generate

TEXT = [
    "the agent reads a mission and acts in the world",
    "a generalist agent plays games, captions images and chats with one set of weights",
    "tokens from text, images and actions share one sequence",
    "the separator token sits between an observation and its action",
]


@pytest.fixture(scope="session")
def tiny_data_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("data") / "tiny"
    generate("cartpole,pendulum", episodes_per_task=3, out=out, seed=0, captions=20, progress=False)
    data = dict(load_from_disk(str(out)))
    # A small text corpus in the schema `gato data generate --text` writes (column `text`).
    data["text"] = Dataset.from_dict({"text": TEXT * 3})
    data["text_validation"] = Dataset.from_dict({"text": TEXT[:2]})
    combined = out.parent / "tiny_with_text"
    DatasetDict(data).save_to_disk(str(combined))
    return str(combined)


@pytest.fixture(scope="session")
def base_dir(tiny_data_dir, tmp_path_factory):
    """A trained folder that learnt cartpole only (2 steps of gato-tiny at context 64): what `--init-from` and
    `gato finetune` start from."""
    from gato.training.config import TrainingConfig
    from gato.training.run_training import run_training

    out = tmp_path_factory.mktemp("base") / "base"
    config = TrainingConfig(
        data=tiny_data_dir,
        output_dir=str(out),
        max_steps=2,
        batch_size=2,
        max_length=64,
        learning_rate=3e-3,
        warmup_steps=0,
        eval_batches=1,
        num_workers=0,
        save_steps=100,
        report_to="none",
        task_weights={"cartpole": 1.0},
        default_weight=0.0,
    )
    run_training(config)
    return str(out)
