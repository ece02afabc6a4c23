"""GatoForCausalLM.forward checks its inputs against each other: a clear ValueError naming the argument and both
shapes (or the bad values), never a silently padded, cut or misread input. Hypothesis fuzzes the shapes and ids."""

from __future__ import annotations

import re

import pytest
import torch
from gato.suite import token_layout as tl
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_modeling_gato import control_batch, tiny_model

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # see tests/conftest.py

MODEL = tiny_model()
PER_TOKEN = ("attention_mask", "local_positions", "patch_mask", "loss_mask", "labels")
FUZZ = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def one_row() -> dict[str, torch.Tensor]:
    return {key: value[:1] for key, value in control_batch().items()}  # (1, 14) tokens, 4 patches


def refused(batch: dict, *names: str) -> str:
    with pytest.raises(ValueError) as error:
        MODEL(**batch)
    message = str(error.value)
    for name in names:
        assert name in message, message
    return message


@pytest.mark.parametrize("width", [13, 15])
def test_a_short_or_long_attention_mask_is_refused_naming_both_shapes(width):
    batch = one_row()
    batch["attention_mask"] = torch.ones(1, width, dtype=torch.long)
    refused(batch, "attention_mask", "(1, 14)", f"(1, {width})")


def test_an_attention_mask_of_another_batch_size_is_refused():
    batch = one_row()
    batch["attention_mask"] = torch.ones(2, 14, dtype=torch.long)  # today: one row silently dropped
    refused(batch, "attention_mask", "(1, 14)", "(2, 14)")


def test_attention_mask_with_a_cache_covers_the_cached_tokens_too():
    ids = torch.randint(4, 1000, (1, 5))
    cache = MODEL(input_ids=ids).cache
    step = torch.tensor([[7]])
    good = MODEL(input_ids=step, attention_mask=torch.ones(1, 6, dtype=torch.long), cache=cache).logits
    assert good.shape == (1, 1, MODEL.config.vocab_size)
    cache = MODEL(input_ids=ids).cache
    with pytest.raises(ValueError, match=re.escape("attention_mask: expected shape (batch, 5 cached + seq)")):
        MODEL(input_ids=step, attention_mask=torch.ones(1, 1, dtype=torch.long), cache=cache)


@pytest.mark.parametrize("name", ["local_positions", "patch_mask", "loss_mask", "labels"])
@pytest.mark.parametrize("cut", ["column", "row"])
def test_a_per_token_input_of_another_shape_is_refused(name, cut):
    batch = control_batch()  # (2, 14)
    batch[name] = batch[name][:, :-1] if cut == "column" else batch[name][:1]
    expected = "(2, 13)" if cut == "column" else "(1, 14)"
    refused(batch, f"{name}: expected shape", "(2, 14)", expected)


@pytest.mark.parametrize("bad_id", [-1, MODEL.config.vocab_size, 10**9])
def test_ids_outside_the_vocabulary_are_refused(bad_id):
    ids = torch.randint(4, 1000, (2, 6))
    ids[1, 3] = bad_id
    message = refused({"input_ids": ids}, "input_ids", f"[0, {MODEL.config.vocab_size})", str(bad_id))
    assert "1 of 12 positions" in message


def test_labels_outside_the_vocabulary_are_refused_but_ignore_index_is_fine():
    batch = control_batch()
    batch["labels"][0, 0] = tl.IGNORE_INDEX
    assert torch.isfinite(MODEL(**batch).loss)
    batch["labels"][0, 5] = MODEL.config.vocab_size + 3
    refused(batch, "labels", str(MODEL.config.vocab_size + 3))


def test_unknown_local_positions_are_refused():
    batch = control_batch()
    batch["local_positions"][0, 2] = -7
    refused(batch, "local_positions", "-7")


@pytest.mark.parametrize(
    ("name", "shape", "expected"),
    [
        ("patch_pixels", (2, 4, 1, 16, 16), "(2, 4, 3, 16, 16)"),  # greyscale patches for an RGB model
        ("patch_pixels", (2, 4, 3, 8, 8), "(2, 4, 3, 16, 16)"),
        ("patch_pixels", (1, 4, 3, 16, 16), "(2, 4, 3, 16, 16)"),  # another batch size than input_ids
        ("patch_rows", (2, 3, 2), "(2, 4, 2)"),
        ("patch_cols", (2, 4, 1), "(2, 4, 2)"),
        ("patch_valid", (2, 5), "(2, 4)"),
    ],
)
def test_patch_inputs_of_another_shape_are_refused(name, shape, expected):
    batch = control_batch()
    batch[name] = torch.zeros(shape, dtype=batch[name].dtype)
    refused(batch, f"{name}: expected shape", expected, str(shape))


def test_position_ids_of_another_length_are_refused():
    ids = torch.randint(4, 1000, (2, 6))
    refused({"input_ids": ids, "position_ids": torch.arange(5)[None]}, "position_ids", "(1, 5)")


def test_valid_inputs_still_give_the_same_logits_with_the_checks():
    """The checks change nothing for valid inputs: the loss path and the logits path agree as before."""
    batch = control_batch()
    logits = MODEL(**{k: v for k, v in batch.items() if k not in ("labels", "loss_mask")}).logits
    targets = batch["loss_mask"][:, 1:].bool()
    torch.testing.assert_close(MODEL(**batch).logits, logits[:, :-1][targets], rtol=1e-5, atol=1e-5)


# --- fuzzing --------------------------------------------------------------------------------------------------


@FUZZ
@given(data=st.data())
def test_fuzzed_per_token_shapes_are_accepted_exactly_when_they_match(data):
    batch = one_row()
    changed = {}
    for name in data.draw(st.lists(st.sampled_from(PER_TOKEN), unique=True, max_size=3), label="names"):
        rows = data.draw(st.integers(1, 2), label=f"{name} rows")
        columns = data.draw(st.integers(12, 16), label=f"{name} columns")
        if (rows, columns) == (1, 14):
            continue  # the right shape: keep the tensor itself (a refilled patch_mask would count other patches)
        changed[name] = (rows, columns)
        fill = batch[name].flatten()[0]
        batch[name] = torch.full((rows, columns), int(fill), dtype=batch[name].dtype)
    if not changed:
        assert MODEL(**batch).loss is not None
        return
    with pytest.raises(ValueError) as error:
        MODEL(**batch)
    named = [name for name in changed if str(error.value).startswith(f"{name}:")]
    assert len(named) == 1 and str(changed[named[0]]) in str(error.value), (changed, str(error.value))


@FUZZ
@given(
    ids=st.lists(st.integers(-(2**40), 2**40) | st.integers(-3, MODEL.config.vocab_size + 3), min_size=1, max_size=12)
)
def test_fuzzed_ids_are_refused_exactly_when_outside_the_vocabulary(ids):
    input_ids = torch.tensor([ids])
    outside = [i for i in ids if not 0 <= i < MODEL.config.vocab_size]
    if not outside:
        assert MODEL(input_ids=input_ids).logits.shape == (1, len(ids), MODEL.config.vocab_size)
        return
    with pytest.raises(ValueError, match=r"^input_ids: values must be \[0, ") as error:
        MODEL(input_ids=input_ids)
    assert f"at {len(outside)} of {len(ids)} positions" in str(error.value)
