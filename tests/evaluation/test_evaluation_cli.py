"""`gato eval` end to end on a tiny saved model: the files it writes and the documented JSON fields."""

import json

import pytest
from datasets import Dataset, DatasetDict
from gato.episodes.captions import build_captions_dataset
from gato.suite.registry import resolve_tasks
from gato.suite.task_spec import TaskSpec

from gato.cli import main

TOP_LEVEL = {
    "schema_version",
    "model",
    "model_type",
    "num_parameters",
    "created",
    "gato_version",
    "device",
    "dtype",
    "processes",
    "platform",
    "episodes_per_task",
    "settings",
    "tasks",
    "domains",
    "summary",
    "statistics",
    "captions",
    "captions_test",
    "text",
}
TASK_FIELDS = {
    "task",
    "domain",
    "episodes",
    "num_envs",
    "returns",
    "lengths",
    "mean_return",
    "std_return",
    "mean_length",
    "expert_return",
    "random_return",
    "normalized_score",
    "success_rate",
    "prompt_tokens",
    "seconds",
    "actions_per_second",
    "reprefills",
    "seeds",
    "imitation",
}
SUMMARY_FIELDS = {
    "tasks",
    "tasks_scored",
    "mean_normalized_score",
    "median_normalized_score",
    "tasks_above_threshold",
    "fraction_above_threshold",
    "threshold",
}
CAPTION_FIELDS = {
    "split",
    "samples",
    "colour_accuracy",
    "shape_accuracy",
    "colour_shape_accuracy",
    "held_out_colour_shape_accuracy",
    "mention_precision",
    "scene_accuracy",
    "bleu",
    "examples",
}
TEXT_FIELDS = {"split", "documents", "sequences", "tokens", "loss", "perplexity"}


@pytest.fixture(scope="module")
def tiny_model_dir(tmp_path_factory, save_tiny_checkpoint):
    path = tmp_path_factory.mktemp("model")
    save_tiny_checkpoint(path, 64)
    return str(path)


@pytest.fixture(scope="module")
def tiny_data_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("data") / "tiny"
    captions = build_captions_dataset(2, 3, seed=0)
    DatasetDict(
        {
            "captions": captions["train"],
            "captions_validation": captions["validation"],
            "captions_test": captions["test"],
            "text_validation": Dataset.from_dict(
                {"text": ["the agent acts in the world", "a generalist agent captions images"]}
            ),
        }
    ).save_to_disk(str(path))
    return str(path)


def test_gato_eval_writes_json_markdown_and_chart_with_the_documented_fields(
    tiny_model_dir, tiny_data_dir, tmp_path, capsys
):
    out = tmp_path / "eval"
    status = main(
        [
            "eval",
            "--model",
            tiny_model_dir,
            "--tasks",
            "cartpole,pendulum",
            "--episodes",
            "2",
            "--num-envs",
            "2",
            "--max-steps",
            "20",
            "--captions",
            "2",
            "--data",
            tiny_data_dir,
            "--output-dir",
            str(out),
            "--threads",
            "1",
            "--no-progress",
        ]
    )
    assert status == 0
    results = json.loads((out / "eval_results.json").read_text())
    assert set(results) == TOP_LEVEL
    assert results["device"] == "cpu" and results["processes"] == 1  # "auto" on a machine without a GPU
    assert results["dtype"] == results["settings"]["dtype"] == "float32"  # the default, on every machine
    assert [task["task"] for task in results["tasks"]] == ["cartpole", "pendulum"]
    for task in results["tasks"]:
        assert set(task) == TASK_FIELDS and len(task["returns"]) == 2 and max(task["lengths"]) <= 20
        assert task["imitation"] is None  # --data holds no episodes of these tasks
    assert set(results["summary"]) == SUMMARY_FIELDS and results["summary"]["tasks"] == 2
    assert set(results["domains"]) == {"classic_control"}
    assert set(results["captions"]) == CAPTION_FIELDS and results["captions"]["samples"] == 2
    assert (
        results["captions"]["split"] == "captions_validation"
        and results["captions"]["held_out_colour_shape_accuracy"] is not None
    )
    assert set(results["captions_test"]) == CAPTION_FIELDS and results["captions_test"]["split"] == "captions_test"
    assert results["captions_test"]["held_out_colour_shape_accuracy"] is None  # no held-out pair in new scenes
    assert set(results["text"]) == TEXT_FIELDS and results["text"]["loss"] > 0
    assert (out / "normalized_scores.png").read_bytes()[:4] == b"\x89PNG"
    # Interval estimates over the 4 scored episodes (2 a task), seeded by --seed; and the performance profile.
    statistics = results["statistics"]
    assert statistics["all"]["episodes"] == 4 and set(statistics["domains"]) == {"classic_control"}
    assert statistics["seed"] == results["settings"]["seed"] == 0
    assert statistics["all"]["iqm"]["low"] <= statistics["all"]["iqm"]["value"] <= statistics["all"]["iqm"]["high"]
    assert (out / "performance_profile.png").read_bytes()[:4] == b"\x89PNG"
    markdown = (out / "eval_results.md").read_text()
    assert "| domain | tasks | episodes | IQM |" in markdown
    assert "| cartpole |" in markdown and "## Captions" in markdown and "## Text" in markdown
    assert "| captions_validation | 2 |" in markdown and "| captions_test | 2 |" in markdown
    assert "control tasks" in capsys.readouterr().out  # rich may shorten task names in a narrow terminal


