"""Resume: exact when it continues the same run, refused when the settings changed, falls back past a damaged
checkpoint, and never unpickles anything a checkpoint folder holds."""

import json
import os
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from gato.training.checkpoints import (
    MANIFEST_FILE,
    MODEL_FILE,
    OPTIMIZER_FILE,
    SCHEDULER_FILE,
    CheckpointError,
    config_differences,
    rng_file,
    sha256_of,
)
from gato.training.config import TrainingConfig
from gato.training.loop import checkpoint_dirs, train
from safetensors.torch import load_file
from torch import nn


class _NoisyBigram(nn.Module):
    """Draws from the global RNG in forward (as Gato's patch-position sampling does), so RNG state matters."""

    def __init__(self):
        super().__init__()
        self.config = SimpleNamespace(num_hidden_layers=1, hidden_size=16)
        self.embed = nn.Embedding(12, 16)
        self.head = nn.Linear(16, 12)

    def forward(self, input_ids, attention_mask, labels, use_cache=False):
        hidden = self.embed(input_ids) + 0.1 * torch.randn(*input_ids.shape, 16)
        logits = self.head(hidden)[:, :-1]
        return SimpleNamespace(loss=nn.functional.cross_entropy(logits.reshape(-1, 12), labels[:, 1:].reshape(-1)))


class _IndexedSequences(torch.utils.data.Dataset):
    """Item i depends only on i: the contract the loop's exact resume relies on."""

    def __len__(self):
        return 10_000

    def __getitem__(self, index):
        half = torch.randint(0, 12, (6,), generator=torch.Generator().manual_seed(index))
        return torch.cat([half, half])


def _collate(items):
    ids = torch.stack(items)
    return {"input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": ids}


def _run(output_dir, resume=False, stop_after_steps=None, data_fingerprint=None, **overrides):
    torch.manual_seed(0)
    settings = dict(
        output_dir=str(output_dir),
        max_steps=12,
        batch_size=4,
        gradient_accumulation_steps=2,
        save_steps=5,
        warmup_steps=2,
        learning_rate=3e-2,
        logging_steps=1,
        report_to="none",
        resume=resume,
        num_workers=0,
        save_total_limit=3,
    )
    config = TrainingConfig(**{**settings, **overrides})
    return train(
        config,
        _NoisyBigram(),
        _IndexedSequences(),
        _collate,
        stop_after_steps=stop_after_steps,
        data_fingerprint=data_fingerprint,
    )


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    return _run(tmp_path_factory.mktemp("uninterrupted"))


@pytest.fixture
def killed_after_step_11(tmp_path):
    """A run that died after step 11: complete checkpoints at steps 5 and 10."""
    _run(tmp_path, stop_after_steps=11)
    assert [int(p.name.split("-")[1]) for p in checkpoint_dirs(tmp_path)] == [5, 10]
    return tmp_path


def test_resumed_run_repeats_the_uninterrupted_losses(tmp_path, uninterrupted):
    killed = _run(tmp_path, stop_after_steps=8)  # dies after step 8; last checkpoint at step 5
    assert killed.step == 8
    assert [int(p.name.split("-")[1]) for p in checkpoint_dirs(tmp_path)] == [5]
    resumed = _run(tmp_path, resume=True)
    assert resumed.step == 12
    assert resumed.losses == uninterrupted.losses[5:]
    assert uninterrupted.losses[-1] < uninterrupted.losses[0]


def test_checkpoints_beyond_the_limit_are_deleted(tmp_path):
    _run(tmp_path, save_total_limit=2)
    assert [int(p.name.split("-")[1]) for p in checkpoint_dirs(tmp_path)] == [10, 12]


def test_checkpoint_holds_only_safetensors_and_json_listed_with_their_sha256(tmp_path):
    _run(tmp_path, max_steps=5)
    (checkpoint,) = checkpoint_dirs(tmp_path)
    manifest = json.loads((checkpoint / MANIFEST_FILE).read_text())
    assert sorted(manifest["files"]) == sorted([MODEL_FILE, OPTIMIZER_FILE, SCHEDULER_FILE, rng_file(0)])
    assert all(sha256_of(checkpoint / name) == digest for name, digest in manifest["files"].items())
    assert manifest["step"] == 5 and manifest["settings"]["batch_size"] == 4
    assert manifest["environment"]["torch_threads"] == torch.get_num_threads()
    assert {path.suffix for path in checkpoint.iterdir()} == {".safetensors", ".json"}


