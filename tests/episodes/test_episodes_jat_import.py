"""JAT importer, on small fixtures built in JAT's per-step column schema (no download)."""

from __future__ import annotations

import numpy as np
import pytest
from datasets import Dataset, Features, Image, List, Value
from gato.episodes.jat_import import import_jat_dataset, jat_task_spec
from gato.episodes.schema import episode_from_row, spec_from_dataset
from PIL import Image as PILImage

RNG = np.random.default_rng(0)


def babyai_like(lengths=(3, 5)) -> Dataset:
    features = Features(
        {
            "text_observations": List(Value("string")),
            "discrete_observations": List(List(Value("int64"))),
            "discrete_actions": List(Value("int64")),
            "rewards": List(Value("float32")),
        }
    )
    return Dataset.from_dict(
        {
            "text_observations": [["go to the red ball"] * t for t in lengths],
            "discrete_observations": [RNG.integers(0, 11, (t, 148)).tolist() for t in lengths],
            "discrete_actions": [RNG.integers(0, 7, t).tolist() for t in lengths],
            "rewards": [[0.0] * (t - 1) + [0.9] for t in lengths],
        },
        features=features,
    )


def atari_like(lengths=(4, 2)) -> tuple[Dataset, list[np.ndarray]]:
    stacks = [RNG.integers(0, 256, (t, 84, 84, 4), dtype=np.uint8) for t in lengths]
    features = Features(
        {
            "image_observations": List(Image()),
            "discrete_actions": List(Value("int64")),
            "rewards": List(Value("float32")),
        }
    )
    dataset = Dataset.from_dict(
        {
            "image_observations": [[PILImage.fromarray(frame, mode="RGBA") for frame in stack] for stack in stacks],
            "discrete_actions": [RNG.integers(0, 18, t).tolist() for t in lengths],
            "rewards": [RNG.integers(0, 2, t).astype(float).tolist() for t in lengths],
        },
        features=features,
    )
    return dataset, stacks


def mujoco_like(lengths=(6, 2)) -> Dataset:
    features = Features(
        {
            "continuous_observations": List(List(Value("float32"))),
            "continuous_actions": List(List(Value("float32"))),
            "rewards": List(Value("float32")),
        }
    )
    return Dataset.from_dict(
        {
            "continuous_observations": [RNG.normal(size=(t, 27)).tolist() for t in lengths],
            "continuous_actions": [RNG.uniform(-1, 1, (t, 8)).tolist() for t in lengths],
            "rewards": [RNG.normal(size=t).tolist() for t in lengths],
        },
        features=features,
    )


def test_babyai_columns_become_text_and_discrete_fields():
    jat = babyai_like()
    dataset = import_jat_dataset(jat, "babyai-goto")
    spec = spec_from_dataset(dataset)
    assert [(f.name, f.kind, f.shape) for f in spec.observations] == [
        ("text_observations", "text", ()),
        ("discrete_observations", "discrete", (148,)),
    ]
    assert spec.action.kind == "discrete" and spec.action.size == 1
    assert dataset["num_steps"] == [3, 5]
    episode = episode_from_row(dataset.with_format("numpy")[1], spec)
    np.testing.assert_array_equal(episode["observations"]["discrete_observations"], jat[1]["discrete_observations"])
    np.testing.assert_array_equal(episode["actions"][:, 0], jat[1]["discrete_actions"])
    assert episode["observations"]["text_observations"] == jat[1]["text_observations"]
    assert dataset[1]["episode_return"] == pytest.approx(0.9)


def test_atari_frame_stacks_import_as_the_latest_greyscale_frame(tmp_path):
    jat, stacks = atari_like()
    dataset = import_jat_dataset(jat, "atari-pong", out=tmp_path / "pong")
    spec = spec_from_dataset(dataset)
    assert spec.observations[0].kind == "image" and spec.observations[0].shape == (84, 84)
    frames = episode_from_row(dataset.with_format("numpy")[0], spec)["observations"]["image_observations"]
    np.testing.assert_array_equal(frames, stacks[0][..., -1])


def test_continuous_actions_in_unit_box_are_binned_directly():
    dataset = import_jat_dataset(mujoco_like(), "mujoco-ant")
    spec = spec_from_dataset(dataset)
    assert spec.action.kind == "continuous" and spec.action.size == 8 and spec.action.mu_law is False
    assert spec.observations[0].mu_law is True and spec.observations[0].shape == (27,)


def test_malformed_jat_episode_is_named():
    jat = mujoco_like()
    rows = jat.to_dict()
    rows["continuous_actions"][1] = rows["continuous_actions"][1][:-1]  # one action short
    broken = Dataset.from_dict(rows, features=jat.features)
    spec = jat_task_spec(jat, "mujoco-ant")
    with pytest.raises(ValueError, match="episode 1, field 'observations.continuous_observations'"):
        import_jat_dataset(broken, "mujoco-ant", spec=spec)
