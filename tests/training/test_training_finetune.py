"""`gato finetune`: one task, K episodes, from a trained folder (full weights or LoRA) or the same size from scratch."""

from __future__ import annotations

import json

import pytest
import torch
from gato.training.config import TrainingConfig
from gato.training.finetune import FinetuneConfig, finetune_training_config
from gato.training.init_from import architecture_fields
from gato.training.lora import LORA_TARGET_MODULES
from gato.training.run_training import TRAIN_RESULTS_FILE, build_model, build_model_config
from safetensors.torch import load_file

from gato import GatoConfig, GatoForCausalLM
from gato.cli import main


def _finetune(data, model, out, *extra: str) -> int:
    return main(
        [
            "finetune",
            "--model",
            model,
            "--task",
            "pendulum",
            "--episodes",
            "2",
            "--data",
            data,
            "--max-steps",
            "3",
            "--output-dir",
            str(out),
            "--batch-size",
            "2",
            "--learning-rate",
            "3e-3",
            "--warmup-steps",
            "0",
            "--eval-batches",
            "1",
            "--num-workers",
            "0",
            "--report-to",
            "none",
            *extra,
        ]
    )


def _loaded_weights(folder) -> dict[str, torch.Tensor]:
    """The folder as `AutoModelForCausalLM` loads it (every loader reads the same plain model folder)."""
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(folder).state_dict()


def _changed(weights: dict[str, torch.Tensor], base: dict[str, torch.Tensor]) -> set[str]:
    return {name for name in base if not torch.equal(weights[name], base[name])}


def test_finetune_trains_one_task_on_k_episodes_from_the_folder(tiny_data_dir, base_dir, tmp_path):
    assert _finetune(tiny_data_dir, base_dir, tmp_path / "ft") == 0
    results = json.loads((tmp_path / "ft" / TRAIN_RESULTS_FILE).read_text())
    assert (results["global_step"], results["train_episodes"], results["init_from"]) == (3, {"pendulum": 2}, base_dir)
    assert set(json.loads((tmp_path / "ft" / "task_specs.json").read_text())) == {"cartpole", "pendulum"}
    base = load_file(f"{base_dir}/model.safetensors")
    changed = _changed(_loaded_weights(tmp_path / "ft"), base)
    # Full fine-tuning moves weights outside the adapted projections too (norms, embeddings).
    assert any(not any(f".{module}." in name for module in LORA_TARGET_MODULES) for name in changed)


def test_finetune_with_lora_changes_only_the_adapted_projections(tiny_data_dir, base_dir, tmp_path):
    assert _finetune(tiny_data_dir, base_dir, tmp_path / "lora", "--lora", "--lora-rank", "4") == 0
    weights = _loaded_weights(tmp_path / "lora")
    assert not any("lora" in name for name in weights)  # merged: a plain GatoForCausalLM folder
    changed = _changed(weights, load_file(f"{base_dir}/model.safetensors"))
    assert changed
    assert all(any(f".{module}.weight" in name for module in LORA_TARGET_MODULES) for name in changed)


def test_finetune_from_scratch_trains_the_folders_size_from_a_fresh_initialisation(tiny_data_dir, base_dir, tmp_path):
    train = TrainingConfig(data=tiny_data_dir, output_dir=str(tmp_path / "scratch"), max_steps=3, report_to="none")
    config = finetune_training_config(
        FinetuneConfig(model=base_dir, task="pendulum", episodes=2, from_scratch=True), train
    )
    base = load_file(f"{base_dir}/model.safetensors")
    model_config = build_model_config(config)
    at_step_0 = build_model(config, model_config).state_dict()
    torch.manual_seed(config.seed)
    fresh = GatoForCausalLM(model_config).state_dict()  # the folder's size, initialised as `gato train` does
    saved = GatoConfig.from_pretrained(base_dir)
    assert config.init_from == ""
    assert all(getattr(model_config, name) == getattr(saved, name) for name in architecture_fields())
    assert _changed(at_step_0, fresh) == set()
    # Not the folder's weights: every weight its training moved is back at a fresh initialisation.
    moved = _changed(fresh, base)
    assert "model.embed_tokens.weight" in moved and moved <= _changed(at_step_0, base)

    assert _finetune(tiny_data_dir, base_dir, tmp_path / "scratch", "--from-scratch") == 0
    results = json.loads((tmp_path / "scratch" / TRAIN_RESULTS_FILE).read_text())
    assert (results["init_from"], results["train_episodes"]) == (None, {"pendulum": 2})
    assert _loaded_weights(tmp_path / "scratch").keys() >= base.keys()
    assert set(json.loads((tmp_path / "scratch" / "task_specs.json").read_text())) == {"pendulum"}


def test_finetune_refuses_lora_from_scratch_and_too_many_episodes(tiny_data_dir, base_dir, tmp_path, capsys):
    with pytest.raises(ValueError, match="lora / from_scratch"):
        FinetuneConfig(model=base_dir, task="pendulum", episodes=2, lora=True, from_scratch=True)
    assert _finetune(tiny_data_dir, base_dir, tmp_path / "a", "--lora", "--from-scratch") != 0
    assert "lora / from_scratch" in capsys.readouterr().err
    assert main(["finetune", "--model", base_dir, "--task", "pendulum", "--episodes", "5", "--data", tiny_data_dir,
                 "--output-dir", str(tmp_path / "b"), "--report-to", "none", "--max-steps", "1"]) != 0  # fmt: skip
    assert "task_episodes: pendulum=5, but its training split holds 2 episodes" in capsys.readouterr().err
