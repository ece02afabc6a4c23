"""GatoImageProcessor: patch order, pixel scaling, position intervals, input checks, save/load."""

import numpy as np
import PIL.Image
import pytest
import torch
from gato.processing.image_processing_gato import GatoImageProcessor, patch_position_intervals
from gato.suite import token_layout

P = token_layout.PATCH_SIZE


def coordinate_image(height: int, width: int) -> np.ndarray:
    """uint8 (H, W, 3) image whose pixel (i, j) holds (i, j, 7), so every patch says where it came from."""
    rows, cols = np.meshgrid(np.arange(height), np.arange(width), indexing="ij")
    return np.stack([rows, cols, np.full_like(rows, 7)], axis=-1).astype(np.uint8)


def to_uint8(patch_pixels) -> np.ndarray:
    """Invert the processor's scaling: p = (x / 255 · 2 − 1) / 4  ⇒  x = (4p + 1) · 255 / 2."""
    values = np.asarray(patch_pixels, dtype=np.float64)
    return np.rint((values * token_layout.PATCH_PIXEL_DIVISOR + 1.0) * 127.5).astype(np.int64)


def test_output_shapes_and_dtypes():
    processor = GatoImageProcessor()
    out = processor([coordinate_image(64, 64)] * 2, return_tensors="pt")
    assert out["patch_pixels"].shape == (2, 16, 3, P, P) and out["patch_pixels"].dtype == torch.float32
    assert out["patch_rows"].shape == (2, 16, 2) and out["patch_rows"].dtype == torch.long
    assert out["patch_cols"].shape == (2, 16, 2) and out["patch_cols"].dtype == torch.long
    assert processor.num_patches_per_image == 16


def test_patches_are_in_raster_order():
    height, width = 64, 48  # 4 × 3 patch grid, not square so rows and columns cannot be confused
    processor = GatoImageProcessor(size={"height": height, "width": width})
    image = coordinate_image(height, width)
    pixels = to_uint8(processor(image, return_tensors="np")["patch_pixels"][0])  # (12, 3, 16, 16)
    assert pixels.shape == (12, 3, P, P)
    grid_cols = width // P
    for index in range(pixels.shape[0]):  # an independent oracle: slice the image patch by patch
        r, c = divmod(index, grid_cols)
        expected = image[r * P : (r + 1) * P, c * P : (c + 1) * P].transpose(2, 0, 1)
        np.testing.assert_array_equal(pixels[index], expected, err_msg=f"patch {index} (grid row {r}, col {c})")


def test_pixel_scaling_endpoints():
    processor = GatoImageProcessor()
    black = processor(np.zeros((64, 64, 3), np.uint8), return_tensors="pt")["patch_pixels"]
    white = processor(np.full((64, 64, 3), 255, np.uint8), return_tensors="pt")["patch_pixels"]
    assert torch.allclose(black, torch.full_like(black, -0.25))
    assert torch.allclose(white, torch.full_like(white, 0.25))
    grey = processor(np.full((64, 64, 3), 51, np.uint8), return_tensors="pt")["patch_pixels"]
    assert torch.allclose(grey, torch.full_like(grey, (51 / 255 * 2 - 1) / 4))


def test_float_images_in_unit_range_are_not_rescaled():
    processor = GatoImageProcessor()
    image = np.random.default_rng(0).integers(0, 256, (64, 64, 3)).astype(np.uint8)
    from_uint8 = processor(image, return_tensors="np")["patch_pixels"]
    from_float = processor(image / 255.0, return_tensors="np")["patch_pixels"]
    np.testing.assert_allclose(from_float, from_uint8, atol=1e-6)


def test_greyscale_is_repeated_to_three_channels():
    processor = GatoImageProcessor()
    grey = np.random.default_rng(1).integers(0, 256, (64, 64)).astype(np.uint8)
    rgb = np.repeat(grey[:, :, None], 3, axis=-1)
    expected = processor(rgb, return_tensors="np")["patch_pixels"]
    np.testing.assert_array_equal(processor(grey, return_tensors="np")["patch_pixels"], expected)
    np.testing.assert_array_equal(processor(grey[:, :, None], return_tensors="np")["patch_pixels"], expected)