# --- settings that differ from the checkpoint's are refused ---------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"batch_size": 8}, ["batch_size: 4 → 8"]),
        ({"learning_rate": 1e-2, "warmup_steps": 3}, ["learning_rate: 0.03 → 0.01", "warmup_steps: 2 → 3"]),
        ({"max_steps": 20}, ["max_steps: 12 → 20"]),  # the cosine schedule's length
        ({"gradient_accumulation_steps": 1, "seed": 1}, ["gradient_accumulation_steps: 2 → 1", "seed: 0 → 1"]),
        ({"model_overrides": {"hidden_size": 8}}, ["model_overrides: {} → {'hidden_size': 8}"]),
    ],
)
def test_resume_with_other_settings_is_refused_naming_each_change(killed_after_step_11, overrides, expected):
    with pytest.raises(CheckpointError) as error:
        _run(killed_after_step_11, resume=True, **overrides)
    message = str(error.value)
    assert "checkpoint-10" in message
    for difference in expected:
        assert difference in message
    assert message.count("→") == len(expected)


def test_resume_on_other_data_is_refused(tmp_path):
    _run(tmp_path, stop_after_steps=6, data_fingerprint={"cartpole": [30, "abc"]})
    with pytest.raises(
        CheckpointError, match=r"data_fingerprint: \{'cartpole': \[30, 'abc'\]\} → \{'cartpole': \[31, 'def'\]\}"
    ):
        _run(tmp_path, resume=True, data_fingerprint={"cartpole": [31, "def"]})


def test_resume_may_change_settings_that_do_not_change_the_run(killed_after_step_11, uninterrupted):
    resumed = _run(killed_after_step_11, resume=True, logging_steps=3, save_steps=4, save_total_limit=1)
    assert resumed.losses == uninterrupted.losses[10:]


def test_config_differences_lists_every_changed_field_with_old_and_new_value():
    saved = TrainingConfig(batch_size=4, learning_rate=1e-3).to_dict()
    wanted = TrainingConfig(batch_size=8, learning_rate=2e-3, resume=True).to_dict()
    assert config_differences(saved, wanted) == ["batch_size: 4 → 8", "learning_rate: 0.001 → 0.002"]
    assert config_differences({"a": 1}, {"b": 2}, ignore=()) == ["a: 1 → (absent)", "b: (absent) → 2"]


# --- a damaged newest checkpoint: fall back and say so, or refuse naming the file ----------------------------


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _flip_a_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[-3] ^= 0xFF  # inside the last tensor's bytes: still a well-formed safetensors file
    path.write_bytes(bytes(data))


DAMAGES = {
    "truncated optimizer": (OPTIMIZER_FILE, _truncate),
    "missing optimizer": (OPTIMIZER_FILE, Path.unlink),
    "missing RNG state": (rng_file(0), Path.unlink),
    "truncated scheduler": (SCHEDULER_FILE, _truncate),
    "bit-flipped weights": (MODEL_FILE, _flip_a_byte),
    "missing manifest": (MANIFEST_FILE, Path.unlink),
}


@pytest.mark.parametrize("damage", list(DAMAGES))
def test_damaged_newest_checkpoint_falls_back_to_the_previous_one_and_says_so(
    killed_after_step_11, uninterrupted, capsys, damage
):
    name, spoil = DAMAGES[damage]
    spoil(killed_after_step_11 / "checkpoints" / "checkpoint-10" / name)
    capsys.readouterr()
    resumed = _run(killed_after_step_11, resume=True)
    printed = capsys.readouterr().out
    assert f"checkpoint-10/{name}" in printed and "fell back to checkpoint-5" in printed
    assert resumed.start_step == 5
    assert resumed.losses == uninterrupted.losses[5:]  # exact from the older checkpoint
    # The run then rewrote checkpoint-10 whole: it verifies again.
    manifest = json.loads((killed_after_step_11 / "checkpoints" / "checkpoint-10" / MANIFEST_FILE).read_text())
    assert manifest["step"] == 10 and (killed_after_step_11 / "checkpoints" / "checkpoint-10" / name).exists()


def test_every_checkpoint_damaged_is_refused_naming_the_files(killed_after_step_11):
    for step in (5, 10):
        _truncate(killed_after_step_11 / "checkpoints" / f"checkpoint-{step}" / OPTIMIZER_FILE)
    with pytest.raises(CheckpointError) as error:
        _run(killed_after_step_11, resume=True)
    message = str(error.value)
    assert "no complete checkpoint" in message
    assert f"checkpoint-10/{OPTIMIZER_FILE}" in message and f"checkpoint-5/{OPTIMIZER_FILE}" in message
    assert "Delete those folders" in message


