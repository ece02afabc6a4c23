"""Property tests for gato.processing.tokenize_values (μ-law, continuous binning, discrete layouts)."""

import numpy as np
import pytest
import torch
from gato.processing.tokenize_values import (
    detokenize_continuous,
    detokenize_discrete,
    mu_law_decode,
    mu_law_encode,
    tokenize_continuous,
    tokenize_discrete,
)
from gato.suite import token_layout
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

FIRST_ID = token_layout.CONTINUOUS_OFFSET
LAST_ID = token_layout.CONTINUOUS_OFFSET + token_layout.CONTINUOUS_BINS - 1
HALF_BIN = 1.0 / token_layout.CONTINUOUS_BINS  # bins are 2/1024 wide on [-1, 1]
MU_LAW_RANGE = token_layout.MU_LAW_M  # |x| ≤ M is exactly what μ-law maps into [-1, 1]

# Per test, not a global profile: loading a profile here would change other files' hypothesis tests.
deterministic = settings(max_examples=150, deadline=None, derandomize=True)

shapes = hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=5)


def float_arrays(low: float, high: float, dtype=np.float64):
    return hnp.arrays(
        dtype, shapes, elements=st.floats(low, high, allow_nan=False, width=np.dtype(dtype).itemsize * 8)
    )


def companded(x: np.ndarray, mu_law: bool) -> np.ndarray:
    """The space the bins live in: μ-law encoded (or not), clipped to [-1, 1]."""
    return np.clip(mu_law_encode(x) if mu_law else x, -1.0, 1.0)


# --- continuous ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("mu_law", [True, False])
@deterministic
@given(data=st.data())
def test_continuous_round_trip_error_is_at_most_half_a_bin(mu_law, data):
    bound = 2 * MU_LAW_RANGE if mu_law else 2.0  # also values outside the range, which clip
    x = data.draw(float_arrays(-bound, bound))
    decoded = detokenize_continuous(tokenize_continuous(x, mu_law=mu_law), mu_law=mu_law)
    error = np.abs(companded(decoded, mu_law) - companded(x, mu_law))
    assert (error <= HALF_BIN + 1e-12).all(), float(error.max())


@pytest.mark.parametrize("mu_law", [True, False])
@deterministic
@given(x=float_arrays(-1e6, 1e6))
def test_continuous_tokens_are_monotone_in_the_value(mu_law, x):
    values = np.sort(x.ravel())
    tokens = tokenize_continuous(values, mu_law=mu_law)
    assert (np.diff(tokens) >= 0).all()


# |x|·μ overflows to inf above ~1.8e306; the token is still right (clipped), numpy just warns.
@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")
@pytest.mark.parametrize("mu_law", [True, False])
@deterministic
@given(x=hnp.arrays(np.float64, shapes, elements=st.floats(allow_nan=False, allow_infinity=False)))
def test_continuous_ids_stay_in_the_continuous_range(mu_law, x):
    tokens = tokenize_continuous(x, mu_law=mu_law)
    assert ((tokens >= FIRST_ID) & (tokens <= LAST_ID)).all()


