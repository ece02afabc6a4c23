"""A generated captioning set: rendered scenes of 1–3 objects, each with a truthful caption.

Each scene is a light background divided into a 3×3 grid; every object sits in its own cell (so objects
never overlap) and has a colour, a shape and a size. The caption lists the objects in raster order of
their cells::

    "a large red circle at the top left, a small blue square in the centre and a large green triangle
    at the bottom right."

The scene's structured description (``objects``: colour, shape, size, cell row/column, the position
phrase, and the centre and half-extent in pixels) is stored with the image, so truthfulness can be
checked from the description and from the pixels.

Two held-out splits ask two questions:

- ``validation`` — compositional generalization: some colour×shape pairs (:data:`HELD_OUT_PAIRS`) never
  appear in the ``train`` split; every ``validation`` scene contains at least one of them. Each colour and
  each shape is still seen in training, only not in those combinations.
- ``test`` — new scenes: drawn like the training scenes (seen pairs only), none with a caption that occurs
  in ``train``; the model has seen every object kind, never this arrangement.
"""

from __future__ import annotations

import numpy as np
from datasets import Dataset, DatasetDict, Features, Image, List, Value
from gato.suite.token_layout import DEFAULT_IMAGE_SIZE
from PIL import Image as PILImage
from PIL import ImageDraw

COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (220, 40, 40),
    "green": (40, 170, 60),
    "blue": (40, 80, 220),
    "yellow": (235, 200, 30),
    "purple": (140, 60, 180),
    "orange": (240, 130, 20),
}
SHAPES: tuple[str, ...] = ("circle", "square", "triangle")
# Half-extent of an object as a fraction of its cell's side; both leave room for the ±1 px jitter.
SIZES: dict[str, float] = {"small": 0.22, "large": 0.42}
BACKGROUND = (240, 240, 240)
GRID = 3
POSITION_PHRASES: tuple[tuple[str, ...], ...] = (
    ("at the top left", "at the top", "at the top right"),
    ("on the left", "in the centre", "on the right"),
    ("at the bottom left", "at the bottom", "at the bottom right"),
)
HELD_OUT_PAIRS: tuple[tuple[str, str], ...] = (
    ("red", "triangle"),
    ("green", "circle"),
    ("blue", "square"),
    ("purple", "triangle"),
)
MAX_OBJECTS = 3

OBJECT_FEATURES = {
    "colour": Value("string"),
    "shape": Value("string"),
    "size": Value("string"),
    "row": Value("int8"),  # grid cell, 0 = top
    "col": Value("int8"),  # grid cell, 0 = left
    "position": Value("string"),
    "center_x": Value("float32"),  # pixels
    "center_y": Value("float32"),
    "half_extent": Value("float32"),  # pixels: radius of a circle, half the side of a square / triangle
}
CAPTION_FEATURES = Features({"image": Image(), "caption": Value("string"), "objects": List(OBJECT_FEATURES)})


def object_phrase(obj: dict) -> str:
    """``"a large red circle at the top left"``."""
    return f"a {obj['size']} {obj['colour']} {obj['shape']} {obj['position']}"


def caption_for(objects: list[dict]) -> str:
    """The caption of a scene: its objects in raster order of their cells, joined in English."""
    phrases = [object_phrase(obj) for obj in sorted(objects, key=lambda obj: (obj["row"], obj["col"]))]
    if len(phrases) == 1:
        return phrases[0] + "."
    return ", ".join(phrases[:-1]) + " and " + phrases[-1] + "."


def render_scene(objects: list[dict], image_size: tuple[int, int] = DEFAULT_IMAGE_SIZE) -> PILImage.Image:
    """Draw ``objects`` (their ``center_x/center_y/half_extent`` in pixels) on the background."""
    height, width = image_size
    image = PILImage.new("RGB", (width, height), BACKGROUND)
    draw = ImageDraw.Draw(image)
    for obj in objects:
        x, y, r = obj["center_x"], obj["center_y"], obj["half_extent"]
        fill = COLOURS[obj["colour"]]
        if obj["shape"] == "circle":
            draw.ellipse((x - r, y - r, x + r, y + r), fill=fill)
        elif obj["shape"] == "square":
            draw.rectangle((x - r, y - r, x + r, y + r), fill=fill)
        else:  # an upright triangle; its box centre (x, y) lies inside it, at half its base width
            draw.polygon(((x, y - r), (x - r, y + r), (x + r, y + r)), fill=fill)
    return image


