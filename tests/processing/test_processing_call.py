"""GatoProcessor.__call__ as transformers users call it: prompts for generate (text, an image alone, a chat), training
batches on request, transformers' keyword conventions, and bad arguments refused (hypothesis-fuzzed)."""

import inspect

import numpy as np
import pytest
import torch
from gato.modeling_gato import GatoConfig, GatoForCausalLM
from gato.processing.image_processing_gato import GatoImageProcessor
from gato.processing.processing_gato import DEFAULT_CHAT_TEMPLATE, GatoProcessor
from gato.processing.tokenization_gato import load_default_tokenizer
from gato.suite import token_layout as tl
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from transformers.feature_extraction_utils import BatchFeature

FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.fixture(scope="module")
def processor():
    return GatoProcessor(load_default_tokenizer(), GatoImageProcessor(size={"height": 32, "width": 32}), max_length=64)


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return GatoForCausalLM(GatoConfig.from_preset("gato-tiny", max_position_embeddings=64)).eval()


def black_image():
    return np.zeros((32, 32, 3), dtype=np.uint8)


def greedy(model, inputs, new=3):
    return model.generate(**inputs, max_new_tokens=new, do_sample=False, eos_token_id=tl.EOS_TOKEN_ID, pad_token_id=0)


# --- prompts ------------------------------------------------------------------------------------------------------


def test_text_is_a_prompt_that_generate_continues(processor, model):
    inputs = processor(text="go to the red ball", return_tensors="pt")
    assert set(inputs) == {"input_ids", "attention_mask", "local_positions"}  # no training-only tensor
    ids = inputs["input_ids"][0]
    assert ids[0] == tl.BOS_TOKEN_ID and ids[-1] != tl.EOS_TOKEN_ID  # the model is to continue it
    assert ids[1:].tolist() == processor.tokenizer("go to the red ball", add_special_tokens=False)["input_ids"]
    out = greedy(model, inputs)
    assert out.shape[1] > ids.shape[0] and torch.equal(out[0, : len(ids)], ids)


def test_an_image_alone_is_the_caption_prompt(processor, model):
    inputs = processor(images=black_image(), return_tensors="pt")
    caption = processor.tokenize_caption(black_image(), "ignored")
    prompt_length = int(caption["patch_mask"].sum()) + 1  # the patches and bos
    assert inputs["input_ids"][0].tolist() == caption["input_ids"][:prompt_length].tolist()
    assert inputs["patch_mask"][0].sum() == 4 and "labels" not in inputs and "loss_mask" not in inputs
    np.testing.assert_array_equal(inputs["patch_pixels"][0].numpy(), caption["patch_pixels"])
    assert greedy(model, inputs).shape[1] > prompt_length


def test_image_with_text_is_a_caption_prefix_to_continue(processor):
    inputs = processor(images=[black_image()], text=["a red"])  # Python lists by default
    pieces = processor.tokenizer("a red", add_special_tokens=False)["input_ids"]
    assert inputs["input_ids"][0][4:] == [tl.BOS_TOKEN_ID, *pieces]


def test_prompts_of_several_lengths_are_left_padded_for_generate(processor, model):
    inputs = processor(text=["go", "go to the red ball"], return_tensors="pt")
    assert inputs["attention_mask"][0, 0] == 0 and inputs["attention_mask"][0, -1] == 1  # padding on the left
    alone = greedy(model, processor(text="go", return_tensors="pt"))
    batched = greedy(model, inputs)
    length = inputs["input_ids"].shape[1]
    assert torch.equal(batched[0, length:], alone[0, alone.shape[1] - 3 :])  # padding changes nothing


def test_return_labels_gives_the_training_layout(processor):
    batch = processor(text=["a cat", "go left now"], return_labels=True, return_tensors="pt")
    expected = processor.collate([processor.tokenize_text("a cat"), processor.tokenize_text("go left now")])
    assert batch.keys() == expected.keys() and all(torch.equal(batch[k], expected[k]) for k in batch)
    assert batch["input_ids"][0, int(batch["attention_mask"][0].sum()) - 1] == tl.EOS_TOKEN_ID


def test_training_captions_need_their_text(processor):
    with pytest.raises(ValueError, match="text: training captions"):
        processor(images=black_image(), return_labels=True)