def test_a_save_killed_midway_leaves_no_folder_that_resume_reads(killed_after_step_11, uninterrupted):
    # What a kill during the save of step 10 leaves: the staging folder, never checkpoint-10 itself.
    checkpoints = killed_after_step_11 / "checkpoints"
    os.replace(checkpoints / "checkpoint-10", checkpoints / "checkpoint-10.tmp")
    (checkpoints / "checkpoint-10.tmp" / MANIFEST_FILE).unlink()
    resumed = _run(killed_after_step_11, resume=True)
    assert resumed.start_step == 5 and resumed.losses == uninterrupted.losses[5:]
    assert not (checkpoints / "checkpoint-10.tmp").exists()


# --- nothing on the load path unpickles ----------------------------------------------------------------------


class _Payload:
    """Unpickling this creates ``marker``: a stand-in for any code a crafted checkpoint could run."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def _plant(path: Path, marker: Path) -> None:
    torch.save({"state": _Payload(marker)}, path)  # a pickle, as accelerate's save_state wrote its files


def test_the_planted_payload_is_live(tmp_path):
    """The payload does run when unpickled: what torch.load(weights_only=False) did with accelerate's files."""
    marker = tmp_path / "pwned"
    _plant(tmp_path / "payload.pkl", marker)
    torch.load(tmp_path / "payload.pkl", weights_only=False)
    assert marker.exists()


def test_pickle_in_place_of_a_checkpoint_file_never_runs(killed_after_step_11, tmp_path, capsys):
    """An attacker who rewrites a file and its manifest entry gets a damaged checkpoint, not code execution."""
    marker = tmp_path / "pwned"
    for step in (5, 10):
        checkpoint = killed_after_step_11 / "checkpoints" / f"checkpoint-{step}"
        for name in (OPTIMIZER_FILE, rng_file(0)):
            _plant(checkpoint / name, marker)
        _plant(checkpoint / SCHEDULER_FILE, marker)
        manifest = json.loads((checkpoint / MANIFEST_FILE).read_text())
        manifest["files"] = {name: sha256_of(checkpoint / name) for name in manifest["files"]}
        (checkpoint / MANIFEST_FILE).write_text(json.dumps(manifest))
    with pytest.raises(CheckpointError, match="cannot be loaded"):
        _run(killed_after_step_11, resume=True)
    assert not marker.exists()


def test_accelerate_style_pickled_checkpoint_is_not_loaded(tmp_path, capsys):
    """The files accelerate's save_state wrote (and load_state unpickled): refused, their payload never runs."""
    marker = tmp_path / "pwned"
    old = tmp_path / "run" / "checkpoints" / "checkpoint-5"
    old.mkdir(parents=True)
    for name in ("custom_checkpoint_0.pkl", "random_states_0.pkl", "optimizer.bin", "scheduler.bin"):
        _plant(old / name, marker)
    (old / "gato_training_state.json").write_text(json.dumps({"step": 5}))
    with pytest.raises(CheckpointError, match=rf"checkpoint-5/{MANIFEST_FILE}: missing.*pickled state is not loaded"):
        _run(tmp_path / "run", resume=True)
    assert not marker.exists()


def test_a_pickle_dropped_beside_a_good_checkpoint_makes_it_refused(killed_after_step_11, tmp_path, capsys):
    marker = tmp_path / "pwned"
    _plant(killed_after_step_11 / "checkpoints" / "checkpoint-10" / "custom_checkpoint_0.pkl", marker)
    resumed = _run(killed_after_step_11, resume=True)
    assert "custom_checkpoint_0.pkl: not listed" in capsys.readouterr().out
    assert resumed.start_step == 5 and not marker.exists()


def test_optimizer_state_round_trips_exactly(tmp_path):
    _run(tmp_path, max_steps=5)
    (checkpoint,) = checkpoint_dirs(tmp_path)
    tensors = load_file(checkpoint / OPTIMIZER_FILE)
    assert {key.rsplit(".", 1)[1] for key in tensors} == {"step", "exp_avg", "exp_avg_sq"}
    assert all(torch.isfinite(tensor).all() for tensor in tensors.values())