def _allowed_pairs(held_out: bool) -> list[tuple[str, str]]:
    pairs = [(colour, shape) for colour in COLOURS for shape in SHAPES]
    return [pair for pair in pairs if (pair in HELD_OUT_PAIRS) == held_out]


def sample_scene(
    rng: np.random.Generator, validation: bool, image_size: tuple[int, int] = DEFAULT_IMAGE_SIZE
) -> list[dict]:
    """Sample one scene's objects. Training scenes avoid :data:`HELD_OUT_PAIRS`; validation scenes
    contain at least one of them (the first sampled object), the other objects are unrestricted."""
    height, width = image_size
    cell_h, cell_w = height / GRID, width / GRID
    count = int(rng.integers(1, MAX_OBJECTS + 1))
    cells = rng.choice(GRID * GRID, size=count, replace=False)
    seen_pairs = _allowed_pairs(held_out=False)
    all_pairs = seen_pairs + _allowed_pairs(held_out=True)
    objects = []
    for k, cell in enumerate(cells):
        pool = _allowed_pairs(held_out=True) if (validation and k == 0) else (all_pairs if validation else seen_pairs)
        colour, shape = pool[int(rng.integers(len(pool)))]
        size = ("small", "large")[int(rng.integers(2))]
        row, col = divmod(int(cell), GRID)
        jitter = rng.uniform(-1.0, 1.0, size=2)
        objects.append(
            {
                "colour": colour,
                "shape": shape,
                "size": size,
                "row": row,
                "col": col,
                "position": POSITION_PHRASES[row][col],
                "center_x": float((col + 0.5) * cell_w + jitter[0]),
                "center_y": float((row + 0.5) * cell_h + jitter[1]),
                "half_extent": float(SIZES[size] * min(cell_h, cell_w)),
            }
        )
    return sorted(objects, key=lambda obj: (obj["row"], obj["col"]))


def _new_scenes(
    rng: np.random.Generator, count: int, training_captions: set[str], image_size: tuple[int, int]
) -> list[list[dict]]:
    """``count`` scenes drawn like training scenes, redrawn while their caption is in ``training_captions``
    (one-object scenes often are; most others are new)."""
    scenes: list[list[dict]] = []
    draws = 0
    while len(scenes) < count:
        if draws == 100 * count:
            raise ValueError(
                f"num_test: could not draw {count} scenes whose caption is not among the "
                f"{len(training_captions)} training captions"
            )
        objects, draws = sample_scene(rng, validation=False, image_size=image_size), draws + 1
        if caption_for(objects) not in training_captions:
            scenes.append(objects)
    return scenes


def build_captions_dataset(
    num_train: int,
    num_validation: int | None = None,
    seed: int = 0,
    image_size: tuple[int, int] = DEFAULT_IMAGE_SIZE,
    num_test: int | None = None,
) -> DatasetDict:
    """The captioning set: ``DatasetDict(train=…, validation=…, test=…)`` with columns ``image`` (PIL, RGB,
    ``image_size`` = (height, width)), ``caption`` and ``objects`` (the structured scene).

    ``num_validation`` defaults to a tenth of ``num_train`` (at least 1), ``num_test`` to ``num_validation``.
    ``test`` scenes are drawn like training scenes and redrawn while their caption occurs in ``train``.
    Deterministic given ``seed``; each split has its own random stream, so a split's scenes do not depend on
    the other splits' sizes.
    """
    if num_train < 1:
        raise ValueError(f"num_train: expected ≥ 1, got {num_train}")
    num_validation = max(1, num_train // 10) if num_validation is None else num_validation
    num_test = num_validation if num_test is None else num_test
    scenes: dict[str, list[list[dict]]] = {}
    for split_index, (split, count) in enumerate(
        (("train", num_train), ("validation", num_validation), ("test", num_test))
    ):
        rng = np.random.default_rng([seed, split_index])
        if split == "test":
            scenes[split] = _new_scenes(rng, count, {caption_for(objects) for objects in scenes["train"]}, image_size)
        else:
            scenes[split] = [
                sample_scene(rng, validation=split == "validation", image_size=image_size) for _ in range(count)
            ]
    return DatasetDict(
        {
            split: Dataset.from_dict(
                {
                    "image": [render_scene(objects, image_size) for objects in split_scenes],
                    "caption": [caption_for(objects) for objects in split_scenes],
                    "objects": split_scenes,
                },
                features=CAPTION_FEATURES,
            )
            for split, split_scenes in scenes.items()
        }
    )
