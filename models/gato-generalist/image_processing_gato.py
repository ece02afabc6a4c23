"""Images → Gato's 16×16 patches with their row/column position intervals (GATO_SPEC.md sections 1–2).

Each image is resized to ``size`` (a multiple of the patch size), its pixels are mapped to [-1, 1]
and divided by :data:`~gato.suite.token_layout.PATCH_PIXEL_DIVISOR` (√16 = 4), and it is cut into
non-overlapping ``patch_size × patch_size`` patches in raster order (row by row, left to right).
Every patch also gets its normalized row and column interval quantized to ``position_bins`` bins,
which the model turns into its patch position encoding.

Accepted images (one image, a list of images, or one stacked array of images):

- ``uint8`` (or any integer dtype with values in [0, 255]) arrays ``(H, W, 3)`` RGB, channels last;
- greyscale ``(H, W)`` or ``(H, W, 1)`` arrays, repeated to 3 channels (Gato's patch embedding
  always sees RGB);
- float arrays with values in [0, 1] (the rescale by ``rescale_factor`` is applied to integer images
  only, so a float image is taken as already rescaled);
- ``PIL.Image.Image`` (converted to RGB) and CPU ``torch.Tensor`` (same layouts as numpy);
- a stacked batch ``(N, H, W, 3)`` / ``(N, H, W, 1)``, e.g. an episode's frames, handled without
  splitting it into images. A 3-D array is always *one* image: pass a batch of greyscale frames as
  ``(N, H, W, 1)``.

Channels-first input is not accepted: a trailing channel axis is unambiguous, a guessed one is not.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import PIL.Image
import torch
from transformers.image_processing_backends import PilBackend
from transformers.image_processing_utils import BatchFeature
from transformers.image_transforms import resize as pil_resize
from transformers.image_utils import ChannelDimension, ImageInput, PILImageResampling, SizeDict, load_image
from transformers.processing_utils import ImagesKwargs, Unpack
from transformers.utils import TensorType

try:
    from gato.suite.token_layout import DEFAULT_IMAGE_SIZE, PATCH_PIXEL_DIVISOR, PATCH_SIZE, POSITION_BINS
except ImportError:  # a remote-code folder (GatoProcessor.save_pretrained), loaded where gato is not installed
    from .token_layout import DEFAULT_IMAGE_SIZE, PATCH_PIXEL_DIVISOR, PATCH_SIZE, POSITION_BINS

_MAX_PIXEL_VALUE = 255  # integer images are 8-bit


class GatoImageProcessorKwargs(ImagesKwargs, total=False):
    r"""
    patch_size (`int`, *optional*, defaults to 16):
        Side of the square patches, in pixels. ``size`` must be a multiple of it.
    position_bins (`int`, *optional*, defaults to 128):
        Number of bins the normalized row/column intervals of a patch are quantized to.
    """

    patch_size: int
    position_bins: int


def patch_position_intervals(
    grid_rows: int, grid_cols: int, position_bins: int = POSITION_BINS
) -> tuple[np.ndarray, np.ndarray]:
    """Quantized row and column intervals of every patch of a ``grid_rows × grid_cols`` patch grid.

    Patch ``p`` (raster order) sits in grid row ``p // grid_cols`` and grid column ``p % grid_cols``;
    its normalized row interval is ``[r / grid_rows, (r + 1) / grid_rows]``. An edge ``x`` in [0, 1] maps
    to bin ``floor(x * position_bins + 0.5)``, so the half-open intervals ``[lo, hi)`` tile
    ``[0, position_bins)`` without gaps or overlap. Example (GATO_SPEC.md section 2): with 5 columns,
    column 2 covers [0.4, 0.6] → ``[51, 77)``, whose middle ``(lo + hi) // 2`` is 64.

    Returns:
        ``(rows, cols)``, each int64 ``(grid_rows * grid_cols, 2)`` holding ``[lo, hi)`` bin indices.
    """
    for name, value in (("grid_rows", grid_rows), ("grid_cols", grid_cols), ("position_bins", position_bins)):
        if int(value) != value or value < 1:
            raise ValueError(f"{name}: expected a positive integer, got {value!r}")

    def edges(cells: int) -> np.ndarray:
        # floor(k/cells * bins + 1/2) in exact integer arithmetic: floor((2k·bins + cells) / (2·cells)).
        k = np.arange(cells + 1, dtype=np.int64)
        return (2 * k * position_bins + cells) // (2 * cells)

    row_edges, col_edges = edges(grid_rows), edges(grid_cols)
    row_intervals = np.stack([row_edges[:-1], row_edges[1:]], axis=-1)  # (grid_rows, 2)
    col_intervals = np.stack([col_edges[:-1], col_edges[1:]], axis=-1)  # (grid_cols, 2)
    rows = np.repeat(row_intervals, grid_cols, axis=0)  # raster order: row index changes slowest
    cols = np.tile(col_intervals, (grid_rows, 1))
    return rows, cols


class GatoImageProcessor(PilBackend):
    r"""Gato's image processor: resize, scale to [-1, 1] / 4, 16×16 patches in raster order, position bins.

    Args:
        size (`dict[str, int]`, *optional*, defaults to `{"height": 64, "width": 64}`):
            Size every image is resized to; both sides must be multiples of ``patch_size``.
        patch_size (`int`, *optional*, defaults to 16):
            Patch side in pixels (the paper's 16).
        position_bins (`int`, *optional*, defaults to 128):
            Bins of the patch position encoding (the paper's 128).
        resample (`PILImageResampling`, *optional*, defaults to `BILINEAR`):
            Filter for resizing (PIL's; uint8 bilinear runs batched in torch, within one grey level of
            PIL, see :meth:`_resize_batch`). Images already at ``size`` are not resampled at all.
        do_resize (`bool`, *optional*, defaults to `True`):
            With ``False``, images must already share one size that is a multiple of ``patch_size``.
        rescale_factor / image_mean / image_std:
            Integer images are multiplied by ``rescale_factor`` (1/255) to [0, 1], then every image is
            normalized with mean = std = 0.5 to [-1, 1], then divided by ``PATCH_PIXEL_DIVISOR`` (4).

    Calling it returns a :class:`~transformers.BatchFeature` with

    - ``patch_pixels`` float32 ``(N, P, 3, patch_size, patch_size)``: ``P = (H / 16)·(W / 16)`` patches
      per image in raster order, values in [-0.25, 0.25] with the defaults;
    - ``patch_rows`` / ``patch_cols`` int64 ``(N, P, 2)``: each patch's ``[lo, hi)`` position bins
      (:func:`patch_position_intervals`).
    """

    resample = PILImageResampling.BILINEAR
    size = {"height": DEFAULT_IMAGE_SIZE[0], "width": DEFAULT_IMAGE_SIZE[1]}
    patch_size = PATCH_SIZE
    position_bins = POSITION_BINS
    do_resize = True
    do_rescale = True
    rescale_factor = 1 / _MAX_PIXEL_VALUE
    do_normalize = True
    image_mean = 0.5
    image_std = 0.5
    valid_kwargs = GatoImageProcessorKwargs
    model_input_names = ["patch_pixels", "patch_rows", "patch_cols"]

    def __init__(self, **kwargs: Unpack[GatoImageProcessorKwargs]) -> None:
        super().__init__(**kwargs)
        self._check_geometry(self.size, self.patch_size, self.position_bins)

    @property
    def num_patches_per_image(self) -> int:
        """Patches (= tokens) one image becomes at the configured ``size``."""
        return (self.size.height // self.patch_size) * (self.size.width // self.patch_size)

    @staticmethod
    def _check_geometry(size: SizeDict, patch_size: int, position_bins: int) -> None:
        if patch_size is None or int(patch_size) != patch_size or patch_size < 1:
            raise ValueError(f"patch_size: expected a positive integer, got {patch_size!r}")
        if position_bins is None or int(position_bins) != position_bins or position_bins < 1:
            raise ValueError(f"position_bins: expected a positive integer, got {position_bins!r}")
        height, width = size.height, size.width
        if height is None or width is None:
            raise ValueError(f"size: expected {{'height': int, 'width': int}}, got {dict(size)}")
        if height < patch_size or width < patch_size or height % patch_size or width % patch_size:
            raise ValueError(
                f"size: height and width must be positive multiples of patch_size={patch_size}, "
                f"got height={height}, width={width}"
            )

    # --- input preparation: everything becomes channels-last (n, H, W, 3) arrays --------------------

    def _prepare_image_like_inputs(self, images: ImageInput, *args: Any, **kwargs: Any) -> list[np.ndarray]:
        """Validate ``images`` and turn them into a list of channels-last batches ``(n, H, W, 3)``.

        A stacked array stays one batch (no per-image work); a list gives one batch per image.
        Channels stay last (unlike the PIL backend's channels-first convention): PIL resizes HWC and
        the patch cut is one transpose from HWC.
        """
        if isinstance(images, (list, tuple)):
            if len(images) == 0:
                raise ValueError("images: expected at least one image, got an empty list")
            return [self._as_batch(image, single=True) for image in images]
        return [self._as_batch(images, single=False)]

    @staticmethod
    def _as_batch(image: Any, single: bool) -> np.ndarray:
        if isinstance(image, str):  # a path or URL, as transformers' image processors take (chat messages carry them)
            try:
                image = load_image(image)
            except (ValueError, OSError) as error:
                raise ValueError(f"images: could not load the image {image!r}: {error}") from error
        if isinstance(image, PIL.Image.Image):
            image = np.asarray(image.convert("RGB"))
        elif isinstance(image, torch.Tensor):
            image = image.detach().cpu().numpy()
        elif not isinstance(image, np.ndarray):
            raise ValueError(
                f"images: expected numpy arrays, torch tensors, PIL images or paths/URLs, got {type(image).__name__}"
            )
        given_shape = tuple(image.shape)
        max_rank = 3 if single else 4
        if image.ndim == 2:
            image = image[:, :, None]
        if not 3 <= image.ndim <= max_rank:
            expected = "(H, W), (H, W, C)" + ("" if single else " or (N, H, W, C)")
            raise ValueError(f"images: expected an array shaped {expected}, got shape {given_shape}")
        if image.ndim == 3:
            image = image[None]
        if image.shape[-1] not in (1, 3):
            raise ValueError(
                f"images: expected 1 (greyscale) or 3 (RGB) channels on the last axis, got shape {given_shape}"
            )
        if 0 in image.shape:
            raise ValueError(f"images: expected a non-empty image, got shape {given_shape}")
        if image.dtype.kind == "f":
            if not np.isfinite(image).all():
                raise ValueError("images: expected finite pixel values, got NaN or inf")
            expected_range = (0.0, 1.0)
        elif image.dtype.kind in "ui":
            expected_range = (0, _MAX_PIXEL_VALUE)
        else:
            raise ValueError(f"images: expected an integer or float dtype, got {image.dtype}")
        if image.dtype != np.uint8:  # uint8 is in range by construction: skip two passes over the pixels
            low, high = image.min(), image.max()
            if low < expected_range[0] or high > expected_range[1]:
                raise ValueError(
                    f"images: expected {image.dtype} pixel values in [{expected_range[0]}, {expected_range[1]}], "
                    f"got values in [{low}, {high}]"
                )
            if image.dtype.kind in "ui":
                image = image.astype(np.uint8)
        if image.shape[-1] == 1:
            image = np.repeat(image, 3, axis=-1)
        return image

    # --- the transform ---------------------------------------------------------------------------------

    def _resize_batch(self, frames: np.ndarray, size: SizeDict, resample: PILImageResampling) -> np.ndarray:
        """Resize ``(n, H, W, 3)`` to ``(n, size.height, size.width, 3)``.

        uint8 with the default bilinear filter (the common case: raw env frames) goes through torch's
        antialiased uint8 bilinear kernel, which implements PIL's algorithm (torchvision wrote it to
        match PIL): it agrees with ``PIL.Image.resize`` within one grey level and resizes the whole batch
        in one call, ~14× faster than one PIL call per frame for 210×160 → 64×64 Atari frames on one
        core. Other filters and float images go through PIL one frame at a time (a loop over images,
        never over patches); float frames then take PIL's 8-bit path (transformers' resize rescales
        them to [0, 255] and back), so a resized float image is quantized to 1/255 steps.
        """
        target = (size.height, size.width)
        if frames.dtype == np.uint8 and resample == PILImageResampling.BILINEAR:
            if not frames.flags.writeable:  # e.g. memory-mapped dataset columns; torch wants writable memory
                frames = frames.copy()
            batch = torch.from_numpy(frames).permute(0, 3, 1, 2)  # NCHW view of channels-last memory
            resized = torch.nn.functional.interpolate(
                batch, size=target, mode="bilinear", antialias=True, align_corners=False
            )
            return resized.permute(0, 2, 3, 1).numpy()
        resized = [
            pil_resize(
                frame,
                size=target,
                resample=resample,
                data_format=ChannelDimension.LAST,
                input_data_format=ChannelDimension.LAST,
            )
            for frame in frames
        ]
        return np.stack(resized).astype(frames.dtype, copy=False)

    def _preprocess(
        self,
        images: list[np.ndarray],
        do_resize: bool,
        size: SizeDict,
        resample: PILImageResampling,
        do_rescale: bool,
        rescale_factor: float,
        do_normalize: bool,
        image_mean: float | Sequence[float],
        image_std: float | Sequence[float],
        patch_size: int,
        position_bins: int,
        return_tensors: str | TensorType | None,
        **kwargs: Any,
    ) -> BatchFeature:
        """Resize, scale and patchify channels-last batches (see :meth:`_prepare_image_like_inputs`)."""
        self._check_geometry(size, patch_size, position_bins)
        if do_resize:
            images = [
                batch if batch.shape[1:3] == (size.height, size.width) else self._resize_batch(batch, size, resample)
                for batch in images
            ]
        else:
            shapes = {batch.shape[1:3] for batch in images}
            if len(shapes) > 1:
                raise ValueError(f"images: with do_resize=False all images must share one size, got {sorted(shapes)}")
            height, width = shapes.pop()
            if height % patch_size or width % patch_size:
                raise ValueError(
                    f"images: with do_resize=False, height and width must be multiples of patch_size={patch_size}, "
                    f"got {height}×{width}"
                )
        if len({batch.dtype for batch in images}) > 1:
            # Mixed uint8 and float images: bring the integer ones to the float [0, 1] scale first.
            scale = rescale_factor if do_rescale else 1.0
            images = [batch.astype(np.float32) * scale if batch.dtype == np.uint8 else batch for batch in images]
        frames = images[0] if len(images) == 1 else np.concatenate(images)

        # pixel → pixel·a + b folds the rescale (integers only), the normalization to [-1, 1] and the
        # division by √16 into one multiply-add over the whole batch.
        scale = rescale_factor if (do_rescale and frames.dtype == np.uint8) else 1.0
        mean = np.asarray(image_mean if do_normalize else 0.0, dtype=np.float32)
        std = np.asarray(image_std if do_normalize else 1.0, dtype=np.float32)
        a = (scale / (std * PATCH_PIXEL_DIVISOR)).astype(np.float32)
        b = (-mean / (std * PATCH_PIXEL_DIVISOR)).astype(np.float32)
        # Per-channel constants broadcast over the channel axis of the patch layout (n, gh, gw, C, p, p).
        a, b = a.reshape(-1, 1, 1), b.reshape(-1, 1, 1)

        n, height, width, channels = frames.shape
        grid_rows, grid_cols = height // patch_size, width // patch_size
        # One reshape + transpose cuts every image into raster-ordered patches:
        # (n, gh, p, gw, p, C) → (n, gh, gw, C, p, p); the arithmetic writes the contiguous result.
        patches = frames.reshape(n, grid_rows, patch_size, grid_cols, patch_size, channels).transpose(0, 1, 3, 5, 2, 4)
        patch_pixels = np.empty(patches.shape, dtype=np.float32)
        np.multiply(patches, a, out=patch_pixels, casting="unsafe")
        patch_pixels += b
        patch_pixels = patch_pixels.reshape(n, grid_rows * grid_cols, channels, patch_size, patch_size)

        rows, cols = patch_position_intervals(grid_rows, grid_cols, position_bins)
        patch_rows = np.broadcast_to(rows, (n, *rows.shape)).copy()  # a writable copy: torch shares its memory
        patch_cols = np.broadcast_to(cols, (n, *cols.shape)).copy()
        return BatchFeature(
            data={"patch_pixels": patch_pixels, "patch_rows": patch_rows, "patch_cols": patch_cols},
            tensor_type=return_tensors,
        )


__all__ = ["GatoImageProcessor", "patch_position_intervals"]
