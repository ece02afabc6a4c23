"""Frames stored compressed (zlib, lossless): the tokens the model sees are exactly those of today's raw storage (real Atari
frames, token for token), storage is ≥ 5× smaller, episodes stream into a shard one at a time, and peak memory
is measurable for stage summaries."""

from __future__ import annotations

import dataclasses
import gc
import io
import subprocess
import sys
import weakref
from pathlib import Path

import numpy as np
import pytest
from datasets import Array2D, Array4D, Dataset, Features, List, Value
from gato.episodes.frames import decode_frames, encode_frames
from gato.episodes.recorder import record_task_episode
from gato.episodes.resources import peak_rss_bytes, peak_rss_summary
from gato.episodes.schema import dataset_info, read_episode, spec_from_dataset
from gato.episodes.writer import write_shard
from gato.processing.processing_gato import GatoProcessor
from gato.suite.task_spec import ActionSpec, ObservationField, TaskSpec
from PIL import Image as PILImage

pytest.importorskip("ale_py")
STEPS = 60


@pytest.fixture(scope="module")
def breakout_episode():
    from gato.suite.registry import get_task

    task = dataclasses.replace(get_task("atari_breakout"), max_episode_steps=STEPS)
    return task, record_task_episode(task, seed=0)


def _raw_storage(episode: dict, spec: TaskSpec) -> Dataset:
    """Schema version 1 (before PNG): frames as a raw uint8 Array4D column, as older folders hold them."""
    features = Features(
        {
            "task": Value("string"),
            "seed": Value("int64"),
            "observations": {"frame": Array4D((None, *spec.observations[0].shape), "uint8")},
            "actions": Array2D((None, 1), "uint8"),
            "rewards": List(Value("float32")),
            "episode_return": Value("float64"),
            "num_steps": Value("int64"),
            "terminated": Value("bool"),
        }
    )
    steps = len(episode["actions"])
    row = {
        "task": spec.name,
        "seed": 0,
        "observations": {"frame": episode["observations"]["frame"]},
        "actions": np.asarray(episode["actions"], dtype=np.uint8).reshape(steps, 1),
        "rewards": np.asarray(episode["rewards"], dtype=np.float32),
        "episode_return": float(np.sum(episode["rewards"])),
        "num_steps": steps,
        "terminated": False,
    }
    info = dataset_info(spec)
    info.features = features
    return Dataset.from_list([row], features=features, info=info)


def test_compressed_frames_give_the_model_the_same_tokens_as_raw_frames_and_take_5x_less_disk(
    breakout_episode, tmp_path
):
    task, episode = breakout_episode
    spec = task.spec
    png = write_shard([episode], spec, tmp_path / "png")
    raw = _raw_storage(episode, spec)
    raw.save_to_disk(str(tmp_path / "raw"))

    from_png, from_raw = (
        read_episode(png, 0, spec),
        read_episode(Dataset.load_from_disk(str(tmp_path / "raw")), 0, spec),
    )
    assert spec_from_dataset(png) == spec
    np.testing.assert_array_equal(from_png["observations"]["frame"], episode["observations"]["frame"])
    processor = GatoProcessor.from_defaults(max_length=1024)
    png_sequences, raw_sequences = (
        processor.tokenize_episode(from_png, spec),
        processor.tokenize_episode(from_raw, spec),
    )
    assert len(png_sequences) == len(raw_sequences) >= 1
    for ours, theirs in zip(png_sequences, raw_sequences):
        assert ours.keys() == theirs.keys()
        for key in ours:  # token ids, patch pixels, positions, masks: bit for bit
            np.testing.assert_array_equal(np.asarray(ours[key]), np.asarray(theirs[key]), err_msg=key)

    window = read_episode(png, 0, spec, steps=slice(10, 25))  # only these frames are decoded
    for key in ("actions", "rewards"):
        np.testing.assert_array_equal(window[key], from_png[key][10:25])
    np.testing.assert_array_equal(window["observations"]["frame"], from_png["observations"]["frame"][10:25])

    def arrow_bytes(folder: Path) -> int:
        return sum(path.stat().st_size for path in folder.glob("*.arrow"))

    ratio = arrow_bytes(tmp_path / "raw") / arrow_bytes(tmp_path / "png")
    assert ratio >= 5, f"compressed storage only {ratio:.1f}× smaller"


