"""GatoProcessor: text, captions and control episodes → one batch of Gato's token stream, and back for acting.

The processor owns the tokenizer (SentencePiece text, ``tokenization_gato.py``) and the image processor
(16×16 patches, ``image_processing_gato.py``); the episode layout itself lives in
``episode_layout.py``. Every method returns the unpadded per-sequence dict of
:data:`~gato.processing.episode_layout.SEQUENCE_KEYS` (numpy), and :meth:`GatoProcessor.collate` pads a
list of them into the batch contract of ``token_layout.py``.

``processor(text=..., images=...)`` follows transformers' processors: a call makes *prompts* for ``generate``
(``[bos] text``; an image alone is the caption prompt ``[patches][bos]``; left-padded; no training targets), and
``return_labels=True`` (the default with episodes) makes training sequences. :meth:`GatoProcessor.apply_chat_template`
renders a chat as plain "Role: text" turns (:data:`DEFAULT_CHAT_TEMPLATE`).

Loss masks (GATO_SPEC.md section 3, "text and action tokens"):

- episodes: 1 exactly on action tokens. Text observations (e.g. a BabyAI mission) are observations and get
  no loss unless ``observation_text_loss=True``;
- prompts: no loss unless ``prompt_loss=True``. The paper does not say; we follow the common choice
  (JAT and other reimplementations) because a prompt is conditioning, not a target: its steps come from
  another episode and are trained on when that episode is itself sampled, and a loss on them would
  over-weight prompted episodes' ends (goal conditioning takes them from the end);
- plain text: every token after the first (the first has no predecessor to be predicted from);
- captions ``[patches][bos caption eos]``: the caption tokens and ``eos`` (so the model learns where a
  caption stops); not ``bos``, which follows the patches unconditionally.
"""

from __future__ import annotations

import inspect
import json
import os
import re
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from transformers.feature_extraction_utils import BatchFeature
from transformers.processing_utils import ProcessingKwargs, ProcessorMixin, TextKwargs, Unpack
from transformers.utils import PaddingStrategy

from . import episode_layout
from .episode_layout import SEQUENCE_KEYS, EpisodeTokens, concatenate_sequences, empty_patches

try:
    from gato.suite.task_spec import TaskSpec
    from gato.suite.token_layout import (
        BOS_TOKEN_ID,
        CONTINUOUS_BINS,
        CONTINUOUS_OFFSET,
        EOS_TOKEN_ID,
        IGNORE_INDEX,
        LOCAL_POSITION_NONE,
        MAX_LENGTH,
        PAD_TOKEN_ID,
        PATCH_PLACEHOLDER_ID,
        PATCH_SIZE,
        discrete_offset,
    )
except ImportError:  # a remote-code folder (GatoProcessor.save_pretrained), loaded where gato is not installed
    from .task_spec import TaskSpec
    from .token_layout import (
        BOS_TOKEN_ID,
        CONTINUOUS_BINS,
        CONTINUOUS_OFFSET,
        EOS_TOKEN_ID,
        IGNORE_INDEX,
        LOCAL_POSITION_NONE,
        MAX_LENGTH,
        PAD_TOKEN_ID,
        PATCH_PLACEHOLDER_ID,
        PATCH_SIZE,
        discrete_offset,
    )
from .tokenize_values import detokenize_continuous, detokenize_discrete

# How a batch of sequences of several lengths is padded; `collate` also takes "do_not_pad" (transformers' name,
# for sequences of one length).
PADDING_STRATEGIES: tuple[str, ...] = ("longest", "max_length")
PADDING_SIDES: tuple[str, ...] = ("right", "left")
# The targets of a batch: a prompt (what `generate` continues) carries none of them.
TARGET_KEYS: tuple[str, ...] = ("loss_mask", "labels")
# The tokenizer keywords `__call__` honours (transformers' TextKwargs); any other is refused, not ignored.
SUPPORTED_TEXT_KWARGS: tuple[str, ...] = (
    "padding",
    "max_length",
    "padding_side",
    "add_special_tokens",
    "return_tensors",
)
# Gato chats in plain text turns ("User: …", "Assistant: …", one per line); `add_generation_prompt` opens the
# assistant's turn. The processor adds `bos` itself, so the template holds no special token. A message's content is
# a string or, as in transformers' multimodal chats, a list of {"type": "text", "text": …} (and image) items.
DEFAULT_CHAT_TEMPLATE = (
    "{%- for message in messages -%}"
    "{%- if message['content'] is string -%}{%- set text = message['content'] -%}"
    "{%- else -%}{%- set text = message['content'] | selectattr('type', 'equalto', 'text') | map(attribute='text') | join(' ') -%}"
    "{%- endif -%}"
    "{{ message['role'] | capitalize }}: {{ text | trim }}{{ '\\n' }}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}Assistant:{%- endif -%}"
)


