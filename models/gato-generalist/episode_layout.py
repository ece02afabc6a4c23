"""Episodes → Gato's token stream: the time-step layout, chunking on time-step boundaries, prompts.

GATO_SPEC.md sections 1, 3 and 4. Each time step of an episode becomes::

    [text tokens, image patches, discrete values, continuous values]  |  [action tokens]
     └──────────── observation (fields in layout order) ───────────┘  sep

Layout order is :data:`gato.suite.task_spec.OBSERVATION_KINDS` (text, image, discrete,
continuous); within a kind, fields keep the order the spec lists them in (``task_spec.py``).

This module is pure numpy and knows nothing about SentencePiece or image resizing: text and images
reach it through two callables that :class:`~gato.processing.processing_gato.GatoProcessor` supplies
(``encode_text`` and ``encode_images``), so that the layout can be tested with stand-ins.

Every array operation is vectorized over time steps: each field is tokenized for all steps at once,
and the steps are interleaved with one scatter into the flat sequence (a Python loop runs over
fields and over output chunks, never over steps, values or patches).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

try:
    from gato.suite.task_spec import OBSERVATION_KINDS, ObservationField, TaskSpec
    from gato.suite.token_layout import (
        LOCAL_POSITION_ACTION,
        LOCAL_POSITION_NONE,
        MAX_LOCAL_POSITIONS,
        PATCH_PLACEHOLDER_ID,
        PATCH_SIZE,
        SEPARATOR_TOKEN_ID,
    )
except ImportError:  # a remote-code folder (GatoProcessor.save_pretrained), loaded where gato is not installed
    from .task_spec import OBSERVATION_KINDS, ObservationField, TaskSpec
    from .token_layout import (
        LOCAL_POSITION_ACTION,
        LOCAL_POSITION_NONE,
        MAX_LOCAL_POSITIONS,
        PATCH_PLACEHOLDER_ID,
        PATCH_SIZE,
        SEPARATOR_TOKEN_ID,
    )
from .tokenize_values import tokenize_continuous, tokenize_discrete

# encode_text(list of T strings) -> T sequences of token ids (no special tokens).
TextEncoder = Callable[[list[str]], Sequence[Sequence[int]]]
# encode_images(images (T, H, W[, C]), field_name) -> (pixels (T, P, 3, 16, 16) float32,
#                                                     rows (T, P, 2) long, cols (T, P, 2) long)
ImageEncoder = Callable[[np.ndarray, str], tuple[np.ndarray, np.ndarray, np.ndarray]]

SEQUENCE_KEYS: tuple[str, ...] = (
    "input_ids",
    "loss_mask",
    "local_positions",
    "patch_mask",
    "patch_pixels",
    "patch_rows",
    "patch_cols",
)
PROMPT_MODES: tuple[str, ...] = ("end", "uniform")


def empty_patches() -> dict[str, np.ndarray]:
    """The patch arrays of a sequence without images: ``patch_pixels (0, 3, 16, 16)`` float32 and
    ``patch_rows`` / ``patch_cols`` ``(0, 2)`` int64 (the one place they are built in ``processing/``)."""
    return {
        "patch_pixels": np.zeros((0, 3, PATCH_SIZE, PATCH_SIZE), dtype=np.float32),
        "patch_rows": np.zeros((0, 2), dtype=np.int64),
        "patch_cols": np.zeros((0, 2), dtype=np.int64),
    }


@dataclass
class EpisodeTokens:
    """A laid-out episode (or a slice of one), unpadded.

    Attributes:
        input_ids / loss_mask / local_positions / patch_mask: ``(N,)`` per token (see ``token_layout.py``).
        patch_pixels: ``(P, 3, 16, 16)`` float32; patch_rows / patch_cols: ``(P, 2)`` int64.
        step_starts: ``(T + 1,)`` token offset of each time step (``step_starts[-1] == N``).
        patch_starts: ``(T + 1,)`` patch offset of each time step.
    """

    input_ids: np.ndarray
    loss_mask: np.ndarray
    local_positions: np.ndarray
    patch_mask: np.ndarray
    patch_pixels: np.ndarray
    patch_rows: np.ndarray
    patch_cols: np.ndarray
    step_starts: np.ndarray
    patch_starts: np.ndarray

    @property
    def num_steps(self) -> int:
        return len(self.step_starts) - 1

    @property
    def step_lengths(self) -> np.ndarray:
        """``(T,)`` tokens per time step."""
        return np.diff(self.step_starts)

    def steps(self, start: int, end: int) -> "EpisodeTokens":
        """Time steps ``[start, end)`` (views, offsets rebased to 0)."""
        t0, t1 = self.step_starts[start], self.step_starts[end]
        p0, p1 = self.patch_starts[start], self.patch_starts[end]
        return EpisodeTokens(
            input_ids=self.input_ids[t0:t1],
            loss_mask=self.loss_mask[t0:t1],
            local_positions=self.local_positions[t0:t1],
            patch_mask=self.patch_mask[t0:t1],
            patch_pixels=self.patch_pixels[p0:p1],
            patch_rows=self.patch_rows[p0:p1],
            patch_cols=self.patch_cols[p0:p1],
            step_starts=self.step_starts[start : end + 1] - t0,
            patch_starts=self.patch_starts[start : end + 1] - p0,
        )

    def to_dict(self) -> dict[str, np.ndarray]:
        """The processor's unpadded sequence dict (the keys of :data:`SEQUENCE_KEYS`)."""
        return {key: getattr(self, key) for key in SEQUENCE_KEYS}


