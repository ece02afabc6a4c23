"""Caption attribute-mention accuracy on known captions, and greedy caption generation with a tiny model."""

import numpy as np
import pytest
import torch
from gato.episodes.captions import build_captions_dataset, caption_for
from gato.evaluation.captioning import attribute_accuracy, attribute_counts, generate_captions
from gato.modeling_gato import GatoConfig, GatoForCausalLM
from gato.training.run_training import build_processor

RED_CIRCLE = {"colour": "red", "shape": "circle", "size": "large", "row": 0, "col": 0, "position": "at the top left"}
BLUE_SQUARE = {"colour": "blue", "shape": "square", "size": "small", "row": 1, "col": 1, "position": "in the centre"}


def test_the_reference_caption_scores_perfectly():
    scenes = [[RED_CIRCLE, BLUE_SQUARE], [BLUE_SQUARE]]
    scores = attribute_accuracy([caption_for(scene) for scene in scenes], scenes)
    assert scores == {
        "colour_accuracy": 1.0,
        "shape_accuracy": 1.0,
        "colour_shape_accuracy": 1.0,
        "held_out_colour_shape_accuracy": 1.0,
        "mention_precision": 1.0,
        "scene_accuracy": 1.0,
    }


def test_swapped_attributes_keep_colour_and_shape_but_lose_the_pairs():
    # Both colours and both shapes are named, but bound to the wrong objects.
    scores = attribute_accuracy(["a large red square and a small blue circle."], [[RED_CIRCLE, BLUE_SQUARE]])
    assert scores["colour_accuracy"] == 1.0 and scores["shape_accuracy"] == 1.0
    assert scores["colour_shape_accuracy"] == 0.0 and scores["mention_precision"] == 0.0


def test_partial_caption_counts_per_object():
    counts = attribute_counts("A RED circle, and a green triangle", [RED_CIRCLE, BLUE_SQUARE])
    assert counts == {
        "objects": 2,
        "colour_hits": 1,
        "shape_hits": 1,
        "pair_hits": 1,
        "held_out_objects": 1,
        "held_out_pair_hits": 0,
        "mentioned_pairs": 2,
        "correct_mentions": 1,
        "scenes": 1,
        "scene_hits": 0,
    }
    scores = attribute_accuracy(["A RED circle, and a green triangle"], [[RED_CIRCLE, BLUE_SQUARE]])
    assert scores["colour_shape_accuracy"] == 0.5 and scores["mention_precision"] == 0.5
    assert scores["held_out_colour_shape_accuracy"] == 0.0  # blue square is a held-out pair


def test_a_scene_is_right_only_with_every_object_named_and_no_other():
    scenes = [
        [RED_CIRCLE, BLUE_SQUARE],
        [RED_CIRCLE, BLUE_SQUARE],
        [BLUE_SQUARE],
        [RED_CIRCLE],
        [RED_CIRCLE, RED_CIRCLE],
        [RED_CIRCLE],
    ]
    captions = [
        "a large red circle at the top left and a small blue square in the centre.",  # right
        "a large red circle at the top left.",  # misses the blue square
        "a small blue square in the centre and a small green triangle.",  # names an object that is not there
        "a large red circle at the bottom right.",  # the position is not part of the pair: right
        "a large red circle at the top left.",  # one of the two red circles
        "a large red circle and a small red circle.",  # one red circle named twice
    ]
    assert [attribute_counts(c, s)["scene_hits"] for c, s in zip(captions, scenes)] == [1, 0, 0, 1, 0, 0]
    assert attribute_accuracy(captions, scenes)["scene_accuracy"] == 2 / 6


def test_empty_caption_has_no_precision():
    scores = attribute_accuracy([""], [[RED_CIRCLE]])
    assert scores["colour_accuracy"] == 0.0 and scores["mention_precision"] is None


def test_lengths_must_match():
    with pytest.raises(ValueError, match="captions / scenes"):
        attribute_accuracy(["a"], [])


def test_greedy_captions_from_a_tiny_model_are_text_and_deterministic():
    config = GatoConfig.from_preset("gato-tiny", max_position_embeddings=64)
    torch.manual_seed(0)
    model = GatoForCausalLM(config).eval()
    processor = build_processor(config, 64)
    images = list(build_captions_dataset(1, 3, seed=0)["validation"]["image"])
    first = generate_captions(model, processor, images, max_new_tokens=6, batch_size=2)
    second = generate_captions(model, processor, images[:1], max_new_tokens=6)
    assert len(first) == 3 and all(isinstance(c, str) for c in first) and first[0] == second[0]
    assert np.mean([len(c) > 0 for c in first]) > 0  # something was generated


def test_bleu_is_null_without_sacrebleu(monkeypatch):
    import sys

    from gato.evaluation.captioning import corpus_bleu

    monkeypatch.setitem(sys.modules, "sacrebleu", None)  # import sacrebleu now raises ImportError
    assert corpus_bleu(["a red circle."], ["a red circle."]) is None


def test_bleu_of_the_reference_is_100_when_sacrebleu_is_installed():
    pytest.importorskip("sacrebleu")
    from gato.evaluation.captioning import corpus_bleu

    assert corpus_bleu(
        ["a large red circle at the top left."], ["a large red circle at the top left."]
    ) == pytest.approx(100.0)
