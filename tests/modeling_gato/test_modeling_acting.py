"""The action API (GATO_SPEC.md §5): legal ranges, batches, greedy = full recompute, context overflow,
and a real GatoProcessor batch through the model."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from gato.modeling_gato.acting import DEFAULT_WINDOW_KEEP_FRACTION, ActingConfig, overflow_drops
from gato.suite import token_layout as tl
from gato.suite.task_spec import ActionSpec, ObservationField, TaskSpec
from hypothesis import given, settings
from hypothesis import strategies as st
from test_modeling_gato import random_image, tiny_model, tiny_processor

IMAGE_SPEC = TaskSpec(
    "image-task",
    (
        ObservationField("frame", "image", (16, 32, 3)),
        ObservationField("pos", "discrete", (2,), num_values=10),
        ObservationField("speed", "continuous", (3,)),
    ),
    ActionSpec("continuous", size=3),
)
DISCRETE_SPEC = TaskSpec(
    "grid", (ObservationField("pos", "discrete", (2,), num_values=10),), ActionSpec("discrete", 1, num_values=7)
)


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


def observation_batch(processor, spec: TaskSpec, rng: np.random.Generator, batch: int):
    """``batch`` random observations of ``spec`` as the model's tensors (tokenize, then collate)."""
    return processor.collate(
        [processor.tokenize_observation(random_observation(spec, rng), spec) for _ in range(batch)]
    )


def ranges_of(processor, spec: TaskSpec) -> torch.Tensor:
    return torch.as_tensor(processor.action_token_ranges(spec))


def full_recompute_actions(model, context, ranges: torch.Tensor) -> torch.Tensor:
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
    ranges = ranges_of(processor, spec)
    batch = 3
    prompt = processor.collate([processor.tokenize_episode(episode(spec, 2, rng), spec)[0]] * batch)
    context = None
    for _ in range(4):
        out = model.act(
            observation_batch(processor, spec, rng, batch),
            ranges,
            context=context,
            prompt=prompt if context is None else None,
        )
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
    ranges = torch.tensor([[[5, 6]], [[100, 103]]])  # (B, A, 2): env 0 has one legal token
    tokens = model.act(observation_batch(processor, DISCRETE_SPEC, rng, 2), ranges).action_tokens
    assert tokens[0, 0] == 5 and 100 <= tokens[1, 0] < 103


def test_sampling_stays_in_range_and_is_reproducible():
    model, processor = tiny_model(), tiny_processor()
    rng = np.random.default_rng(2)
    observation = processor.collate(
        [processor.tokenize_observation(random_observation(IMAGE_SPEC, rng), IMAGE_SPEC)] * 4
    )
    ranges = ranges_of(processor, IMAGE_SPEC)
    sampling = ActingConfig(do_sample=True, temperature=2.0)
    draws = [
        model.act(
            observation, ranges, acting_config=sampling, generator=torch.Generator().manual_seed(0)
        ).action_tokens
        for _ in range(2)
    ]
    assert torch.equal(draws[0], draws[1])
    assert ((draws[0] >= tl.CONTINUOUS_OFFSET) & (draws[0] < tl.CONTINUOUS_OFFSET + tl.CONTINUOUS_BINS)).all()
    assert draws[0].unique().numel() > 1