def ordered_fields(spec: TaskSpec) -> list[ObservationField]:
    """The spec's observation fields in layout order: by kind (text, image, discrete, continuous), stable."""
    for field in spec.observations:
        # TaskSpec validates kinds, but a spec built around its constructor (or a duck-typed one) might not.
        if field.kind not in OBSERVATION_KINDS:
            raise ValueError(
                f"observations[{field.name!r}]: unknown observation kind {field.kind!r}, expected one of {OBSERVATION_KINDS}"
            )
    return sorted(spec.observations, key=lambda field: OBSERVATION_KINDS.index(field.kind))


def num_steps(episode: Mapping[str, Any], spec: TaskSpec, require_actions: bool = True) -> int:
    """Checks an episode against its spec and returns its number of time steps ``T``.

    Raises ``ValueError`` naming the field for: missing fields, wrong ranks/shapes, unequal step counts
    between fields and actions, empty episodes, and an episode whose ``task`` is not ``spec.name``.
    Value checks (NaN/inf, discrete ranges) happen where the values are tokenized.
    """
    task = episode.get("task")
    if task is not None and not isinstance(task, str):
        raise ValueError(f"task: expected the task's name (a string), got {type(task).__name__}")
    if task is not None and task != spec.name:
        raise ValueError(f"task: the episode is of task {episode['task']!r} but the spec is for task {spec.name!r}")
    observations = episode.get("observations")
    if not isinstance(observations, Mapping):
        raise ValueError("observations: expected a mapping {field_name: values}")
    counts: dict[str, int] = {}
    for field in ordered_fields(spec):
        if field.name not in observations:
            raise ValueError(
                f"observations[{field.name!r}]: missing; the spec of task {spec.name!r} expects fields "
                f"{[f.name for f in spec.observations]}"
            )
        values = observations[field.name]
        if field.kind == "text":
            if isinstance(values, str) or not isinstance(values, (Sequence, np.ndarray)) or np.ndim(values) != 1:
                got = (
                    f"an array of shape {np.shape(values)}"
                    if isinstance(values, np.ndarray)
                    else type(values).__name__
                )
                raise ValueError(f"observations[{field.name!r}]: expected a sequence of T strings, got {got}")
            counts[f"observations[{field.name!r}]"] = len(values)
            continue
        shape = np.shape(values)
        if field.kind == "image":
            if len(shape) not in (3, 4) or (len(shape) == 4 and shape[-1] not in (1, 3)):
                raise ValueError(
                    f"observations[{field.name!r}]: expected images (T, H, W, 3) or (T, H, W), got shape {shape}"
                )
            if field.shape and tuple(field.shape) != tuple(shape[1:]):
                raise ValueError(
                    f"observations[{field.name!r}]: expected (T, *{field.shape}) per the spec, got shape {shape}"
                )
        elif tuple(shape[1:]) != tuple(field.shape) or len(shape) < 1:
            raise ValueError(
                f"observations[{field.name!r}]: expected shape (T, *{tuple(field.shape)}) for a {field.kind} field, got {shape}"
            )
        counts[f"observations[{field.name!r}]"] = shape[0]
    if require_actions:
        if "actions" not in episode or episode["actions"] is None:
            raise ValueError("actions: missing; expected an array (T, action_size)")
        shape = np.shape(episode["actions"])
        size = spec.action.size
        if not (shape[1:] == (size,) or (size == 1 and len(shape) == 1)):
            raise ValueError(f"actions: expected shape (T, {size}) for task {spec.name!r}, got {shape}")
        counts["actions"] = shape[0]
    if not counts:
        raise ValueError(
            f"observations: the spec of task {spec.name!r} has no observation fields and no actions were given"
        )
    if len(set(counts.values())) != 1:
        raise ValueError(f"time steps: every field and the actions need the same number of steps T, got {counts}")
    steps = next(iter(counts.values()))
    if steps == 0:
        raise ValueError(
            f"observations: the episode is empty (T = 0) for task {spec.name!r}; expected at least one time step"
        )
    return int(steps)


