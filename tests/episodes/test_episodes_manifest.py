"""Manifests: every file a generation writes is listed with its sha256; loading verifies it and names the file that
changed; folders written before manifests load with a one-line warning."""

from __future__ import annotations

import json
import logging

import pytest
from cartpole_task import make_cartpole_task
from gato.episodes.generate import generate
from gato.episodes.manifest import (
    MANIFEST_FILE,
    ManifestError,
    file_sha256,
    verify_data_folder,
    verify_manifest,
    write_manifest,
    write_model_manifest,
)
from gato.episodes.writer import EpisodeWriter, load_episodes
from gato.training.run_training import load_data

TASKS = [
    make_cartpole_task("test_cart_a", max_episode_steps=20),
    make_cartpole_task("test_cart_b", max_episode_steps=20),
]


def _flip_one_bit(path, offset: int = -1) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))


def test_manifest_lists_every_file_with_its_sha256_and_names_a_changed_one(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "a.bin").write_bytes(b"\x00" * 100)
    (tmp_path / "sub" / "b.json").write_text("{}")
    (tmp_path / ".gato.lock").write_text("not listed: hidden")
    manifest = json.loads(write_manifest(tmp_path).read_text())
    assert manifest["files"] == {
        "a.bin": {"size": 100, "sha256": file_sha256(tmp_path / "a.bin")},
        "sub/b.json": {"size": 2, "sha256": file_sha256(tmp_path / "sub" / "b.json")},
    }
    verify_manifest(tmp_path)
    (tmp_path / "added-later.txt").write_text("not checked")
    verify_manifest(tmp_path)

    _flip_one_bit(tmp_path / "a.bin", 50)
    with pytest.raises(ManifestError, match=r"a\.bin: changed \(sha256 differs"):
        verify_manifest(tmp_path)
    (tmp_path / "a.bin").write_bytes(b"\x00" * 99)
    with pytest.raises(ManifestError, match=r"a\.bin: changed \(99 bytes, 100 when written\)"):
        verify_manifest(tmp_path)
    (tmp_path / "sub" / "b.json").unlink()
    with pytest.raises(ManifestError, match=r"2 file\(s\) differ.*sub/b\.json: missing"):
        verify_manifest(tmp_path)


def test_unreadable_manifest_and_non_folders_are_clear_errors(tmp_path):
    (tmp_path / MANIFEST_FILE).write_text("{not json")
    with pytest.raises(ManifestError, match=rf"{MANIFEST_FILE}: unreadable manifest"):
        verify_manifest(tmp_path)
    with pytest.raises(ManifestError, match="expected a folder written by gato, found nothing"):
        verify_manifest(tmp_path / "absent")


def test_folder_without_manifest_loads_with_a_one_line_warning(tmp_path, caplog):
    (tmp_path / "weights.bin").write_bytes(b"old")
    with caplog.at_level(logging.WARNING, logger="gato.episodes.manifest"):
        verify_manifest(tmp_path)
    assert len(caplog.records) == 1 and "\n" not in caplog.records[0].getMessage()
    assert "written before gato kept manifests" in caplog.records[0].getMessage()


def test_model_manifest_lists_the_model_and_training_records_not_the_later_reports(tmp_path):
    model = ["config.json", "model.safetensors", "modeling_gato.py", "tokenizer.json", "training_config.yaml"]
    for name in [*model, "README.md", "eval_results.json", "normalized_scores.png", "main_job.json", "notes.txt"]:
        (tmp_path / name).write_text(name)
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / "optimizer.bin").write_text("x")
    listed = json.loads(write_model_manifest(tmp_path).read_text())["files"]
    assert sorted(listed) == model
    for name in ("eval_results.json", "main_job.json", "README.md"):  # rewritten by later stages of `gato run`
        (tmp_path / name).write_text("rewritten")
    verify_manifest(tmp_path)


def test_generation_writes_manifests_and_a_flipped_shard_is_named_before_training_loads_it(tmp_path, caplog):
    generate(TASKS, 3, tmp_path, seed=0, progress=False)
    assert sorted(json.loads((tmp_path / MANIFEST_FILE).read_text())["files"]) == ["README.md", "dataset_dict.json"]
    task_files = json.loads((tmp_path / "test_cart_a" / MANIFEST_FILE).read_text())["files"]
    shards = [name for name in task_files if name.endswith(".arrow")]
    assert shards and {"state.json", "dataset_info.json", "README.md", "generation.json"} <= set(task_files)
    with caplog.at_level(logging.WARNING):
        assert sorted(load_data(str(tmp_path))) == ["test_cart_a", "test_cart_b"]
    assert not caplog.records  # verified, nothing to warn about

    shard = tmp_path / "test_cart_a" / shards[0]
    _flip_one_bit(shard, len(shard.read_bytes()) // 2)
    with pytest.raises(ManifestError, match=rf"{shard}: changed"):
        load_data(str(tmp_path))
    with pytest.raises(ManifestError, match=rf"{shard}: changed"):
        load_episodes(tmp_path / "test_cart_a")
    # A re-run does not bless the damage by rewriting the manifest: it refuses, naming the file …
    with pytest.raises(ValueError, match=rf"{shard}: changed"):
        generate(TASKS, 3, tmp_path, seed=0, progress=False)
    # … and regenerates the task when told to.
    generate(TASKS, 3, tmp_path, seed=0, progress=False, overwrite=True)
    verify_data_folder(tmp_path)

    (tmp_path / "dataset_dict.json").write_text(json.dumps({"splits": ["test_cart_b"]}))
    with pytest.raises(ManifestError, match="dataset_dict.json: changed"):
        verify_data_folder(tmp_path)


def test_a_split_added_by_another_writer_through_write_index_keeps_the_folder_verifiable(tmp_path, caplog):
    """DAgger (gato.evaluation.dagger) writes its split and calls write_index: the collection stays loadable."""
    from gato.episodes.generate import write_index
    from gato.episodes.recorder import record_task_episode
    from gato.episodes.writer import write_shard

    generate(TASKS[:1], 2, tmp_path, seed=0, progress=False)
    write_shard([record_task_episode(TASKS[0], 5)], TASKS[0].spec, tmp_path / "test_cart_a_dagger")
    write_index(tmp_path)
    with caplog.at_level(logging.WARNING):
        assert sorted(load_data(str(tmp_path))) == ["test_cart_a", "test_cart_a_dagger"]
    assert not caplog.records
    assert (tmp_path / "test_cart_a_dagger" / MANIFEST_FILE).exists()


def test_episode_writer_writes_a_manifest(tmp_path):
    task = TASKS[0]
    from gato.episodes.recorder import record_task_episode

    with EpisodeWriter(tmp_path / "ds", task.spec) as writer:
        writer.add(record_task_episode(task, 0))
    listed = json.loads((tmp_path / "ds" / MANIFEST_FILE).read_text())["files"]
    assert any(name.endswith(".arrow") for name in listed)
    assert len(load_episodes(tmp_path / "ds")) == 1