def test_pil_torch_list_and_stacked_inputs_agree():
    processor = GatoImageProcessor()
    frames = np.random.default_rng(2).integers(0, 256, (3, 64, 64, 3)).astype(np.uint8)
    expected = processor(list(frames), return_tensors="np")["patch_pixels"]
    np.testing.assert_array_equal(processor(frames, return_tensors="np")["patch_pixels"], expected)
    np.testing.assert_array_equal(processor(torch.from_numpy(frames), return_tensors="np")["patch_pixels"], expected)
    pil_images = [PIL.Image.fromarray(frame) for frame in frames]
    np.testing.assert_array_equal(processor(pil_images, return_tensors="np")["patch_pixels"], expected)


def test_paths_load_like_transformers_image_processors_take_them(tmp_path):
    processor = GatoImageProcessor()
    frame = np.random.default_rng(3).integers(0, 256, (64, 64, 3)).astype(np.uint8)
    PIL.Image.fromarray(frame).save(tmp_path / "scene.png")
    expected = processor(frame, return_tensors="np")["patch_pixels"]
    np.testing.assert_array_equal(
        processor(str(tmp_path / "scene.png"), return_tensors="np")["patch_pixels"], expected
    )
    np.testing.assert_array_equal(
        processor([str(tmp_path / "scene.png")], return_tensors="np")["patch_pixels"], expected
    )
    with pytest.raises(ValueError, match="images: could not load the image '.*missing.png'"):
        processor(str(tmp_path / "missing.png"))


def test_images_are_resized_to_size():
    processor = GatoImageProcessor(size={"height": 32, "width": 64})
    image = np.full((50, 70, 3), 200, np.uint8)  # any size; a constant image stays constant
    out = processor([image, np.zeros((64, 64, 3), np.uint8)], return_tensors="np")
    assert out["patch_pixels"].shape == (2, 8, 3, P, P)
    np.testing.assert_array_equal(to_uint8(out["patch_pixels"][0]), 200)


@pytest.mark.parametrize("source", [(210, 160), (7, 7), (50, 70)])
def test_bilinear_resize_matches_pil_within_one_grey_level(source):
    processor = GatoImageProcessor(size={"height": 32, "width": 64})
    frames = np.random.default_rng(4).integers(0, 256, (2, *source, 3)).astype(np.uint8)
    frames.setflags(write=False)  # read-only input (e.g. a memory-mapped dataset column) must work too
    got = to_uint8(processor(frames, return_tensors="np")["patch_pixels"])
    for frame, patches in zip(frames, got):
        reference = np.asarray(PIL.Image.fromarray(frame).resize((64, 32), PIL.Image.BILINEAR))
        expected = reference.reshape(2, P, 4, P, 3).transpose(0, 2, 4, 1, 3).reshape(8, 3, P, P)
        assert np.abs(patches - expected).max() <= 1


def test_other_filters_resize_with_pil_exactly():
    processor = GatoImageProcessor(resample=PIL.Image.NEAREST)
    frame = np.random.default_rng(5).integers(0, 256, (50, 70, 3)).astype(np.uint8)
    reference = np.asarray(PIL.Image.fromarray(frame).resize((64, 64), PIL.Image.NEAREST))
    expected = reference.reshape(4, P, 4, P, 3).transpose(0, 2, 4, 1, 3).reshape(16, 3, P, P)
    np.testing.assert_array_equal(to_uint8(processor(frame, return_tensors="np")["patch_pixels"][0]), expected)


def test_spec_interval_example():
    # GATO_SPEC.md section 2: a 5-column grid's column 2 spans [0.4, 0.6] → bins [51, 77), middle 64;
    # a 4-row grid's row 1 spans [0.25, 0.5] → bins [32, 64), middle 48.
    rows, cols = patch_position_intervals(grid_rows=4, grid_cols=5)
    assert rows.shape == cols.shape == (20, 2)
    patch = 1 * 5 + 2  # grid row 1, column 2 in raster order
    assert cols[patch].tolist() == [51, 77] and cols[patch].sum() // 2 == 64
    assert rows[patch].tolist() == [32, 64] and rows[patch].sum() // 2 == 48