def check_patchable(height: int, width: int, field: str, resizes: bool) -> None:
    """An image can be cut into 16×16 patches: non-empty, and a multiple of the patch size unless resized."""
    if height < 1 or width < 1:
        raise ValueError(f"{field}: image size {height}×{width} is empty and cannot be cut into patches")
    if not resizes and (height % PATCH_SIZE or width % PATCH_SIZE):
        raise ValueError(
            f"{field}: image size {height}×{width} cannot be cut into {PATCH_SIZE}×{PATCH_SIZE} patches "
            f"(height and width must be multiples of {PATCH_SIZE} when the image processor does not resize)"
        )


def _flatten_text(ids: Sequence[Sequence[int]]) -> tuple[np.ndarray, np.ndarray]:
    lengths = np.fromiter((len(piece) for piece in ids), dtype=np.int64, count=len(ids))
    flat = np.fromiter(itertools.chain.from_iterable(ids), dtype=np.int64, count=int(lengths.sum()))
    return flat, lengths


def layout_episode(
    episode: Mapping[str, Any],
    spec: TaskSpec,
    *,
    encode_text: TextEncoder | None = None,
    encode_images: ImageEncoder | None = None,
    discrete_layout: str = "paper",
    observation_text_loss: bool = False,
    include_actions: bool = True,
) -> EpisodeTokens:
    """Lays out every time step of ``episode`` by ``spec`` (GATO_SPEC.md section 1).

    Args:
        episode: ``{"task", "observations": {name: (T, ...)}, "actions": (T, action_size)}`` (``task_spec.py``).
        spec: the task's spec; field order and μ-law switches come from it.
        encode_text / encode_images: see :data:`TextEncoder` / :data:`ImageEncoder` (needed only when the
            spec has text / image fields).
        discrete_layout: ``"paper"`` or ``"shifted"`` (``token_layout.py``).
        observation_text_loss: put loss on text *observation* tokens too. Default False: in an
            episode, text (e.g. a BabyAI mission) is an observation, and the paper masks the loss to
            text and *action* tokens of the stream; text observations are inputs like the others.
        include_actions: False lays out observations followed by the separator only (acting).

    Returns:
        :class:`EpisodeTokens`; loss mask 1 exactly on action tokens (plus text observations when
        ``observation_text_loss``); local positions 0, 1, 2, … over each step's observation tokens
        (clamped to ``MAX_LOCAL_POSITIONS - 1``), ``LOCAL_POSITION_NONE`` on the separator,
        ``LOCAL_POSITION_ACTION`` on actions.
    """
    steps = num_steps(episode, spec, require_actions=include_actions)
    observations = episode["observations"]

    text_fields: list[tuple[np.ndarray, np.ndarray]] = []  # (flat ids, lengths (T,)) per text field
    blocks: list[np.ndarray] = []  # fixed-size (T, n) token blocks, in layout order
    block_is_patch: list[np.ndarray] = []
    pixels, rows, cols = [], [], []
    for field in ordered_fields(spec):
        name = f"observations[{field.name!r}]"
        values = observations[field.name]
        if field.kind == "text":
            if encode_text is None:
                raise ValueError(f"{name}: a text field needs a tokenizer (encode_text)")
            if not all(isinstance(value, str) for value in values):
                raise ValueError(f"{name}: expected a sequence of T strings")
            text_fields.append(_flatten_text(encode_text(list(values))))
        elif field.kind == "image":
            if encode_images is None:
                raise ValueError(f"{name}: an image field needs an image processor (encode_images)")
            values = np.asarray(values)
            if values.ndim == 3:  # (T, H, W) greyscale frames: the image processor reads a 3-D array as one image
                values = values[..., None]
            field_pixels, field_rows, field_cols = encode_images(values, name)
            num_patches = field_pixels.shape[1]
            pixels.append(field_pixels)
            rows.append(field_rows)
            cols.append(field_cols)
            blocks.append(np.full((steps, num_patches), PATCH_PLACEHOLDER_ID, dtype=np.int64))
            block_is_patch.append(np.ones(num_patches, dtype=bool))
        elif field.kind == "discrete":
            values = np.asarray(values).reshape(steps, -1)
            blocks.append(tokenize_discrete(values, discrete_layout, field.num_values, field=name))
            block_is_patch.append(np.zeros(values.shape[1], dtype=bool))
        else:  # continuous
            values = np.asarray(values, dtype=np.float64).reshape(steps, -1)
            blocks.append(tokenize_continuous(values, mu_law=field.mu_law, field=name))
            block_is_patch.append(np.zeros(values.shape[1], dtype=bool))

    num_fixed_observation = sum(block.shape[1] for block in blocks)
    blocks.append(np.full((steps, 1), SEPARATOR_TOKEN_ID, dtype=np.int64))
    block_is_patch.append(np.zeros(1, dtype=bool))
    if include_actions:
        action_ids = tokenize_action(episode["actions"], spec, discrete_layout)
        blocks.append(action_ids.reshape(steps, spec.action.size))
        block_is_patch.append(np.zeros(spec.action.size, dtype=bool))
    block = np.concatenate(blocks, axis=1)  # (T, S): fixed observation | sep | action
    is_patch = np.concatenate(block_is_patch)  # (S,)
    block_size = block.shape[1]

    text_lengths = np.zeros(steps, dtype=np.int64)
    for _, lengths in text_fields:
        text_lengths += lengths
    step_lengths = text_lengths + block_size
    step_starts = np.zeros(steps + 1, dtype=np.int64)
    np.cumsum(step_lengths, out=step_starts[1:])
    total = int(step_starts[-1])

    # Per-token values of the fixed block, (T, S): local positions count on from the step's text.
    observation_columns = np.arange(num_fixed_observation)
    block_local = np.empty((steps, block_size), dtype=np.int64)
    block_local[:, :num_fixed_observation] = np.minimum(
        text_lengths[:, None] + observation_columns, MAX_LOCAL_POSITIONS - 1
    )
    block_local[:, num_fixed_observation] = LOCAL_POSITION_NONE
    block_local[:, num_fixed_observation + 1 :] = LOCAL_POSITION_ACTION
    block_loss = np.zeros(block_size, dtype=np.int64)
    block_loss[num_fixed_observation + 1 :] = 1  # action tokens

    if not text_fields:
        # Every step has the same length: the flat stream is the (T, S) block read row by row.
        input_ids = block.reshape(-1)
        local_positions = block_local.reshape(-1)
        patch_mask = np.tile(is_patch, steps)
        loss_mask = np.tile(block_loss, steps)
    else:
        input_ids = np.empty(total, dtype=np.int64)
        local_positions = np.empty(total, dtype=np.int64)
        patch_mask = np.zeros(total, dtype=bool)
        loss_mask = np.zeros(total, dtype=np.int64)
        # Text comes first in each step: field f's pieces start after the earlier text fields' pieces.
        offset_in_step = np.zeros(steps, dtype=np.int64)
        for flat, lengths in text_fields:
            piece_starts = np.cumsum(lengths) - lengths
            step_of_token = np.repeat(np.arange(steps), lengths)
            index_in_step = offset_in_step[step_of_token] + np.arange(flat.size) - np.repeat(piece_starts, lengths)
            positions = step_starts[:-1][step_of_token] + index_in_step
            input_ids[positions] = flat
            local_positions[positions] = np.minimum(index_in_step, MAX_LOCAL_POSITIONS - 1)
            loss_mask[positions] = int(observation_text_loss)
            offset_in_step += lengths
        block_positions = (step_starts[:-1] + text_lengths)[:, None] + np.arange(block_size)  # (T, S)
        input_ids[block_positions] = block
        local_positions[block_positions] = block_local
        patch_mask[block_positions] = is_patch
        loss_mask[block_positions] = block_loss

    if pixels:
        # One image field (the usual case) needs no concatenation: copying every patch again costs more
        # than the layout itself (BENCHMARKS.md, processor throughput).
        def join(parts: list[np.ndarray]) -> np.ndarray:
            return parts[0] if len(parts) == 1 else np.concatenate(parts, axis=1)

        patch_pixels = join(pixels)  # (T, P_step, 3, 16, 16)
        patches_per_step = patch_pixels.shape[1]
        patch_pixels = patch_pixels.reshape(-1, *patch_pixels.shape[2:]).astype(np.float32, copy=False)
        patch_rows = join(rows).reshape(-1, 2).astype(np.int64, copy=False)
        patch_cols = join(cols).reshape(-1, 2).astype(np.int64, copy=False)
    else:
        patches_per_step = 0
        empty = empty_patches()
        patch_pixels, patch_rows, patch_cols = empty["patch_pixels"], empty["patch_rows"], empty["patch_cols"]
    return EpisodeTokens(
        input_ids=input_ids,
        loss_mask=loss_mask,
        local_positions=local_positions,
        patch_mask=patch_mask,
        patch_pixels=patch_pixels,
        patch_rows=patch_rows,
        patch_cols=patch_cols,
        step_starts=step_starts,
        patch_starts=np.arange(steps + 1, dtype=np.int64) * patches_per_step,
    )


