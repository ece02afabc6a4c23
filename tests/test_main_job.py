"""`gato run` end to end on a micro setting: the Hub-ready folder's layout, its card, resuming by skipping finished
stages, and loading the result through the Auto classes and the pipeline in a fresh process."""

import dataclasses
import json
import subprocess
import sys

import pytest
from gato.hub_cards import upload_plan, validate_model_card

from gato.cli import main
from gato.main_job import DataSettings, TrainSettings, quick_config, training_is_done

MICRO = [
    "--quick",  # the smoke run's settings under the micro ones: independent of the full main job's defaults
    "--tasks",
    "cartpole,pendulum",
    "--episodes-per-task",
    "2",
    "--captions",
    "10",
    "--no-text",
    "--max-steps",
    "3",
    "--max-length",
    "96",
    "--batch-size",
    "2",
    "--eval-episodes",
    "1",
    "--eval-captions",
    "1",
    "--eval-max-steps",
    "8",
    "--workers",
    "1",
    "--threads",
    "1",
    "--no-progress",
]
HUB_FILES = {
    "config.json",
    "model.safetensors",
    "generation_config.json",
    "processor_config.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "configuration_gato.py",
    "modeling_gato.py",
    "acting.py",
    "loss_gato.py",
    "pipeline_gato.py",
    "token_layout.py",
    "training_config.yaml",
    "eval_results.json",
    "eval_results.md",
    "normalized_scores.png",
    "performance_profile.png",
    "README.md",
    "main_job.json",
    "task_specs.json",
    "train_results.json",
    "manifest.json",
    # the processor's remote code (GatoProcessor.save_pretrained)
    "processing_gato.py",
    "image_processing_gato.py",
    "episode_layout.py",
    "tokenize_values.py",
    "tokenization_gato.py",
    "task_spec.py",
}


def _statuses(out):
    job = json.loads((out / "main_job.json").read_text())
    return {name: job[name]["status"] for name in ("data", "train", "eval", "card")}


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("main") / "run"
    assert main(["run", "--output-dir", str(out), *MICRO]) == 0
    return out


def test_folder_is_hub_ready_with_data_in_a_subfolder(run_dir):
    assert set(upload_plan(run_dir)) == HUB_FILES
    assert {"cartpole", "pendulum", "captions", "captions_validation"} <= {
        p.name for p in (run_dir / "data").iterdir()
    }
    assert (run_dir / "checkpoints").is_dir()
    assert _statuses(run_dir) == {"data": "done", "train": "done", "eval": "done", "card": "done"}
    job = json.loads((run_dir / "main_job.json").read_text())
    assert job["train"]["details"]["steps"] == 3 and job["train"]["cpu_seconds"] > 0


def test_the_data_stage_records_the_plan_it_ran(run_dir):
    """--episodes-per-task 2 replaced the data plan: 2 clean episodes of each task, --captions 10, --no-text."""
    job = json.loads((run_dir / "main_job.json").read_text())
    assert job["data"]["details"]["data_plan"] == {"episodes_per_task": 2, "captions": 10, "text": False, "groups": []}
    assert job["data"]["details"]["datasets"]["cartpole"] == 2 and "text" not in job["data"]["details"]["datasets"]
    card = (run_dir / "data" / "cartpole" / "README.md").read_text()  # the hand-written call it stands for
    assert "gato data generate --tasks cartpole,pendulum --episodes-per-task 2" in card and "--captions 10" in card


def test_card_holds_the_evaluation_of_the_run(run_dir):
    results = json.loads((run_dir / "eval_results.json").read_text())
    assert [task["task"] for task in results["tasks"]] == ["cartpole", "pendulum"] and results["captions"][
        "samples"
    ] == 1
    evals = validate_model_card(run_dir)
    assert {r.dataset_type for r in evals} >= {
        "cartpole",
        "pendulum",
        "gato-suite/classic_control",
        "gato-suite",
        "gato-captions",
    }
    card = (run_dir / "README.md").read_text()
    assert "normalized_scores.png" in card and "| train | done |" in card and "max_steps: 3" in card


def test_stage_summary_shows_peak_resident_memory_in_mb(run_dir):
    """main_job.json, the log and the card give each stage's peak RSS beside its times: a torch process holds
    between 100 MB and the machine's memory, and the high-water mark never falls from one stage to the next."""
    import re

    job = json.loads((run_dir / "main_job.json").read_text())
    peaks = [job[name]["peak_rss_mb"] for name in ("data", "train", "eval", "card")]
    assert all(100 < peak < 64_000 for peak in peaks) and peaks == sorted(peaks)
    card = (run_dir / "README.md").read_text()
    assert "| stage | status | wall | CPU | peak RSS |" in card
    row = next(line for line in card.splitlines() if line.startswith("| train | done |"))
    assert float(re.search(r"\| ([\d,]+) MB", row).group(1).replace(",", "")) == pytest.approx(
        job["train"]["peak_rss_mb"], abs=1
    )


def test_second_run_skips_finished_stages_and_a_new_eval_setting_reruns_only_the_eval(run_dir, capsys):
    model_time = (run_dir / "model.safetensors").stat().st_mtime_ns
    assert main(["run", "--output-dir", str(run_dir), *MICRO]) == 0
    assert _statuses(run_dir) == {"data": "skipped", "train": "skipped", "eval": "skipped", "card": "done"}
    assert (run_dir / "model.safetensors").stat().st_mtime_ns == model_time
    printed = capsys.readouterr().out
    assert "gato run stages" in printed and "peak RSS" in printed and " MB" in printed
    assert main(["run", "--output-dir", str(run_dir), *MICRO, "--eval-episodes", "2"]) == 0
    assert _statuses(run_dir) == {"data": "skipped", "train": "skipped", "eval": "done", "card": "done"}
    assert json.loads((run_dir / "eval_results.json").read_text())["episodes_per_task"] == 2


