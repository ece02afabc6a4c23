"""The episode layout (GATO_SPEC.md §1, §3, §4): exact token order, separator, local positions, loss masks,
chunking on time-step boundaries, prompts from the same task.

Text goes through a stand-in encoder (one id per character) so that these tests pin the layout, not
SentencePiece; images go through the real GatoImageProcessor at a 16×32 size (2 patches, no resize).
"""

import numpy as np
import pytest
from gato.processing.episode_layout import (
    SEQUENCE_KEYS,
    chunk_boundaries,
    concatenate_sequences,
    layout_episode,
    make_prompt,
    ordered_fields,
)
from gato.processing.image_processing_gato import GatoImageProcessor
from gato.processing.tokenize_values import tokenize_continuous
from gato.suite import token_layout as tl
from gato.suite.task_spec import ActionSpec, ObservationField, TaskSpec
from hypothesis import given, settings
from hypothesis import strategies as st

settings.register_profile("gato_episodes", max_examples=60, deadline=None, derandomize=True)

P = tl.PATCH_PLACEHOLDER_ID
SEP = tl.SEPARATOR_TOKEN_ID
NONE = tl.LOCAL_POSITION_NONE
ACT = tl.LOCAL_POSITION_ACTION

IMAGE_PROCESSOR = GatoImageProcessor(size={"height": 16, "width": 32})


def encode_text(texts):
    return [[ord(ch) for ch in text] for text in texts]


def encode_images(images, field):
    features = IMAGE_PROCESSOR(images, return_tensors="np")
    return features["patch_pixels"], features["patch_rows"], features["patch_cols"]


# Fields listed out of layout order on purpose: the layout must put text, image, discrete, continuous.
MIXED_SPEC = TaskSpec(
    name="mixed",
    observations=(
        ObservationField("speed", "continuous", (), mu_law=False),
        ObservationField("buttons", "discrete", (2,), num_values=5),
        ObservationField("frame", "image", (16, 32, 3)),
        ObservationField("mission", "text"),
    ),
    action=ActionSpec("continuous", size=2),
)


def mixed_episode(steps=2, missions=("ab", "c")):
    rng = np.random.default_rng(0)
    return {
        "task": "mixed",
        "observations": {
            "speed": np.array([0.5, -0.5, 0.25][:steps]),
            "buttons": np.array([[1, 2], [3, 4], [0, 0]][:steps]),
            "frame": rng.integers(0, 256, (steps, 16, 32, 3), dtype=np.uint8),
            "mission": list(missions[:steps]),
        },
        "actions": np.array([[0.0, 0.5], [-1.0, 1.0], [0.1, 0.2]][:steps]),
    }


def layout(episode, spec=MIXED_SPEC, **kwargs):
    return layout_episode(episode, spec, encode_text=encode_text, encode_images=encode_images, **kwargs)


def continuous_ids(values, mu_law=False):
    return list(tokenize_continuous(np.asarray(values, dtype=np.float64), mu_law=mu_law))


def test_fields_are_ordered_text_image_discrete_continuous():
    assert [f.name for f in ordered_fields(MIXED_SPEC)] == ["mission", "frame", "buttons", "speed"]


def test_mixed_episode_token_order_is_text_patches_values_separator_action():
    tokens = layout(mixed_episode())
    step0 = [97, 98, P, P, 1, 2, *continuous_ids([0.5]), SEP, *continuous_ids([0.0, 0.5])]
    step1 = [99, P, P, 3, 4, *continuous_ids([-0.5]), SEP, *continuous_ids([-1.0, 1.0])]
    assert tokens.input_ids.tolist() == step0 + step1
    assert tokens.step_starts.tolist() == [0, len(step0), len(step0) + len(step1)]


def test_mixed_episode_local_positions_count_the_observation_then_none_then_action():
    tokens = layout(mixed_episode())
    step0 = [0, 1, 2, 3, 4, 5, 6, NONE, ACT, ACT]
    step1 = [0, 1, 2, 3, 4, 5, NONE, ACT, ACT]
    assert tokens.local_positions.tolist() == step0 + step1


def test_loss_mask_is_exactly_the_action_tokens():
    tokens = layout(mixed_episode())
    assert tokens.loss_mask.tolist() == [0] * 8 + [1, 1] + [0] * 7 + [1, 1]
    assert np.array_equal(tokens.loss_mask.astype(bool), tokens.local_positions == ACT)