def test_frames_round_trip_greyscale_and_rgb_and_shape_is_checked():
    rng = np.random.default_rng(0)
    for shape in ((3, 16, 16, 3), (3, 8, 24)):
        frames = rng.integers(0, 256, shape, dtype=np.uint8)
        np.testing.assert_array_equal(decode_frames(encode_frames(frames), shape[1:]), frames)
        pngs = []
        for frame in frames:  # PNG values (datasets' Image()) decode the same
            buffer = io.BytesIO()
            PILImage.fromarray(frame).save(buffer, format="PNG")
            pngs.append({"bytes": buffer.getvalue(), "path": None})
        np.testing.assert_array_equal(decode_frames(pngs, shape[1:]), frames)
    with pytest.raises(ValueError, match=r"expected 64 pixel values per frame for shape \(8, 8\), decoded 768"):
        decode_frames(encode_frames(rng.integers(0, 256, (3, 16, 16, 3), dtype=np.uint8)), (8, 8))


def test_a_shard_is_written_holding_one_raw_episode_at_a_time(tmp_path):
    spec = TaskSpec(
        "frames", (ObservationField("frame", "image", (32, 32, 3)),), ActionSpec("discrete", 1, num_values=4)
    )
    alive: list[weakref.ref] = []
    live_when_recorded = []

    def record(index: int) -> dict:
        frames = np.random.default_rng(index).integers(0, 256, (20, 32, 32, 3), dtype=np.uint8)
        alive.append(weakref.ref(frames))
        return {"observations": {"frame": frames}, "actions": np.zeros(20, dtype=np.int64), "rewards": np.zeros(20)}

    def episodes():  # keeps no reference to what it yielded
        for index in range(6):
            gc.collect()
            live_when_recorded.append(sum(ref() is not None for ref in alive))
            yield record(index)

    shard = write_shard(episodes(), spec, tmp_path / "shard")
    assert len(shard) == 6
    assert live_when_recorded == [0] * 6  # every earlier episode's raw frames were already freed


def test_peak_rss_counts_this_process_and_its_largest_worker():
    before = peak_rss_bytes(children=True)
    size = 300 * 2**20
    subprocess.run([sys.executable, "-c", f"b = bytearray({size}); b[::4096] = b'x' * len(b[::4096])"], check=True)
    assert peak_rss_bytes(children=True) >= max(before, size)
    own = peak_rss_bytes()
    assert 10 * 2**20 < own < 64 * 2**30  # bytes, not kilobytes: pytest with numpy and datasets loaded
    assert peak_rss_summary().startswith(f"peak RSS {own / 1e9:.2f} GB (largest worker ")


def _raw_frames_shard(path: Path, spec: TaskSpec) -> None:
    """A shard of the old storage (schema 1: a raw Array4D frame column) for ``spec``."""
    frames = np.zeros((2, *spec.observations[0].shape), dtype=np.uint8)
    episode = {"observations": {"frame": frames}, "actions": np.zeros(2, dtype=np.int64), "rewards": np.zeros(2)}
    _raw_storage(episode, spec).save_to_disk(str(path))


def test_old_raw_frame_shards_are_never_mixed_with_compressed_ones(tmp_path):
    from types import SimpleNamespace

    from gato.episodes.generate import _drop_chunks_of_another_spec
    from gato.episodes.writer import EpisodeWriter

    spec = TaskSpec(
        "frames", (ObservationField("frame", "image", (16, 16, 3)),), ActionSpec("discrete", 1, num_values=4)
    )
    partial = tmp_path / ".partial" / "frames-s0-c8"
    _raw_frames_shard(partial / "chunk-000000-000008", spec)
    _drop_chunks_of_another_spec(partial, SimpleNamespace(spec=spec))
    assert not partial.exists()  # recorded again, not concatenated with compressed chunks

    _raw_frames_shard(tmp_path / "ds.partial" / "shard-00000", spec)
    with pytest.raises(ValueError, match=r"shard-00000: written with other features than this version's"):
        EpisodeWriter(tmp_path / "ds", spec)