def test_gato_eval_refuses_bad_values_naming_the_field(tiny_model_dir, tmp_path, capsys):
    assert main(["eval", "--model", tiny_model_dir, "--episodes", "0", "--output-dir", str(tmp_path)]) == 2
    assert "episodes" in capsys.readouterr().err
    assert main(["eval", "--model", tiny_model_dir, "--tasks", "no_such_task", "--output-dir", str(tmp_path)]) == 2
    assert "no_such_task" in capsys.readouterr().err
    assert main(["eval", "--model", tiny_model_dir, "--device", "gpu0", "--output-dir", str(tmp_path)]) == 2
    assert "device: expected 'auto' or a torch device" in capsys.readouterr().err


def test_gato_eval_env_of_a_model_with_only_suite_tasks_is_refused_not_replaced_by_the_default_suite(
    tiny_model_dir, tmp_path, capsys
):
    out = tmp_path / "out"
    flags = ["--episodes", "1", "--max-steps", "1", "--output-dir", str(out), "--no-progress", "--no-text"]
    assert main(["eval", "--model", tiny_model_dir, "--env", "CartPole-v1", *flags]) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("gato eval: env: the model has no task recorded in 'CartPole-v1'")
    assert len(error.splitlines()) == 1 and not out.exists()


def test_gato_eval_on_a_folder_written_by_gato_train(tmp_path, capsys):
    from gato.episodes.generate import generate

    data = tmp_path / "data"
    generate("cartpole", episodes_per_task=2, out=data, seed=0, captions=10, progress=False)
    run = tmp_path / "run"
    assert (
        main(
            [
                "train",
                "--preset",
                "gato-tiny",
                "--data",
                str(data),
                "--max-steps",
                "2",
                "--output-dir",
                str(run),
                "--batch-size",
                "2",
                "--max-length",
                "64",
                "--report-to",
                "none",
                "--save-steps",
                "2",
            ]
        )
        == 0
    )
    out = tmp_path / "eval"
    assert (
        main(
            [
                "eval",
                "--model",
                str(run),
                "--tasks",
                "cartpole",
                "--episodes",
                "2",
                "--num-envs",
                "2",
                "--max-steps",
                "10",
                "--captions",
                "1",
                "--data",
                str(data),
                "--output-dir",
                str(out),
                "--threads",
                "1",
                "--no-progress",
            ]
        )
        == 0
    )
    results = json.loads((out / "eval_results.json").read_text())
    # The prompt budget is the run's: prompt_fraction 0.25 of max_length 64 → whole 6-token cartpole steps.
    assert 0 < results["tasks"][0]["prompt_tokens"] <= 16 and results["tasks"][0]["prompt_tokens"] % 6 == 0
    assert results["captions"]["samples"] == 1 and results["text"] is None
    # --data holds cartpole: its held-out episode (the last of 2) is scored by teacher forcing.
    imitation = results["tasks"][0]["imitation"]
    assert imitation["episodes"] == 1 and imitation["steps"] > 0 and 0 <= imitation["action_accuracy"] <= 1
    # Results written into the model folder itself refresh its model card.
    assert not (run / "README.md").exists()
    assert (
        main(
            [
                "eval",
                "--model",
                str(run),
                "--tasks",
                "cartpole",
                "--episodes",
                "1",
                "--max-steps",
                "5",
                "--no-text",
                "--output-dir",
                str(run),
                "--threads",
                "1",
                "--no-progress",
            ]
        )
        == 0
    )
    card = (run / "README.md").read_text()
    assert "model-index" in card and "cartpole" in card
    # The folder names the specs it learnt; a task whose suite spec has changed since is refused, naming what changed.
    specs = json.loads((run / "task_specs.json").read_text())
    assert TaskSpec.from_dict(specs["cartpole"]) == resolve_tasks("cartpole")[0].spec
    specs["cartpole"]["observations"][0]["shape"] = [3]
    (run / "task_specs.json").write_text(json.dumps(specs))
    assert (
        main(
            [
                "eval",
                "--model",
                str(run),
                "--tasks",
                "cartpole",
                "--episodes",
                "1",
                "--no-text",
                "--output-dir",
                str(tmp_path / "refused"),
                "--threads",
                "1",
                "--no-progress",
            ]
        )
        == 2
    )
    error = capsys.readouterr().err
    assert "cartpole: observation" in error and "(3,)" in error and "(4,)" in error
    assert not (tmp_path / "refused").exists()


