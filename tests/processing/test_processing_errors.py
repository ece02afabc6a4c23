"""Bad input to GatoProcessor → ValueError naming the field (one test per case)."""

import re

import numpy as np
import pytest
from gato.processing.image_processing_gato import GatoImageProcessor
from gato.processing.processing_gato import GatoProcessor
from gato.processing.tokenization_gato import load_default_tokenizer
from gato.suite import token_layout as tl
from gato.suite.task_spec import ActionSpec, ObservationField, TaskSpec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

SPEC = TaskSpec(
    "demo",
    (
        ObservationField("mission", "text"),
        ObservationField("frame", "image", (32, 32, 3)),
        ObservationField("buttons", "discrete", (2,), num_values=5),
        ObservationField("state", "continuous", (3,)),
    ),
    ActionSpec("continuous", 2),
)


@pytest.fixture(scope="module")
def processor():
    return GatoProcessor(load_default_tokenizer(), GatoImageProcessor(), max_length=64)


def episode(steps=2, task="demo"):
    rng = np.random.default_rng(0)
    return {
        "task": task,
        "observations": {
            "mission": ["open the door"] * steps,
            "frame": rng.integers(0, 256, (steps, 32, 32, 3), dtype=np.uint8),
            "buttons": rng.integers(0, 5, (steps, 2)),
            "state": rng.normal(size=(steps, 3)),
        },
        "actions": rng.uniform(-1, 1, (steps, 2)),
    }


def raises(message):
    return pytest.raises(ValueError, match=re.escape(message))


def test_nan_in_a_continuous_observation(processor):
    bad = episode()
    bad["observations"]["state"][1, 2] = np.nan
    with raises("observations['state']: expected finite values"):
        processor.tokenize_episode(bad, SPEC)


def test_inf_in_actions(processor):
    bad = episode()
    bad["actions"][0, 0] = np.inf
    with raises("actions: expected finite values"):
        processor.tokenize_episode(bad, SPEC)


def test_nan_in_a_float_image(processor):
    bad = episode()
    frames = bad["observations"]["frame"].astype(np.float32) / 255
    frames[0, 0, 0, 0] = np.nan
    bad["observations"]["frame"] = frames
    with raises("observations['frame']: expected finite pixel values"):
        processor.tokenize_episode(bad, SPEC)


def test_wrong_shape_of_a_continuous_field(processor):
    bad = episode()
    bad["observations"]["state"] = np.zeros((2, 4))
    with raises("observations['state']: expected shape (T, *(3,))"):
        processor.tokenize_episode(bad, SPEC)


def test_wrong_rank_of_an_image_field(processor):
    bad = episode()
    bad["observations"]["frame"] = np.zeros((2, 32, 32, 3, 1), dtype=np.uint8)
    with raises("observations['frame']: expected images (T, H, W, 3) or (T, H, W)"):
        processor.tokenize_episode(bad, SPEC)


def test_wrong_action_shape(processor):
    bad = episode()
    bad["actions"] = np.zeros((2, 3))
    with raises("actions: expected shape (T, 2)"):
        processor.tokenize_episode(bad, SPEC)


def test_mismatched_step_counts_between_fields_and_actions(processor):
    bad = episode()
    bad["actions"] = bad["actions"][:1]
    with raises("time steps: every field and the actions need the same number of steps T"):
        processor.tokenize_episode(bad, SPEC)


def test_image_size_that_cannot_be_patched(processor):
    no_resize = GatoProcessor(processor.tokenizer, GatoImageProcessor(do_resize=False), max_length=64)
    spec = TaskSpec("pixels", (ObservationField("frame", "image"),), ActionSpec("discrete", 1, num_values=2))
    bad = {
        "task": "pixels",
        "observations": {"frame": np.zeros((1, 20, 20, 3), dtype=np.uint8)},
        "actions": np.array([0]),
    }
    with raises("observations['frame']: with do_resize=False, height and width must be multiples of patch_size=16"):
        no_resize.tokenize_episode(bad, spec)


def test_unknown_observation_kind(processor):
    spec = SPEC.to_dict()
    spec["observations"][0]["kind"] = "audio"
    with raises("observation field 'mission': kind must be one of"):
        processor.tokenize_episode(episode(), spec)


def test_missing_observation_field(processor):
    bad = episode()
    del bad["observations"]["buttons"]
    with raises("observations['buttons']: missing"):
        processor.tokenize_episode(bad, SPEC)


def test_missing_actions(processor):
    bad = episode()
    del bad["actions"]
    with raises("actions: missing"):
        processor.tokenize_episode(bad, SPEC)


def test_empty_episode(processor):
    with raises("observations: the episode is empty (T = 0)"):
        processor.tokenize_episode(episode(steps=0), SPEC)


def test_time_step_that_cannot_fit_max_length(processor):
    tight = GatoProcessor(processor.tokenizer, GatoImageProcessor(), max_length=20)  # 16 patches + 2 + 3 + 1 + 2 > 20
    with raises("max_length=20: time step 0 has"):
        tight.tokenize_episode(episode(), SPEC)


