"""`gato push`: the dry run lists exactly what upload_folder would send and validates offline; a real push calls
create_repo + upload_folder with the training leftovers ignored (mocked: no hub is reachable here)."""

import json

import huggingface_hub
import pytest
import torch

from gato.cli import main
from gato.hub_cards import check_run_folder, push_run, upload_plan
from gato.modeling_gato import GatoConfig, GatoForCausalLM
from gato.training.run_training import build_processor

MODEL_FILES = {"config.json", "generation_config.json", "model.safetensors", "processor_config.json", "tokenizer.json",
               "tokenizer_config.json", "configuration_gato.py", "modeling_gato.py", "acting.py", "loss_gato.py", "token_layout.py"}
RESULT_FILES = {"eval_results.json", "eval_results.md", "normalized_scores.png", "training_config.yaml"}


@pytest.fixture
def run_dir(tmp_path):
    path = tmp_path / "run"
    config = GatoConfig.from_preset("gato-tiny", max_position_embeddings=32)
    torch.manual_seed(0)
    GatoForCausalLM(config).save_pretrained(path)
    build_processor(config, 32).save_pretrained(path)
    (path / "training_config.yaml").write_text("max_steps: 1\n")
    (path / "eval_results.json").write_text(json.dumps({"episodes_per_task": 1, "tasks": [], "domains": {}, "summary": {},
                                                          "captions": None, "text": None}))
    (path / "eval_results.md").write_text("# results\n")
    (path / "normalized_scores.png").write_bytes(b"\x89PNG")
    # Training leftovers that must stay home.
    for leftover in ("checkpoints/checkpoint-1/model.safetensors", "logs/events.out", "data/cartpole/data.arrow",
                     "main_job.tmp", ".cache/huggingface/x", ".git/HEAD"):
        (path / leftover).parent.mkdir(parents=True, exist_ok=True)
        (path / leftover).write_text("x")
    return path


def test_upload_plan_is_the_model_processor_and_results_without_leftovers(run_dir):
    assert set(upload_plan(run_dir)) == MODEL_FILES | RESULT_FILES


def test_dry_run_lists_the_files_validates_and_writes_nothing(run_dir, capsys, monkeypatch):
    monkeypatch.setattr(huggingface_hub, "upload_folder", lambda *a, **k: pytest.fail("a dry run must not upload"))
    before = sorted(p.name for p in run_dir.iterdir())
    assert main(["push", str(run_dir), "--repo-id", "someone/gato-test", "--dry-run"]) == 0
    out = capsys.readouterr().out
    listed = {line.strip() for line in out.splitlines() if line.startswith("  ")}
    assert listed == MODEL_FILES | RESULT_FILES | {"README.md"}
    assert "would upload 16 files" in out and "model card metadata valid" in out
    assert sorted(p.name for p in run_dir.iterdir()) == before  # no README written by a dry run


def test_real_push_creates_the_repo_and_uploads_with_leftovers_ignored(run_dir, monkeypatch):
    calls = {}
    monkeypatch.setattr(huggingface_hub, "create_repo", lambda repo_id, **kwargs: calls.setdefault("create", (repo_id, kwargs)))
    monkeypatch.setattr(huggingface_hub, "upload_folder", lambda **kwargs: calls.setdefault("upload", kwargs) and "https://hub/commit")
    plan = push_run(run_dir, "someone/gato-test", private=True)
    assert calls["create"] == ("someone/gato-test", {"private": True, "exist_ok": True, "token": None, "repo_type": "model"})
    upload = calls["upload"]
    assert upload["folder_path"] == str(run_dir) and upload["repo_id"] == "someone/gato-test"
    assert {"checkpoints/*", "logs/*", "data/*"} <= set(upload["ignore_patterns"])
    assert "someone/gato-test" in (run_dir / "README.md").read_text()  # the card names the repo
    assert "README.md" in plan.files


def test_folder_that_would_not_load_is_refused_naming_what_is_missing(run_dir, capsys):
    (run_dir / "model.safetensors").unlink()
    config = json.loads((run_dir / "config.json").read_text())
    del config["auto_map"]
    (run_dir / "config.json").write_text(json.dumps(config))
    problems = check_run_folder(run_dir)
    assert "missing model.safetensors" in problems and any("auto_map" in p for p in problems)
    assert main(["push", str(run_dir), "--repo-id", "someone/x", "--dry-run"]) == 2
    assert "model.safetensors" in capsys.readouterr().err


def test_bad_repo_id_is_refused(run_dir, capsys):
    assert main(["push", str(run_dir), "--repo-id", "no-slash", "--dry-run"]) == 2
    assert "repo_id" in capsys.readouterr().err