def tokenize_action(actions: Any, spec: TaskSpec, discrete_layout: str = "paper") -> np.ndarray:
    """Actions ``(..., action_size)`` (or ``(T,)`` when ``action_size == 1``) → token ids, same shape.

    Discrete: ``tokenize_discrete`` with the spec's ``num_values``; continuous: ``tokenize_continuous``
    with the spec's ``mu_law`` (default False: bounded actions are binned directly).
    """
    action = spec.action
    if action.kind == "discrete":
        return tokenize_discrete(np.asarray(actions), discrete_layout, action.num_values, field="actions")
    return tokenize_continuous(np.asarray(actions, dtype=np.float64), mu_law=action.mu_law, field="actions")


def chunk_boundaries(step_lengths: np.ndarray, budget: int, what: str = "max_length") -> list[tuple[int, int]]:
    """Greedy cut of consecutive time steps into chunks of at most ``budget`` tokens; never splits a step.

    Args:
        step_lengths: ``(T,)`` tokens per step.
        budget: tokens available per chunk (``max_length`` minus any prompt).
        what: how the error message names the limit.

    Returns:
        ``[(start, end), …]`` step ranges covering ``[0, T)`` in order.
    """
    step_lengths = np.asarray(step_lengths, dtype=np.int64)
    if step_lengths.size and int(step_lengths.max()) > budget:
        longest = int(step_lengths.argmax())
        raise ValueError(
            f"{what}: time step {longest} has {int(step_lengths[longest])} tokens and cannot fit into {budget} "
            f"tokens; raise max_length or shrink the observation"
        )
    ends = np.zeros(step_lengths.size + 1, dtype=np.int64)
    np.cumsum(step_lengths, out=ends[1:])
    bounds = []
    start = 0
    while start < step_lengths.size:  # one iteration per chunk
        end = int(np.searchsorted(ends, ends[start] + budget, side="right")) - 1
        bounds.append((start, end))
        start = end
    return bounds


