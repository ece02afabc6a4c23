"""The captioning set: captions are true to the scene description and to the pixels; held-out pairs."""

from __future__ import annotations

import numpy as np
import pytest
from gato.episodes.captions import COLOURS, HELD_OUT_PAIRS, build_captions_dataset, caption_for, object_phrase


@pytest.fixture(scope="module")
def captions():
    return build_captions_dataset(num_train=40, num_validation=20, seed=0)


def test_caption_names_every_object_of_the_description(captions):
    for row in captions["train"]:
        assert row["caption"] == caption_for(row["objects"])
        for obj in row["objects"]:
            assert object_phrase(obj) in row["caption"]
        assert row["caption"].count(" a ") + row["caption"].startswith("a ") == len(row["objects"])


def _fill_ratio(pixels: np.ndarray, obj: dict) -> tuple[float, int]:
    """Fraction of the object's bounding box painted in its colour, and the painted pixel count."""
    x, y, r = obj["center_x"], obj["center_y"], obj["half_extent"]
    box = pixels[int(np.ceil(y - r)) : int(np.floor(y + r)) + 1, int(np.ceil(x - r)) : int(np.floor(x + r)) + 1]
    painted = (box == np.array(COLOURS[obj["colour"]], dtype=np.uint8)).all(-1)
    return float(painted.mean()), int(painted.sum())


def test_pixels_show_what_the_caption_says(captions):
    """Colour at each object's centre, shape from how much of its box it fills, size from its area."""
    shape_fill = {"square": (0.95, 1.0), "circle": (0.75, 0.92), "triangle": (0.45, 0.7)}  # ideal: 1, π/4, 1/2
    areas = {"small": [], "large": []}
    for split in ("train", "validation", "test"):
        for row in captions[split]:
            pixels = np.asarray(row["image"])
            assert pixels.shape == (64, 64, 3)
            for obj in row["objects"]:
                centre = pixels[int(round(obj["center_y"])), int(round(obj["center_x"]))]
                assert tuple(centre) == COLOURS[obj["colour"]], (row["caption"], obj)
                ratio, area = _fill_ratio(pixels, obj)
                low, high = shape_fill[obj["shape"]]
                assert low <= ratio <= high, (obj["shape"], ratio)
                areas[obj["size"]].append(area)
            # nothing else is painted: every non-background pixel belongs to a described object
            painted_colours = {tuple(c) for c in pixels.reshape(-1, 3)} - {(240, 240, 240)}
            assert painted_colours <= {COLOURS[obj["colour"]] for obj in row["objects"]}
    assert max(areas["small"]) < min(areas["large"])


def test_held_out_pairs_only_in_validation(captions):
    held_out = set(HELD_OUT_PAIRS)
    train_pairs = {(o["colour"], o["shape"]) for row in captions["train"] for o in row["objects"]}
    assert not train_pairs & held_out
    for row in captions["validation"]:
        assert {(o["colour"], o["shape"]) for o in row["objects"]} & held_out
    # each colour and each shape of a held-out pair is still seen in training, in other combinations
    assert {c for c, _ in held_out} <= {c for c, _ in train_pairs}
    assert {s for _, s in held_out} <= {s for _, s in train_pairs}


def test_test_scenes_are_new_arrangements_of_seen_pairs(captions):
    assert len(captions["test"]) == len(captions["validation"]) == 20  # num_test defaults to num_validation
    train_captions = set(captions["train"]["caption"])
    for row in captions["test"]:
        assert row["caption"] not in train_captions
        assert not {(o["colour"], o["shape"]) for o in row["objects"]} & set(HELD_OUT_PAIRS)


def test_test_scenes_skip_captions_a_large_training_split_holds():
    # 2,000 training scenes hold most of the 252 one-object captions: drawn freely, a third of the test scenes
    # (the one-object ones) would mostly repeat one.
    splits = build_captions_dataset(num_train=2000, num_validation=1, num_test=150, seed=0)
    assert not set(splits["test"]["caption"]) & set(splits["train"]["caption"])
    assert len(splits["test"]) == 150


def test_a_split_does_not_depend_on_the_other_split_sizes(captions):
    bigger = build_captions_dataset(num_train=40, num_validation=5, num_test=30, seed=0)
    assert bigger["train"]["caption"] == captions["train"]["caption"]
    assert bigger["validation"]["caption"] == captions["validation"]["caption"][:5]
    assert bigger["test"]["caption"][:20] == captions["test"]["caption"]


def test_deterministic_given_seed(captions):
    again = build_captions_dataset(num_train=40, num_validation=20, seed=0)
    assert again["train"]["caption"] == captions["train"]["caption"]
    assert np.array_equal(np.asarray(again["validation"][3]["image"]), np.asarray(captions["validation"][3]["image"]))
    other = build_captions_dataset(num_train=40, num_validation=20, seed=1)
    assert other["train"]["caption"] != captions["train"]["caption"]