def test_gato_eval_static_cache_plays_the_same_episodes_and_bad_combinations_are_refused(
    tiny_model_dir, tmp_path, capsys
):
    common = [
        "eval",
        "--model",
        tiny_model_dir,
        "--tasks",
        "pendulum",
        "--episodes",
        "2",
        "--num-envs",
        "2",
        "--max-steps",
        "40",
        "--no-text",
        "--threads",
        "1",
        "--no-progress",
    ]
    assert main([*common, "--output-dir", str(tmp_path / "dynamic")]) == 0
    assert main([*common, "--output-dir", str(tmp_path / "static"), "--cache-implementation", "static"]) == 0
    dynamic, static = (
        json.loads((tmp_path / name / "eval_results.json").read_text())["tasks"][0] for name in ("dynamic", "static")
    )
    assert dynamic["reprefills"] > 0  # 40 pendulum steps overflow the 64-token context: re-prefills on both paths
    assert static["returns"] == dynamic["returns"] and static["reprefills"] == dynamic["reprefills"]
    capsys.readouterr()
    assert main([*common, "--output-dir", str(tmp_path / "bad"), "--compile"]) == 2
    assert "compile" in capsys.readouterr().err


def test_gato_eval_continuous_decoding_changes_continuous_actions_only(tiny_model_dir, tmp_path):
    common = [
        "eval",
        "--model",
        tiny_model_dir,
        "--episodes",
        "2",
        "--num-envs",
        "2",
        "--max-steps",
        "30",
        "--no-text",
        "--threads",
        "1",
        "--no-progress",
    ]
    results = {}
    for decoding in ("median", "argmax"):
        for task in ("pendulum", "cartpole"):
            out = tmp_path / f"{task}-{decoding}"
            assert main([*common, "--tasks", task, "--output-dir", str(out), "--continuous-decoding", decoding]) == 0
            results[task, decoding] = json.loads((out / "eval_results.json").read_text())
    assert results["pendulum", "median"]["settings"]["continuous_decoding"] == "median"
    assert results["pendulum", "median"]["tasks"][0]["returns"] != results["pendulum", "argmax"]["tasks"][0]["returns"]
    assert results["cartpole", "median"]["tasks"][0]["returns"] == results["cartpole", "argmax"]["tasks"][0]["returns"]


def test_gato_eval_refuses_a_launch_that_formed_no_process_group(tiny_model_dir, tmp_path, capsys, monkeypatch):
    # `accelerate launch --multi_gpu -n 2` on a CPU machine without ACCELERATE_USE_CPU: two copies, no group.
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert (
        main(["eval", "--model", tiny_model_dir, "--tasks", "cartpole", "--output-dir", str(tmp_path / "eval")]) == 2
    )
    assert "WORLD_SIZE: the launcher started 2 processes but Accelerate formed a group of 1" in capsys.readouterr().err
    assert not (tmp_path / "eval").exists()


def test_eval_command_names_only_the_settings_that_differ_from_the_defaults():
    from gato.evaluation.run_evaluation import EvaluationConfig, eval_command

    settings = EvaluationConfig(model="m").settings()
    assert eval_command(settings, model="run") == "gato eval --model run"
    settings.update(
        episodes=50, captions=1000, data="data/multitask", text=False, do_sample=True, temperature=0.7, compile=True
    )
    assert eval_command(settings, model="run") == (
        "gato eval --model run --episodes 50 --temperature 0.7 --compile "
        "--captions 1000 --data data/multitask --no-text"
    )
    settings.update(temperature=1.0)
    assert eval_command(settings, model="run", output_dir="run") == (
        "gato eval --model run --episodes 50 --temperature 1 --compile "
        "--captions 1000 --data data/multitask --no-text --output-dir run"
    )


