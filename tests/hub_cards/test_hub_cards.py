"""Model cards: metadata the Hub parses and validates (license, tags, pipeline tag, model-index) and the body's content."""

import json
import re

import pytest
import yaml
from gato.hub_cards import build_model_card, eval_results_from_json, validate_model_card, write_model_card
from gato.hub_cards.model_card import LICENSE, PIPELINE_TAG, TAGS
from gato.modeling_gato import GatoConfig
from gato.training.config import TrainingConfig
from huggingface_hub import ModelCard
from huggingface_hub.repocard_data import model_index_to_eval_results


def _task(name, domain, score, mean_return, success=None):
    return {
        "task": name,
        "domain": domain,
        "episodes": 2,
        "num_envs": 2,
        "returns": [mean_return] * 2,
        "lengths": [10, 10],
        "mean_return": mean_return,
        "std_return": 0.0,
        "mean_length": 10.0,
        "expert_return": 500.0,
        "random_return": 24.1,
        "normalized_score": score,
        "success_rate": success,
        "prompt_tokens": 40,
        "seconds": 1.0,
        "actions_per_second": 20.0,
        "reprefills": 0,
        "seeds": [1, 2],
    }


def _summary(tasks, scored, mean):
    return {
        "tasks": tasks,
        "tasks_scored": scored,
        "mean_normalized_score": mean,
        "median_normalized_score": mean,
        "tasks_above_threshold": 0,
        "fraction_above_threshold": 0.0 if scored else None,
        "threshold": 0.5,
    }


RESULTS = {
    "schema_version": 1,
    "model": "run",
    "model_type": "gato",
    "num_parameters": 1234567,
    "created": "2026-11-24T20:00:00+00:00",
    "gato_version": "0.1.0",
    "device": "cpu",
    "platform": "linux",
    "episodes_per_task": 2,
    "settings": {
        "tasks": "default",
        "episodes": 2,
        "num_envs": 4,
        "captions": 2,
        "data": "data",
        "text": True,
        "do_sample": False,
        "temperature": 1.0,
    },
    "tasks": [
        _task("cartpole", "classic_control", 0.25, 143.0),
        _task("babyai_goto_red_ball", "babyai", -0.1, 0.0, 0.0),
        _task("unscored_task", "classic_control", None, 3.0),
    ],
    "domains": {"babyai": _summary(1, 1, -0.1), "classic_control": _summary(2, 1, 0.25)},
    "summary": _summary(3, 2, 0.075),
    "captions": {
        "split": "captions_validation",
        "samples": 2,
        "colour_accuracy": 0.5,
        "shape_accuracy": 0.5,
        "colour_shape_accuracy": 0.25,
        "held_out_colour_shape_accuracy": 0.0,
        "mention_precision": None,
        "bleu": None,
        "examples": [
            {"reference": "a red circle at the top.", "generated": "a red square"},
            {"reference": "a blue star.", "generated": ""},
        ],
    },
    # written before scene_accuracy existed, "captions" has none; the new-scenes split has every field
    "captions_test": {
        "split": "captions_test",
        "samples": 4,
        "colour_accuracy": 1.0,
        "shape_accuracy": 0.75,
        "colour_shape_accuracy": 0.75,
        "held_out_colour_shape_accuracy": None,
        "mention_precision": 0.75,
        "scene_accuracy": 0.5,
        "bleu": 40.0,
        "examples": [
            {"reference": "a small green square in the centre.", "generated": "a small green square in the centre."}
        ],
    },
    "text": {
        "split": "text_validation",
        "documents": 3,
        "sequences": 3,
        "tokens": 120,
        "loss": 4.5,
        "perplexity": 90.0,
    },
}


