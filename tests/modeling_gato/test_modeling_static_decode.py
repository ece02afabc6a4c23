"""The static-cache decode path of the action API (``act(..., acting_config=ActingConfig(cache_implementation="static",
compile=...))``):
the same action tokens as the default dynamic cache through overflows and re-prefills, greedy and sampled;
the cache is reset in place; bad arguments are ValueErrors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from gato.modeling_gato.acting import ActingConfig, embed_segment, segment_model_inputs, tensor_segment
from test_modeling_acting import IMAGE_SPEC, episode, random_observation
from test_modeling_gato import tiny_model, tiny_processor
from torch._dynamo.utils import counters
from transformers.cache_utils import StaticCache

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # see tests/conftest.py

CONTEXT = 40  # 11 tokens per IMAGE_SPEC step (2 patches + 2 + 3 values + separator + 3 actions)


def sharp_model():
    """A tiny random model with 10x the init scale: its argmax depends on positions (at the default scale
    attention is so flat that even wrong position ids give the same greedy tokens)."""
    return tiny_model(max_position_embeddings=CONTEXT, initializer_range=0.2)


def run_episode(
    model, processor, steps: int, seed: int, generator=None, **acting
) -> tuple[list[torch.Tensor], object]:
    """Batch 2, a one-step prompt demonstration, ``steps`` calls of ``act`` with ``ActingConfig(**acting)``: the action
    tokens of every call."""
    rng = np.random.default_rng(seed)
    ranges = torch.as_tensor(processor.action_token_ranges(IMAGE_SPEC))
    prompt = processor.collate([processor.tokenize_episode(episode(IMAGE_SPEC, 1, rng), IMAGE_SPEC)[0]] * 2)
    acting_config = ActingConfig(**acting)
    context, taken = None, []
    for _ in range(steps):
        observations = processor.collate(
            [processor.tokenize_observation(random_observation(IMAGE_SPEC, rng), IMAGE_SPEC) for _ in range(2)]
        )
        out = model.act(
            observations,
            ranges,
            context=context,
            prompt=prompt if context is None else None,
            acting_config=acting_config,
            generator=generator,
        )
        context = out.context
        taken.append(out.action_tokens)
    return taken, context


@pytest.mark.parametrize("fraction", [0.5, 1.0])
def test_static_greedy_actions_equal_the_dynamic_path_through_re_prefills(fraction):
    model, processor = sharp_model(), tiny_processor()
    dynamic, dynamic_context = run_episode(model, processor, 10, seed=0, window_keep_fraction=fraction)
    static, static_context = run_episode(
        model, processor, 10, seed=0, window_keep_fraction=fraction, cache_implementation="static"
    )
    assert static_context.num_reprefills == dynamic_context.num_reprefills >= 2
    assert isinstance(static_context.cache, StaticCache)
    for step, (a, b) in enumerate(zip(dynamic, static)):
        assert torch.equal(a, b), f"step {step}: {a.tolist()} vs {b.tolist()}"
    assert len({tuple(t.flatten().tolist()) for t in static}) > 1  # the model does not answer a constant


def test_static_cache_forward_in_chunks_equals_one_full_forward():
    """A prefill, single tokens and observation-sized chunks on the static cache: the hidden state of each
    chunk's last token equals a cache-free forward over the whole sequence (positions, masks, patches)."""
    model, processor = sharp_model(), tiny_processor()
    tokens = processor.tokenize_episode(episode(IMAGE_SPEC, 3, np.random.default_rng(6)), IMAGE_SPEC)[0]
    sequence = tensor_segment(
        processor.collate([tokens, tokens]), "sequence", model.config, torch.device("cpu")
    )  # (2, 33): 3 steps of 11 tokens
    not_patch = ~sequence["patch_mask"][1]
    sequence["input_ids"][1, not_patch] = sequence["input_ids"][1, not_patch].flip(0)  # row 1 differs from row 0
    full = model.model(**segment_model_inputs(sequence), use_cache=False).last_hidden_state  # (2, 33, H)
    cache = StaticCache(config=model.config, max_cache_len=CONTEXT)
    start = 0
    for end in (10, 11, 12, 20, 33):  # a prefill, two single tokens, 8 tokens (observation + separator), the rest
        hidden = model.cached_forward(embed_segment(model.model, sliced(sequence, start, end)), cache)
        torch.testing.assert_close(hidden, full[:, end - 1], rtol=1e-5, atol=1e-5)
        start = end
    assert int(cache.get_seq_length()) == 33