def test_gato_eval_temperature_zero_is_greedy_and_bad_acting_flags_are_refused(tiny_model_dir, tmp_path, capsys):
    common = [
        "eval",
        "--model",
        tiny_model_dir,
        "--tasks",
        "acrobot",
        "--episodes",
        "2",
        "--num-envs",
        "2",
        "--max-steps",
        "15",
        "--no-text",
        "--threads",
        "1",
        "--no-progress",
    ]
    runs = {}
    for name, flags in {"greedy": [], "zero": ["--temperature", "0"], "hot": ["--temperature", "3"]}.items():
        assert main([*common, "--output-dir", str(tmp_path / name), *flags]) == 0
        runs[name] = json.loads((tmp_path / name / "eval_results.json").read_text())
    assert runs["zero"]["tasks"][0]["returns"] == runs["greedy"]["tasks"][0]["returns"]
    assert runs["zero"]["settings"]["do_sample"] is False and runs["hot"]["settings"]["do_sample"] is True
    # The acting settings sit flat in the results, beside the others, as before ActingConfig.
    assert {
        "do_sample",
        "temperature",
        "continuous_decoding",
        "cache_implementation",
        "compile",
        "prompt_tokens",
        "window_keep_fraction",
        "use_cache",
        "episodes",
        "seed",
    } <= set(runs["greedy"]["settings"])
    capsys.readouterr()
    # Negative numbers stop at the flag (gato/flags.py), naming it, before any work.
    for flags, message in (
        (["--temperature", "-1"], "argument --temperature: expected a finite number ≥ 0"),
        (["--prompt-tokens", "-3"], "argument --prompt-tokens: expected a finite number ≥ 0"),
    ):
        with pytest.raises(SystemExit) as exit_info:
            main([*common, "--output-dir", str(tmp_path / "bad"), *flags])
        assert exit_info.value.code == 2
        assert message in capsys.readouterr().err
    assert not (tmp_path / "bad").exists()


def test_evaluation_config_nests_one_acting_config():
    from gato.evaluation.run_evaluation import EvaluationConfig
    from gato.modeling_gato.acting import ActingConfig

    config = EvaluationConfig(model="m", acting={"do_sample": True, "temperature": 0.5})
    assert config.acting == ActingConfig(do_sample=True, temperature=0.5)
    with pytest.raises(ValueError, match="temperature: expected a finite number"):
        EvaluationConfig(model="m", acting={"temperature": -1})
    with pytest.raises(ValueError, match="acting: expected an ActingConfig or a mapping of its fields, got str"):
        EvaluationConfig(model="m", acting="greedy")


def test_gato_eval_in_bfloat16_records_its_dtype_and_is_reproduced(tiny_model_dir, tiny_data_dir, tmp_path):
    from gato.evaluation.run_evaluation import eval_command

    out = tmp_path / "eval"
    assert (
        main(
            [
                "eval",
                "--model",
                tiny_model_dir,
                "--tasks",
                "cartpole,pendulum",
                "--episodes",
                "1",
                "--max-steps",
                "5",
                "--captions",
                "2",
                "--data",
                tiny_data_dir,
                "--output-dir",
                str(out),
                "--threads",
                "1",
                "--no-progress",
                "--dtype",
                "bfloat16",
            ]
        )
        == 0
    )
    results = json.loads((out / "eval_results.json").read_text())
    assert results["settings"]["dtype"] == "bfloat16" and results["dtype"] == "bfloat16"
    assert [len(task["returns"]) for task in results["tasks"]] == [1, 1]
    assert results["captions"]["samples"] == 2 and results["text"]["loss"] > 0
    assert "--dtype bfloat16" in eval_command(results["settings"], model="run")


def test_gato_eval_refuses_a_bad_dtype_naming_the_flag_and_the_field(tiny_model_dir, tmp_path, capsys):
    from gato.evaluation.run_evaluation import EvaluationConfig

    with pytest.raises(SystemExit) as exit_info:
        main(["eval", "--model", tiny_model_dir, "--dtype", "float16", "--output-dir", str(tmp_path / "bad")])
    assert exit_info.value.code == 2
    assert "argument --dtype: invalid choice: 'float16'" in capsys.readouterr().err
    with pytest.raises(ValueError, match="dtype: expected one of auto, float32, bfloat16; got 'half'"):
        EvaluationConfig(model=tiny_model_dir, dtype="half").validate()
