"""oneDNN's primitive cache is bounded for training and evaluation (training/throughput.py says why)."""

from __future__ import annotations

import os

from gato.training.config import TrainingConfig
from gato.training.run_training import run_training
from gato.training.throughput import ONEDNN_CACHE_CAPACITY, ONEDNN_CACHE_VARIABLE, bound_onednn_primitive_cache


def test_the_bound_is_set_unless_the_environment_already_sets_one(monkeypatch):
    monkeypatch.delenv(ONEDNN_CACHE_VARIABLE, raising=False)
    assert bound_onednn_primitive_cache() == str(ONEDNN_CACHE_CAPACITY)
    assert os.environ[ONEDNN_CACHE_VARIABLE] == str(ONEDNN_CACHE_CAPACITY)
    monkeypatch.setenv(ONEDNN_CACHE_VARIABLE, "8")  # the user's choice wins
    assert bound_onednn_primitive_cache() == "8"
    assert os.environ[ONEDNN_CACHE_VARIABLE] == "8"


def test_run_training_bounds_the_cache(tiny_data_dir, tmp_path, monkeypatch):
    monkeypatch.delenv(ONEDNN_CACHE_VARIABLE, raising=False)
    config = TrainingConfig(
        data=tiny_data_dir,
        output_dir=str(tmp_path / "run"),
        max_steps=1,
        batch_size=2,
        max_length=64,
        warmup_steps=0,
        eval_batches=1,
        num_workers=0,
        save_steps=100,
        report_to="none",
    )
    run_training(config)
    assert os.environ.get(ONEDNN_CACHE_VARIABLE) == str(ONEDNN_CACHE_CAPACITY)
