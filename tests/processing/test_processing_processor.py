"""GatoProcessor: text, captions, episodes with prompts, collation, save/load, acting helpers."""

import time

import numpy as np
import pytest
import torch
from gato.processing.image_processing_gato import GatoImageProcessor
from gato.processing.processing_gato import GatoProcessor
from gato.processing.tokenization_gato import load_default_tokenizer
from gato.suite import token_layout as tl
from gato.suite.task_spec import ActionSpec, ObservationField, TaskSpec
from transformers import AutoProcessor

import gato

P = tl.PATCH_PLACEHOLDER_ID
SEP = tl.SEPARATOR_TOKEN_ID
NONE = tl.LOCAL_POSITION_NONE
ACT = tl.LOCAL_POSITION_ACTION


@pytest.fixture(scope="module")
def tokenizer():
    return load_default_tokenizer()


@pytest.fixture(scope="module")
def processor(tokenizer):
    return GatoProcessor(tokenizer, GatoImageProcessor(), max_length=64)


GRID_SPEC = TaskSpec(
    "grid-world",
    (
        ObservationField("mission", "text"),
        ObservationField("view", "image", (32, 32, 3)),
        ObservationField("direction", "discrete", (), num_values=4),
    ),
    ActionSpec("discrete", 1, num_values=7),
)


def grid_episode(steps=5, seed=0, task="grid-world"):
    rng = np.random.default_rng(seed)
    return {
        "task": task,
        "observations": {
            "mission": ["go to the red ball"] * steps,
            "view": rng.integers(0, 256, (steps, 32, 32, 3), dtype=np.uint8),
            "direction": rng.integers(0, 4, steps),
        },
        "actions": rng.integers(0, 7, (steps, 1)),
    }


ARM_SPEC = TaskSpec(
    "arm", (ObservationField("state", "continuous", (39,)),), ActionSpec("continuous", 4, low=-0.5, high=1.0)
)


def arm_episode(steps=500, seed=0):
    rng = np.random.default_rng(seed)
    return {
        "task": "arm",
        "observations": {"state": rng.normal(0, 3, (steps, 39))},
        "actions": rng.uniform(-1, 1, (steps, 4)),
    }


# --- text and captions -------------------------------------------------------------------------------------------


def test_text_is_bos_pieces_eos_with_loss_after_the_first_token(processor, tokenizer):
    sequence = processor.tokenize_text("hello world")
    pieces = tokenizer("hello world", add_special_tokens=False)["input_ids"]
    assert sequence["input_ids"].tolist() == [tl.BOS_TOKEN_ID, *pieces, tl.EOS_TOKEN_ID]
    assert sequence["loss_mask"].tolist() == [0] + [1] * (len(pieces) + 1)
    assert (sequence["local_positions"] == NONE).all()
    assert not sequence["patch_mask"].any() and sequence["patch_pixels"].shape == (0, 3, 16, 16)


def test_long_text_is_truncated_or_chunked(processor):
    text = "the quick brown fox jumps over the lazy dog " * 40
    assert len(processor.tokenize_text(text)["input_ids"]) == processor.max_length
    chunks = processor.tokenize_text_chunks(text)
    full = np.concatenate([chunk["input_ids"] for chunk in chunks])
    assert len(chunks) > 1 and all(len(chunk["input_ids"]) <= processor.max_length for chunk in chunks)
    assert full[0] == tl.BOS_TOKEN_ID and full[-1] == tl.EOS_TOKEN_ID
    assert full.tolist()[: processor.max_length] == processor.tokenize_text(text)["input_ids"].tolist()


def test_caption_is_patches_then_caption_with_loss_on_caption_and_eos(processor, tokenizer):
    image = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    sequence = processor.tokenize_caption(image, "a red ball")
    pieces = tokenizer("a red ball", add_special_tokens=False)["input_ids"]
    assert sequence["input_ids"].tolist() == [P] * 16 + [tl.BOS_TOKEN_ID, *pieces, tl.EOS_TOKEN_ID]
    assert sequence["loss_mask"].tolist() == [0] * 17 + [1] * (len(pieces) + 1)
    assert sequence["patch_mask"].tolist() == [True] * 16 + [False] * (len(pieces) + 2)
    expected = GatoImageProcessor()(image, return_tensors="np")["patch_pixels"][0]
    assert np.array_equal(sequence["patch_pixels"], expected)


def test_caption_with_several_images_puts_all_patches_first(processor):
    images = [np.zeros((64, 64, 3), dtype=np.uint8), np.full((32, 32, 3), 255, dtype=np.uint8)]
    sequence = processor.tokenize_caption(images, "two")
    assert sequence["patch_mask"][:32].all() and not sequence["patch_mask"][32:].any()
    assert np.allclose(sequence["patch_pixels"][:16], -0.25) and np.allclose(sequence["patch_pixels"][16:], 0.25)


# --- episodes -----------------------------------------------------------------------------------------------------


