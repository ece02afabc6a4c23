"""Bad files, folders and numbers on the command line: one clear line naming the path (or flag) and what was
expected, exit status 2, before any long work (docs/RELIABILITY.md, "The command line")."""

import json

import numpy as np
import pytest
from datasets import Dataset, DatasetDict
from safetensors.numpy import save_file

from gato.cli import build_parser, main
from gato.commands import eval as eval_command
from gato.inputs import refuse, writable_folder


@pytest.fixture
def data_dir(tmp_path):
    path = tmp_path / "data"
    DatasetDict({"text": Dataset.from_dict({"text": ["the agent acts"] * 4})}).save_to_disk(str(path))
    return path


@pytest.fixture
def model_dir(tmp_path):
    """What the checks read of a model folder: a Gato config.json and a safetensors header."""
    path = tmp_path / "model"
    path.mkdir()
    (path / "config.json").write_text(json.dumps({"model_type": "gato"}))
    save_file({"weight": np.zeros((2, 2), dtype=np.float32)}, str(path / "model.safetensors"))
    return path


@pytest.fixture
def a_file(tmp_path):
    path = tmp_path / "a_file.txt"
    path.write_text("not a folder\n")
    return path


def _error_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err  # one line, no traceback
    return err


def _train(data, out, *more):
    return ["train", "--data", str(data), "--output-dir", str(out), "--max-steps", "1", "--report-to", "none", *more]


def test_train_into_an_output_dir_that_is_a_file_is_refused_before_training(data_dir, a_file, capsys):
    assert main(_train(data_dir, a_file)) == 2
    assert (
        _error_line(capsys)
        == f"gato train: {a_file}: is a file (expected the output folder: model, checkpoints, logs)"
    )
    assert a_file.read_text() == "not a folder\n"


def test_train_into_a_folder_below_a_file_is_refused(data_dir, a_file, capsys):
    assert main(_train(data_dir, a_file / "run")) == 2
    assert f"{a_file / 'run'}: cannot be created: {a_file} is a file" in _error_line(capsys)


@pytest.mark.parametrize(
    "case, expected",
    [
        ("missing", "not found (expected a `gato data generate` folder"),
        ("file", "is a file, not a folder (expected a `gato data generate` folder"),
        ("no_index", "has no dataset_dict.json"),
        ("corrupt_index", "dataset_dict.json: is not valid JSON"),
        ("missing_split", "is missing or incomplete (no state.json) (expected the split 'text'"),
    ],
)
def test_train_on_a_missing_or_broken_data_folder_names_it(case, expected, data_dir, a_file, tmp_path, capsys):
    data = {"missing": tmp_path / "nowhere", "file": a_file, "no_index": tmp_path}.get(case, data_dir)
    if case == "corrupt_index":
        (data_dir / "dataset_dict.json").write_text('{"splits": [')
    if case == "missing_split":
        (data_dir / "text" / "state.json").unlink()
    assert main(_train(data, tmp_path / "run")) == 2
    line = _error_line(capsys)
    assert line.startswith("gato train: ") and expected in line and str(tmp_path) in line
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    "content, expected",
    [
        (None, "not found"),
        ("max_steps: [1, 2\n", "is not valid YAML at line 2, column 1"),
        ("- max_steps\n", "holds a YAML list, not a mapping"),
        ("max_stepz: 3\n", "unknown training config field(s) ['max_stepz']"),
    ],
)
def test_train_with_a_bad_config_file_names_it(content, expected, data_dir, tmp_path, capsys):
    config = tmp_path / "run.yaml"
    if content is not None:
        config.write_text(content)
    assert main(_train(data_dir, tmp_path / "run", "--config", str(config))) == 2
    line = _error_line(capsys)
    assert expected in line and (content is not None and "unknown" in expected or str(config) in line)