class GatoProcessorKwargs(ProcessingKwargs, total=False):
    r"""Keywords of :meth:`GatoProcessor.__call__`, in transformers' convention: flat, or grouped as ``text_kwargs`` /
    ``images_kwargs`` / ``common_kwargs``.

    return_labels (`bool`, *optional*):
        Return training targets (``labels``, ``loss_mask``; text ends with ``eos``). Default: only when episodes are
        given; text and images alone are prompts for ``generate``.
    """

    return_labels: bool | None


# The model's inputs in the processor → model contract (token_layout.py), as transformers' `model_input_names`: what a
# call returns for a prompt with images (the patch keys only when images are present). The training targets
# (`TARGET_KEYS`, with return_labels=True) are not inputs, as a tokenizer's names leave out `labels`.
MODEL_INPUT_NAMES: tuple[str, ...] = (
    "input_ids",
    "attention_mask",
    "local_positions",
    "patch_mask",
    "patch_pixels",
    "patch_rows",
    "patch_cols",
    "patch_valid",
)


def _no_image(image: Any) -> bool:
    """``images[i] == []``: the i-th text of a call has no image."""
    return isinstance(image, (list, tuple)) and len(image) == 0


def _describe(value: Any) -> str:
    """A short description of a bad argument for an error message: its type, and its items' types for a list."""
    if isinstance(value, (list, tuple)):
        return f"a {type(value).__name__} of {sorted({type(item).__name__ for item in value})}"
    return type(value).__name__


def padding_strategy(padding: str | bool | PaddingStrategy | None) -> str:
    """transformers' ``padding`` argument (``True``/``False``, a name or a ``PaddingStrategy``) → one of
    :data:`PADDING_STRATEGIES`."""
    if padding is True or padding is None:
        return "longest"
    if padding is False:
        return "do_not_pad"
    value = padding.value if isinstance(padding, PaddingStrategy) else padding
    if value not in (*PADDING_STRATEGIES, "do_not_pad"):
        raise ValueError(
            f"padding: expected True, False or one of {(*PADDING_STRATEGIES, 'do_not_pad')}, got {padding!r}"
        )
    return value


def _as_spec(spec: TaskSpec | Mapping[str, Any]) -> TaskSpec:
    if isinstance(spec, TaskSpec):
        return spec
    if isinstance(spec, Mapping):
        return TaskSpec.from_dict(dict(spec))
    if isinstance(spec, str):
        return TaskSpec.from_json(spec)
    raise ValueError(f"spec: expected a TaskSpec, a dict or a JSON string, got {type(spec).__name__}")


