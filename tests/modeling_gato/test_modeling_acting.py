"""The action API (GATO_SPEC.md §5): legal ranges, batches, greedy = full recompute, context overflow,
and a real GatoProcessor batch through the model."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from test_modeling_gato import random_image, tiny_model, tiny_processor

from gato.modeling_gato.acting import DEFAULT_WINDOW_KEEP_FRACTION, overflow_drops
from gato.suite import token_layout as tl
from gato.suite.task_spec import ActionSpec, ObservationField, TaskSpec

IMAGE_SPEC = TaskSpec(
    "image-task",
    (
        ObservationField("frame", "image", (16, 32, 3)),
        ObservationField("pos", "discrete", (2,), num_values=10),
        ObservationField("speed", "continuous", (3,)),
    ),
    ActionSpec("continuous", size=3),
)
DISCRETE_SPEC = TaskSpec("grid", (ObservationField("pos", "discrete", (2,), num_values=10),), ActionSpec("discrete", 1, num_values=7))


def random_observation(spec: TaskSpec, rng: np.random.Generator) -> dict:
    values = {}
    for field in spec.observations:
        if field.kind == "image":
            values[field.name] = random_image(rng)
        elif field.kind == "discrete":
            values[field.name] = rng.integers(0, field.num_values, field.shape)
        else:
            values[field.name] = rng.normal(size=field.shape)
    return values


def episode(spec: TaskSpec, steps: int, rng: np.random.Generator) -> dict:
    observations = [random_observation(spec, rng) for _ in range(steps)]
    if spec.action.kind == "discrete":
        actions = rng.integers(0, spec.action.num_values, (steps, spec.action.size))
    else:
        actions = rng.uniform(-1, 1, (steps, spec.action.size))
    return {
        "task": spec.name,
        "observations": {name: np.stack([o[name] for o in observations]) for name in observations[0]},
        "actions": actions,
    }


def full_recompute_actions(model, context, ranges: np.ndarray) -> torch.Tensor:
    """Greedy action tokens of every step in the window, from one forward pass without a cache."""
    window = context.window()
    inputs = {"input_ids": window["input_ids"], "local_positions": window["local_positions"]}
    if window["patch_pixels"].shape[1]:
        inputs.update({k: window[k] for k in ("patch_mask", "patch_pixels", "patch_rows", "patch_cols")})
    logits = model(**inputs, use_cache=False).logits  # (B, L, V)
    is_action = window["local_positions"][0] == tl.LOCAL_POSITION_ACTION
    if context.prompt is not None:  # the prompt's actions were not chosen by the model
        is_action[: context.prompt["input_ids"].shape[1]] = False
    positions = torch.nonzero(is_action).squeeze(-1)
    lo, hi = torch.as_tensor(ranges)[:, 0], torch.as_tensor(ranges)[:, 1]
    steps = positions.numel() // len(ranges)
    lo, hi = lo.repeat(steps), hi.repeat(steps)
    ids = torch.arange(logits.shape[-1])
    legal = (ids[None] >= lo[:, None]) & (ids[None] < hi[:, None])
    restricted = logits[:, positions - 1].masked_fill(~legal[None], float("-inf"))
    return restricted.argmax(-1), window["input_ids"][:, positions]


@pytest.mark.parametrize("spec", [IMAGE_SPEC, DISCRETE_SPEC], ids=["continuous-image", "discrete"])
def test_greedy_actions_are_legal_batched_and_equal_a_full_recompute(spec):
    model, processor = tiny_model(), tiny_processor()
    rng = np.random.default_rng(0)
    ranges = processor.action_token_ranges(spec)
    prompt = processor.tokenize_episode(episode(spec, 2, rng), spec)[0]
    batch = 3
    context = None
    for _ in range(4):
        observations = [processor.tokenize_observation(random_observation(spec, rng), spec) for _ in range(batch)]
        out = model.act(observations, ranges, context=context, prompt=[prompt] * batch if context is None else None)
        context = out.context
        tokens = out.action_tokens
        assert tokens.shape == (batch, spec.action.size)
        assert ((tokens >= torch.as_tensor(ranges[:, 0])) & (tokens < torch.as_tensor(ranges[:, 1]))).all()
        actions = processor.decode_action(tokens, spec)
        if spec.action.kind == "discrete":
            assert ((actions >= 0) & (actions < spec.action.num_values)).all()
        else:
            assert ((actions >= spec.action.low) & (actions <= spec.action.high)).all()
    assert context.num_reprefills == 0
    recomputed, taken = full_recompute_actions(model, context, ranges)
    assert torch.equal(recomputed, taken)


def test_per_environment_ranges_restrict_each_environment():
    model, processor = tiny_model(), tiny_processor()
    rng = np.random.default_rng(1)
    observations = [processor.tokenize_observation(random_observation(DISCRETE_SPEC, rng), DISCRETE_SPEC) for _ in range(2)]
    ranges = np.array([[[5, 6]], [[100, 103]]])  # (B, A, 2): env 0 has one legal token
    tokens = model.act(observations, ranges).action_tokens
    assert tokens[0, 0] == 5 and 100 <= tokens[1, 0] < 103


def test_sampling_stays_in_range_and_is_reproducible():
    model, processor = tiny_model(), tiny_processor()
    rng = np.random.default_rng(2)
    observation = processor.tokenize_observation(random_observation(IMAGE_SPEC, rng), IMAGE_SPEC)
    ranges = processor.action_token_ranges(IMAGE_SPEC)
    draws = [
        model.act([observation] * 4, ranges, do_sample=True, temperature=2.0, generator=torch.Generator().manual_seed(0)).action_tokens
        for _ in range(2)
    ]
    assert torch.equal(draws[0], draws[1])
    assert ((draws[0] >= tl.CONTINUOUS_OFFSET) & (draws[0] < tl.CONTINUOUS_OFFSET + tl.CONTINUOUS_BINS)).all()
    assert draws[0].unique().numel() > 1


def test_context_beyond_max_length_re_prefills_on_step_boundaries():
    """max_position_embeddings 40, 13 tokens per step, keeping all it can: the prompt and the last whole steps."""
    model, processor = tiny_model(max_position_embeddings=40), tiny_processor()
    rng = np.random.default_rng(3)
    ranges = processor.action_token_ranges(IMAGE_SPEC)
    prompt = processor.tokenize_observation(random_observation(IMAGE_SPEC, rng), IMAGE_SPEC)  # 10 tokens
    context = None
    for step in range(8):
        observation = processor.tokenize_observation(random_observation(IMAGE_SPEC, rng), IMAGE_SPEC)
        out = model.act(
            [observation] * 2, ranges, context=context, prompt=[prompt] * 2 if context is None else None, window_keep_fraction=1.0
        )
        context = out.context
        assert context.length() <= 40 and context.cache.get_seq_length() < 40
    assert context.num_reprefills > 0
    assert context.prompt is not None and len(context.steps) == 2  # 10 + 2 * 13 = 36 ≤ 40
    # The cache always holds exactly the window, so the newest step's actions equal a full recompute over it
    # (older steps in the window were chosen while steps now dropped were still visible).
    recomputed, taken = full_recompute_actions(model, context, ranges)
    action_size = IMAGE_SPEC.action.size
    assert torch.equal(recomputed[:, -action_size:], taken[:, -action_size:])
    assert torch.equal(taken[:, -action_size:], out.action_tokens)


def test_a_step_longer_than_the_context_is_a_value_error():
    model, processor = tiny_model(max_position_embeddings=8), tiny_processor()
    observation = processor.tokenize_observation(random_observation(IMAGE_SPEC, np.random.default_rng(0)), IMAGE_SPEC)
    with pytest.raises(ValueError, match="max_position_embeddings"):
        model.act(observation, processor.action_token_ranges(IMAGE_SPEC))


def test_illegal_ranges_are_a_value_error():
    model, processor = tiny_model(), tiny_processor()
    observation = processor.tokenize_observation(random_observation(DISCRETE_SPEC, np.random.default_rng(0)), DISCRETE_SPEC)
    with pytest.raises(ValueError, match="action_ranges"):
        model.act(observation, np.array([[10, 10]]))


def test_processor_batch_trains():
    """A real GatoProcessor batch (episodes with images, a caption) through forward and backward."""
    model, processor = tiny_model().train(), tiny_processor()
    rng = np.random.default_rng(4)
    sequences = processor.tokenize_episode(episode(IMAGE_SPEC, 3, rng), IMAGE_SPEC)
    sequences += processor.tokenize_episode(episode(DISCRETE_SPEC, 5, rng), DISCRETE_SPEC)
    sequences.append(processor.tokenize_caption(random_image(rng), "a cat on the mat"))
    batch = processor.collate(sequences)
    out = model(**batch, skip_logits=False)  # training mode skips the logits by default (loss_gato.py)
    assert torch.isfinite(out.loss)
    assert out.logits.shape[0] == int((batch["loss_mask"][:, 1:] * batch["attention_mask"][:, 1:]).sum())
    out.loss.backward()
    assert model.model.embed_patches.projection.weight.grad.abs().sum() > 0


def test_overflow_drops_keeps_everything_until_the_window_is_full():
    assert overflow_drops(10, [13], 13, 40) == (0, False)  # 36 ≤ 40
    assert overflow_drops(0, [5] * 7, 5, 40) == (0, False)  # exactly 40


def test_overflow_drops_cuts_down_to_the_kept_fraction_on_step_boundaries():
    # 0 + 8·5 + 5 = 45 > 40: drop the oldest steps until ≤ 20 tokens (half), i.e. 3 steps kept + the new one.
    assert overflow_drops(0, [5] * 8, 5, 40) == (5, False)
    # fraction 1: only what the new step needs.
    assert overflow_drops(0, [5] * 8, 5, 40, window_keep_fraction=1.0) == (1, False)
    # The prompt stays while the new step fits beside it, even above the kept fraction ...
    assert overflow_drops(30, [5, 5], 5, 40) == (2, False)
    # ... and goes when it does not.
    assert overflow_drops(30, [5, 5], 12, 40) == (2, True)


def test_overflow_drops_refuses_bad_fractions_and_oversized_steps():
    with pytest.raises(ValueError, match="window_keep_fraction"):
        overflow_drops(0, [], 5, 40, window_keep_fraction=0.0)
    with pytest.raises(ValueError, match="window_keep_fraction"):
        overflow_drops(0, [], 5, 40, window_keep_fraction=1.5)
    with pytest.raises(ValueError, match="max_position_embeddings"):
        overflow_drops(0, [], 41, 40)


@settings(max_examples=200, deadline=None)
@given(
    prompt=st.integers(0, 30),
    steps=st.lists(st.integers(1, 12), max_size=12),
    new=st.integers(1, 12),
    fraction=st.floats(0.05, 1.0),
)
def test_overflow_drops_always_leaves_a_window_that_fits(prompt, steps, new, fraction):
    max_length = 40
    drop, drop_prompt = overflow_drops(prompt, steps, new, max_length, fraction)
    kept = (0 if drop_prompt else prompt) + sum(steps[drop:]) + new
    assert kept <= max_length
    if prompt + sum(steps) + new <= max_length:
        assert (drop, drop_prompt) == (0, False)
    else:
        # Dropping one step fewer would still be above the kept fraction (or overflow), unless none was dropped.
        assert drop == 0 or prompt + sum(steps[drop - 1 :]) + new > int(fraction * max_length)
        assert not drop_prompt or drop == len(steps)  # the prompt goes only after every past step


def test_default_rule_re_prefills_rarely_once_the_window_is_full():
    """40 tokens, 13-token steps, no prompt: with the default half-window rule a re-prefill is followed by a
    step that fits, instead of a re-prefill at every step."""
    model, processor = tiny_model(max_position_embeddings=40), tiny_processor()
    rng = np.random.default_rng(4)
    ranges = processor.action_token_ranges(IMAGE_SPEC)
    counts = {}
    for fraction in (1.0, DEFAULT_WINDOW_KEEP_FRACTION):
        context = None
        for _ in range(9):
            observation = processor.tokenize_observation(random_observation(IMAGE_SPEC, rng), IMAGE_SPEC)
            context = model.act([observation], ranges, context=context, window_keep_fraction=fraction).context
        counts[fraction] = context.num_reprefills
    assert counts[1.0] == 6  # steps 4…9 each overflow 3 · 13 = 39 tokens
    # Steps 4 and 7: the overflow keeps only the new step (13 ≤ 20 tokens), then two more steps fit.
    assert counts[DEFAULT_WINDOW_KEEP_FRACTION] == 2


def test_median_decoding_picks_the_middle_of_the_mass_not_the_heaviest_bin():
    from gato.modeling_gato.acting import choose_tokens

    # 40% on the last bin (a clipped extreme), 60% spread evenly over bins 0..5: the argmax is the extreme,
    # the median sits in the spread (cumulative 0.5 is reached at bin 4: 5 × 0.1 = 0.5)
    probs = torch.tensor([[0.1] * 6 + [0.0] * 3 + [0.4]])
    logits = probs.clamp_min(1e-12).log()
    assert choose_tokens(logits).item() == 9
    assert choose_tokens(logits, greedy_decoding="median").item() == 4
    # a peaked distribution: both agree; illegal (-inf) ids are never chosen
    peaked = torch.tensor([[float("-inf"), 0.0, 5.0, 0.0, float("-inf")]])
    assert choose_tokens(peaked).item() == choose_tokens(peaked, greedy_decoding="median").item() == 2
    edge = torch.tensor([[float("-inf"), float("-inf"), 3.0]])
    assert choose_tokens(edge, greedy_decoding="median").item() == 2
