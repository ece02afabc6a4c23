"""Episode schema and writer: features by kind, spec round trip, validation errors, shards that survive."""

from __future__ import annotations

import numpy as np
import pytest
from datasets import Array2D, Array3D, List, Value, load_from_disk
from gato.episodes.schema import episode_features, episode_from_row, iter_episodes, read_episode, spec_from_dataset
from gato.episodes.writer import EpisodeWriter, episodes_to_dataset, load_episodes, validate_episode
from gato.suite.task_spec import ActionSpec, ObservationField, TaskSpec

SPEC = TaskSpec(
    name="toy",
    observations=(
        ObservationField("mission", "text"),
        ObservationField("frame", "image", (16, 16, 3)),
        ObservationField("grid", "discrete", (3, 3), num_values=11),
        ObservationField("pos", "continuous", (2,)),
    ),
    action=ActionSpec("continuous", size=2),
)


def toy_episode(steps: int = 4, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    return {
        "task": "toy",
        "observations": {
            "mission": ["go to the red ball"] * steps,
            "frame": rng.integers(0, 256, (steps, 16, 16, 3), dtype=np.uint8),
            "grid": rng.integers(0, 11, (steps, 3, 3)),
            "pos": rng.normal(size=(steps, 2)),
        },
        "actions": rng.uniform(-1, 1, (steps, 2)),
        "rewards": rng.normal(size=steps),
    }


def test_features_follow_the_field_kinds():
    features = episode_features(SPEC)
    observations = features["observations"]
    assert observations["mission"] == List(feature=observations["mission"].feature)
    assert observations["frame"] == List(Value("binary"))  # one zlib-compressed frame per step (schema version 2)
    assert observations["grid"] == Array3D((None, 3, 3), "uint8")  # 11 values fit a byte
    assert observations["pos"] == Array2D((None, 2), "float32")
    assert features["actions"] == Array2D((None, 2), "float32")


def test_spec_and_values_round_trip_through_disk(tmp_path):
    episodes = [toy_episode(3, 0), toy_episode(5, 1)]
    episodes_to_dataset(episodes, SPEC).save_to_disk(str(tmp_path / "toy"))
    dataset = load_from_disk(str(tmp_path / "toy"))
    assert spec_from_dataset(dataset) == SPEC
    episode = episode_from_row(dataset.with_format("numpy")[1], SPEC)
    assert episode["observations"]["frame"].dtype == np.uint8
    np.testing.assert_array_equal(episode["observations"]["frame"], episodes[1]["observations"]["frame"])
    np.testing.assert_array_equal(episode["observations"]["grid"], episodes[1]["observations"]["grid"])
    np.testing.assert_allclose(episode["actions"], episodes[1]["actions"], rtol=1e-6)
    assert episode["observations"]["mission"] == ["go to the red ball"] * 5
    assert dataset[1]["episode_return"] == pytest.approx(float(np.sum(episodes[1]["rewards"])))
    assert dataset["num_steps"] == [3, 5]


def _broken(mutate):
    episode = toy_episode()
    mutate(episode)
    return episode


@pytest.mark.parametrize(
    ("mutate", "field", "message"),
    [
        (lambda e: e["observations"].pop("pos"), "observations.pos", "missing"),
        (lambda e: e.pop("rewards"), "rewards", "missing"),
        (
            lambda e: e["observations"].__setitem__("pos", np.zeros((4, 3))),
            "observations.pos",
            "expected shape (4, 2)",
        ),
        (lambda e: e["observations"]["pos"].__setitem__((1, 1), np.nan), "observations.pos", "NaN"),
        (
            lambda e: e["observations"].__setitem__("frame", np.zeros((3, 16, 16, 3), np.uint8)),
            "observations.frame",
            "expected shape (4, 16, 16, 3)",
        ),
        (lambda e: e["observations"].__setitem__("grid", np.full((4, 3, 3), 11)), "observations.grid", "[0, 11)"),
        (lambda e: e["observations"].__setitem__("grid", np.full((4, 3, 3), 0.5)), "observations.grid", "integer"),
        (lambda e: e["observations"].__setitem__("mission", ["go"] * 3), "observations.mission", "expected 4 strings"),
        (lambda e: e.__setitem__("rewards", np.zeros(5)), "rewards", "(4,)"),
        (lambda e: e.__setitem__("actions", np.zeros((4, 3))), "actions", "(4, 2)"),
        (lambda e: e.__setitem__("task", "other"), "task", "'toy'"),
        (lambda e: e["observations"].__setitem__("extra", np.zeros(4)), "observations.extra", "not a field"),
    ],
)
def test_validation_error_names_episode_and_field(mutate, field, message):
    with pytest.raises(ValueError) as error:
        validate_episode(_broken(mutate), SPEC, index=7)
    assert f"episode 7, field {field!r}" in str(error.value)
    assert message in str(error.value)


def test_bad_episode_loses_nothing_already_written(tmp_path):
    path = tmp_path / "toy"
    with pytest.raises(ValueError, match="episode 3, field 'observations.pos'"):
        with EpisodeWriter(path, SPEC, shard_size=2) as writer:
            for index in range(3):
                writer.add(toy_episode(3, index))
            writer.add(_broken(lambda e: e["observations"]["pos"].__setitem__((0, 0), np.inf)))
    assert not path.exists()  # never half-written
    shards = sorted((tmp_path / "toy.partial").glob("shard-*"))
    assert [len(load_from_disk(str(s))) for s in shards] == [2, 1]  # the buffered valid episode was flushed too
    # a new writer resumes after the three episodes on disk
    with EpisodeWriter(path, SPEC, shard_size=2) as writer:
        assert writer.num_episodes == 3
        writer.add(toy_episode(3, 3))
    dataset = load_episodes(path)
    assert len(dataset) == 4 and not (tmp_path / "toy.partial").exists()
    np.testing.assert_allclose(
        dataset.with_format("numpy")[2]["observations"]["pos"], toy_episode(3, 2)["observations"]["pos"], rtol=1e-6
    )


def test_streaming_reads_the_same_episodes(tmp_path):
    with EpisodeWriter(tmp_path / "toy", SPEC, shard_size=1) as writer:
        for index in range(3):
            writer.add(toy_episode(2 + index, index))
    streamed = load_episodes(tmp_path / "toy", streaming=True)
    assert [row["num_steps"] for row in streamed] == [2, 3, 4]
    assert spec_from_dataset(streamed) == SPEC


def test_fast_arrow_reader_equals_the_python_rows(tmp_path):
    """read_episode / iter_episodes (Arrow views) return exactly what the slow python rows hold, on a
    dataset whose rows sit at non-zero offsets inside their Arrow chunk."""
    episodes = [toy_episode(2 + index % 3, index) for index in range(5)]
    with EpisodeWriter(tmp_path / "toy", SPEC, shard_size=2) as writer:
        for episode in episodes:
            writer.add(episode)
    dataset = load_episodes(tmp_path / "toy")
    streamed = list(iter_episodes(load_episodes(tmp_path / "toy", streaming=True)))
    for index, fast in enumerate(iter_episodes(dataset)):
        slow = episode_from_row(dataset[index], SPEC)
        for got in (fast, read_episode(dataset, index), streamed[index]):
            assert got["observations"]["mission"] == slow["observations"]["mission"]
            for name in ("frame", "grid", "pos"):
                assert got["observations"][name].dtype == slow["observations"][name].dtype
                np.testing.assert_array_equal(got["observations"][name], slow["observations"][name])
            np.testing.assert_array_equal(got["actions"], slow["actions"])
            np.testing.assert_array_equal(got["rewards"], slow["rewards"])
        np.testing.assert_array_equal(fast["observations"]["frame"], episodes[index]["observations"]["frame"])