def test_time_step_plus_prompt_that_cannot_fit_max_length(processor):
    tight = GatoProcessor(processor.tokenizer, GatoImageProcessor(), max_length=45)  # a step is ≥ 25 tokens
    prompt = tight.make_prompt(episode(steps=3), SPEC, num_tokens=40)  # one whole step
    tight.tokenize_episode(episode(), SPEC)  # fits without the prompt
    with raises("max_length=45 (minus a"):
        tight.tokenize_episode(episode(), SPEC, prompt=prompt)


def test_discrete_observation_out_of_range(processor):
    bad = episode()
    bad["observations"]["buttons"][0, 1] = 5
    with raises("observations['buttons']: expected integers in [0, 5)"):
        processor.tokenize_episode(bad, SPEC)


def test_discrete_action_out_of_range(processor):
    spec = TaskSpec("pick", (ObservationField("x", "continuous"),), ActionSpec("discrete", 1, num_values=3))
    bad = {"task": "pick", "observations": {"x": np.zeros(2)}, "actions": np.array([[1], [3]])}
    with raises("actions: expected integers in [0, 3)"):
        processor.tokenize_episode(bad, spec)


def test_prompt_from_another_task(processor):
    with raises("prompt: a prompt must be a demonstration of the same task 'demo'"):
        processor.tokenize_episode(episode(), SPEC, prompt=episode(task="other"))


def test_make_prompt_from_another_task(processor):
    with raises("prompt: a prompt must come from an episode of the same task 'demo'"):
        processor.make_prompt(episode(task="other"), SPEC, num_tokens=40)


def test_episode_of_another_task_than_the_spec(processor):
    with raises("task: the episode is of task 'other' but the spec is for task 'demo'"):
        processor.tokenize_episode(episode(task="other"), SPEC)


def test_text_field_that_is_not_strings(processor):
    bad = episode()
    bad["observations"]["mission"] = [1, 2]
    with raises("observations['mission']: expected a sequence of T strings"):
        processor.tokenize_episode(bad, SPEC)


def test_decode_action_of_the_wrong_size(processor):
    with raises("token_ids: expected shape (..., 2)"):
        processor.decode_action(np.array([tl.CONTINUOUS_OFFSET]), SPEC)


def test_decode_action_of_ids_outside_the_action_range(processor):
    with raises("action token ids: expected ids in [32000, 33024)"):
        processor.decode_action(np.array([5, tl.CONTINUOUS_OFFSET]), SPEC)


def test_collate_of_nothing(processor):
    with raises("sequences: expected at least one sequence"):
        processor.collate([])


def test_collate_longer_than_max_length(processor):
    processor_long = GatoProcessor(processor.tokenizer, GatoImageProcessor(), max_length=200)
    sequence = processor_long.tokenize_text("a long sentence " * 30)
    with raises("max_length: a sequence has"):
        processor.collate([sequence], padding="max_length")


def test_unknown_padding(processor):
    with raises("padding: expected True, False or one of ('longest', 'max_length', 'do_not_pad'), got 'left'"):
        processor.collate([processor.tokenize_text("hi")], padding="left")


def test_unknown_discrete_layout(processor):
    with raises("discrete_layout must be one of"):
        GatoProcessor(processor.tokenizer, GatoImageProcessor(), discrete_layout="interleaved")


# --- fuzzing: a damaged episode is tokenized or refused with a ValueError naming the field ---------------------------

FIELD_VALUES = st.one_of(
    st.none(),
    st.integers(-5, 5),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=4),
    st.lists(st.integers(-2, 6), max_size=4),
    st.builds(
        lambda shape, fill: np.full(shape, fill),
        st.lists(st.integers(0, 3), max_size=4).map(tuple),
        st.sampled_from([0, 1, -1, 7, 2.5, np.nan, np.inf, 300]),
    ),
)
KNOWN_FIELDS = ("mission", "frame", "buttons", "state")


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_fuzzed_damaged_episodes_are_tokenized_or_refused_naming_the_field(processor, data):
    bad = episode()
    for name in data.draw(
        st.lists(st.sampled_from([*KNOWN_FIELDS, "actions", "task"]), unique=True, min_size=1, max_size=2)
    ):
        value = data.draw(FIELD_VALUES, label=name)
        if name == "actions" or name == "task":
            bad[name] = value
        else:
            bad["observations"][name] = value
    try:
        sequences = processor.tokenize_episode(bad, SPEC)
    except ValueError as error:
        message = str(error)
        named = [f"observations[{name!r}]" for name in KNOWN_FIELDS] + [
            "actions",
            "task",
            "time steps",
            "observations",
        ]
        assert any(message.startswith(prefix) for prefix in named), message
        return
    assert sequences and all(len(sequence["input_ids"]) <= processor.max_length for sequence in sequences)
