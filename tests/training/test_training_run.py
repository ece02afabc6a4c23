"""A whole `gato train` run on a tiny mixture: the loss falls, resume is exact, the output loads through Auto classes."""

import json
import subprocess
import sys

import pytest
from gato.training.config import TrainingConfig
from gato.training.run_training import TRAIN_RESULTS_FILE, TRAINING_CONFIG_FILE, run_training

from gato.cli import main


def _config(data, output_dir, **overrides):
    settings = dict(
        preset="gato-tiny",
        data=data,
        output_dir=str(output_dir),
        max_steps=40,
        batch_size=4,
        max_length=96,
        learning_rate=3e-3,
        warmup_steps=5,
        logging_steps=5,
        eval_steps=20,
        save_steps=10,
        eval_batches=1,
        report_to="none",
    )
    settings.update(overrides)
    return TrainingConfig(**settings)


def test_tiny_model_fits_a_tiny_mixture(tiny_data_dir, tmp_path):
    result = run_training(_config(tiny_data_dir, tmp_path / "run"))
    first, last = sum(result.losses[:5]) / 5, sum(result.losses[-5:]) / 5
    assert last < 0.6 * first, result.losses
    assert set(result.validation) == {"captions", "classic_control", "text"}


def test_killed_run_resumes_with_the_same_losses(tiny_data_dir, tmp_path):
    # Captions carry image patches, whose training-mode positions draw from the RNG: resume must restore it.
    uninterrupted = run_training(_config(tiny_data_dir, tmp_path / "a", max_steps=16, save_steps=6))
    killed = run_training(_config(tiny_data_dir, tmp_path / "b", max_steps=16, save_steps=6), stop_after_steps=9)
    assert killed.step == 9
    resumed = run_training(_config(tiny_data_dir, tmp_path / "b", max_steps=16, save_steps=6, resume=True))
    assert resumed.losses == pytest.approx(uninterrupted.losses[6:], rel=1e-6, abs=1e-6)
    run = json.loads((tmp_path / "b" / TRAIN_RESULTS_FILE).read_text())
    assert (run["global_step"], run["start_step"], run["steps_this_run"]) == (16, 6, 10)