def test_context_beyond_max_length_re_prefills_on_step_boundaries():
    """max_position_embeddings 40, 13 tokens per step, keeping all it can: the prompt and the last whole steps."""
    model, processor = tiny_model(max_position_embeddings=40), tiny_processor()
    rng = np.random.default_rng(3)
    ranges = ranges_of(processor, IMAGE_SPEC)
    prompt = processor.collate(
        [processor.tokenize_observation(random_observation(IMAGE_SPEC, rng), IMAGE_SPEC)] * 2
    )  # 10 tokens
    context = None
    for step in range(8):
        observation = processor.collate(
            [processor.tokenize_observation(random_observation(IMAGE_SPEC, rng), IMAGE_SPEC)] * 2
        )
        out = model.act(
            observation,
            ranges,
            context=context,
            prompt=prompt if context is None else None,
            acting_config=ActingConfig(window_keep_fraction=1.0),
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
    observation = observation_batch(processor, IMAGE_SPEC, np.random.default_rng(0), 1)
    with pytest.raises(ValueError, match="max_position_embeddings"):
        model.act(observation, ranges_of(processor, IMAGE_SPEC))


def test_illegal_ranges_are_a_value_error():
    model, processor = tiny_model(), tiny_processor()
    observation = observation_batch(processor, DISCRETE_SPEC, np.random.default_rng(0), 1)
    with pytest.raises(ValueError, match="action_ranges"):
        model.act(observation, torch.tensor([[10, 10]]))


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
    ranges = ranges_of(processor, IMAGE_SPEC)
    counts = {}
    for fraction in (1.0, DEFAULT_WINDOW_KEEP_FRACTION):
        context = None
        for _ in range(9):
            observation = observation_batch(processor, IMAGE_SPEC, rng, 1)
            context = model.act(
                observation, ranges, context=context, acting_config=ActingConfig(window_keep_fraction=fraction)
            ).context
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


# --- the tensor boundary and the acting settings ------------------------------------------------------------


def test_act_takes_tensors_only_and_refuses_numpy_naming_the_key():
    model, processor = tiny_model(), tiny_processor()
    tokens = processor.tokenize_observation(random_observation(DISCRETE_SPEC, np.random.default_rng(0)), DISCRETE_SPEC)
    ranges = ranges_of(processor, DISCRETE_SPEC)
    as_numpy = processor.collate([tokens], return_tensors="np")
    with pytest.raises(
        TypeError, match=r"observation\['input_ids'\]: expected a torch.Tensor, got ndarray.*processor.collate"
    ):
        model.act(dict(as_numpy), ranges)
    with pytest.raises(TypeError, match="action_ranges: expected a torch.Tensor, got ndarray"):
        model.act(processor.collate([tokens]), processor.action_token_ranges(DISCRETE_SPEC))
    with pytest.raises(ValueError, match=r"observation\['input_ids'\]: expected \(batch, n\)"):
        model.act({"input_ids": torch.as_tensor(tokens["input_ids"])}, ranges)  # an unbatched token dict
    with pytest.raises(ValueError, match="unexpected keys"):
        model.act({**processor.collate([tokens]), "pixel_values": torch.zeros(1)}, ranges)


def test_act_refuses_padded_batches_of_unequal_observations():
    model, processor = tiny_model(), tiny_processor()
    rng = np.random.default_rng(1)
    short = processor.tokenize_observation(random_observation(DISCRETE_SPEC, rng), DISCRETE_SPEC)
    longer = {
        key: (np.concatenate([value, value[:1]]) if key != "patch_pixels" and value.ndim == 1 else value)
        for key, value in short.items()
    }
    with pytest.raises(
        ValueError, match=r"observation\['attention_mask'\]: every environment needs the same number of tokens"
    ):
        model.act(processor.collate([short, longer]), ranges_of(processor, DISCRETE_SPEC))


def test_collated_observations_give_the_same_tokens_as_one_batched_call_per_environment():
    """Batching is only a batch: each environment's greedy tokens equal those of the same episode acted alone."""
    model, processor = tiny_model(), tiny_processor()
    rng = np.random.default_rng(5)
    ranges = ranges_of(processor, IMAGE_SPEC)
    steps = [
        [processor.tokenize_observation(random_observation(IMAGE_SPEC, rng), IMAGE_SPEC) for _ in range(2)]
        for _ in range(3)
    ]
    together, alone = [], [[], []]
    context = None
    for step in steps:
        out = model.act(processor.collate(step), ranges, context=context, continuous_actions=True)
        context = out.context
        together.append(out.action_tokens)
    for env in range(2):
        context = None
        for step in steps:
            out = model.act(processor.collate([step[env]]), ranges, context=context, continuous_actions=True)
            context = out.context
            alone[env].append(out.action_tokens[0])
    for index, tokens in enumerate(together):
        assert torch.equal(tokens, torch.stack([alone[0][index], alone[1][index]]))


def test_continuous_decoding_applies_only_to_actions_act_is_told_are_continuous():
    model, processor = tiny_model(), tiny_processor()
    observation = observation_batch(processor, IMAGE_SPEC, np.random.default_rng(2), 2)
    ranges = ranges_of(processor, IMAGE_SPEC)
    median, argmax = ActingConfig(continuous_decoding="median"), ActingConfig(continuous_decoding="argmax")
    as_categories = [model.act(observation, ranges, acting_config=config).action_tokens for config in (median, argmax)]
    as_bins = [
        model.act(observation, ranges, acting_config=config, continuous_actions=True).action_tokens
        for config in (median, argmax)
    ]
    assert torch.equal(as_categories[0], as_categories[1]) and torch.equal(as_categories[1], as_bins[1])
    assert not torch.equal(as_bins[0], as_bins[1])  # a random model's median bin is not its most likely one


def test_without_a_cache_act_chooses_the_cached_greedy_tokens_through_overflows():
    """``use_cache=False`` (a full forward over the window per token, the benchmarks' naive baseline) is the
    reference of the cached paths: same tokens, same window, through re-prefills."""
    model, processor = tiny_model(max_position_embeddings=40, initializer_range=0.2), tiny_processor()
    ranges = ranges_of(processor, IMAGE_SPEC)
    runs = {}
    for name, config in {
        "recompute": ActingConfig(use_cache=False),
        "dynamic": ActingConfig(),
        "static": ActingConfig(cache_implementation="static"),
    }.items():
        rng = np.random.default_rng(7)
        prompt = processor.collate([processor.tokenize_episode(episode(IMAGE_SPEC, 1, rng), IMAGE_SPEC)[0]] * 2)
        context, taken = None, []
        for _ in range(8):
            out = model.act(
                observation_batch(processor, IMAGE_SPEC, rng, 2),
                ranges,
                context=context,
                prompt=prompt if context is None else None,
                acting_config=config,
            )
            context = out.context
            taken.append(out.action_tokens)
        runs[name] = (torch.stack(taken), context.num_reprefills, context.length())
    assert runs["recompute"][1] >= 2 and runs["recompute"][0].unique().numel() > 1
    for name in ("dynamic", "static"):
        assert torch.equal(runs[name][0], runs["recompute"][0]) and runs[name][1:] == runs["recompute"][1:]


def test_greedy_is_what_a_zero_temperature_means():
    model, processor = tiny_model(), tiny_processor()
    config = ActingConfig(do_sample=True, temperature=0)
    assert config.do_sample is False and config.temperature == 0.0
    observation = observation_batch(processor, IMAGE_SPEC, np.random.default_rng(3), 4)
    ranges = ranges_of(processor, IMAGE_SPEC)
    greedy = model.act(observation, ranges).action_tokens
    for seed in range(3):
        assert torch.equal(
            model.act(
                observation, ranges, acting_config=config, generator=torch.Generator().manual_seed(seed)
            ).action_tokens,
            greedy,
        )


@pytest.mark.parametrize(
    "fields,message",
    [
        ({"temperature": -0.5}, r"temperature: expected a finite number ≥ 0 \(0 = greedy\), got -0.5"),
        ({"temperature": float("nan")}, "temperature: expected a finite number"),
        ({"temperature": "hot"}, "temperature: expected a finite number"),
        ({"do_sample": "yes"}, "do_sample: expected True or False, got 'yes'"),
        ({"use_cache": 1}, "use_cache: expected True or False"),
        ({"continuous_decoding": "mean"}, r"continuous_decoding: expected one of \('argmax', 'median'\), got 'mean'"),
        ({"cache_implementation": "offloaded"}, "cache_implementation: expected one of"),
        ({"compile": True}, 'compile needs use_cache=True and cache_implementation="static"'),
        ({"compile": "max-autotune"}, "compile: expected a bool or a transformers CompileConfig"),
        (
            {"use_cache": False, "cache_implementation": "static"},
            "cache_implementation: use_cache=False keeps no cache",
        ),
        ({"window_keep_fraction": 0}, r"window_keep_fraction: expected a fraction in \(0, 1\], got 0"),
        ({"window_keep_fraction": 1.5}, "window_keep_fraction: expected a fraction"),
        (
            {"prompt_tokens": -1},
            r"prompt_tokens: expected None \(as in training\) or an integer ≥ 0 \(0 = no prompt\), got -1",
        ),
        ({"prompt_tokens": 2.5}, "prompt_tokens: expected None"),
    ],
)
def test_acting_config_refuses_bad_settings_naming_the_field(fields, message):
    with pytest.raises(ValueError, match=message):
        ActingConfig(**fields)


def test_acting_config_defaults_and_its_json_form():
    config = ActingConfig()
    assert (
        config.do_sample,
        config.temperature,
        config.continuous_decoding,
        config.use_cache,
        config.cache_implementation,
        config.compile,
        config.window_keep_fraction,
        config.prompt_tokens,
    ) == (False, 1.0, "median", True, "dynamic", False, DEFAULT_WINDOW_KEEP_FRACTION, None)
    assert (
        config.greedy_decoding(continuous_actions=True) == "median"
        and config.greedy_decoding(continuous_actions=False) == "argmax"
    )
    from transformers.generation.configuration_utils import CompileConfig

    compiled = ActingConfig(cache_implementation="static", compile=CompileConfig(mode="default"))
    assert compiled.to_dict()["compile"]["mode"] == "default" and ActingConfig(**ActingConfig().to_dict()) == config
    with pytest.raises(TypeError, match="acting_config: expected an ActingConfig, got dict"):
        tiny_model().act(
            observation_batch(tiny_processor(), DISCRETE_SPEC, np.random.default_rng(0), 1),
            ranges_of(tiny_processor(), DISCRETE_SPEC),
            acting_config={"do_sample": True},
        )