class GatoProcessor(ProcessorMixin):
    r"""Turns text, image–caption pairs and control episodes into Gato's token stream (GATO_SPEC.md §1, §3, §4).

    Args:
        tokenizer: the SentencePiece text tokenizer (32000 ids; ``tokenization_gato.load_default_tokenizer()``).
        image_processor: a :class:`~gato.processing.image_processing_gato.GatoImageProcessor`.
        discrete_layout: ``"paper"`` (discrete values share ids [0, 1024) with text) or ``"shifted"``
            (ids above the separator); must match the model config's ``discrete_layout``.
        max_length: tokens per sequence (the paper's 1024); episodes are cut into sequences of at most
            this many tokens on time-step boundaries.
        observation_text_loss: also put loss on text observation tokens inside episodes (default False).
        prompt_loss: also put loss on the prompt's action tokens (default False; see the module docstring).

        chat_template: the Jinja template of :meth:`apply_chat_template` (default: plain "Role: text" turns,
            :data:`DEFAULT_CHAT_TEMPLATE`).

    All these settings are saved by ``save_pretrained`` and restored by ``from_pretrained`` /
    ``AutoProcessor.from_pretrained`` (after ``import gato``).
    """

    valid_processor_kwargs = GatoProcessorKwargs
    # transformers' per-modality defaults (the lowest priority in `_merge_kwargs`). No `return_tensors`: as
    # transformers' processors and tokenizers, a call returns Python lists unless asked for tensors
    # (`generate(**processor(..., return_tensors="pt"))`).
    text_kwargs = {"padding": "longest"}

    def __init__(
        self,
        tokenizer=None,
        image_processor=None,
        discrete_layout: str = "paper",
        max_length: int = MAX_LENGTH,
        observation_text_loss: bool = False,
        prompt_loss: bool = False,
        chat_template: str | None = None,
        **kwargs,
    ) -> None:
        discrete_offset(discrete_layout)  # validates the name
        if int(max_length) != max_length or max_length < 2:
            raise ValueError(f"max_length: expected an integer ≥ 2, got {max_length!r}")
        self.discrete_layout = discrete_layout
        self.max_length = int(max_length)
        self.observation_text_loss = bool(observation_text_loss)
        self.prompt_loss = bool(prompt_loss)
        super().__init__(tokenizer, image_processor, chat_template=chat_template or DEFAULT_CHAT_TEMPLATE, **kwargs)

    @classmethod
    def from_defaults(cls, discrete_layout: str = "paper", max_length: int = MAX_LENGTH, **kwargs) -> "GatoProcessor":
        """The processor gato ships: the offline SentencePiece tokenizer and a default image processor.

        ``discrete_layout`` must match the model config's; keywords go to the constructor.
        """
        from .image_processing_gato import GatoImageProcessor
        from .tokenization_gato import load_default_tokenizer

        return cls(
            tokenizer=load_default_tokenizer(),
            image_processor=GatoImageProcessor(),
            discrete_layout=discrete_layout,
            max_length=max_length,
            **kwargs,
        )

    def save_pretrained(self, save_directory, *args, **kwargs):
        """``ProcessorMixin.save_pretrained``, plus the code ``trust_remote_code=True`` needs (:func:`write_remote_code`).

        The default chat template is not written (a folder without one loads with it), a chosen one is
        (``chat_template.jinja``).
        """
        template = self.chat_template
        if template == DEFAULT_CHAT_TEMPLATE:
            self.chat_template = None
        try:
            saved = super().save_pretrained(save_directory, *args, **kwargs)
        finally:
            self.chat_template = template
        write_remote_code(save_directory)
        return saved

    @property
    def model_input_names(self) -> list[str]:
        """The model inputs a call returns (a prompt with images returns all of them); :meth:`collate` and
        ``return_labels=True`` add the targets ``loss_mask`` and ``labels``."""
        return list(MODEL_INPUT_NAMES)

    # --- encoders handed to the episode layout ------------------------------------------------------------

    def _encode_text(self, texts: list[str]) -> list[list[int]]:
        """Strings → SentencePiece ids without special tokens (one list per string)."""
        if not texts:
            return []
        # An episode's text observations repeat (a BabyAI mission is the same every step): encode each once.
        unique = list(dict.fromkeys(texts))
        encoded = self.tokenizer(unique, add_special_tokens=False)["input_ids"]
        if len(unique) == len(texts):
            return encoded
        lookup = dict(zip(unique, encoded))
        return [lookup[text] for text in texts]

    def _encode_images(
        self, images: Any, field: str, images_kwargs: Mapping[str, Any] | None = None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Images → ``(pixels (N, P, 3, 16, 16), rows (N, P, 2), cols (N, P, 2))``; errors name ``field``.
        ``images_kwargs`` go to the image processor (e.g. ``size``)."""
        try:
            features = self.image_processor(images, **{**(images_kwargs or {}), "return_tensors": "np"})
        except ValueError as error:
            message = str(error)
            message = message[len("images: ") :] if message.startswith("images: ") else message
            raise ValueError(f"{field}: {message}") from error
        return features["patch_pixels"], features["patch_rows"], features["patch_cols"]

    def _layout(self, episode: Mapping[str, Any], spec: TaskSpec, include_actions: bool = True) -> EpisodeTokens:
        return episode_layout.layout_episode(
            episode,
            spec,
            encode_text=self._encode_text,
            encode_images=self._encode_images,
            discrete_layout=self.discrete_layout,
            observation_text_loss=self.observation_text_loss,
            include_actions=include_actions,
        )

    # --- episodes ----------------------------------------------------------------------------------------------

    def tokenize_episode(
        self,
        episode: Mapping[str, Any],
        spec: TaskSpec | Mapping[str, Any],
        prompt: Mapping[str, Any] | None = None,
    ) -> list[dict[str, np.ndarray]]:
        """An episode → sequences of at most ``max_length`` tokens, cut on time-step boundaries.

        Args:
            episode: ``{"task", "observations": {name: (T, ...)}, "actions": (T, action_size)}`` (``task_spec.py``).
            spec: the task's :class:`TaskSpec` (or its dict / JSON form).
            prompt: an optional demonstration of the same task (an episode dict, e.g. from
                :meth:`make_prompt`); every returned sequence is then ``[prompt steps][episode steps]``.

        Returns:
            Unpadded dicts with ``input_ids / loss_mask / local_positions / patch_mask`` ``(L,)`` and
            ``patch_pixels (P, 3, 16, 16)``, ``patch_rows / patch_cols (P, 2)``; ``L ≤ max_length``.

        Raises:
            ValueError: naming the field, for malformed episodes; naming ``max_length`` when one time step
            (plus the prompt) cannot fit; naming ``prompt`` when the prompt is of another task.
        """
        spec = _as_spec(spec)
        tokens = self._layout(episode, spec)
        prefix: dict[str, np.ndarray] | None = None
        budget = self.max_length
        if prompt is not None:
            if prompt.get("task") != spec.name:
                raise ValueError(
                    f"prompt: a prompt must be a demonstration of the same task {spec.name!r}, got one of task {prompt.get('task')!r}"
                )
            prefix = self._layout(prompt, spec).to_dict()
            if not self.prompt_loss:
                prefix["loss_mask"] = np.zeros_like(prefix["loss_mask"])
            budget = self.max_length - len(prefix["input_ids"])
            if budget < 1:
                raise ValueError(
                    f"max_length: the prompt has {len(prefix['input_ids'])} tokens and leaves no room in max_length={self.max_length}"
                )
        what = f"max_length={self.max_length}" + (
            f" (minus a {self.max_length - budget}-token prompt)" if prefix else ""
        )
        sequences = []
        for start, end in episode_layout.chunk_boundaries(tokens.step_lengths, budget, what=what):
            chunk = tokens.steps(start, end).to_dict()
            sequences.append(concatenate_sequences([prefix, chunk]) if prefix is not None else chunk)
        return sequences

    def episode_step_lengths(self, episode: Mapping[str, Any], spec: TaskSpec | Mapping[str, Any]) -> np.ndarray:
        """``(T,)`` number of tokens of each time step of ``episode`` (observation + separator + action)."""
        return self._layout(episode, _as_spec(spec)).step_lengths

    def make_prompt(
        self,
        episode: Mapping[str, Any],
        spec: TaskSpec | Mapping[str, Any],
        num_tokens: int,
        mode: str = "end",
        rng: np.random.Generator | None = None,
    ) -> dict[str, Any]:
        """A demonstration of at most ``num_tokens`` tokens (whole time steps) from ``episode``, which must be
        of the task ``spec`` describes; ``mode="end"`` (goal conditioning) or ``"uniform"``. See
        :func:`gato.processing.episode_layout.make_prompt`."""
        spec = _as_spec(spec)
        if episode.get("task") != spec.name:
            raise ValueError(
                f"prompt: a prompt must come from an episode of the same task {spec.name!r}, got one of task {episode.get('task')!r}"
            )
        lengths = self.episode_step_lengths(episode, spec)
        return episode_layout.make_prompt(episode, spec, num_tokens, mode=mode, rng=rng, step_lengths=lengths)

    # --- text and captions --------------------------------------------------------------------------------

    def _text_sequence(self, ids: np.ndarray, loss_from: int) -> dict[str, np.ndarray]:
        loss_mask = np.zeros(len(ids), dtype=np.int64)
        loss_mask[loss_from:] = 1
        return {
            "input_ids": ids.astype(np.int64, copy=False),
            "loss_mask": loss_mask,
            "local_positions": np.full(len(ids), LOCAL_POSITION_NONE, dtype=np.int64),
            "patch_mask": np.zeros(len(ids), dtype=bool),
            **empty_patches(),
        }

    def _text_ids(self, text: str, bos: bool = True, eos: bool = True) -> np.ndarray:
        if not isinstance(text, str):
            raise ValueError(f"text: expected a string, got {type(text).__name__}")
        pieces = self._encode_text([text])[0]
        return np.asarray([BOS_TOKEN_ID] * bos + list(pieces) + [EOS_TOKEN_ID] * eos, dtype=np.int64)

    def tokenize_text(self, text: str) -> dict[str, np.ndarray]:
        """Plain text → ``[bos] pieces [eos]``, truncated to ``max_length``; loss on every token after the first.

        Use :meth:`tokenize_text_chunks` to keep all of a long text.
        """
        return self._text_sequence(self._text_ids(text)[: self.max_length], loss_from=1)

    def tokenize_text_prompt(self, text: str, add_special_tokens: bool = True) -> dict[str, np.ndarray]:
        """A text prompt for ``generate``: ``[bos] pieces`` (no ``eos``: the model is to continue it), truncated to
        ``max_length``; no loss. ``add_special_tokens=False`` leaves out ``bos`` too."""
        ids = self._text_ids(text, bos=add_special_tokens, eos=False)[: self.max_length]
        return self._text_sequence(ids, loss_from=len(ids))

    def tokenize_text_chunks(self, text: str) -> list[dict[str, np.ndarray]]:
        """Plain text → consecutive sequences of at most ``max_length`` tokens covering all of it.

        The first token of each chunk has no predecessor inside it, so it carries no loss.
        """
        ids = self._text_ids(text)
        return [
            self._text_sequence(ids[start : start + self.max_length], 1)
            for start in range(0, len(ids), self.max_length)
        ]

    def _caption_sequence(self, image: Any, caption: str, end: bool, images_kwargs: Mapping[str, Any] | None = None):
        pixels, rows, cols = self._encode_images(image, "image" if images_kwargs is None else "images", images_kwargs)
        pixels, rows, cols = pixels.reshape(-1, *pixels.shape[2:]), rows.reshape(-1, 2), cols.reshape(-1, 2)
        num_patches = len(pixels)
        room = self.max_length - num_patches
        if room < 2:
            raise ValueError(
                f"max_length: the image(s) take {num_patches} patches and leave no room for a caption in max_length={self.max_length}"
            )
        caption_ids = self._text_ids(caption, eos=end)[:room]
        ids = np.concatenate([np.full(num_patches, PATCH_PLACEHOLDER_ID, dtype=np.int64), caption_ids])
        sequence = self._text_sequence(ids, loss_from=num_patches + 1 if end else len(ids))  # bos carries no loss
        sequence["patch_mask"][:num_patches] = True
        sequence["patch_pixels"] = pixels.astype(np.float32, copy=False)
        sequence["patch_rows"] = rows.astype(np.int64, copy=False)
        sequence["patch_cols"] = cols.astype(np.int64, copy=False)
        return sequence

    def tokenize_caption(self, image: Any, caption: str) -> dict[str, np.ndarray]:
        """Image(s) + caption → ``[patches][bos caption eos]``; loss on the caption tokens and ``eos``.

        ``image`` is one image or a list of images (each one accepted by the image processor); their
        patches come first, in order. A caption too long for ``max_length`` is truncated; images that
        alone leave no room raise ``ValueError`` naming ``max_length``.
        """
        return self._caption_sequence(image, caption, end=True)

    def tokenize_caption_prompt(
        self, image: Any, prefix: str = "", images_kwargs: Mapping[str, Any] | None = None
    ) -> dict[str, np.ndarray]:
        """A caption prompt for ``generate``: ``[patches][bos prefix]`` (the caption layout before its end), no loss."""
        return self._caption_sequence(image, prefix, end=False, images_kwargs=images_kwargs)

    # --- batching --------------------------------------------------------------------------------------------

    def collate(
        self,
        sequences: Sequence[Mapping[str, np.ndarray]],
        padding: str | bool | PaddingStrategy = "longest",
        return_tensors: str | None = "pt",
        padding_side: str = "right",
        max_length: int | None = None,
    ) -> BatchFeature:
        """Pads unpadded sequence dicts into one batch (the contract of ``token_layout.py``).

        Args:
            sequences: dicts from :meth:`tokenize_episode` / :meth:`tokenize_text` / :meth:`tokenize_caption`.
            padding: ``"longest"`` (or ``True``) pads to the longest sequence, ``"max_length"`` to ``max_length``,
                ``"do_not_pad"`` (or ``False``) only batches sequences of one length (transformers' strategies).
            return_tensors: ``"pt"`` (torch, the default: ``collate`` is the data collator of training and acting,
                like transformers' data collators), ``"np"`` (numpy) or ``None`` (Python lists, as a processor call
                returns by default).
            padding_side: ``"right"`` (training batches) or ``"left"`` (prompts of several lengths for ``generate``).
            max_length: the length ``padding="max_length"`` pads to (default: the processor's ``max_length``).

        Returns:
            ``input_ids, attention_mask, loss_mask, labels, local_positions`` ``(B, L)``; when any sequence
            has image patches also ``patch_mask (B, L)``, ``patch_pixels (B, P, 3, 16, 16)``,
            ``patch_rows / patch_cols (B, P, 2)`` and ``patch_valid (B, P)``, padded on ``P`` to the most
            patches of any sequence.
        """
        padding = padding_strategy(padding)
        if padding_side not in PADDING_SIDES:
            raise ValueError(f"padding_side: expected one of {PADDING_SIDES}, got {padding_side!r}")
        if len(sequences) == 0:
            raise ValueError("sequences: expected at least one sequence to collate, got none")
        for index, sequence in enumerate(sequences):
            missing = [key for key in SEQUENCE_KEYS if key not in sequence]
            if missing:
                raise ValueError(f"sequences[{index}]: missing keys {missing}; expected {list(SEQUENCE_KEYS)}")
        lengths = np.array([len(sequence["input_ids"]) for sequence in sequences])
        longest = int(lengths.max())
        if padding == "do_not_pad" and (lengths != longest).any():
            raise ValueError(
                f"padding: the sequences have different lengths {sorted(set(lengths.tolist()))} and padding is off; "
                "pass padding=True (or 'longest', 'max_length') to batch them"
            )
        if padding == "max_length":
            target = self.max_length if max_length is None else max_length
            if int(target) != target or target < 1:
                raise ValueError(f"max_length: expected a positive integer, got {target!r}")
            if longest > target:
                raise ValueError(f"max_length: a sequence has {longest} tokens, more than max_length={target}")
            longest = int(target)
        batch = len(sequences)
        # (B, L) positions that hold real tokens; each sequence is written into its row with one slice.
        if padding_side == "right":
            valid = np.arange(longest)[None, :] < lengths[:, None]
        else:
            valid = np.arange(longest)[None, :] >= (longest - lengths)[:, None]
        input_ids = np.full((batch, longest), PAD_TOKEN_ID, dtype=np.int64)
        loss_mask = np.zeros((batch, longest), dtype=np.int64)
        local_positions = np.full((batch, longest), LOCAL_POSITION_NONE, dtype=np.int64)
        patch_mask = np.zeros((batch, longest), dtype=bool)
        input_ids[valid] = np.concatenate([s["input_ids"] for s in sequences])
        loss_mask[valid] = np.concatenate([s["loss_mask"] for s in sequences])
        local_positions[valid] = np.concatenate([s["local_positions"] for s in sequences])
        patch_mask[valid] = np.concatenate([s["patch_mask"] for s in sequences])
        data: dict[str, np.ndarray] = {
            "input_ids": input_ids,
            "attention_mask": valid.astype(np.int64),
            "loss_mask": loss_mask,
            "labels": np.where(loss_mask.astype(bool), input_ids, IGNORE_INDEX),
            "local_positions": local_positions,
        }
        num_patches = np.array([len(s["patch_pixels"]) for s in sequences])
        if num_patches.any():
            most = int(num_patches.max())
            patch_valid = np.arange(most)[None, :] < num_patches[:, None]
            pixels = np.zeros((batch, most, 3, PATCH_SIZE, PATCH_SIZE), dtype=np.float32)
            rows = np.zeros((batch, most, 2), dtype=np.int64)
            cols = np.zeros((batch, most, 2), dtype=np.int64)
            pixels[patch_valid] = np.concatenate([s["patch_pixels"] for s in sequences])
            rows[patch_valid] = np.concatenate([s["patch_rows"] for s in sequences])
            cols[patch_valid] = np.concatenate([s["patch_cols"] for s in sequences])
            data.update(
                patch_mask=patch_mask, patch_pixels=pixels, patch_rows=rows, patch_cols=cols, patch_valid=patch_valid
            )
        if return_tensors is None:  # transformers' convention: Python lists
            return BatchFeature(data={key: value.tolist() for key, value in data.items()})
        tensor_type = None if return_tensors == "np" else return_tensors
        return BatchFeature(data=data, tensor_type=tensor_type)

    def __call__(
        self,
        text: str | Sequence[str] | None = None,
        images: Any = None,
        episodes: Mapping[str, Any] | Sequence[Mapping[str, Any]] | None = None,
        specs: TaskSpec | Sequence[TaskSpec] | None = None,
        **kwargs: Unpack[GatoProcessorKwargs],
    ) -> BatchFeature:
        """One call for any mix of inputs, collated into one batch.

        Prompts (the default without episodes; ``model.generate(**processor(...))`` continues them):

        - ``text`` alone: ``[bos] text`` per string (a string or a list);
        - ``images`` alone: the caption prompt ``[patches][bos]`` per image (``images[i]`` one image or a list);
        - ``images`` with ``text``: ``[patches][bos] text[i]``, a caption prefix to continue.

        Training sequences (``return_labels=True``, the default when ``episodes`` are given), with ``labels`` and
        ``loss_mask``: text ``[bos] text [eos]``, captions ``[patches][bos] text[i] [eos]``, and ``episodes`` with
        ``specs`` (one spec for all, or one per episode), each episode contributing all its ``max_length`` chunks.

        Keywords follow transformers' processors, flat or grouped (``text_kwargs``, ``images_kwargs``,
        ``common_kwargs``): ``padding`` (``True``/``"longest"`` default, ``"max_length"``, ``False``/``"do_not_pad"``),
        ``max_length`` (the ``"max_length"`` padding length), ``padding_side`` (default ``"left"`` for prompts,
        ``"right"`` for training), ``add_special_tokens`` (``False``: no ``bos`` on text prompts), ``return_tensors``
        (``None`` default: Python lists, as transformers' processors; ``"pt"``: torch, what ``generate`` and the
        model take; ``"np"``: numpy); image keywords go to the image processor (captions only).
        Any other keyword is a ``ValueError``.
        """
        self._check_keywords(kwargs)
        for name in ("videos", "audio"):  # `apply_chat_template` passes them as None
            kwargs.pop(name, None)
        # As transformers' processors: the tokenizer's own init settings (e.g. padding="max_length") are defaults.
        merged = self._merge_kwargs(GatoProcessorKwargs, tokenizer_init_kwargs=self.tokenizer.init_kwargs, **kwargs)
        text_kwargs, images_kwargs = merged["text_kwargs"], merged["images_kwargs"]
        # A text keyword the call would not honour is refused; one the tokenizer was built with is its own business.
        passed = set(kwargs) | set(kwargs.get("text_kwargs") or {}) | set(kwargs.get("common_kwargs") or {})
        unsupported = sorted(
            key
            for key, value in text_kwargs.items()
            if key not in SUPPORTED_TEXT_KWARGS and value is not None and key in passed
        )
        if unsupported:
            raise ValueError(
                f"text_kwargs: {unsupported} not supported; GatoProcessor takes {list(SUPPORTED_TEXT_KWARGS)}"
            )
        return_tensors = text_kwargs.get("return_tensors", images_kwargs.get("return_tensors"))
        images_kwargs = {key: value for key, value in images_kwargs.items() if key != "return_tensors"}
        return_labels = merged.get("return_labels")
        return_labels = episodes is not None if return_labels is None else bool(return_labels)
        add_special_tokens = text_kwargs.get("add_special_tokens")
        add_special_tokens = True if add_special_tokens is None else bool(add_special_tokens)

        sequences: list[dict[str, np.ndarray]] = []
        texts = [text] if isinstance(text, str) else (list(text) if isinstance(text, (list, tuple)) else text)
        if texts is None:
            texts = []
        if not isinstance(texts, list) or not all(isinstance(piece, str) for piece in texts):
            raise ValueError(f"text: expected a string or a list of strings, got {_describe(text)}")
        if images is not None:
            image_list = list(images) if isinstance(images, (list, tuple)) else [images]
            if texts and len(image_list) != len(texts):
                raise ValueError(
                    f"images: got {len(image_list)} images (or image lists) for {len(texts)} captions in text"
                )
            if return_labels:
                if not texts:
                    raise ValueError("text: training captions (return_labels=True) need one caption per image")
                if images_kwargs:
                    raise ValueError(
                        f"images_kwargs: {sorted(images_kwargs)} apply to prompts only; set them on the image processor"
                    )
                sequences += [
                    self.tokenize_text(caption) if _no_image(image) else self.tokenize_caption(image, caption)
                    for image, caption in zip(image_list, texts)
                ]
            else:
                # An empty image list beside a text is a text-only sample of the batch (transformers' convention).
                sequences += [
                    self.tokenize_text_prompt(prefix, add_special_tokens)
                    if texts and _no_image(image)
                    else self.tokenize_caption_prompt(image, prefix, images_kwargs)
                    for image, prefix in zip(image_list, texts or [""] * len(image_list))
                ]
        elif return_labels:
            sequences += [self.tokenize_text(piece) for piece in texts]
        else:
            sequences += [self.tokenize_text_prompt(piece, add_special_tokens) for piece in texts]
        if episodes is not None:
            episode_list = [episodes] if isinstance(episodes, Mapping) else list(episodes)
            if specs is None:
                raise ValueError("specs: episodes need their task specs (one spec, or one per episode)")
            spec_list = [specs] * len(episode_list) if isinstance(specs, (TaskSpec, Mapping)) else list(specs)
            if len(spec_list) != len(episode_list):
                raise ValueError(f"specs: got {len(spec_list)} specs for {len(episode_list)} episodes")
            for episode, spec in zip(episode_list, spec_list):
                sequences += self.tokenize_episode(episode, spec)
        if not sequences:
            raise ValueError("text, images, episodes: nothing to process, pass at least one of them")
        batch = self.collate(
            sequences,
            padding=text_kwargs.get("padding", "longest"),
            return_tensors=return_tensors,
            padding_side=text_kwargs.get("padding_side") or ("right" if return_labels else "left"),
            max_length=text_kwargs.get("max_length"),
        )
        if not return_labels:
            for key in TARGET_KEYS:
                del batch[key]
        return batch

    def _check_keywords(self, kwargs: Mapping[str, Any]) -> None:
        """Refuse keywords ``__call__`` would otherwise ignore (transformers only logs a warning for them)."""
        other_inputs = sorted(name for name in ("videos", "audio") if kwargs.get(name) is not None)
        if other_inputs:
            raise ValueError(f"{', '.join(other_inputs)}: Gato takes text, images and episodes (with specs)")
        image_keywords = set(getattr(getattr(self.image_processor, "valid_kwargs", None), "__annotations__", {}))
        known = (
            set(GatoProcessorKwargs.__annotations__)
            | set(TextKwargs.__annotations__)
            | image_keywords
            | {"common_kwargs"}
        )
        unknown = sorted(set(kwargs) - known - {"videos", "audio"})
        if unknown:
            raise ValueError(
                f"unexpected arguments {unknown}; GatoProcessor takes text, images, episodes, specs and the keywords "
                f"{list(SUPPORTED_TEXT_KWARGS) + ['return_labels']} (flat or in text_kwargs / images_kwargs / common_kwargs)"
            )

    # --- acting ------------------------------------------------------------------------------------------------

    def tokenize_observation(
        self, step_observation: Mapping[str, Any], spec: TaskSpec | Mapping[str, Any]
    ) -> dict[str, np.ndarray]:
        """One time step's observation (``{field: value}`` without a time axis) → its tokens and the separator.

        Same unpadded dict format as :meth:`tokenize_episode`; loss mask all 0 (the agent appends the
        action tokens it samples).
        """
        spec = _as_spec(spec)
        if not isinstance(step_observation, Mapping):
            raise ValueError("step_observation: expected a mapping {field_name: value} for one time step")
        observations = {}
        for field in spec.observations:
            if field.name not in step_observation:
                raise ValueError(
                    f"observations[{field.name!r}]: missing from the step observation of task {spec.name!r}"
                )
            value = step_observation[field.name]
            observations[field.name] = [value] if field.kind == "text" else np.asarray(value)[None]
        tokens = self._layout({"task": spec.name, "observations": observations}, spec, include_actions=False)
        return tokens.to_dict()

    def action_token_ranges(self, spec: TaskSpec | Mapping[str, Any]) -> np.ndarray:
        """``(action_size, 2)`` legal token ids ``[lo, hi)`` per action dimension (sampling is restricted to them)."""
        action = _as_spec(spec).action
        if action.kind == "discrete":
            low = discrete_offset(self.discrete_layout)
            bounds = (low, low + action.num_values)
        else:
            bounds = (CONTINUOUS_OFFSET, CONTINUOUS_OFFSET + CONTINUOUS_BINS)
        return np.tile(np.asarray(bounds, dtype=np.int64), (action.size, 1))

    def tokenize_action(self, action: Any, spec: TaskSpec | Mapping[str, Any]) -> np.ndarray:
        """Action ``(..., action_size)`` → token ids, same shape (discrete index or continuous value)."""
        return episode_layout.tokenize_action(action, _as_spec(spec), self.discrete_layout)

    def decode_action(self, token_ids: Any, spec: TaskSpec | Mapping[str, Any]) -> np.ndarray:
        """Action token ids ``(..., action_size)`` → actions: discrete indices (int64), or continuous values
        (bin centre, inverse μ-law when the spec's action uses it) clipped to ``[low, high]``."""
        action = _as_spec(spec).action
        if isinstance(token_ids, torch.Tensor):
            token_ids = token_ids.detach().cpu().numpy()
        ids = np.asarray(token_ids, dtype=np.int64)
        if ids.shape[-1:] != (action.size,):
            raise ValueError(f"token_ids: expected shape (..., {action.size}) for the action, got {ids.shape}")
        if action.kind == "discrete":
            return detokenize_discrete(ids, self.discrete_layout, action.num_values, field="action token ids")
        values = detokenize_continuous(ids, mu_law=action.mu_law, field="action token ids")
        return np.clip(values, action.low, action.high)


# Where `AutoProcessor` / `AutoImageProcessor` find the classes in a saved folder loaded with trust_remote_code.
REMOTE_PROCESSOR_AUTO_MAP = {"AutoProcessor": "processing_gato.GatoProcessor"}
REMOTE_IMAGE_PROCESSOR_AUTO_MAP = {"AutoImageProcessor": "image_processing_gato.GatoImageProcessor"}
# A top-level (unindented) import of gato: remote code may import gato only inside `try: ... except ImportError:`.
_TOP_LEVEL_GATO_IMPORT = re.compile(r"^(from\s+gato[\s.]|import\s+gato\b)", flags=re.MULTILINE)


def write_remote_code(save_directory: str | os.PathLike) -> list[Path]:
    """Copy the processor's source files (and the task contract they read) unchanged into ``save_directory`` and
    add the ``auto_map`` entries, so that ``AutoProcessor.from_pretrained(folder, trust_remote_code=True)`` gives a
    :class:`GatoProcessor` where gato is not installed. Each file imports gato's modules where it is installed and
    the copies beside it otherwise (``except ImportError``).

    Raises:
        RuntimeError: a source file imports ``gato`` outside ``try: ... except ImportError:``.
    """
    try:
        from gato.suite import task_spec, token_layout
    except ImportError:  # a remote-code copy saving itself again: the contract's copies are its siblings
        from . import task_spec, token_layout
    from . import image_processing_gato, tokenization_gato, tokenize_values

    folder = Path(save_directory)
    written = []
    for module in (
        sys.modules[__name__],
        image_processing_gato,
        episode_layout,
        tokenize_values,
        tokenization_gato,
        task_spec,
        token_layout,
    ):
        source_file = Path(inspect.getfile(module))
        source = source_file.read_text(encoding="utf-8")
        if _TOP_LEVEL_GATO_IMPORT.search(source):
            raise RuntimeError(
                f"{source_file}: imports gato outside `try: ... except ImportError:`; remote code must "
                "also load where gato is not installed"
            )
        (folder / source_file.name).write_text(source, encoding="utf-8")
        written.append(folder / source_file.name)
    config_file = folder / "processor_config.json"
    if config_file.exists():
        config = json.loads(config_file.read_text(encoding="utf-8"))
        config["auto_map"] = dict(REMOTE_PROCESSOR_AUTO_MAP)
        if isinstance(config.get("image_processor"), dict):
            config["image_processor"]["auto_map"] = dict(REMOTE_IMAGE_PROCESSOR_AUTO_MAP)
        config_file.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return written


__all__ = ["GatoProcessor", "write_remote_code", "GatoProcessorKwargs", "DEFAULT_CHAT_TEMPLATE", "padding_strategy"]
