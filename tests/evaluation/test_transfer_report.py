"""The transfer study's report: the command it prints reproduces the study's settings, and a file that is not a
study's results is refused naming the path and what is missing."""

import json
import runpy
import shlex
from pathlib import Path

import pytest
from gato.evaluation.transfer_report import read_results, study_command

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "transfer_study.py"


@pytest.mark.parametrize(
    "flags",
    [
        ["--learning-rate", "0.0003", "--warmup-steps", "30"],
        ["--lora", "--seed", "3", "--batch-size", "4", "--eval-max-steps", "50"],
        ["--train-overrides", "weight_decay=0.01,num_workers=0"],
    ],
)
def test_the_study_command_reproduces_the_recorded_settings(tmp_path, flags):
    study = runpy.run_path(str(SCRIPT))
    argv = ["--model", str(tmp_path / "m"), "--data", str(tmp_path / "d"), "--episodes", "20,5"]
    argv += ["--max-steps", "300", "--out", str(tmp_path / "o"), *flags]
    tasks = ["cartpole", "acrobot"]
    settings = study["study_settings"](study["parse_args"](argv), tasks, [5, 20])
    command = shlex.split(study_command(settings, model=str(tmp_path / "m"), data=str(tmp_path / "d")))
    assert command[:2] == ["python", "scripts/transfer_study.py"]
    replayed = study["parse_args"](command[2:])
    assert study["study_settings"](replayed, replayed.tasks.split(","), [5, 20]) == settings
    assert replayed.tasks == "cartpole,acrobot" and replayed.out == "OUT"


@pytest.mark.parametrize(
    "content, message",
    [
        ("{", "not valid JSON"),
        ("[1]", "expected a JSON object"),
        (json.dumps({"tasks": {}}), r"missing settings\)"),
        (json.dumps({"settings": {"tasks": []}, "tasks": {}}), "missing settings.episodes, settings.max_steps"),
    ],
)
def test_a_file_that_is_not_a_study_is_refused_naming_it(tmp_path, content, message):
    assert read_results(tmp_path) is None  # no study here
    (tmp_path / "transfer.json").write_text(content)
    with pytest.raises(ValueError, match=str(tmp_path / "transfer.json") + ": .*" + message):
        read_results(tmp_path)