def test_episode_is_cut_into_whole_steps_within_max_length(processor, tokenizer):
    mission = tokenizer("go to the red ball", add_special_tokens=False)["input_ids"]
    step = len(mission) + 16 + 1 + 1 + 1  # text, 4×4 patches, direction | action
    sequences = processor.tokenize_episode(grid_episode(steps=5), GRID_SPEC)
    per_sequence = processor.max_length // step
    assert [len(s["input_ids"]) for s in sequences][0] == per_sequence * step
    assert sum(len(s["input_ids"]) for s in sequences) == 5 * step
    for sequence in sequences:
        assert sequence["input_ids"][: len(mission)].tolist() == mission
        assert sequence["input_ids"][-2] == SEP and sequence["local_positions"][-1] == ACT
        assert len(sequence["patch_pixels"]) == sequence["patch_mask"].sum()


def test_prompt_prefixes_every_sequence_without_loss(processor):
    episode = grid_episode(steps=6, seed=1)
    prompt = processor.make_prompt(grid_episode(steps=4, seed=2), GRID_SPEC, num_tokens=30, mode="end")
    assert len(prompt["actions"]) == 1  # one whole step fits in 30 tokens
    prompt_tokens = processor.tokenize_episode(prompt, GRID_SPEC)[0]
    sequences = processor.tokenize_episode(episode, GRID_SPEC, prompt=prompt)
    unprompted = processor.tokenize_episode(episode, GRID_SPEC)
    size = len(prompt_tokens["input_ids"])
    assert len(sequences) > len(unprompted)  # less room per sequence
    for sequence in sequences:
        assert len(sequence["input_ids"]) <= processor.max_length
        assert np.array_equal(sequence["input_ids"][:size], prompt_tokens["input_ids"])
        assert np.array_equal(sequence["patch_pixels"][:16], prompt_tokens["patch_pixels"])
        assert sequence["loss_mask"][:size].sum() == 0
        assert sequence["loss_mask"][size:].sum() > 0


def test_prompt_loss_switch_keeps_the_prompt_action_loss(tokenizer):
    processor = GatoProcessor(tokenizer, GatoImageProcessor(), max_length=64, prompt_loss=True)
    prompt = processor.make_prompt(
        grid_episode(steps=3, seed=2), GRID_SPEC, num_tokens=30, mode="uniform", rng=np.random.default_rng(0)
    )
    sequence = processor.tokenize_episode(grid_episode(steps=1), GRID_SPEC, prompt=prompt)[0]
    assert sequence["loss_mask"].sum() == 2  # one action in the prompt, one in the episode


# --- collation ----------------------------------------------------------------------------------------------------


def test_collate_pads_right_and_derives_labels_and_masks(processor):
    image = np.zeros((64, 64, 3), dtype=np.uint8)
    sequences = [processor.tokenize_text("hi"), processor.tokenize_caption(image, "a black square")]
    batch = processor.collate(sequences)
    lengths = [len(s["input_ids"]) for s in sequences]
    assert batch["input_ids"].shape == (2, max(lengths)) and batch["input_ids"].dtype == torch.long
    assert batch["attention_mask"].sum(1).tolist() == lengths
    assert batch["input_ids"][0, lengths[0] :].eq(tl.PAD_TOKEN_ID).all()
    assert batch["local_positions"][0, lengths[0] :].eq(NONE).all()
    expected_labels = torch.where(batch["loss_mask"].bool(), batch["input_ids"], tl.IGNORE_INDEX)
    assert torch.equal(batch["labels"], expected_labels)
    assert batch["loss_mask"][0, lengths[0] :].eq(0).all()
    assert batch["patch_pixels"].shape == (2, 16, 3, 16, 16) and batch["patch_pixels"].dtype == torch.float32
    assert batch["patch_valid"].tolist() == [[False] * 16, [True] * 16]
    assert torch.equal(batch["patch_valid"].sum(1), batch["patch_mask"].sum(1))
    assert batch["patch_rows"].shape == (2, 16, 2)
    assert set(batch.keys()) == {*processor.model_input_names, "labels", "loss_mask"}


def test_collate_to_max_length_and_without_images(processor):
    batch = processor.collate([processor.tokenize_text("a"), processor.tokenize_text("b c")], padding="max_length")
    assert batch["input_ids"].shape == (2, processor.max_length)
    assert set(batch.keys()) == {"input_ids", "attention_mask", "loss_mask", "labels", "local_positions"}


def test_call_mixes_text_captions_and_episodes_into_one_batch(processor):
    image = np.zeros((64, 64, 3), dtype=np.uint8)
    captions = processor(text=["a square"], images=[image], return_tensors="pt")
    mixed = processor(episodes=[grid_episode(steps=5), grid_episode(steps=2)], specs=GRID_SPEC, return_tensors="pt")
    texts = processor(text=["one", "two words"], return_tensors="np")
    assert captions["input_ids"].shape[0] == 1 and captions["patch_mask"].sum() == 16
    expected_rows = len(processor.tokenize_episode(grid_episode(steps=5), GRID_SPEC)) + 1
    assert mixed["input_ids"].shape[0] == expected_rows
    assert isinstance(texts["input_ids"], np.ndarray) and texts["input_ids"].shape[0] == 2


# --- save / load -------------------------------------------------------------------------------------------------


