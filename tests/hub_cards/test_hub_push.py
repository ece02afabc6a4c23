"""`gato push`: the dry run lists exactly what a push would send and validates offline; a real push calls
create_repo + create_commit of those files, training leftovers left out (mocked: no hub is reachable here)."""

import json

import huggingface_hub
import pytest
import torch
from gato.hub_cards import check_run_folder, push_run, upload_plan
from gato.modeling_gato import GatoConfig, GatoForCausalLM
from gato.training.run_training import build_processor

from gato.cli import main

MODEL_FILES = {
    "config.json",
    "generation_config.json",
    "model.safetensors",
    "processor_config.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "configuration_gato.py",
    "modeling_gato.py",
    "acting.py",
    "loss_gato.py",
    "pipeline_gato.py",  # the caption pipeline config.json's custom_pipelines names
    "token_layout.py",
    # the processor's remote code (GatoProcessor.save_pretrained)
    "processing_gato.py",
    "image_processing_gato.py",
    "episode_layout.py",
    "tokenize_values.py",
    "tokenization_gato.py",
    "task_spec.py",
}
RESULT_FILES = {"eval_results.json", "eval_results.md", "normalized_scores.png", "training_config.yaml"}


@pytest.fixture
def run_dir(tmp_path):
    path = tmp_path / "run"
    config = GatoConfig.from_preset("gato-tiny", max_position_embeddings=32)
    torch.manual_seed(0)
    GatoForCausalLM(config).save_pretrained(path)
    build_processor(config, 32).save_pretrained(path)
    (path / "training_config.yaml").write_text("max_steps: 1\n")
    (path / "eval_results.json").write_text(
        json.dumps({"episodes_per_task": 1, "tasks": [], "domains": {}, "summary": {}, "captions": None, "text": None})
    )
    (path / "eval_results.md").write_text("# results\n")
    (path / "normalized_scores.png").write_bytes(b"\x89PNG")
    # Training leftovers that must stay home.
    for leftover in (
        "checkpoints/checkpoint-1/model.safetensors",
        "eval/checkpoint-1/eval_results.json",  # a checkpoint's scores (`gato eval --model RUN/checkpoints/...`)
        "logs/events.out",
        "data/cartpole/data.arrow",
        "main_job.tmp",
        ".cache/huggingface/x",
        ".git/HEAD",
    ):
        (path / leftover).parent.mkdir(parents=True, exist_ok=True)
        (path / leftover).write_text("x")
    return path


def test_upload_plan_is_the_model_processor_and_results_without_leftovers(run_dir):
    assert set(upload_plan(run_dir)) == MODEL_FILES | RESULT_FILES


def test_dry_run_lists_the_files_validates_and_writes_nothing(run_dir, capsys, monkeypatch):
    monkeypatch.setattr(huggingface_hub, "create_commit", lambda *a, **k: pytest.fail("a dry run must not upload"))
    before = sorted(p.name for p in run_dir.iterdir())
    assert main(["push", str(run_dir), "--repo-id", "someone/gato-test", "--dry-run"]) == 0
    out = capsys.readouterr().out
    listed = {line.strip() for line in out.splitlines() if line.startswith("  ")}
    assert listed == MODEL_FILES | RESULT_FILES | {"README.md"}
    assert f"would upload {len(listed)} files" in out and "model card metadata valid" in out
    assert sorted(p.name for p in run_dir.iterdir()) == before  # no README written by a dry run


def test_real_push_creates_the_repo_and_commits_the_planned_files_without_leftovers(run_dir, monkeypatch):
    calls = {}
    monkeypatch.setattr(
        huggingface_hub, "create_repo", lambda repo_id, **kwargs: calls.setdefault("create", (repo_id, kwargs))
    )
    monkeypatch.setattr(
        huggingface_hub,
        "create_commit",
        lambda repo_id, operations, **kwargs: (
            calls.setdefault("commit", (repo_id, operations, kwargs)) and "https://hub/commit"
        ),
    )
    monkeypatch.delenv("HF_TOKEN", raising=False)
    plan = push_run(run_dir, "someone/gato-test", private=True)
    assert calls["create"] == (
        "someone/gato-test",
        {"private": True, "exist_ok": True, "token": None, "repo_type": "model"},
    )
    repo_id, operations, kwargs = calls["commit"]
    assert repo_id == "someone/gato-test" and kwargs["repo_type"] == "model"
    sent = {operation.path_in_repo for operation in operations}
    assert sent == MODEL_FILES | RESULT_FILES | {"README.md"} == set(plan.files)  # no checkpoints, logs, data
    assert "someone/gato-test" in (run_dir / "README.md").read_text()  # the card names the repo
    assert plan.url == "https://hub/commit"


def test_folder_that_would_not_load_is_refused_naming_what_is_missing(run_dir, capsys):
    (run_dir / "model.safetensors").unlink()
    config = json.loads((run_dir / "config.json").read_text())
    del config["auto_map"]
    (run_dir / "config.json").write_text(json.dumps(config))
    problems = check_run_folder(run_dir)
    assert "missing model.safetensors" in problems and any("auto_map" in p for p in problems)
    assert main(["push", str(run_dir), "--repo-id", "someone/x", "--dry-run"]) == 2
    assert "model.safetensors" in capsys.readouterr().err


def test_folder_without_its_caption_pipeline_code_is_refused(run_dir):
    (run_dir / "pipeline_gato.py").unlink()
    problems = check_run_folder(run_dir)
    assert problems == [
        "config.json: custom_pipelines['image-text-to-text'] names pipeline_gato.GatoImageToTextPipeline but "
        "pipeline_gato.py is not in the folder",
        "config.json: custom_pipelines['image-to-text'] names pipeline_gato.GatoImageToTextPipeline but "
        "pipeline_gato.py is not in the folder",
    ]


def test_bad_repo_id_is_refused(run_dir, capsys):
    assert main(["push", str(run_dir), "--repo-id", "no-slash", "--dry-run"]) == 2
    assert "repo_id" in capsys.readouterr().err


def test_keep_card_uploads_the_folders_own_card_and_refuses_a_folder_without_one(run_dir, capsys):
    # --keep-card: the card is not rebuilt, so a folder without README.md has no card to validate
    assert main(["push", str(run_dir), "--repo-id", "someone/gato-test", "--dry-run", "--keep-card"]) == 2
    assert "README.md" in capsys.readouterr().err
    assert main(["push", str(run_dir), "--repo-id", "someone/gato-test", "--dry-run"]) == 0  # rebuilt in memory
    capsys.readouterr()
    (run_dir / "README.md").write_text(
        "---\nlicense: apache-2.0\nlibrary_name: transformers\npipeline_tag: robotics\ntags: [gato]\n---\n"
        "# my own card, kept as it is\n"
    )
    assert main(["push", str(run_dir), "--repo-id", "someone/gato-test", "--dry-run", "--keep-card"]) == 0
    assert "  README.md" in capsys.readouterr().out
    assert "my own card" in (run_dir / "README.md").read_text()