@pytest.mark.parametrize("grid", [1, 3, 4, 5, 7, 16, 128])
def test_intervals_tile_the_bins_without_gaps(grid):
    rows, cols = patch_position_intervals(grid_rows=grid, grid_cols=grid)
    column_intervals = cols[:grid]  # the first grid row lists every column once
    row_intervals = rows[::grid]  # the first patch of each grid row
    for intervals in (row_intervals, column_intervals):
        assert intervals[0, 0] == 0 and intervals[-1, 1] == token_layout.POSITION_BINS
        np.testing.assert_array_equal(intervals[1:, 0], intervals[:-1, 1])  # no gap, no overlap
        assert (intervals[:, 1] > intervals[:, 0]).all()


def test_processor_gives_each_patch_its_interval():
    processor = GatoImageProcessor(size={"height": 64, "width": 80})
    out = processor(np.zeros((64, 80, 3), np.uint8), return_tensors="np")
    rows, cols = patch_position_intervals(4, 5)
    np.testing.assert_array_equal(out["patch_rows"][0], rows)
    np.testing.assert_array_equal(out["patch_cols"][0], cols)


@pytest.mark.parametrize(
    "images",
    [
        pytest.param(np.zeros((64, 64, 4), np.uint8), id="four channels"),
        pytest.param(np.zeros((64,), np.uint8), id="rank 1"),
        pytest.param(np.zeros((2, 2, 64, 64, 3), np.uint8), id="rank 5"),
        pytest.param([np.zeros((2, 64, 64, 3), np.uint8)], id="batch inside a list"),
        pytest.param([], id="empty list"),
        pytest.param(np.full((64, 64, 3), np.nan, np.float32), id="NaN"),
        pytest.param(np.full((64, 64, 3), np.inf, np.float32), id="inf"),
        pytest.param(np.full((64, 64, 3), 1.5, np.float32), id="float above 1"),
        pytest.param(np.full((64, 64, 3), 256, np.int64), id="integer above 255"),
        pytest.param(np.zeros((64, 64, 3), bool), id="bool dtype"),
        pytest.param("image.png", id="a path"),
    ],
)
def test_bad_images_raise_naming_the_field(images):
    with pytest.raises(ValueError, match="images"):
        GatoImageProcessor()(images)


def test_unresized_images_must_be_a_multiple_of_the_patch_size():
    with pytest.raises(ValueError, match="images.*multiples of patch_size"):
        GatoImageProcessor()(np.zeros((40, 40, 3), np.uint8), do_resize=False)


@pytest.mark.parametrize("size", [{"height": 60, "width": 64}, {"height": 64, "width": 8}])
def test_size_must_be_a_multiple_of_the_patch_size(size):
    with pytest.raises(ValueError, match="size"):
        GatoImageProcessor(size=size)
    with pytest.raises(ValueError, match="size"):
        GatoImageProcessor()(np.zeros((64, 64, 3), np.uint8), size=size)


def test_save_and_load_round_trip(tmp_path):
    processor = GatoImageProcessor(size={"height": 32, "width": 48}, position_bins=64)
    processor.save_pretrained(tmp_path)
    loaded = GatoImageProcessor.from_pretrained(tmp_path)
    assert loaded.to_dict() == processor.to_dict()
    images = np.random.default_rng(3).integers(0, 256, (2, 40, 40, 3)).astype(np.uint8)
    expected, got = processor(images, return_tensors="pt"), loaded(images, return_tensors="pt")
    assert set(got.keys()) == set(expected.keys()) == {"patch_pixels", "patch_rows", "patch_cols"}
    for key in expected:
        assert torch.equal(got[key], expected[key]), key
    assert got["patch_rows"].max() == 64


def test_auto_image_processor_loads_it(tmp_path):
    from transformers import AutoImageProcessor

    import gato  # noqa: F401  (registers the Gato classes with the Auto classes)

    GatoImageProcessor(size={"height": 32, "width": 32}).save_pretrained(tmp_path)
    loaded = AutoImageProcessor.from_pretrained(tmp_path)
    assert isinstance(loaded, GatoImageProcessor) and loaded.num_patches_per_image == 4