@pytest.mark.parametrize(
    ("value", "mu_law", "expected"),
    [
        (0.0, False, FIRST_ID + token_layout.CONTINUOUS_BINS // 2),  # 32512
        (0.0, True, FIRST_ID + token_layout.CONTINUOUS_BINS // 2),
        (1.0, False, LAST_ID),
        (-1.0, False, FIRST_ID),
        (MU_LAW_RANGE, True, LAST_ID),
        (-MU_LAW_RANGE, True, FIRST_ID),
        (1e9, True, LAST_ID),  # clipped
        (-1e9, False, FIRST_ID),
    ],
)
def test_continuous_landmarks(value, mu_law, expected):
    assert int(tokenize_continuous(np.array([value]), mu_law=mu_law)[0]) == expected
    assert int(tokenize_continuous(torch.tensor([value]), mu_law=mu_law)[0]) == expected


def test_zero_is_32512():
    assert int(tokenize_continuous(np.zeros(1))[0]) == 32512


@pytest.mark.parametrize("mu_law", [True, False])
@deterministic
@given(x=float_arrays(-300.0, 300.0))
def test_continuous_keeps_array_type_and_shape(mu_law, x):
    # A 0-d array comes back as a numpy scalar (numpy's ufunc convention): still numpy, same shape.
    tokens = tokenize_continuous(x, mu_law=mu_law)
    assert isinstance(tokens, (np.ndarray, np.generic)) and tokens.shape == x.shape and tokens.dtype == np.int64
    decoded = detokenize_continuous(tokens, mu_law=mu_law)
    assert isinstance(decoded, (np.ndarray, np.generic)) and decoded.shape == x.shape

    tensor_tokens = tokenize_continuous(torch.from_numpy(x), mu_law=mu_law)
    assert isinstance(tensor_tokens, torch.Tensor) and tuple(tensor_tokens.shape) == x.shape
    assert tensor_tokens.dtype == torch.long
    tensor_decoded = detokenize_continuous(tensor_tokens, mu_law=mu_law)
    assert isinstance(tensor_decoded, torch.Tensor) and tuple(tensor_decoded.shape) == x.shape


@pytest.mark.parametrize("mu_law", [True, False])
@deterministic
@given(x=float_arrays(-300.0, 300.0))
def test_numpy_and_float64_torch_give_the_same_tokens(mu_law, x):
    np.testing.assert_array_equal(
        tokenize_continuous(torch.from_numpy(x), mu_law=mu_law).numpy(), tokenize_continuous(x, mu_law=mu_law)
    )


@pytest.mark.parametrize("mu_law", [True, False])
@deterministic
@given(x=float_arrays(-300.0, 300.0, dtype=np.float32))
def test_numpy_and_float32_torch_give_the_same_tokens(mu_law, x):
    np.testing.assert_array_equal(
        tokenize_continuous(torch.from_numpy(x), mu_law=mu_law).numpy(), tokenize_continuous(x, mu_law=mu_law)
    )


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_continuous_non_finite_raises_naming_the_field(bad):
    with pytest.raises(ValueError, match="proprio"):
        tokenize_continuous(np.array([0.0, bad]), field="proprio")
    with pytest.raises(ValueError, match="proprio"):
        tokenize_continuous(torch.tensor([0.0, bad]), field="proprio")


@pytest.mark.parametrize("ids", [[FIRST_ID - 1], [LAST_ID + 1], [0]])
def test_detokenize_continuous_rejects_ids_outside_the_range(ids):
    with pytest.raises(ValueError, match="action ids"):
        detokenize_continuous(np.array(ids), field="action ids")


# --- μ-law --------------------------------------------------------------------------------------------


@deterministic
@given(x=float_arrays(-1e6, 1e6))
def test_mu_law_decode_inverts_encode(x):
    np.testing.assert_allclose(mu_law_decode(mu_law_encode(x)), x, rtol=1e-9, atol=1e-12)


@deterministic
@given(x=float_arrays(-1e3, 1e3, dtype=np.float32))
def test_mu_law_decode_inverts_encode_in_torch(x):
    tensor = torch.from_numpy(x)
    torch.testing.assert_close(mu_law_decode(mu_law_encode(tensor)), tensor, rtol=1e-4, atol=1e-5)


@deterministic
@given(x=float_arrays(-MU_LAW_RANGE, MU_LAW_RANGE))
def test_mu_law_maps_its_range_into_unit_interval_and_keeps_sign(x):
    y = mu_law_encode(x)
    assert (np.abs(y) <= 1.0 + 1e-12).all()
    np.testing.assert_array_equal(np.sign(y), np.sign(x))


# --- discrete -----------------------------------------------------------------------------------------

layouts = pytest.mark.parametrize("layout", token_layout.DISCRETE_LAYOUTS)


@layouts
@deterministic
@given(data=st.data())
def test_discrete_round_trip_is_exact(layout, data):
    num_values = data.draw(st.integers(1, token_layout.DISCRETE_VALUES))
    x = data.draw(hnp.arrays(np.int64, shapes, elements=st.integers(0, num_values - 1)))
    ids = tokenize_discrete(x, layout=layout, num_values=num_values)
    offset = token_layout.discrete_offset(layout)
    assert isinstance(ids, (np.ndarray, np.generic)) and ids.shape == x.shape  # 0-d → numpy scalar
    assert ((ids >= offset) & (ids < offset + num_values)).all()
    np.testing.assert_array_equal(detokenize_discrete(ids, layout=layout, num_values=num_values), x)

    tensor_ids = tokenize_discrete(torch.from_numpy(x), layout=layout, num_values=num_values)
    assert isinstance(tensor_ids, torch.Tensor) and tensor_ids.dtype == torch.long
    np.testing.assert_array_equal(tensor_ids.numpy(), ids)
    back = detokenize_discrete(tensor_ids, layout=layout, num_values=num_values)
    assert isinstance(back, torch.Tensor) and torch.equal(back, torch.from_numpy(x))


@layouts
def test_discrete_layout_offsets(layout):
    ids = tokenize_discrete(np.array([0, token_layout.DISCRETE_VALUES - 1]), layout=layout)
    if layout == "paper":  # shares ids with text, as in the paper
        assert ids.tolist() == [0, token_layout.DISCRETE_VALUES - 1]
    else:  # above the separator
        assert ids.tolist() == [token_layout.SEPARATOR_TOKEN_ID + 1, token_layout.SEPARATOR_TOKEN_ID + 1024]
        assert ids.max() < token_layout.vocab_size("shifted")


@layouts
@deterministic
@given(data=st.data())
def test_discrete_float_integers_are_accepted(layout, data):
    x = data.draw(hnp.arrays(np.int64, shapes, elements=st.integers(0, 17)))
    np.testing.assert_array_equal(
        tokenize_discrete(x.astype(np.float32), layout=layout), tokenize_discrete(x, layout=layout)
    )


@pytest.mark.parametrize(
    "values",
    [
        pytest.param(np.array([0, 18]), id="above num_values"),
        pytest.param(np.array([-1, 0]), id="negative"),
        pytest.param(np.array([0.0, np.nan]), id="NaN"),
        pytest.param(np.array([np.inf]), id="inf"),
        pytest.param(np.array([0.5, 1.0]), id="non-integer"),
        pytest.param(np.array(["a"]), id="strings"),
        pytest.param(torch.tensor([0, 18]), id="torch above num_values"),
        pytest.param(torch.tensor([0.0, float("nan")]), id="torch NaN"),
        pytest.param(torch.tensor([2.5]), id="torch non-integer"),
    ],
)
def test_bad_discrete_values_raise_naming_the_field(values):
    with pytest.raises(ValueError, match="buttons"):
        tokenize_discrete(values, num_values=18, field="buttons")


@layouts
@pytest.mark.parametrize("which", ["below", "above"])
def test_detokenize_discrete_rejects_ids_outside_the_layout(layout, which):
    offset = token_layout.discrete_offset(layout)
    ids = np.array([offset - 1 if which == "below" else offset + 18])
    with pytest.raises(ValueError, match="action ids"):
        detokenize_discrete(ids, layout=layout, num_values=18, field="action ids")


def test_unknown_layout_raises():
    with pytest.raises(ValueError, match="discrete_layout"):
        tokenize_discrete(np.array([1]), layout="middle")


# --- regressions: float32 bin edges on the torch path, plain Python lists everywhere ----------------------


def test_float32_torch_tokens_match_numpy_at_a_bin_edge():
    x = np.array([2.0**-9 - 2.0**-25], dtype=np.float32)  # exact bin: floor((x + 1)·512) = floor(513 − 2⁻¹⁶) = 512
    assert int(tokenize_continuous(x, mu_law=False)[0]) == FIRST_ID + 512
    assert int(tokenize_continuous(torch.from_numpy(x), mu_law=False)[0]) == FIRST_ID + 512


def test_every_function_accepts_python_lists():
    assert tokenize_continuous([0.0]).tolist() == [32512]
    assert tokenize_discrete([3]).tolist() == [3]
    assert detokenize_continuous([32512]).tolist() == pytest.approx([0.0], abs=HALF_BIN * 2)
    assert detokenize_discrete([3]).tolist() == [3]