def sliced(segment: dict, start: int, end: int) -> dict:
    """Tokens ``[start, end)`` of a segment with the patches that fall in them (rows have the same layout)."""
    before = int(segment["patch_mask"][0, :start].sum())
    inside = int(segment["patch_mask"][0, start:end].sum())
    out = {key: segment[key][:, start:end] for key in ("input_ids", "local_positions", "patch_mask")}
    out.update(
        {key: segment[key][:, before : before + inside] for key in ("patch_pixels", "patch_rows", "patch_cols")}
    )
    return out


def test_static_sampling_with_a_seeded_generator_equals_the_dynamic_path():
    model, processor = sharp_model(), tiny_processor()
    runs = [
        run_episode(
            model,
            processor,
            8,
            seed=1,
            do_sample=True,
            temperature=2.0,
            generator=torch.Generator().manual_seed(5),
            cache_implementation=implementation,
        )
        for implementation in ("dynamic", "static")
    ]
    (dynamic, dynamic_context), (static, static_context) = runs
    assert static_context.num_reprefills == dynamic_context.num_reprefills >= 2
    assert torch.equal(torch.stack(dynamic), torch.stack(static))
    assert torch.stack(static).unique().numel() > 1


def test_a_re_prefill_resets_the_static_cache_in_place():
    """CUDA graphs replay fixed addresses: a re-prefill must reuse the same key/value tensors, emptied."""
    model, processor = sharp_model(), tiny_processor()
    rng = np.random.default_rng(2)
    ranges = torch.as_tensor(processor.action_token_ranges(IMAGE_SPEC))
    static = ActingConfig(cache_implementation="static")
    context, pointers, lengths = None, set(), []
    for _ in range(7):
        observation = processor.collate(
            [processor.tokenize_observation(random_observation(IMAGE_SPEC, rng), IMAGE_SPEC)]
        )
        context = model.act(observation, ranges, context=context, acting_config=static).context
        layer = context.cache.layers[0]
        pointers.add((id(context.cache), layer.keys.data_ptr(), layer.values.data_ptr()))
        assert layer.keys.shape[2] == CONTEXT
        lengths.append(int(context.cache.get_seq_length()))
    assert context.num_reprefills >= 2 and len(pointers) == 1
    # The cache holds the window minus its last action token (fed with the next observation).
    assert lengths[-1] == context.length() - 1
    assert any(later < earlier for earlier, later in zip(lengths, lengths[1:]))  # it shrank on a re-prefill


def test_unknown_cache_implementation_and_misused_compile_are_value_errors():
    model, processor = sharp_model(), tiny_processor()
    observation = processor.collate(
        [processor.tokenize_observation(random_observation(IMAGE_SPEC, np.random.default_rng(3)), IMAGE_SPEC)]
    )
    ranges = torch.as_tensor(processor.action_token_ranges(IMAGE_SPEC))
    with pytest.raises(ValueError, match="cache_implementation"):
        ActingConfig(cache_implementation="sliding")
    with pytest.raises(ValueError, match="compile"):
        ActingConfig(compile=True)  # compile needs the static cache
    with pytest.raises(ValueError, match="compile"):
        ActingConfig(cache_implementation="static", compile="max-autotune")
    context = model.act(observation, ranges, acting_config=ActingConfig(cache_implementation="static")).context
    with pytest.raises(ValueError, match="cache_implementation"):
        model.act(observation, ranges, context=context)  # the context was started static


def test_compiled_static_greedy_actions_equal_the_dynamic_path():
    """torch.compile (inductor, CPU mode "default") of the two steady-state shapes, through re-prefills and
    into a second episode: exactly two graphs (observation step, single token), no graph break, no recompile."""
    torch._dynamo.reset()
    counters.clear()
    model, processor = sharp_model(), tiny_processor()
    for seed in (4, 5):
        dynamic, _ = run_episode(model, processor, 8, seed=seed)
        compiled, context = run_episode(model, processor, 8, seed=seed, cache_implementation="static", compile=True)
        assert context.num_reprefills >= 2
        assert torch.equal(torch.stack(dynamic), torch.stack(compiled))
    assert counters["stats"]["unique_graphs"] == 2 and not counters["graph_break"]
