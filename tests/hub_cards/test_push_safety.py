"""`gato push` never sends secrets or this machine's paths, takes its token from HF_TOKEN, and refuses a folder whose
manifest says a file changed (a bit-flipped model.safetensors is neither pushed nor evaluated). The upload is a local
fake of huggingface_hub's create_commit: nothing goes to the network."""

import hashlib
import json

import huggingface_hub
import pytest
import torch
import yaml
from gato.episodes.manifest import MANIFEST_FILE, ManifestError, write_model_manifest
from gato.evaluation.run_evaluation import load_model_and_processor
from gato.hub_cards import push_run, upload_plan
from gato.modeling_gato import GatoConfig, GatoForCausalLM
from gato.training.run_training import build_processor

from gato.cli import main

FAKE_TOKEN = "hf_" + "A1b2C3d4E5" * 4
SECRETS = [
    ".env",
    "configs/.env",
    "token",
    "hf_token.txt",
    "wandb/settings",
    "sub/wandb/run-1/files/config.yaml",
    "mlruns/0/meta.yaml",
    ".netrc",
    "aws_credentials.json",
    "clearml.conf",
]


@pytest.fixture
def run_dir(tmp_path):
    path = tmp_path / "home" / "alice" / "runs" / "gato"
    config = GatoConfig.from_preset("gato-tiny", max_position_embeddings=32)
    torch.manual_seed(0)
    GatoForCausalLM(config).save_pretrained(path)
    build_processor(config, 32).save_pretrained(path)
    data = tmp_path / "home" / "alice" / "data" / "default"
    (path / "training_config.yaml").write_text(
        yaml.safe_dump({"data": str(data), "output_dir": str(path), "max_steps": 1})
    )
    (path / "eval_results.json").write_text(
        json.dumps(
            {
                "model": str(path),
                "episodes_per_task": 1,
                "tasks": [],
                "domains": {},
                "summary": {},
                "captions": None,
                "text": None,
                "settings": {"tasks": "cartpole", "episodes": 1, "data": str(data), "seed": 0},
            }
        )
    )
    (path / "eval_results.md").write_text(f"# results\n\nmodel: `{path}`, data `{data}`\n")
    write_model_manifest(path)
    return path


@pytest.fixture
def fake_hub(monkeypatch):
    """create_repo/create_commit recorded locally: {name: bytes sent}, and the keyword arguments."""
    sent, calls = {}, {}

    def create_commit(repo_id, operations, **kwargs):
        calls["commit"] = kwargs
        for operation in operations:
            source = operation.path_or_fileobj
            sent[operation.path_in_repo] = source if isinstance(source, bytes) else open(source, "rb").read()
        return "https://hub/commit"

    monkeypatch.setattr(huggingface_hub, "create_repo", lambda repo_id, **kwargs: calls.setdefault("create", kwargs))
    monkeypatch.setattr(huggingface_hub, "create_commit", create_commit)
    return sent, calls


def test_secrets_are_never_listed_nor_sent(run_dir, fake_hub):
    for name in SECRETS:
        (run_dir / name).parent.mkdir(parents=True, exist_ok=True)
        (run_dir / name).write_text("secret\n")
    planned = upload_plan(run_dir)
    assert not set(SECRETS) & set(planned)
    assert {"special_tokens_map.json", "tokenizer.json", "tokenizer_config.json"} & set(
        planned
    )  # not taken for secrets
    push_run(run_dir, "alice/gato")
    sent, _ = fake_hub
    assert not set(SECRETS) & set(sent) and "model.safetensors" in sent


def test_a_file_holding_a_token_stops_the_push_naming_it(run_dir, fake_hub, capsys, monkeypatch):
    monkeypatch.delenv("HF_TOKEN", raising=False)
    (run_dir / "notes.txt").write_text(f"login with {FAKE_TOKEN}\n")
    assert main(["push", str(run_dir), "--repo-id", "alice/gato", "--dry-run"]) == 2
    assert f"{run_dir / 'notes.txt'}: holds what looks like a Hugging Face token" in capsys.readouterr().err
    (run_dir / "notes.txt").write_text("my token: s3cr3t-not-hf-shaped\n")  # the token in use, whatever its shape
    with pytest.raises(ValueError, match="notes.txt: holds what looks like a Hugging Face token"):
        push_run(run_dir, "alice/gato", token="s3cr3t-not-hf-shaped")
    assert fake_hub[0] == {}


def test_machine_paths_are_sent_relative_and_the_files_on_disk_are_untouched(run_dir, fake_hub, tmp_path):
    on_disk = {
        name: (run_dir / name).read_bytes()
        for name in ("eval_results.json", "training_config.yaml", "eval_results.md")
    }
    plan = push_run(run_dir, "alice/gato")
    sent, _ = fake_hub
    for name, data in sent.items():
        if name.endswith((".json", ".yaml", ".md")) and not name.startswith("tokenizer"):
            assert str(tmp_path) not in data.decode(), f"{name} carries a path of this machine"
    results = json.loads(sent["eval_results.json"])
    assert results["model"] == "." and results["settings"]["data"] == "default"
    assert yaml.safe_load(sent["training_config.yaml"]) == {"data": "default", "output_dir": ".", "max_steps": 1}
    assert "--data default" in sent["README.md"].decode()  # the card's reproduce command, scrubbed
    assert set(plan.scrubbed) >= {"eval_results.json", "eval_results.md", "training_config.yaml", "README.md"}
    assert {name: (run_dir / name).read_bytes() for name in on_disk} == on_disk
    # The manifest that is sent describes the bytes that are sent (a download verifies).
    manifest = json.loads(sent[MANIFEST_FILE])["files"]
    assert manifest["eval_results.json"]["sha256"] == hashlib.sha256(sent["eval_results.json"]).hexdigest()
    assert manifest["model.safetensors"]["sha256"] == hashlib.sha256(sent["model.safetensors"]).hexdigest()


def test_token_comes_from_hf_token_in_the_environment(run_dir, fake_hub, monkeypatch, capsys):
    monkeypatch.setenv("HF_TOKEN", FAKE_TOKEN)
    assert main(["push", str(run_dir), "--repo-id", "alice/gato"]) == 0
    _, calls = fake_hub
    assert calls["create"]["token"] == FAKE_TOKEN and calls["commit"]["token"] == FAKE_TOKEN
    with pytest.raises(SystemExit):
        main(["push", "--help"])
    assert "HF_TOKEN" in capsys.readouterr().out


def test_a_bit_flipped_model_is_neither_pushed_nor_evaluated(run_dir, fake_hub, capsys):
    model, _ = load_model_and_processor(run_dir)  # intact: loads
    weights = run_dir / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[len(data) // 2] ^= 0x10  # one bit inside a tensor: safetensors itself would load it without a word
    weights.write_bytes(bytes(data))
    with pytest.raises(ManifestError, match=rf"{weights}: changed"):
        load_model_and_processor(run_dir)
    assert main(["push", str(run_dir), "--repo-id", "alice/gato", "--dry-run"]) == 2
    assert f"{weights}: changed" in capsys.readouterr().err
    assert fake_hub[0] == {}
