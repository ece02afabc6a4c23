"""`gato train --init-from DIR`: the run starts from a trained folder's weights, config and processor; fewer episodes of
a task (`task_episodes`); LoRA adapters merged into a plain model folder (`lora_rank`)."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
import yaml
from gato.training.checkpoints import CheckpointError
from gato.training.config import TrainingConfig
from gato.training.init_from import init_model_settings
from gato.training.lora import LORA_TARGET_MODULES
from gato.training.mixture import split_sources
from gato.training.run_training import (
    TRAIN_RESULTS_FILE,
    TRAINING_CONFIG_FILE,
    build_model,
    build_model_config,
    load_data,
    run_training,
    select_task_episodes,
)
from safetensors.torch import load_file

from gato.cli import main

TINY = dict(
    batch_size=2,
    max_length=64,
    learning_rate=3e-3,
    warmup_steps=0,  # a first step at learning rate 0 would leave the weights as they were
    eval_batches=1,
    num_workers=0,
    save_steps=100,
    report_to="none",
)


def _config(data, output_dir, **overrides) -> TrainingConfig:
    return TrainingConfig(**{**TINY, "data": data, "output_dir": str(output_dir), "max_steps": 2, **overrides})


def _init_config(data, base_dir, output_dir, **overrides) -> TrainingConfig:
    """Fine-tune pendulum only from ``base_dir``, the model settings filled from it as `gato train` fills them."""
    settings = {**init_model_settings(base_dir), "task_weights": {"pendulum": 1.0}, "default_weight": 0.0}
    return _config(data, output_dir, init_from=base_dir, **{**settings, **overrides})


def _weights(folder) -> dict[str, torch.Tensor]:
    return load_file(f"{folder}/model.safetensors")


def test_init_from_starts_at_the_folders_weights_and_leaves_them_after_one_step(tiny_data_dir, base_dir, tmp_path):
    config = _init_config(tiny_data_dir, base_dir, tmp_path / "ft", max_steps=1)
    model = build_model(config, build_model_config(config))
    saved = _weights(base_dir)
    state = model.state_dict()
    assert all(torch.equal(state[name], tensor) for name, tensor in saved.items())

    run_training(config)
    trained = _weights(tmp_path / "ft")
    assert trained.keys() == saved.keys()
    assert any(not torch.equal(trained[name], saved[name]) for name in saved)
    # The output knows the task trained now and the one the init model learnt.
    assert set(json.loads((tmp_path / "ft" / "task_specs.json").read_text())) == {"cartpole", "pendulum"}
    assert json.loads((tmp_path / "ft" / TRAIN_RESULTS_FILE).read_text())["init_from"] == base_dir
    assert yaml.safe_load((tmp_path / "ft" / TRAINING_CONFIG_FILE).read_text())["init_from"] == base_dir


def test_a_model_setting_that_disagrees_with_the_folder_is_refused_naming_the_field(tiny_data_dir, base_dir, tmp_path):
    config = _init_config(tiny_data_dir, base_dir, tmp_path / "ft", model_overrides={"hidden_size": 32})
    with pytest.raises(ValueError, match=r"hidden_size: 64 in .*base, 32 from the run's settings"):
        build_model_config(config)
    with pytest.raises(ValueError, match="max_position_embeddings: 64 in"):
        build_model_config(_init_config(tiny_data_dir, base_dir, tmp_path / "ft", max_length=96))


def test_a_missing_or_damaged_init_folder_is_named(tiny_data_dir, base_dir, tmp_path):
    missing = tmp_path / "nowhere"
    with pytest.raises(ValueError, match=f"init_from: {missing} is missing"):
        build_model_config(_config(tiny_data_dir, tmp_path / "a", init_from=str(missing)))
    damaged = tmp_path / "damaged"
    shutil.copytree(base_dir, damaged)
    weights = damaged / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(ValueError, match=f"init_from: .*{weights}: changed"):
        build_model_config(_init_config(tiny_data_dir, str(damaged), tmp_path / "b"))


def test_cli_fills_the_model_settings_from_the_folder_and_refuses_a_contrary_preset(
    tiny_data_dir, base_dir, tmp_path, capsys
):
    common = ["train", "--data", tiny_data_dir, "--init-from", base_dir, "--max-steps", "1", "--batch-size", "2"]
    common += ["--report-to", "none", "--num-workers", "0", "--task-weights", "pendulum=1", "--default-weight", "0"]
    assert main([*common, "--output-dir", str(tmp_path / "ok")]) == 0
    written = TrainingConfig.from_yaml(tmp_path / "ok" / TRAINING_CONFIG_FILE)
    assert (written.preset, written.max_length, written.init_from) == ("gato-tiny", 64, base_dir)
    capsys.readouterr()
    assert main([*common, "--output-dir", str(tmp_path / "no"), "--preset", "gato-79m"]) != 0
    assert "hidden_size: 64 in" in capsys.readouterr().err


def test_resume_continues_an_init_run_from_its_own_checkpoint_and_refuses_another_init(
    tiny_data_dir, base_dir, tmp_path
):
    uninterrupted = run_training(_init_config(tiny_data_dir, base_dir, tmp_path / "a", max_steps=4, save_steps=2))
    killed = _init_config(tiny_data_dir, base_dir, tmp_path / "b", max_steps=4, save_steps=2)
    run_training(killed, stop_after_steps=3)
    resumed = run_training(killed.with_overrides(resume=True))
    assert resumed.start_step == 2
    assert resumed.losses == pytest.approx(uninterrupted.losses[2:], rel=1e-6, abs=1e-6)

    moved = tmp_path / "other_base"
    shutil.copytree(base_dir, moved)
    with pytest.raises(CheckpointError, match=f"init_from: '{base_dir}' → '{moved}'"):
        run_training(_init_config(tiny_data_dir, str(moved), tmp_path / "b", max_steps=4, save_steps=2, resume=True))


def test_task_episodes_keeps_the_first_k_episodes_of_the_training_split(tiny_data_dir):
    sources, _ = split_sources(load_data(tiny_data_dir), validation_fraction=0.05)
    before = {source.name: source for source in sources}
    after = {source.name: source for source in select_task_episodes(sources, {"pendulum": 1})}
    assert len(before["pendulum"].dataset) == 2 and len(after["pendulum"].dataset) == 1
    assert after["pendulum"].dataset[0].to_pylist() == before["pendulum"].dataset[0].to_pylist()
    assert len(after["cartpole"].dataset) == len(before["cartpole"].dataset)


def test_task_episodes_larger_than_the_split_or_of_no_task_is_refused(tiny_data_dir):
    sources, _ = split_sources(load_data(tiny_data_dir), validation_fraction=0.05)
    with pytest.raises(ValueError, match="task_episodes: pendulum=3, but its training split holds 2 episodes"):
        select_task_episodes(sources, {"pendulum": 3})
    with pytest.raises(ValueError, match="no episode dataset named 'pendulm'"):
        select_task_episodes(sources, {"pendulm": 1})
    with pytest.raises(ValueError, match="task_episodes: pendulum must be a whole number of episodes ≥ 1"):
        TrainingConfig(task_episodes={"pendulum": 0})


def test_task_episodes_is_what_the_run_trains_on(tiny_data_dir, base_dir, tmp_path):
    run_training(_init_config(tiny_data_dir, base_dir, tmp_path / "ft", max_steps=1, task_episodes={"pendulum": 1}))
    assert json.loads((tmp_path / "ft" / TRAIN_RESULTS_FILE).read_text())["train_episodes"] == {"pendulum": 1}


def test_lora_run_saves_a_plain_folder_where_only_the_adapted_projections_changed(tiny_data_dir, base_dir, tmp_path):
    from transformers import AutoModelForCausalLM

    run_training(_init_config(tiny_data_dir, base_dir, tmp_path / "lora", max_steps=3, lora_rank=4))
    model = AutoModelForCausalLM.from_pretrained(tmp_path / "lora")
    saved = _weights(base_dir)
    merged = model.state_dict()
    assert not any("lora" in name for name in merged)
    changed = {name for name in saved if not torch.equal(merged[name], saved[name])}
    adapted = {name for name in saved if any(f".{module}." in name for module in LORA_TARGET_MODULES)}
    assert changed and changed <= adapted
    assert all(name.endswith(".weight") for name in changed)  # the adapters add to weights, never to biases


def test_settings_written_before_the_new_fields_existed_still_match_their_defaults():
    from gato.training.checkpoints import config_differences

    wanted = TrainingConfig(data="d").to_dict()
    older = {k: v for k, v in wanted.items() if k not in ("init_from", "task_episodes", "lora_rank")}
    assert config_differences(older, wanted) == []  # an older checkpoint resumes, an older `gato run` folder is done
    assert config_differences(older, {**wanted, "init_from": "runs/base"}) == ["init_from: '' → 'runs/base'"]
    assert config_differences(older, wanted, absent={}) == [
        "init_from: (absent) → ''",
        "lora_rank: (absent) → 0",
        "task_episodes: (absent) → {}",
    ]


def test_lora_under_deepspeed_is_refused(tiny_data_dir, base_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("ACCELERATE_USE_DEEPSPEED", "true")
    config = _init_config(tiny_data_dir, base_dir, tmp_path / "ds", lora_rank=4)
    with pytest.raises(ValueError, match="lora_rank: LoRA runs without DeepSpeed only"):
        build_model(config, build_model_config(config))


def test_a_lora_run_resumes_exactly_from_its_checkpoint(tiny_data_dir, base_dir, tmp_path):
    settings = dict(max_steps=4, save_steps=2, lora_rank=4)
    uninterrupted = run_training(_init_config(tiny_data_dir, base_dir, tmp_path / "a", **settings))
    killed = _init_config(tiny_data_dir, base_dir, tmp_path / "b", **settings)
    run_training(killed, stop_after_steps=3)
    resumed = run_training(killed.with_overrides(resume=True))
    assert resumed.start_step == 2
    assert resumed.losses == pytest.approx(uninterrupted.losses[2:], rel=1e-6, abs=1e-6)
    a, b = _weights(tmp_path / "a"), _weights(tmp_path / "b")
    assert all(torch.equal(a[name], b[name]) for name in a)