def test_observation_text_loss_switch_adds_the_text_tokens():
    tokens = layout(mixed_episode(), observation_text_loss=True)
    assert tokens.loss_mask.tolist() == [1, 1] + [0] * 6 + [1, 1] + [1] + [0] * 6 + [1, 1]


def test_patch_mask_marks_the_patch_positions_and_patches_follow_in_order():
    episode = mixed_episode()
    tokens = layout(episode)
    assert np.flatnonzero(tokens.patch_mask).tolist() == [2, 3, 11, 12]
    expected = IMAGE_PROCESSOR(episode["observations"]["frame"], return_tensors="np")["patch_pixels"].reshape(
        -1, 3, 16, 16
    )
    assert np.array_equal(tokens.patch_pixels, expected)
    assert tokens.patch_rows.tolist() == [[0, 128]] * 4
    assert tokens.patch_cols.tolist() == [[0, 64], [64, 128]] * 2
    assert tokens.patch_starts.tolist() == [0, 2, 4]


def test_discrete_actions_and_shifted_layout():
    spec = TaskSpec(
        "grid", (ObservationField("pos", "discrete", (2,), num_values=10),), ActionSpec("discrete", 1, num_values=3)
    )
    episode = {"task": "grid", "observations": {"pos": np.array([[1, 9], [0, 2]])}, "actions": np.array([2, 0])}
    shift = tl.discrete_offset("shifted")
    assert layout(episode, spec).input_ids.tolist() == [1, 9, SEP, 2, 0, 2, SEP, 0]
    assert layout(episode, spec, discrete_layout="shifted").input_ids.tolist() == [
        shift + 1,
        shift + 9,
        SEP,
        shift + 2,
        shift,
        shift + 2,
        SEP,
        shift,
    ]


def test_continuous_fields_follow_their_mu_law_switch():
    spec = TaskSpec(
        "arm",
        (
            ObservationField("raw", "continuous", (), mu_law=True),
            ObservationField("unit", "continuous", (), mu_law=False),
        ),
        ActionSpec("continuous", 1, mu_law=True),
    )
    episode = {
        "task": "arm",
        "observations": {"raw": np.array([50.0]), "unit": np.array([0.5])},
        "actions": np.array([[3.0]]),
    }
    ids = layout(episode, spec).input_ids.tolist()
    assert ids == [
        *continuous_ids([50.0], mu_law=True),
        *continuous_ids([0.5]),
        SEP,
        *continuous_ids([3.0], mu_law=True),
    ]


def test_local_positions_clamp_to_the_last_learned_index():
    size = tl.MAX_LOCAL_POSITIONS + 10
    spec = TaskSpec("wide", (ObservationField("x", "continuous", (size,)),), ActionSpec("continuous", 1))
    episode = {"task": "wide", "observations": {"x": np.zeros((1, size))}, "actions": np.zeros((1, 1))}
    local = layout(episode, spec).local_positions
    assert local[: tl.MAX_LOCAL_POSITIONS].tolist() == list(range(tl.MAX_LOCAL_POSITIONS))
    assert (local[tl.MAX_LOCAL_POSITIONS : size] == tl.MAX_LOCAL_POSITIONS - 1).all()
    assert local[size:].tolist() == [NONE, ACT]


def test_observation_only_layout_ends_with_the_separator():
    episode = mixed_episode(steps=1)
    del episode["actions"]
    tokens = layout(episode, include_actions=False)
    assert tokens.input_ids[-1] == SEP
    assert tokens.local_positions[-1] == NONE
    assert tokens.loss_mask.sum() == 0


def test_greyscale_image_stack_is_a_batch_of_frames():
    spec = TaskSpec("grey", (ObservationField("frame", "image"),), ActionSpec("discrete", 1, num_values=2))
    frames = np.random.default_rng(1).integers(0, 256, (3, 16, 32), dtype=np.uint8)
    tokens = layout({"task": "grey", "observations": {"frame": frames}, "actions": np.array([0, 1, 0])}, spec)
    assert tokens.step_lengths.tolist() == [4, 4, 4]
    assert tokens.patch_pixels.shape == (6, 3, 16, 16)


# --- chunking ------------------------------------------------------------------------------------------------