def concatenate_sequences(sequences: Sequence[Mapping[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Joins unpadded sequence dicts end to end (e.g. ``[prompt][episode steps]``)."""
    return {key: np.concatenate([sequence[key] for sequence in sequences], axis=0) for key in SEQUENCE_KEYS}


def slice_episode(episode: Mapping[str, Any], start: int, end: int) -> dict[str, Any]:
    """Time steps ``[start, end)`` of an episode dict (per-field slices; text lists sliced too)."""
    sliced = {key: value for key, value in episode.items() if key not in ("observations", "actions", "rewards")}
    sliced["observations"] = {name: values[start:end] for name, values in episode["observations"].items()}
    for key in ("actions", "rewards"):
        if key in episode and episode[key] is not None:
            sliced[key] = episode[key][start:end]
    return sliced


def make_prompt(
    episode: Mapping[str, Any],
    spec: TaskSpec,
    num_tokens_or_steps: int,
    mode: str = "end",
    rng: np.random.Generator | None = None,
    step_lengths: np.ndarray | None = None,
) -> dict[str, Any]:
    """A prompt demonstration (GATO_SPEC.md section 4): consecutive time steps of an episode of the same task.

    Args:
        episode: a demonstration episode; its ``task`` must be ``spec.name``.
        spec: the spec of the task being prompted.
        num_tokens_or_steps: the prompt's size: a number of time steps, or — when ``step_lengths`` is
            given — a token budget (as many whole steps as fit).
        mode: ``"end"`` takes the episode's last steps (goal conditioning); ``"uniform"`` starts at a
            uniformly sampled step.
        rng: numpy generator for ``"uniform"`` (a fresh default generator when None).
        step_lengths: ``(T,)`` tokens per step of ``episode`` (``GatoProcessor.make_prompt`` supplies them).

    Returns:
        The demonstration as an episode dict (slices of ``episode``), to pass as ``prompt=`` to
        ``GatoProcessor.tokenize_episode``.
    """
    task = episode.get("task")
    if task != spec.name:
        raise ValueError(
            f"prompt: a prompt must come from an episode of the same task {spec.name!r}, got one of task {task!r}"
        )
    if mode not in PROMPT_MODES:
        raise ValueError(f"prompt mode: expected one of {PROMPT_MODES}, got {mode!r}")
    if num_tokens_or_steps < 1:
        raise ValueError(f"prompt size: expected at least 1 step or token, got {num_tokens_or_steps}")
    steps = num_steps(episode, spec)
    if step_lengths is None:
        count = min(int(num_tokens_or_steps), steps)
        latest_start = steps - count
        if mode == "end":
            start = latest_start
        else:
            start = int((rng or np.random.default_rng()).integers(0, latest_start + 1))
        return slice_episode(episode, start, start + count)

    step_lengths = np.asarray(step_lengths, dtype=np.int64)
    if step_lengths.shape != (steps,):
        raise ValueError(f"step_lengths: expected shape ({steps},), got {step_lengths.shape}")
    budget = int(num_tokens_or_steps)
    # The "end" window: the most trailing steps whose tokens fit the budget.
    from_end = np.cumsum(step_lengths[::-1])
    count_from_end = int(np.searchsorted(from_end, budget, side="right"))
    if count_from_end == 0:
        raise ValueError(
            f"prompt: the last time step has {int(step_lengths[-1])} tokens, more than the prompt budget {budget}"
        )
    latest_start = steps - count_from_end
    if mode == "end":
        return slice_episode(episode, latest_start, steps)
    # Uniform: any start whose window can be as full as the end window; then as many steps as fit.
    start = int((rng or np.random.default_rng()).integers(0, latest_start + 1))
    ends = np.concatenate([[0], np.cumsum(step_lengths)])
    end = int(np.searchsorted(ends, ends[start] + budget, side="right")) - 1
    if end <= start:
        raise ValueError(
            f"prompt: time step {start} has {int(step_lengths[start])} tokens, more than the prompt budget {budget}"
        )
    return slice_episode(episode, start, end)
