"""Caption quality on the held-out caption split: greedy captions, attribute-mention accuracy, BLEU.

The generated captioning set (``gato.episodes.captions``) stores each scene's structured description
(``objects``: colour, shape, size, position), so a caption can be checked against the truth without a
reference-caption metric: an object is *named correctly* when the caption says its colour immediately
before its shape ("… red circle …", the set's own phrasing). Per object we count whether its colour, its
shape and the colour–shape pair are mentioned (recall); per mentioned colour–shape pair whether the scene
has it (precision); per scene whether the caption names every object's pair, as many times as the scene has it, and no other
(scene accuracy: "a yellow square" is wrong for a scene of two yellow squares).
Two held-out splits: ``captions_validation``, whose scenes each contain a colour×shape pair never seen in
training (``HELD_OUT_PAIRS``; recall on those pairs measures compositional generalization), and
``captions_test``, new scenes of the training pairs.

BLEU (sacreBLEU's corpus BLEU against the one reference caption) is added when the ``sacrebleu`` package
is importable; it is not a dependency of gato.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from gato.episodes.captions import COLOURS, HELD_OUT_PAIRS, SHAPES
from gato.suite.token_layout import EOS_TOKEN_ID, PAD_TOKEN_ID, TEXT_VOCAB_SIZE
from gato.training.precision import float32_output_layer
from transformers import LogitsProcessor, LogitsProcessorList

# "red circle", "blue squares": a colour word directly followed by a shape word.
MENTION_PATTERN = re.compile(r"\b(" + "|".join(COLOURS) + r")\s+(" + "|".join(SHAPES) + r")s?\b")
COLOUR_PATTERN = re.compile(r"\b(" + "|".join(COLOURS) + r")\b")
SHAPE_PATTERN = re.compile(r"\b(" + "|".join(SHAPES) + r")s?\b")


class TextOnlyLogitsProcessor(LogitsProcessor):
    """Captions are text: ids at or above ``TEXT_VOCAB_SIZE`` (value tokens, separator) are never generated."""

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        scores[:, TEXT_VOCAB_SIZE:] = float("-inf")
        return scores


def attribute_counts(caption: str, objects: Sequence[Mapping[str, Any]]) -> dict[str, int]:
    """Counts of correctly named attributes of one scene's ``objects`` in one ``caption``.

    Returns:
        ``objects``, ``colour_hits``, ``shape_hits``, ``pair_hits`` (objects whose colour / shape /
        colour–shape pair the caption mentions), ``held_out_objects`` / ``held_out_pair_hits`` (the same
        for objects of a held-out pair), ``mentioned_pairs`` / ``correct_mentions`` (colour–shape pairs
        the caption names, and how many of those the scene has), ``scenes`` (1) / ``scene_hits`` (1 when the
        caption names exactly the scene's pairs, each as many times as the scene has objects of it).
    """
    text = caption.lower()
    mentioned = [(colour, shape) for colour, shape in MENTION_PATTERN.findall(text)]
    colours, shapes = set(COLOUR_PATTERN.findall(text)), set(SHAPE_PATTERN.findall(text))
    truth = [(str(obj["colour"]), str(obj["shape"])) for obj in objects]
    held_out = [pair in HELD_OUT_PAIRS for pair in truth]
    mentioned_set, truth_set = set(mentioned), set(truth)
    pair_hit = [pair in mentioned_set for pair in truth]
    correct_mentions = sum(pair in truth_set for pair in mentioned)
    return {
        "objects": len(truth),
        "colour_hits": sum(colour in colours for colour, _ in truth),
        "shape_hits": sum(shape in shapes for _, shape in truth),
        "pair_hits": sum(pair_hit),
        "held_out_objects": sum(held_out),
        "held_out_pair_hits": sum(hit and out for hit, out in zip(pair_hit, held_out)),
        "mentioned_pairs": len(mentioned),
        "correct_mentions": correct_mentions,
        "scenes": 1,
        # The set's captions name each object once, so a right caption's pairs equal the scene's as multisets.
        "scene_hits": int(Counter(mentioned) == Counter(truth)),
    }


def attribute_accuracy(
    captions: Sequence[str], scenes: Sequence[Sequence[Mapping[str, Any]]]
) -> dict[str, float | None]:
    """Attribute-mention accuracy of generated ``captions`` against their ``scenes`` (micro-averaged over objects).

    Returns:
        ``colour_accuracy``, ``shape_accuracy``, ``colour_shape_accuracy`` (recall over objects),
        ``held_out_colour_shape_accuracy`` (over objects of held-out pairs), ``mention_precision`` (share of
        named colour–shape pairs present in the scene), ``scene_accuracy`` (share of scenes whose caption names
        every object's colour–shape pair and no other); ``None`` where the denominator is 0.
    """
    if len(captions) != len(scenes):
        raise ValueError(f"captions / scenes: expected equal lengths, got {len(captions)} and {len(scenes)}")
    totals: dict[str, int] = {}
    for caption, objects in zip(captions, scenes):
        for key, value in attribute_counts(caption, objects).items():
            totals[key] = totals.get(key, 0) + value

    def ratio(hits: str, total: str) -> float | None:
        return totals.get(hits, 0) / totals[total] if totals.get(total) else None

    return {
        "colour_accuracy": ratio("colour_hits", "objects"),
        "shape_accuracy": ratio("shape_hits", "objects"),
        "colour_shape_accuracy": ratio("pair_hits", "objects"),
        "held_out_colour_shape_accuracy": ratio("held_out_pair_hits", "held_out_objects"),
        "mention_precision": ratio("correct_mentions", "mentioned_pairs"),
        "scene_accuracy": ratio("scene_hits", "scenes"),
    }


def corpus_bleu(captions: Sequence[str], references: Sequence[str]) -> float | None:
    """sacreBLEU corpus BLEU (0–100) of ``captions`` against one reference each; ``None`` without sacrebleu."""
    try:
        import sacrebleu
    except ImportError:
        return None
    return float(sacrebleu.corpus_bleu(list(captions), [list(references)]).score)


@torch.no_grad()
def generate_captions(
    model: torch.nn.Module, processor: Any, images: Sequence[Any], max_new_tokens: int = 48, batch_size: int = 8
) -> list[str]:
    """Greedy captions of ``images``: the prompt is each image's patches then ``bos`` (the layout of
    ``processor.tokenize_caption``), generation stops at ``eos``; only text ids are allowed."""
    model.eval()
    device = next(model.parameters()).device
    captions: list[str] = []
    for start in range(0, len(images), batch_size):
        prompts = []
        for image in images[start : start + batch_size]:
            sequence = processor.tokenize_caption(image, "")
            length = int(sequence["patch_mask"].sum()) + 1  # the patches and bos
            prompts.append(
                {
                    key: (
                        value[:length] if key in ("input_ids", "loss_mask", "local_positions", "patch_mask") else value
                    )
                    for key, value in sequence.items()
                }
            )
        # Same image size → same prompt length: no padding, so left/right padding does not matter.
        batch = processor.collate(prompts)
        inputs = {key: value.to(device) for key, value in batch.items() if key not in ("labels", "loss_mask")}
        with float32_output_layer(model):  # greedy text from bf16 weights: logits not rounded to bf16 (no ties)
            output = model.generate(
                **inputs,
                max_new_tokens=max_new_tokens,
                do_sample=False,
                eos_token_id=EOS_TOKEN_ID,
                pad_token_id=PAD_TOKEN_ID,
                logits_processor=LogitsProcessorList([TextOnlyLogitsProcessor()]),
            )
        new_tokens = output[:, inputs["input_ids"].shape[1] :].cpu().numpy()
        for row in new_tokens:
            ends = np.flatnonzero(row == EOS_TOKEN_ID)
            row = row[: ends[0]] if ends.size else row
            captions.append(processor.tokenizer.decode(row.tolist(), skip_special_tokens=True).strip())
    return captions


def evaluate_captions(
    model: torch.nn.Module,
    processor: Any,
    dataset: Any,
    samples: int | None = None,
    max_new_tokens: int = 48,
    batch_size: int = 8,
    examples: int = 5,
    split: str = "captions_validation",
) -> dict[str, Any]:
    """Caption the first ``samples`` rows of a caption split (columns ``image``, ``caption``, ``objects``) and score them.

    Returns the ``captions`` entry of ``eval_results.json`` (docs/EVALUATION.md): ``split``, ``samples``, the
    :func:`attribute_accuracy` fields, ``bleu`` (or ``None``) and ``examples`` (first few
    ``{"reference", "generated"}`` pairs).
    """
    count = len(dataset) if samples is None else min(samples, len(dataset))
    if count < 1:
        raise ValueError(f"captions: the split {split!r} is empty or samples={samples}")
    rows = dataset.select(range(count))
    images = [image.convert("RGB") if hasattr(image, "convert") else image for image in rows["image"]]
    generated = generate_captions(model, processor, images, max_new_tokens=max_new_tokens, batch_size=batch_size)
    references = list(rows["caption"])
    return {
        "split": split,
        "samples": count,
        **attribute_accuracy(generated, rows["objects"]),
        "bleu": corpus_bleu(generated, references),
        "examples": [{"reference": ref, "generated": gen} for ref, gen in list(zip(references, generated))[:examples]],
    }


__all__ = ["attribute_counts", "attribute_accuracy", "corpus_bleu", "generate_captions", "evaluate_captions"]