def test_chat_template_renders_turns_and_opens_the_assistant_turn(processor, model):
    chat = [
        {"role": "user", "content": "hello there"},
        {"role": "assistant", "content": [{"type": "text", "text": "hi"}]},
        {"role": "user", "content": "go to the red ball"},
    ]
    text = processor.apply_chat_template(chat, add_generation_prompt=True)
    assert text == "User: hello there\nAssistant: hi\nUser: go to the red ball\nAssistant:"
    inputs = processor.apply_chat_template(
        chat, add_generation_prompt=True, tokenize=True, return_dict=True, return_tensors="pt"
    )
    assert torch.equal(inputs["input_ids"], processor(text=text, return_tensors="pt")["input_ids"])
    assert greedy(model, inputs).shape[1] > inputs["input_ids"].shape[1]


def test_chat_template_is_saved_and_loaded(processor, tmp_path):
    custom = GatoProcessor(
        processor.tokenizer, processor.image_processor, chat_template="{{ messages[0]['content'] }}"
    )
    custom.save_pretrained(tmp_path / "custom")
    processor.save_pretrained(tmp_path / "default")
    assert GatoProcessor.from_pretrained(tmp_path / "custom").chat_template == "{{ messages[0]['content'] }}"
    assert not (tmp_path / "default" / "chat_template.jinja").exists()  # the default is the class's
    assert GatoProcessor.from_pretrained(tmp_path / "default").chat_template == DEFAULT_CHAT_TEMPLATE
    assert processor.chat_template == DEFAULT_CHAT_TEMPLATE


# --- transformers' keyword conventions ----------------------------------------------------------------------------


def test_keywords_flat_or_grouped_give_the_same_batch(processor):
    texts = ["go", "go to the red ball"]
    flat = processor(text=texts, padding="max_length", max_length=12, return_tensors="np")
    grouped = processor(
        text=texts, text_kwargs={"padding": "max_length", "max_length": 12}, common_kwargs={"return_tensors": "np"}
    )
    assert flat["input_ids"].shape == (2, 12) and isinstance(flat["input_ids"], np.ndarray)
    assert all(np.array_equal(flat[k], grouped[k]) for k in flat)


def test_padding_true_and_false(processor):
    texts = ["go", "go to the red ball"]
    assert processor(text=texts, padding=True)["input_ids"] == processor(text=texts, padding="longest")["input_ids"]
    with pytest.raises(ValueError, match=r"padding: the sequences have different lengths \[2, 6\]"):
        processor(text=texts, padding=False)
    same = processor(text=["go", "cat"], padding=False, return_tensors="pt")  # one length each: nothing to pad
    assert same["input_ids"].shape == (2, 2)


def test_return_tensors_defaults_to_python_lists_as_transformers_processors(processor):
    image = np.full((32, 32, 3), 200, dtype=np.uint8)
    tensors = processor(images=[image, [image, image]], text=["a", "the red"], return_tensors="pt")
    lists = processor(images=[image, [image, image]], text=["a", "the red"])
    sequences = [
        processor.tokenize_caption_prompt(image, "a"),
        processor.tokenize_caption_prompt([image, image], "the red"),
    ]
    collated = processor.collate(sequences, padding_side="left", return_tensors=None)  # and its training keys
    assert lists.keys() == tensors.keys() and set(tensors) < set(collated)
    for default in (lists, collated):
        for key, value in tensors.items():
            assert isinstance(default[key], list) and isinstance(default[key][0], list), key
            assert torch.equal(torch.tensor(default[key], dtype=value.dtype), value), key
    as_numpy = processor(text="go", return_tensors="np")
    assert isinstance(as_numpy["input_ids"], np.ndarray)
    assert as_numpy["input_ids"].tolist() == processor(text="go")["input_ids"]
    assert isinstance(processor.collate(sequences)["input_ids"], torch.Tensor)  # the collator's default: torch


def test_call_signature_lists_only_the_inputs_gato_takes(processor):
    """transformers' processor tests pick the modalities to pass from ``__call__``'s signature."""
    parameters = set(inspect.signature(processor.__call__).parameters)
    assert {"text", "images", "episodes", "specs"} <= parameters and not {"videos", "audio"} & parameters
    with pytest.raises(ValueError, match="audio: Gato takes text, images and episodes"):
        processor(text="go", audio=[np.zeros(16)])


def test_model_input_names_are_the_keys_of_a_prompt_with_images(processor):
    prompt = processor(text=["a", "a red"], images=[black_image(), [black_image(), black_image()]])
    assert set(prompt) == set(processor.model_input_names)
    assert not {"labels", "loss_mask"} & set(processor.model_input_names)  # targets, not inputs