def test_save_and_load_give_identical_outputs(tokenizer, tmp_path):
    processor = GatoProcessor(
        tokenizer, GatoImageProcessor(), discrete_layout="shifted", max_length=77, observation_text_loss=True
    )
    processor.save_pretrained(tmp_path)
    auto = AutoProcessor.from_pretrained(tmp_path)
    direct = GatoProcessor.from_pretrained(tmp_path)
    assert isinstance(auto, GatoProcessor) and isinstance(auto.image_processor, GatoImageProcessor)
    for loaded in (auto, direct):
        assert (loaded.discrete_layout, loaded.max_length, loaded.observation_text_loss) == ("shifted", 77, True)
        for text, episodes in (("hello there", None), (None, [grid_episode(steps=4)])):
            expected = processor(text=text, episodes=episodes, specs=GRID_SPEC, return_tensors="pt")
            got = loaded(text=text, episodes=episodes, specs=GRID_SPEC, return_tensors="pt")
            assert expected.keys() == got.keys()
            assert all(torch.equal(expected[key], got[key]) for key in expected)


def test_gato_exports_the_processor():
    assert gato.GatoProcessor is GatoProcessor and gato.processing.GatoProcessor is GatoProcessor


# --- acting helpers -------------------------------------------------------------------------------------------------


def test_tokenize_observation_matches_the_episode_step_observation(processor):
    episode = grid_episode(steps=2)
    step = {name: values[1] for name, values in episode["observations"].items()}
    observation = processor.tokenize_observation(step, GRID_SPEC)
    second_step = processor.tokenize_episode(episode, GRID_SPEC)[0]
    length = len(observation["input_ids"])
    start = len(second_step["input_ids"]) // 2
    assert observation["input_ids"][-1] == SEP and observation["loss_mask"].sum() == 0
    assert np.array_equal(observation["input_ids"], second_step["input_ids"][start : start + length])
    assert np.array_equal(observation["local_positions"], second_step["local_positions"][start : start + length])
    assert np.array_equal(observation["patch_pixels"], second_step["patch_pixels"][16:])


def test_action_token_ranges(tokenizer):
    paper = GatoProcessor(tokenizer, GatoImageProcessor())
    shifted = GatoProcessor(tokenizer, GatoImageProcessor(), discrete_layout="shifted")
    assert paper.action_token_ranges(GRID_SPEC).tolist() == [[0, 7]]
    offset = tl.discrete_offset("shifted")
    assert shifted.action_token_ranges(GRID_SPEC).tolist() == [[offset, offset + 7]]
    continuous = [[tl.CONTINUOUS_OFFSET, tl.CONTINUOUS_OFFSET + tl.CONTINUOUS_BINS]] * 4
    assert paper.action_token_ranges(ARM_SPEC).tolist() == continuous


def test_continuous_actions_round_trip_within_half_a_bin_and_clip_to_bounds(processor):
    actions = np.random.default_rng(0).uniform(-0.5, 1.0, (50, 4))
    ids = processor.tokenize_action(actions, ARM_SPEC)
    assert ids.shape == (50, 4)
    decoded = processor.decode_action(ids, ARM_SPEC)
    assert np.abs(decoded - actions).max() <= 1.0 / tl.CONTINUOUS_BINS + 1e-9
    lowest = processor.decode_action(torch.full((4,), tl.CONTINUOUS_OFFSET), ARM_SPEC)
    assert lowest.tolist() == [-0.5] * 4  # the bin centre −1 + 1/1024 is clipped to the spec's low


def test_mu_law_and_discrete_actions_round_trip(processor):
    mu_spec = TaskSpec("torque", (), ActionSpec("continuous", 2, mu_law=True, low=-50.0, high=50.0))
    actions = np.array([[20.0, -3.0]])
    decoded = processor.decode_action(processor.tokenize_action(actions, mu_spec), mu_spec)
    assert np.allclose(decoded, actions, rtol=0.05)
    discrete = np.array([[6], [0], [3]])
    assert np.array_equal(processor.decode_action(processor.tokenize_action(discrete, GRID_SPEC), GRID_SPEC), discrete)


def test_episode_tokenization_speed(processor):
    """A 500-step, 39-dim continuous episode (H1's benchmark shape) in well under a millisecond per step."""
    episode = arm_episode()
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        sequences = processor.tokenize_episode(episode, ARM_SPEC)
        best = min(best, time.perf_counter() - start)
    tokens = sum(len(s["input_ids"]) for s in sequences)
    assert tokens == 500 * (39 + 1 + 4)
    assert tokens / best > 250_000  # the goal is ≥ 1M tokens/s; this guard leaves room for a busy machine


def test_from_defaults_is_the_shipped_tokenizer_and_default_image_processor(tokenizer):
    from gato.processing import GatoImageProcessor, GatoProcessor

    processor = GatoProcessor.from_defaults(discrete_layout="shifted", max_length=77)
    assert (processor.discrete_layout, processor.max_length) == ("shifted", 77)
    assert isinstance(processor.image_processor, GatoImageProcessor)
    assert processor.tokenizer("go to the red ball")["input_ids"] == tokenizer("go to the red ball")["input_ids"]