TRAIN_RESULTS = {
    "global_step": 7,
    "start_step": 3,
    "steps_this_run": 4,
    "wall_seconds": 125.0,
    "step_seconds": 2.0,
    "data_wait_seconds": 0.05,
    "tokens_per_second": 100.0,
    "processes": 1,
    "device": "cpu",
    "final_loss": 2.5,
    "validation": {"text": 6.5, "captions": 1.25},
}


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory, save_tiny_checkpoint):
    path = tmp_path_factory.mktemp("run")
    save_tiny_checkpoint(path, 64)
    TrainingConfig(data="data", output_dir=str(path), max_steps=7, max_length=64).to_yaml(
        path / "training_config.yaml"
    )
    (path / "eval_results.json").write_text(json.dumps(RESULTS))
    (path / "normalized_scores.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    (path / "train_results.json").write_text(json.dumps(TRAIN_RESULTS))
    write_model_card(path, repo_id="someone/gato-test")
    return path


def test_metadata_has_license_tags_pipeline_tag_and_library(run_dir):
    card = ModelCard.load(run_dir / "README.md")
    data = card.data.to_dict()
    assert data["license"] == LICENSE == "apache-2.0"
    assert data["library_name"] == "transformers"
    assert data["pipeline_tag"] == PIPELINE_TAG
    assert set(TAGS) <= set(data["tags"]) and {
        "gato",
        "generalist-agent",
        "reinforcement-learning",
        "robotics",
        "image-to-text",
        "multimodal",
    } <= set(data["tags"])


def test_model_index_round_trips_with_per_task_and_per_domain_scores(run_dir):
    data = ModelCard.load(run_dir / "README.md").data.to_dict()
    name, results = model_index_to_eval_results(data["model-index"])
    assert name == "gato-test"
    scores = {(r.dataset_type, r.metric_type): r.metric_value for r in results}
    assert scores[("cartpole", "expert_normalized_score")] == 0.25
    assert scores[("cartpole", "mean_return")] == 143.0
    assert scores[("babyai_goto_red_ball", "success_rate")] == 0.0
    assert scores[("gato-suite/classic_control", "mean_expert_normalized_score")] == 0.25
    assert scores[("gato-suite/babyai", "mean_expert_normalized_score")] == -0.1
    assert scores[("gato-suite", "mean_expert_normalized_score")] == 0.075
    splits = {(r.dataset_split, r.metric_type): r.metric_value for r in results if r.dataset_type == "gato-captions"}
    assert splits[("captions_validation", "colour_shape_accuracy")] == 0.25
    assert (
        splits[("captions_test", "colour_shape_accuracy")] == 0.75
        and splits[("captions_test", "scene_accuracy")] == 0.5
    )
    assert ("captions_validation", "scene_accuracy") not in splits and ("captions_test", "bleu") in splits
    assert scores[("gato-text", "perplexity")] == 90.0
    # JSON nulls (no reference returns, no BLEU) are left out, never written as null metrics.
    assert ("unscored_task", "expert_normalized_score") not in scores and ("unscored_task", "mean_return") in scores
    assert ("captions_validation", "bleu") not in splits
    assert validate_model_card(run_dir) == results


def test_eval_results_types_are_the_hub_task_types():
    types = {r.dataset_type: r.task_type for r in eval_results_from_json(RESULTS)}
    assert types["cartpole"] == "reinforcement-learning"
    assert types["gato-captions"] == "image-to-text" and types["gato-text"] == "text-generation"


def test_body_has_results_plot_captions_training_config_and_limitations(run_dir):
    text = (run_dir / "README.md").read_text()
    assert "![Expert-normalized score per task](normalized_scores.png)" in text
    assert "| cartpole | classic_control | 2 |" in text
    assert "| a red circle at the top. | a red square |" in text and "| a blue star. | (empty) |" in text
    assert (
        "Over 2 held-out images, objects named with the right colour 50%, shape 50%, colour and shape 25%, "
        "the held-out colour×shape pair 0%."
    ) in text  # no BLEU: sacrebleu gave none
    assert "### Sample captions: held-out colour×shape pairs" in text and "### Sample captions: new scenes" in text
    assert "| a small green square in the centre. | a small green square in the centre. |" in text
    assert (
        "Over 4 held-out images, objects named with the right colour 100%, shape 75%, colour and shape 75%; "
        "scenes captioned with every object's colour and shape (once per object) and nothing else: 50%; BLEU 40.0."
    ) in text
    assert "## Intended uses and limitations" in text and "@article{reed2022generalist" in text
    assert "from_pretrained('someone/gato-test')" in text and 'pipeline("image-to-text"' in text
    assert "policy = load_agent('someone/gato-test', \"cartpole\")" in text and "2 episodes per task" in text
    block = re.search(r"```yaml\n(.*?)```", text, flags=re.S).group(1)
    assert yaml.safe_load(block) == yaml.safe_load((run_dir / "training_config.yaml").read_text())
    assert "1.2M parameters" in text
    # How long training took, where, and the commands that reproduce the run (train_results.json, eval settings).
    assert (
        "Training ran 7 optimizer steps; its last 4 steps (resumed from step 3) took 2 min 5 s on cpu, 1 process(es), "
        "500 ms a step of which 2.5% waiting for data. Final validation losses: captions 1.250, text 6.500"
    ) in text
    assert (
        "gato train --config training_config.yaml --output-dir gato-test\n"
        "gato eval --model gato-test --episodes 2 --captions 2 --data data --output-dir gato-test\n"
    ) in text


def test_card_without_results_has_no_model_index(tmp_path):
    config = GatoConfig.from_preset("gato-tiny", max_position_embeddings=32)
    (tmp_path / "config.json").write_text(config.to_json_string())
    card = build_model_card(tmp_path)
    assert "model-index" not in card.data.to_dict() and "## Evaluation" not in card.text
    assert validate_model_card(card) == []


def test_folder_without_config_is_refused(tmp_path):
    with pytest.raises(ValueError, match="config.json"):
        build_model_card(tmp_path)


@pytest.mark.parametrize(
    "broken, message",
    [
        ({k: v for k, v in RESULTS.items() if k != "episodes_per_task"}, "no 'episodes_per_task' field"),
        (
            {**RESULTS, "tasks": [{k: v for k, v in RESULTS["tasks"][0].items() if k != "expert_return"}]},
            r"tasks\[0\] \(cartpole\) has no 'expert_return' field",
        ),
        ({**RESULTS, "summary": {"tasks": 2}}, "summary has no 'tasks_scored' field"),
        ([RESULTS], "not a JSON object"),
    ],
)
def test_results_the_card_cannot_read_are_refused_naming_the_file_and_field(tmp_path, broken, message):
    config = GatoConfig.from_preset("gato-tiny", max_position_embeddings=32)
    (tmp_path / "config.json").write_text(config.to_json_string())
    (tmp_path / "eval_results.json").write_text(json.dumps(broken))
    with pytest.raises(ValueError, match=re.escape(str(tmp_path / "eval_results.json")) + ": " + message):
        build_model_card(tmp_path)


def test_a_results_file_that_is_not_json_is_refused_naming_it(tmp_path):
    config = GatoConfig.from_preset("gato-tiny", max_position_embeddings=32)
    (tmp_path / "config.json").write_text(config.to_json_string())
    (tmp_path / "eval_results.json").write_text('{"model": "run",')
    with pytest.raises(ValueError, match=re.escape(str(tmp_path / "eval_results.json")) + ": not valid JSON"):
        build_model_card(tmp_path)


def test_validation_names_missing_metadata(tmp_path):
    (tmp_path / "README.md").write_text("---\nlibrary_name: transformers\ntags: [gato]\n---\n\n# x\n")
    with pytest.raises(ValueError, match="license"):
        validate_model_card(tmp_path)
    (tmp_path / "README.md").write_text(
        "---\nlicense: mit\nlibrary_name: timm\npipeline_tag: image-text-to-text\ntags: [gato]\n---\n"
    )
    with pytest.raises(ValueError, match="library_name"):
        validate_model_card(tmp_path / "README.md")


def test_malformed_model_index_is_refused(tmp_path):
    (tmp_path / "README.md").write_text(
        "---\nlicense: apache-2.0\nlibrary_name: transformers\npipeline_tag: image-text-to-text\ntags: [gato]\n"
        "model-index:\n- name: x\n  results:\n  - task: {type: reinforcement-learning}\n---\n"
    )
    with pytest.raises(ValueError):
        validate_model_card(tmp_path)


def test_peak_rss_cell_names_the_process_and_its_largest_worker():
    from gato.hub_cards.model_card import format_peak_rss

    assert format_peak_rss({"peak_rss_mb": 1234.4, "peak_worker_rss_mb": None}) == "1,234 MB"
    assert format_peak_rss({"peak_rss_mb": 812.0, "peak_worker_rss_mb": 450.2}) == "812 MB (worker 450 MB)"
    assert format_peak_rss({"wall_seconds": 3.0}) == "—"  # a main_job.json written before memory was recorded