def test_the_tokenizers_init_settings_are_the_calls_defaults(processor):
    from gato.processing.tokenization_gato import DEFAULT_TOKENIZER_DIR
    from transformers import PreTrainedTokenizerFast

    tokenizer = PreTrainedTokenizerFast.from_pretrained(
        DEFAULT_TOKENIZER_DIR, local_files_only=True, padding="max_length", max_length=20
    )
    padded = GatoProcessor(tokenizer, processor.image_processor, max_length=64)
    assert [len(ids) for ids in padded(text=["go", "go to the red ball"])["input_ids"]] == [20, 20]
    assert len(padded(text="go", padding="longest")["input_ids"][0]) == 2  # a call's keyword wins
    assert padded(text="go", padding="longest")["input_ids"] == processor(text="go")["input_ids"]


def test_an_empty_image_list_makes_a_text_only_sample(processor):
    image = np.full((32, 32, 3), 90, dtype=np.uint8)
    batch = processor(text=["lower newer", "a red"], images=[[], [image]], return_tensors="pt")
    alone = processor(text=["lower newer", "a red"][:1], return_tensors="pt")
    width = batch["input_ids"].shape[1]
    assert torch.equal(batch["input_ids"][0, width - alone["input_ids"].shape[1] :], alone["input_ids"][0])
    assert batch["patch_mask"][0].sum() == 0 and batch["patch_mask"][1].sum() == 4
    training = processor(text=["lower newer", "a red"], images=[[], [image]], return_labels=True)
    assert training["input_ids"][0][: training["attention_mask"][0].count(1)] == [
        int(i) for i in processor.tokenize_text("lower newer")["input_ids"]
    ]


def test_padding_side_and_return_labels_override_the_defaults(processor):
    right = processor(text=["go", "go to the red ball"], padding_side="right")
    assert right["attention_mask"][0] == [1, 1, 0, 0, 0, 0]
    with pytest.raises(ValueError, match="padding_side: expected one of"):
        processor(text="go", padding_side="middle")


def test_a_keyword_passed_twice_is_refused(processor):
    with pytest.raises(ValueError, match="padding was passed two times"):
        processor(text="go", padding=True, text_kwargs={"padding": "longest"})


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"truncation": True}, "text_kwargs: ['truncation'] not supported"),
        ({"temperature": 0.5}, "unexpected arguments ['temperature']"),
        ({"videos": [black_image()]}, "videos: Gato takes text, images and episodes"),
    ],
)
def test_keywords_that_would_be_ignored_are_refused(processor, kwargs, message):
    with pytest.raises(ValueError) as error:
        processor(text="go", **kwargs)
    assert message in str(error.value)


def test_image_keywords_reach_the_image_processor(processor):
    inputs = processor(
        images=np.zeros((64, 64, 3), dtype=np.uint8),
        images_kwargs={"size": {"height": 16, "width": 16}},
        return_tensors="pt",
    )
    assert inputs["patch_mask"].sum() == 1  # one 16x16 patch instead of the processor's 2x2


# --- fuzzing: bad arguments are ValueErrors naming what was wrong ---------------------------------------------------

ODD_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 3),
    st.floats(allow_nan=True),
    st.text(max_size=8),
    st.lists(st.integers(0, 3), max_size=3),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)
IMAGES = st.one_of(
    st.builds(
        lambda h, w, c: np.zeros((h, w, c), dtype=np.uint8),
        st.integers(0, 40),
        st.integers(0, 40),
        st.sampled_from([1, 2, 3, 4]),
    ),
    st.builds(lambda n: np.full((8, 8), n, dtype=np.float64), st.floats(allow_nan=True, allow_infinity=True)),
    ODD_VALUES,
)


@FUZZ
@given(
    text=st.one_of(st.text(max_size=20), st.lists(st.text(max_size=5), max_size=3), ODD_VALUES),
    images=st.one_of(st.none(), IMAGES, st.lists(IMAGES, max_size=2)),
    padding=st.one_of(st.just(True), ODD_VALUES),
    return_labels=st.one_of(st.none(), st.booleans()),
)
def test_fuzzed_calls_return_a_batch_or_a_value_error(processor, text, images, padding, return_labels):
    try:
        batch = processor(text=text, images=images, padding=padding, return_labels=return_labels, return_tensors="pt")
    except ValueError as error:
        assert str(error).split(":")[0] in {"text", "images", "image", "padding", "text, images, episodes"}, error
        return
    assert isinstance(batch, BatchFeature)
    batch_size, length = batch["input_ids"].shape
    assert batch["attention_mask"].shape == (batch_size, length) and int(batch["attention_mask"].sum()) >= batch_size
    assert ("labels" in batch) == bool(return_labels)