def test_a_tracker_that_is_not_installed_is_refused_at_start(data_dir, tmp_path, capsys, monkeypatch):
    import importlib.util

    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "wandb" else real_find_spec(name, *a)
    )
    assert main(_train(data_dir, tmp_path / "run", "--report-to", "wandb")) == 2
    assert (
        "report_to: the 'wandb' tracker is not installed (pip install wandb), or pass --report-to none"
        in _error_line(capsys)
    )
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    "case, expected",
    [
        ("missing", "not found (expected a model folder written by `gato train` or `gato run`)"),
        ("file", "is a file, not a folder"),
        ("no_config", "config.json: not found"),
        ("bad_config", "config.json: is not valid JSON"),
        ("other_model", "config.json: is not a Gato config"),
        ("no_weights", "model.safetensors: not found"),
        ("truncated_weights", "model.safetensors: is not a readable safetensors file"),
    ],
)
def test_eval_of_a_missing_or_broken_model_folder_names_it(case, expected, model_dir, a_file, tmp_path, capsys):
    model = {"missing": tmp_path / "nowhere", "file": a_file}.get(case, model_dir)
    if case == "no_config":
        (model_dir / "config.json").unlink()
    if case == "bad_config":
        (model_dir / "config.json").write_text("{model_type: gato")
    if case == "other_model":
        (model_dir / "config.json").write_text(json.dumps({"model_type": "llama"}))
    if case == "no_weights":
        (model_dir / "model.safetensors").unlink()
    if case == "truncated_weights":
        weights = model_dir / "model.safetensors"
        weights.write_bytes(weights.read_bytes()[:40])
    assert main(["eval", "--model", str(model), "--tasks", "cartpole", "--output-dir", str(tmp_path / "eval")]) == 2
    line = _error_line(capsys)
    assert line.startswith(f"gato eval: {tmp_path}") and expected in line
    assert not (tmp_path / "eval").exists()


def test_eval_with_a_file_for_data_or_output_dir_names_it(model_dir, a_file, tmp_path, capsys):
    assert main(["eval", "--model", str(model_dir), "--data", str(a_file)]) == 2
    assert f"{a_file}: is a file, not a folder" in _error_line(capsys)
    assert main(["eval", "--model", str(model_dir), "--output-dir", str(a_file)]) == 2
    assert f"{a_file}: is a file (expected the results folder)" in _error_line(capsys)


@pytest.mark.parametrize("temperature, do_sample", [(None, False), ("0", False), ("0.7", True)])
def test_temperature_zero_is_greedy(temperature, do_sample, model_dir):
    argv = ["eval", "--model", str(model_dir), *(["--temperature", temperature] if temperature else [])]
    config = eval_command.config_from_args(build_parser("eval").parse_args(argv))
    assert config.acting.do_sample is do_sample
    assert config.acting.temperature == (float(temperature) if temperature else 1.0)


