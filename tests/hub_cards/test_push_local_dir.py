"""`gato push --local-dir DIR`: writes exactly the files and bytes a real push would send (the same rebuilt card,
scrubbed records and manifest), uses no network, leaves the run folder as it is, and refuses a target that is not
new, empty or an earlier export, naming it and writing nothing."""

import json

import huggingface_hub
import pytest
import torch
import yaml
from gato.episodes.manifest import MANIFEST_FILE, verify_manifest, write_model_manifest
from gato.evaluation.run_evaluation import load_model_and_processor
from gato.hub_cards import push_run
from gato.modeling_gato import GatoConfig, GatoForCausalLM
from gato.training.run_training import build_processor

from gato.cli import main

REPO = "someone/gato-test"


@pytest.fixture
def run_dir(tmp_path):
    path = tmp_path / "home" / "runs" / "gato"
    config = GatoConfig.from_preset("gato-tiny", max_position_embeddings=32)
    torch.manual_seed(0)
    GatoForCausalLM(config).save_pretrained(path)
    build_processor(config, 32).save_pretrained(path)
    (path / "training_config.yaml").write_text(yaml.safe_dump({"output_dir": str(path), "max_steps": 1}))
    (path / "eval_results.json").write_text(
        json.dumps({"episodes_per_task": 1, "tasks": [], "domains": {}, "summary": {}, "captions": None, "text": None})
    )
    write_model_manifest(path)
    for leftover in ("checkpoints/checkpoint-1/model.safetensors", "logs/events.out", ".env"):
        (path / leftover).parent.mkdir(parents=True, exist_ok=True)
        (path / leftover).write_text("x")
    return path


def _files(folder):
    return {
        path.relative_to(folder).as_posix(): path.read_bytes()
        for path in folder.rglob("*")
        if path.is_file() and not path.name.startswith(".")
    }


def _fake_hub(monkeypatch):
    """What a real push sends, {path_in_repo: bytes}, through a local fake of create_repo/create_commit."""
    sent = {}

    def create_commit(repo_id, operations, **kwargs):
        for operation in operations:
            source = operation.path_or_fileobj
            sent[operation.path_in_repo] = source if isinstance(source, bytes) else open(source, "rb").read()
        return "https://hub/commit"

    monkeypatch.setattr(huggingface_hub, "create_repo", lambda *args, **kwargs: None)
    monkeypatch.setattr(huggingface_hub, "create_commit", create_commit)
    return sent