def test_cli_run_writes_a_folder_the_auto_classes_load(tiny_data_dir, tmp_path):
    out = tmp_path / "cli"
    status = main(
        [
            "train",
            "--preset",
            "gato-tiny",
            "--data",
            tiny_data_dir,
            "--max-steps",
            "3",
            "--output-dir",
            str(out),
            "--batch-size",
            "2",
            "--max-length",
            "64",
            "--report-to",
            "none",
            "--save-steps",
            "3",
        ]
    )
    assert status == 0
    assert (out / "model.safetensors").exists() and (out / TRAINING_CONFIG_FILE).exists()
    assert TrainingConfig.from_yaml(out / TRAINING_CONFIG_FILE).max_steps == 3
    run = json.loads((out / TRAIN_RESULTS_FILE).read_text())
    assert (run["global_step"], run["start_step"], run["steps_this_run"], run["processes"], run["device"]) == (
        3,
        0,
        3,
        1,
        "cpu",
    )
    assert run["wall_seconds"] >= run["step_seconds"] > run["data_wait_seconds"] >= 0
    assert set(run["validation"]) == {"captions", "classic_control", "text"} and run["final_loss"] > 0
    # A fresh process: registration by `import gato` alone must be enough to load both.
    code = (
        "import gato, torch\n"
        "from transformers import AutoModelForCausalLM, AutoProcessor\n"
        f"model = AutoModelForCausalLM.from_pretrained({str(out)!r}).eval()\n"
        f"processor = AutoProcessor.from_pretrained({str(out)!r})\n"
        "batch = processor.collate([processor.tokenize_text('go to the red ball')])\n"
        "print(type(model).__name__, type(processor).__name__, processor.max_length, model(**batch).logits.shape[-1])\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["GatoForCausalLM", "GatoProcessor", "64", "33025"]


def test_bad_flag_value_is_refused_naming_the_field(tiny_data_dir, tmp_path, capsys):
    status = main(["train", "--data", tiny_data_dir, "--max-steps", "0", "--output-dir", str(tmp_path)])
    assert status == 2
    assert "max_steps" in capsys.readouterr().err


def test_default_tracker_writes_tensorboard_events(tiny_data_dir, tmp_path):
    config = _config(tiny_data_dir, tmp_path / "tb", max_steps=2, logging_steps=1, report_to="tensorboard")
    run_training(config)
    events = list((tmp_path / "tb" / "logs").rglob("events.out.tfevents.*"))
    assert events, "no TensorBoard event file under output_dir/logs"
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    accumulator = EventAccumulator(str(events[0].parent))
    accumulator.Reload()
    assert {"train/loss", "train/lr", "train/tokens_per_s"} <= set(accumulator.Tags()["scalars"])


def test_cli_resume_with_another_batch_size_is_refused_in_one_line(tiny_data_dir, tmp_path, capsys):
    args = [
        "train",
        "--preset",
        "gato-tiny",
        "--data",
        tiny_data_dir,
        "--max-steps",
        "2",
        "--output-dir",
        str(tmp_path),
        "--batch-size",
        "2",
        "--max-length",
        "64",
        "--report-to",
        "none",
        "--save-steps",
        "1",
        "--num-workers",
        "0",
    ]
    assert main(args) == 0
    capsys.readouterr()
    assert main([*args, "--resume", "--batch-size", "4", "--learning-rate", "1e-3"]) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("gato train: --resume: the settings differ") and "\n" not in error
    assert "batch_size: 2 → 4" in error and "learning_rate: 0.0001 → 0.001" in error


def test_every_checkpoint_loads_as_a_model_folder(tiny_data_dir, tmp_path):
    """As the Trainer's checkpoints do: a checkpoint mid-run is a folder the Auto classes and `load_agent` read."""
    import torch
    from gato.episodes.manifest import read_manifest
    from transformers import AutoModelForCausalLM, AutoProcessor

    from gato.pipelines import load_agent

    out = tmp_path / "run"
    run_training(_config(tiny_data_dir, out, max_steps=6, save_steps=3, eval_steps=100))
    final = AutoModelForCausalLM.from_pretrained(out)
    last, middle = (AutoModelForCausalLM.from_pretrained(out / "checkpoints" / f"checkpoint-{s}") for s in (6, 3))
    for name, weight in final.state_dict().items():
        assert torch.equal(last.state_dict()[name], weight), name
    assert not torch.equal(middle.model.embed_tokens.weight, final.model.embed_tokens.weight)
    processor = AutoProcessor.from_pretrained(out / "checkpoints" / "checkpoint-3")
    assert processor.max_length == 96
    policy = load_agent(out / "checkpoints" / "checkpoint-3", "cartpole")
    assert policy.task.name == "cartpole"
    listed = read_manifest(out / "checkpoints" / "checkpoint-3")
    assert {"model.safetensors", "config.json", "task_specs.json", "tokenizer.json", "modeling_gato.py"} <= set(listed)
    # Like the final folder, with the code and auto_map that `trust_remote_code` needs where gato is not installed.
    checkpoint_config = json.loads((out / "checkpoints" / "checkpoint-3" / "config.json").read_text())
    assert checkpoint_config["auto_map"] == json.loads((out / "config.json").read_text())["auto_map"]


def test_evaluating_a_checkpoint_writes_beside_the_run_and_the_run_still_resumes(tiny_data_dir, tmp_path, monkeypatch):
    out = tmp_path / "run"
    run_training(_config(tiny_data_dir, out, max_steps=6, save_steps=3, eval_steps=100), stop_after_steps=3)
    checkpoint = out / "checkpoints" / "checkpoint-3"
    flags = ["--tasks", "cartpole", "--episodes", "1", "--max-steps", "5", "--no-text", "--no-progress"]
    assert main(["eval", "--model", str(checkpoint), *flags]) == 0
    assert (out / "eval" / "checkpoint-3" / "eval_results.json").is_file()
    assert not (checkpoint / "eval").exists()
    monkeypatch.chdir(checkpoint)  # `--model .` from inside it: the same place
    assert main(["eval", "--model", ".", *flags, "--episodes", "2"]) == 0
    assert json.loads((out / "eval" / "checkpoint-3" / "eval_results.json").read_text())["episodes_per_task"] == 2
    assert not (checkpoint / "eval").exists()
    resumed = run_training(_config(tiny_data_dir, out, max_steps=6, save_steps=3, eval_steps=100, resume=True))
    assert (resumed.start_step, resumed.step) == (3, 6)