@pytest.mark.parametrize(
    "argv, flag",
    [
        (["run", "--output-dir", "x", "--max-steps", "-1"], "--max-steps"),
        (["run", "--eval-episodes", "-3"], "--eval-episodes"),
        (["train", "--max-steps", "-5"], "--max-steps"),
        (["train", "--learning-rate", "nan"], "--learning-rate"),
        (["eval", "--model", "m", "--prompt-tokens", "-1"], "--prompt-tokens"),
        (["eval", "--model", "m", "--episodes", "-2"], "--episodes"),
        (["eval", "--model", "m", "--temperature", "-0.5"], "--temperature"),
        (["eval", "--model", "m", "--max-steps", "0"], "--max-steps"),
        (["data", "generate", "--episodes-per-task", "-1", "--out", "x"], "--episodes-per-task"),
        (["data", "generate", "--episodes-per-task", "1", "--out", "x", "--threads", "-2"], "--threads"),
    ],
)
def test_negative_or_non_finite_numbers_are_refused_naming_the_flag(argv, flag, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert f"error: argument {flag}: expected a finite number ≥ {1 if argv[-1] == '0' else 0}" in err


def test_run_refuses_an_evaluation_cut_at_zero_steps(tmp_path, capsys):
    assert main(["run", "--output-dir", str(tmp_path / "out"), "--eval-max-steps", "0"]) == 2
    assert _error_line(capsys) == "gato run: eval.max_steps (--eval-max-steps): expected ≥ 1 or none, got 0"
    assert not (tmp_path / "out").exists()


def test_run_refuses_bad_paths_before_any_stage(a_file, tmp_path, capsys):
    assert main(["run", "--output-dir", str(a_file)]) == 2
    assert _error_line(capsys) == f"gato run: {a_file}: is a file (expected the Hub-ready output folder)"
    assert main(["run", "--output-dir", str(tmp_path / "out"), "--data-dir", str(a_file)]) == 2
    assert f"{a_file}: is a file (expected the data folder)" in _error_line(capsys)
    bad_yaml = tmp_path / "gpu.yaml"
    bad_yaml.write_text("batch_size: : 3\n")
    assert main(["run", "--output-dir", str(tmp_path / "out"), "--training-config", str(bad_yaml)]) == 2
    assert f"{bad_yaml}: is not valid YAML" in _error_line(capsys)
    assert not (tmp_path / "out").exists()


def test_data_generate_and_push_refuse_bad_paths(a_file, tmp_path, capsys):
    assert main(["data", "generate", "--tasks", "cartpole", "--episodes-per-task", "1", "--out", str(a_file)]) == 2
    assert f"{a_file}: is a file (expected the output folder of the DatasetDict)" in _error_line(capsys)
    assert (
        main(
            [
                "data",
                "generate",
                "--tasks",
                "cartpole",
                "--episodes-per-task",
                "1",
                "--out",
                str(tmp_path / "d"),
                "--dagger-model",
                str(tmp_path / "no_model"),
            ]
        )
        == 2
    )
    assert f"{tmp_path / 'no_model'}: not found (expected a model folder" in _error_line(capsys)
    assert main(["push", str(tmp_path / "no_run"), "--repo-id", "a/b", "--dry-run"]) == 2
    assert f"{tmp_path / 'no_run'}: not found" in _error_line(capsys)


def test_writable_folder_accepts_a_new_folder_below_an_existing_one_and_creates_nothing(tmp_path):
    assert writable_folder(tmp_path / "a" / "b", "x") == tmp_path / "a" / "b"
    assert not (tmp_path / "a").exists()


@pytest.mark.parametrize(
    "error",
    [ValueError("task_weights: no dataset named ['cartpol']"), KeyError("task_weights: no dataset named ['cartpol']")],
)
def test_every_command_refuses_with_one_line_and_status_2(error, capsys):
    # One helper prints every command's refusal: the command, then the message (a KeyError's without its quotes).
    assert refuse("gato train", error) == 2
    assert capsys.readouterr().err == "gato train: task_weights: no dataset named ['cartpol']\n"


def test_data_generate_with_no_workers_names_only_the_flag_that_was_given(tmp_path, capsys):
    argv = ["data", "generate", "--tasks", "cartpole", "--episodes-per-task", "1", "--out", str(tmp_path / "d")]
    assert main([*argv, "--workers", "0"]) == 2
    assert _error_line(capsys) == "gato data generate: workers: expected ≥ 1, got 0"
    assert not (tmp_path / "d").exists()


def test_data_generate_with_empty_tasks_is_refused_not_read_as_the_default_suite(tmp_path, capsys):
    argv = ["data", "generate", "--tasks", " ", "--episodes-per-task", "1", "--out", str(tmp_path / "d")]
    assert main(argv) == 2
    assert _error_line(capsys) == (
        "gato data generate: tasks (--tasks): expected a suite, a domain or task names, got an empty string"
    )
    assert not (tmp_path / "d").exists()