def test_local_dir_holds_exactly_the_bytes_a_real_push_sends(run_dir, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(huggingface_hub, "create_commit", lambda *a, **k: pytest.fail("--local-dir must not upload"))
    monkeypatch.setattr(huggingface_hub, "create_repo", lambda *a, **k: pytest.fail("--local-dir must not upload"))
    before = _files(run_dir)
    out = tmp_path / "export"
    assert main(["push", str(run_dir), "--repo-id", REPO, "--local-dir", str(out)]) == 0
    printed = capsys.readouterr().out
    exported = _files(out)
    assert _files(run_dir) == before and not (run_dir / "README.md").exists()  # the run folder is untouched
    assert f"wrote {len(exported)} files" in printed and str(out) in printed
    assert {line.strip() for line in printed.splitlines() if line.startswith("  ")} == set(exported)

    monkeypatch.delenv("HF_TOKEN", raising=False)
    sent = _fake_hub(monkeypatch)
    push_run(run_dir, REPO)
    assert exported == sent  # same names, same bytes: card, scrubbed records, manifest, weights
    assert not any(name.startswith(("checkpoints/", "logs/")) or name == ".env" for name in exported)
    assert REPO in exported["README.md"].decode() and str(tmp_path) not in exported["training_config.yaml"].decode()
    verify_manifest(out)  # the exported manifest describes the exported bytes
    assert "README.md" in json.loads(exported[MANIFEST_FILE])["files"]
    model, processor = load_model_and_processor(str(out))
    assert type(model).__name__ == "GatoForCausalLM" and type(processor).__name__ == "GatoProcessor"


def test_exporting_again_replaces_an_earlier_export_and_keeps_files_it_did_not_write(run_dir, tmp_path, capsys):
    out = tmp_path / "export"
    push_run(run_dir, REPO, local_dir=out)
    (out / ".gitattributes").write_text("*.safetensors filter=lfs\n")  # a repository's own hidden file
    (out / "regression_rollout.json").write_text("{}")  # added beside the export later
    (out / "eval_results.json").write_text("stale")
    assert main(["push", str(run_dir), "--repo-id", "other/name", "--local-dir", str(out)]) == 0
    assert "kept 1 files of the earlier export that this one did not write: regression_rollout.json" in (
        capsys.readouterr().out
    )
    assert (out / "eval_results.json").read_text() != "stale" and "other/name" in (out / "README.md").read_text()
    assert (out / ".gitattributes").exists() and (out / "regression_rollout.json").read_text() == "{}"
    assert not list(out.glob(".*tmp*"))


@pytest.mark.parametrize(
    "content, expected",
    [
        ({"notes.txt": "mine"}, "missing config.json"),
        ({"config.json": "{}", "checkpoints/checkpoint-1/model.safetensors": "x"}, "holds files a push leaves out"),
    ],
)
def test_a_folder_that_is_not_an_earlier_export_is_refused_and_left_as_it_is(
    run_dir, tmp_path, capsys, content, expected
):
    out = tmp_path / "taken"
    for name, text in content.items():
        (out / name).parent.mkdir(parents=True, exist_ok=True)
        (out / name).write_text(text)
    assert main(["push", str(run_dir), "--repo-id", REPO, "--local-dir", str(out)]) == 2
    error = capsys.readouterr().err
    assert f"local_dir: {out} is not empty and is not an earlier export" in error and expected in error
    assert {name: data.decode() for name, data in _files(out).items()} == content


def test_a_target_overlapping_the_run_or_a_file_is_refused(run_dir, tmp_path, capsys):
    for target in (run_dir, run_dir / "export", run_dir.parent):
        assert main(["push", str(run_dir), "--repo-id", REPO, "--local-dir", str(target)]) == 2
        assert "overlaps the run folder" in capsys.readouterr().err
    assert not (run_dir / "export").exists() and not (run_dir / "README.md").exists()
    (tmp_path / "a_file").write_text("x")
    assert main(["push", str(run_dir), "--repo-id", REPO, "--local-dir", str(tmp_path / "a_file")]) == 2
    assert "is a file" in capsys.readouterr().err


def test_an_empty_folder_takes_the_export(run_dir, tmp_path):
    out = tmp_path / "empty"
    (out / ".git").mkdir(parents=True)  # hidden entries do not count
    plan = push_run(run_dir, REPO, local_dir=out)
    assert set(_files(out)) == set(plan.files) and plan.kept == [] and plan.local_dir == str(out)


def test_dry_run_with_local_dir_is_refused(run_dir, tmp_path, capsys):
    out = tmp_path / "export"
    assert main(["push", str(run_dir), "--repo-id", REPO, "--local-dir", str(out), "--dry-run"]) == 2
    assert "dry_run and local_dir" in capsys.readouterr().err and not out.exists()


def test_a_changed_model_is_not_exported(run_dir, tmp_path, capsys):
    weights = run_dir / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 1
    weights.write_bytes(bytes(data))
    out = tmp_path / "export"
    assert main(["push", str(run_dir), "--repo-id", REPO, "--local-dir", str(out)]) == 2
    assert "model.safetensors" in capsys.readouterr().err and not out.exists()


def test_a_run_with_a_transfer_study_sends_its_results_table_and_plot_and_its_card_shows_them(run_dir, tmp_path):
    from gato.evaluation.transfer_report import markdown_table

    study = run_dir / "transfer"
    cell = {"normalized_score": 0.47, "score_interval": [0.3, 0.64], "model": str(study / "cartpole" / "finetune-k5")}
    results = {
        "settings": {
            "model": str(run_dir),
            "data": str(tmp_path / "held_out"),
            "tasks": ["cartpole"],
            "episodes": [5],
            "max_steps": 300,
            "eval_episodes": 50,
            "eval_max_steps": None,
            "lora": False,
            "seed": 0,
            "training": {"learning_rate": 3e-4, "warmup_steps": 30},
        },
        "tasks": {
            "cartpole": {
                "domain": "classic_control",
                "prompt_only": {"normalized_score": -0.06, "score_interval": None},
                "finetune": {"5": cell},
                "scratch": {"5": {"normalized_score": 0.0, "score_interval": [-0.06, 0.1]}},
            }
        },
    }
    (study / "cartpole" / "finetune-k5").mkdir(parents=True)
    (study / "cartpole" / "finetune-k5" / "model.safetensors").write_bytes(b"weights of one cell")
    (study / "transfer.json").write_text(json.dumps(results))
    (study / "transfer.md").write_text(markdown_table(results))
    (study / "transfer.png").write_bytes(b"\x89PNG\r\n\x1a\n")

    push_run(run_dir, REPO, local_dir=tmp_path / "export")
    exported = _files(tmp_path / "export")
    assert {name for name in exported if name.startswith("transfer/")} == {
        "transfer/transfer.json",
        "transfer/transfer.md",
        "transfer/transfer.png",
    }  # not the study's own models
    assert str(tmp_path) not in exported["transfer/transfer.json"].decode()  # this machine's paths scrubbed
    card = exported["README.md"].decode()
    assert "## Transfer to held-out tasks" in card
    assert "| cartpole | classic_control | -6% | 5 | 47% [30, 64] | 0% [-6, 10] |" in card
    assert "generalist: this model." in card
    assert "(transfer/transfer.png)" in card
    assert (
        "python scripts/transfer_study.py --model . --data HELD_OUT --tasks cartpole --episodes 5 --max-steps 300 "
        "--eval-episodes 50 --learning-rate 0.0003 --warmup-steps 30 --out transfer"
    ) in card