def test_changed_training_settings_are_not_taken_for_finished(run_dir):
    quick = quick_config(output_dir=str(run_dir))
    data = DataSettings(episodes_per_task=2, captions=10, text=False)
    train = TrainSettings(max_steps=3, max_length=96, batch_size=2, task_weights=quick.train.task_weights)
    config = dataclasses.replace(quick, data=data, train=train)
    assert training_is_done(config.training())
    longer = dataclasses.replace(config, train=dataclasses.replace(train, max_steps=4))
    assert not training_is_done(longer.training())


def test_output_loads_through_auto_classes_and_pipeline_in_a_fresh_process(run_dir, tmp_path):
    code = (
        "import logging, gato\n"
        "logging.raiseExceptions = False\n"  # transformers' own malformed image-to-text warning, see test_pipelines.py
        "from datasets import load_from_disk\n"
        "from transformers import AutoModelForCausalLM, AutoProcessor, pipeline\n"
        f"model = AutoModelForCausalLM.from_pretrained({str(run_dir)!r})\n"
        f"processor = AutoProcessor.from_pretrained({str(run_dir)!r})\n"
        f"image = load_from_disk({str(run_dir / 'data' / 'captions_validation')!r})[0]['image']\n"
        f"caption = pipeline('image-to-text', model={str(run_dir)!r})(image, max_new_tokens=3)[0]['generated_text']\n"
        "print(type(model).__name__, type(processor).__name__, processor.max_length, type(caption).__name__)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["GatoForCausalLM", "GatoProcessor", "96", "str"]


def test_a_multi_process_launch_is_refused_before_any_work(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert main(["run", "--output-dir", str(tmp_path / "x")]) == 2
    assert "WORLD_SIZE: gato run is one process, but the launcher started 2" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_bad_settings_are_refused_naming_the_field(tmp_path, capsys):
    assert main(["run", "--output-dir", str(tmp_path / "x"), "--captions", "0", "--eval-captions", "2"]) == 2
    assert "--eval-captions" in capsys.readouterr().err
    assert main(["run", "--output-dir", str(tmp_path / "x"), "--max-steps", "0"]) == 2
    assert "max_steps" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--task-weights", "cartpol=2"], "--task-weights): no dataset named ['cartpol'] in this run"),
        (["--preset", "gato-huge"], "preset must be one of"),
        (
            ["--model-overrides", "hidden_sise=64"],
            "GatoConfig has no field 'hidden_sise' (did you mean 'hidden_size'?)",
        ),
    ],
)
def test_what_the_train_stage_would_refuse_is_refused_before_the_data_stage(flags, message, tmp_path, capsys):
    assert main(["run", "--output-dir", str(tmp_path / "x"), "--quick", *flags]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "x").exists()  # no data recorded first


def test_task_weights_may_name_a_dataset_already_in_a_shared_data_folder(tmp_path):
    from gato.main_job import DataSettings, MainJobConfig, TrainSettings

    data = tmp_path / "cache"
    data.mkdir()
    (data / "dataset_dict.json").write_text(json.dumps({"splits": ["cartpole", "lunar_lander"]}))

    def job(weights):
        return MainJobConfig(
            output_dir=str(tmp_path / "x"),
            tasks="cartpole",
            data=DataSettings(data_dir=str(data)),
            train=TrainSettings(task_weights=weights),
        )

    job({"lunar_lander": 1.0, "cartpole": 2.0}).validate()
    with pytest.raises(ValueError, match=r"no dataset named \['acrobat'\]"):
        job({"acrobat": 1.0}).validate()


# What a run's evaluation measured, without what names the machine, the folder or the wall clock.
_WALL_CLOCK = {"seconds", "actions_per_second"}


def _measured(results_file):
    results = json.loads(results_file.read_text())
    tasks = [{key: value for key, value in task.items() if key not in _WALL_CLOCK} for task in results["tasks"]]
    return {
        "tasks": tasks,
        **{key: results[key] for key in ("domains", "summary", "statistics", "captions", "captions_test", "text")},
    }


def test_two_runs_with_one_seed_evaluate_to_the_same_numbers_and_sampling_gato_eval_too(tmp_path):
    # Data, training (bit for bit at one thread count) and evaluation (seeded episodes, prompts and bootstrap) are
    # each a function of the seed, so two main jobs into two folders measure the same returns and scores.
    for name in ("a", "b"):
        assert main(["run", "--output-dir", str(tmp_path / name), *MICRO]) == 0
    first = _measured(tmp_path / "a" / "eval_results.json")
    assert first == _measured(tmp_path / "b" / "eval_results.json")
    assert [len(task["returns"]) for task in first["tasks"]] == [1, 1] and first["captions"]["samples"] == 1
    # gato eval with sampling draws its actions from a generator seeded by --seed: the same episodes again.
    sampled = [
        "--tasks",
        "cartpole,pendulum",
        "--episodes",
        "2",
        "--max-steps",
        "8",
        "--temperature",
        "1.0",
        "--threads",
        "1",
        "--no-progress",
    ]
    for name in ("a", "b"):
        assert (
            main(["eval", "--model", str(tmp_path / "a"), "--output-dir", str(tmp_path / f"sampled_{name}"), *sampled])
            == 0
        )
    assert _measured(tmp_path / "sampled_a" / "eval_results.json") == _measured(
        tmp_path / "sampled_b" / "eval_results.json"
    )
