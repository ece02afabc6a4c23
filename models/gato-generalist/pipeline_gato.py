"""Captions from a Gato checkpoint as a transformers ``Pipeline``: an image (and an optional text prefix) → text.

This file travels with every saved model (``modeling_gato.write_remote_code``), and the folder's ``config.json`` names
it for both caption task names (``custom_pipelines``), so that where gato is not installed::

    pipeline("image-to-text", model=FOLDER, trust_remote_code=True)("scene.png")  # [{"generated_text": "a red ..."}]
    pipeline("image-text-to-text", model=FOLDER, trust_remote_code=True)(images=image)

give the same captions as with gato installed (where ``gato.pipelines`` registers this class for both names). It
imports nothing of gato but the token constants, as the model's other remote files.
"""

from typing import Any

import numpy as np
import torch
from transformers import Pipeline
from transformers.image_utils import load_image

try:
    from gato.suite.token_layout import BOS_TOKEN_ID, EOS_TOKEN_ID, PAD_TOKEN_ID, TEXT_VOCAB_SIZE, UNK_TOKEN_ID
except ImportError:  # a remote-code folder, loaded where gato is not installed
    from .token_layout import BOS_TOKEN_ID, EOS_TOKEN_ID, PAD_TOKEN_ID, TEXT_VOCAB_SIZE, UNK_TOKEN_ID

CAPTION_TASKS = ("image-text-to-text", "image-to-text")
DEFAULT_MAX_NEW_TOKENS = 48  # the caption evaluation's budget (gato.evaluation.captioning)
# Special ids a caption never contains (they decode to nothing): a caption is text, so it is never empty.
NEVER_IN_A_CAPTION = (PAD_TOKEN_ID, UNK_TOKEN_ID, BOS_TOKEN_ID)


def caption_suppressed_ids(vocab_size: int) -> list[int]:
    """The ids a caption never holds: the special ids that decode to nothing and every non-text id (values, the
    separator), ``[TEXT_VOCAB_SIZE, vocab_size)``."""
    return [*NEVER_IN_A_CAPTION, *range(TEXT_VOCAB_SIZE, vocab_size)]


class GatoImageToTextPipeline(Pipeline):
    """Captions from a Gato checkpoint: the image's patches, ``bos`` (and an optional text prefix) → greedy text.

    The prompt is the processor's caption prompt (``processor(images=image, text=prefix)``: ``[patches][bos prefix]``,
    the layout the model was trained on, before its ``eos``); only text ids may be generated, up to
    ``max_new_tokens``, stopping at ``eos``. A caption holds at least one word: ``eos`` cannot come first and the
    special ids that decode to nothing (pad, unk, bos) never come (a black image gets a caption too, not ``''``).

    Call with an image (a path, URL, ``PIL.Image`` or ``(H, W, 3)`` uint8 array) or a list of them, optionally
    ``text=`` a caption prefix to continue; returns ``[{"generated_text": caption}]`` per image (the prefix
    included), like transformers' captioning pipelines. ``max_new_tokens`` is a call or construction argument.
    """

    _load_processor = True
    _load_tokenizer = False
    _load_image_processor = False
    _load_feature_extractor = False

    def _sanitize_parameters(self, max_new_tokens: int | None = None, timeout: float | None = None, **kwargs: Any):
        if kwargs:
            raise ValueError(
                f"unexpected arguments {sorted(kwargs)}; the Gato caption pipeline takes max_new_tokens and timeout"
            )
        forward = {} if max_new_tokens is None else {"max_new_tokens": max_new_tokens}
        return ({} if timeout is None else {"timeout": timeout}), forward, {}

    def __call__(self, images: Any = None, text: str | list[str] | None = None, **kwargs: Any) -> Any:
        """Caption ``images`` (one or a list), each optionally continuing a ``text`` prefix."""
        if images is None:
            images = kwargs.pop("inputs", None)
        if images is None:
            raise ValueError("images: expected an image (path, URL, PIL image or (H, W, 3) array) or a list of them")
        if isinstance(images, (list, tuple)):
            prefixes = text if isinstance(text, (list, tuple)) else [text] * len(images)
            if len(prefixes) != len(images):
                raise ValueError(f"text: got {len(prefixes)} prefixes for {len(images)} images")
            return super().__call__(
                [{"image": image, "text": prefix} for image, prefix in zip(images, prefixes)], **kwargs
            )
        return super().__call__({"image": images, "text": text}, **kwargs)

    def preprocess(self, inputs: dict[str, Any], timeout: float | None = None) -> dict[str, Any]:
        image = inputs["image"]
        if isinstance(image, str) or not isinstance(image, np.ndarray) and not torch.is_tensor(image):
            image = load_image(image, timeout=timeout).convert("RGB")
        prefix = inputs.get("text") or None
        model_inputs = dict(self.processor(images=image, text=prefix, return_tensors="pt"))  # [patches][bos prefix]
        # The prefix's own ids (after bos) are decoded with the new ones, so the spacing comes out right.
        after_bos = int(model_inputs["patch_mask"][0].sum()) + 1
        model_inputs["prefix_ids"] = model_inputs["input_ids"][0, after_bos:]
        return model_inputs

    def _forward(self, model_inputs: dict[str, Any], max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS) -> dict[str, Any]:
        prefix_ids = model_inputs.pop("prefix_ids")
        output = self.model.generate(
            **model_inputs,
            max_new_tokens=max_new_tokens,
            min_new_tokens=1,
            suppress_tokens=caption_suppressed_ids(self.model.config.vocab_size),
            do_sample=False,
            eos_token_id=EOS_TOKEN_ID,
            pad_token_id=PAD_TOKEN_ID,
        )
        return {"new_ids": output[0, model_inputs["input_ids"].shape[1] :], "prefix_ids": prefix_ids}

    def postprocess(self, model_outputs: dict[str, Any]) -> list[dict[str, str]]:
        new_ids = model_outputs["new_ids"].cpu().numpy()
        ends = np.flatnonzero(new_ids == EOS_TOKEN_ID)
        ids = np.concatenate([model_outputs["prefix_ids"].cpu().numpy(), new_ids[: ends[0]] if ends.size else new_ids])
        return [{"generated_text": self.processor.tokenizer.decode(ids.tolist(), skip_special_tokens=True).strip()}]


# The folder's `config.json` entry that makes transformers' `pipeline()` build this class for both task names where
# gato is not installed (with `trust_remote_code=True`); the model class is the one of the folder's auto_map.
REMOTE_CUSTOM_PIPELINES = {
    task: {
        "impl": "pipeline_gato.GatoImageToTextPipeline",
        "pt": ["AutoModelForImageTextToText"],
        "type": "multimodal",
    }
    for task in CAPTION_TASKS
}

__all__ = ["GatoImageToTextPipeline", "CAPTION_TASKS", "REMOTE_CUSTOM_PIPELINES", "caption_suppressed_ids"]