def test_chunk_boundaries_are_greedy_and_cover_every_step():
    assert chunk_boundaries(np.array([3, 3, 3, 3, 3]), budget=7) == [(0, 2), (2, 4), (4, 5)]
    assert chunk_boundaries(np.array([7]), budget=7) == [(0, 1)]


@settings(settings.get_profile("gato_episodes"))
@given(
    mission_lengths=st.lists(st.integers(0, 12), min_size=1, max_size=25),
    budget=st.integers(1, 60),
)
def test_chunks_never_split_a_time_step(mission_lengths, budget):
    spec = TaskSpec(
        "talk",
        (ObservationField("mission", "text"), ObservationField("x", "continuous", (3,))),
        ActionSpec("discrete", 2, num_values=4),
    )
    steps = len(mission_lengths)
    episode = {
        "task": "talk",
        "observations": {"mission": ["m" * n for n in mission_lengths], "x": np.ones((steps, 3))},
        "actions": np.zeros((steps, 2), dtype=np.int64),
    }
    tokens = layout(episode, spec)
    lengths = tokens.step_lengths
    assert lengths.tolist() == [n + 3 + 1 + 2 for n in mission_lengths]
    if lengths.max() > budget:
        with pytest.raises(ValueError, match="cannot fit"):
            chunk_boundaries(lengths, budget)
        return
    bounds = chunk_boundaries(lengths, budget)
    chunks = [tokens.steps(start, end).to_dict() for start, end in bounds]
    assert bounds[0][0] == 0 and bounds[-1][1] == steps
    assert all(a[1] == b[0] for a, b in zip(bounds, bounds[1:]))
    for (start, end), chunk, following in zip(bounds, chunks, bounds[1:] + [None]):
        assert 0 < len(chunk["input_ids"]) <= budget
        assert chunk["local_positions"][-1] == ACT  # ends on an action: the step is whole
        assert chunk["local_positions"][0] == 0  # starts at an observation's first token
        if following is not None:  # greedy: the next step would not have fitted
            assert len(chunk["input_ids"]) + lengths[end] > budget
    joined = concatenate_sequences(chunks)
    for key in SEQUENCE_KEYS:
        assert np.array_equal(joined[key], tokens.to_dict()[key])


# --- prompts ----------------------------------------------------------------------------------------------------

COUNTER_SPEC = TaskSpec(
    "counter", (ObservationField("t", "discrete", (), num_values=100),), ActionSpec("discrete", 1, num_values=100)
)


def counter_episode(steps=20, task="counter"):
    return {"task": task, "observations": {"t": np.arange(steps)}, "actions": np.arange(steps)[:, None]}


def test_end_prompt_takes_the_last_steps():
    prompt = make_prompt(counter_episode(), COUNTER_SPEC, 4, mode="end")
    assert prompt["task"] == "counter"
    assert prompt["observations"]["t"].tolist() == [16, 17, 18, 19]
    assert prompt["actions"].tolist() == [[16], [17], [18], [19]]


def test_uniform_prompt_is_consecutive_steps_at_varied_starts():
    rng = np.random.default_rng(0)
    starts = set()
    for _ in range(40):
        steps = make_prompt(counter_episode(), COUNTER_SPEC, 5, mode="uniform", rng=rng)["observations"]["t"]
        assert steps.tolist() == list(range(steps[0], steps[0] + 5))
        starts.add(int(steps[0]))
    assert min(starts) >= 0 and max(starts) <= 15 and len(starts) > 5


def test_token_budget_prompt_takes_as_many_whole_steps_as_fit():
    lengths = np.full(20, 3)  # each counter step: value | action
    prompt = make_prompt(counter_episode(), COUNTER_SPEC, 10, mode="end", step_lengths=lengths)
    assert prompt["observations"]["t"].tolist() == [17, 18, 19]
    uniform = make_prompt(
        counter_episode(), COUNTER_SPEC, 10, mode="uniform", rng=np.random.default_rng(3), step_lengths=lengths
    )
    assert len(uniform["observations"]["t"]) == 3


def test_prompt_from_another_task_is_refused():
    with pytest.raises(ValueError, match="prompt: .*same task 'counter'.*'other'"):
        make_prompt(counter_episode(task="other"), COUNTER_SPEC, 4)
