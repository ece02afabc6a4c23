"""``GatoForCausalLM.generate()`` keeps transformers' generation contract with Gato's own inputs.

transformers' ``GenerationTesterMixin`` runs outside this repository on text and on one hand-made batch of Gato's
inputs (docs/CONFORMANCE.md). These tests check the same behaviours on the prompts the processor makes for
``generate``: text, captions (image patches)
and episodes (image patches and local positions), two prompts of different lengths left-padded into one batch. The
model is the tiny config at a sharp initialization, so the greedy tokens depend on positions, padding and patches.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from gato.suite import token_layout as tl
from test_modeling_acting import IMAGE_SPEC, episode
from test_modeling_gato import random_image, tiny_model, tiny_processor
from transformers.cache_utils import StaticCache
from transformers.generation import GenerateBeamDecoderOnlyOutput, GenerateDecoderOnlyOutput

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # see tests/conftest.py

PROMPT_KINDS = ("text", "caption", "episode")
GREEDY = dict(do_sample=False, eos_token_id=None, pad_token_id=tl.PAD_TOKEN_ID)
TEXTS = ("a cat on the mat", "go")


def sharp_model(seed: int = 0):
    """10x the default initialization: at the default scale attention is so flat that the greedy tokens barely depend
    on positions, padding or patches, and a broken cache or mask could still give the same tokens."""
    return tiny_model(seed, initializer_range=0.2)


def prompts(kind: str, rows: tuple[int, ...] = (0, 1)) -> dict[str, torch.Tensor]:
    """The processor's ``generate`` prompts of ``kind`` (rows 0 and 1 have different lengths), for the given rows."""
    processor = tiny_processor()
    rng = np.random.default_rng(0)
    texts = [TEXTS[row] for row in rows]
    if kind == "text":
        batch = processor(text=texts, return_tensors="pt")
    elif kind == "caption":
        images = [random_image(rng) for _ in TEXTS]
        batch = processor(images=[images[row] for row in rows], text=texts, return_tensors="pt")
    else:
        episodes = [episode(IMAGE_SPEC, steps, rng) for steps in (1, 2)]
        batch = processor(
            episodes=[episodes[row] for row in rows], specs=IMAGE_SPEC, return_labels=False, return_tensors="pt"
        )
    return dict(batch)


def whole_sequence_inputs(prompt: dict[str, torch.Tensor], sequences: torch.Tensor) -> dict[str, torch.Tensor]:
    """The model inputs of ``sequences`` (prompt + generated tokens) for one forward pass without a cache: the generated
    tokens are text, attended, with no local position and no patch."""
    grown = sequences.shape[1] - prompt["input_ids"].shape[1]

    def extend(name: str, fill: int | bool) -> torch.Tensor:
        value = prompt[name]
        return torch.cat([value, value.new_full((value.shape[0], grown), fill)], dim=1)

    inputs = dict(prompt, input_ids=sequences, attention_mask=extend("attention_mask", 1))
    inputs["local_positions"] = extend("local_positions", tl.LOCAL_POSITION_NONE)
    if "patch_mask" in prompt:
        inputs["patch_mask"] = extend("patch_mask", False)
    return inputs


def generated(sequences: torch.Tensor, prompt: dict[str, torch.Tensor]) -> torch.Tensor:
    return sequences[:, prompt["input_ids"].shape[1] :]


def test_the_prompts_are_left_padded_and_carry_gatos_inputs():
    """What the other tests rely on: two lengths (so padding), patches in captions, local positions in episodes."""
    for kind in PROMPT_KINDS:
        prompt = prompts(kind)
        assert (prompt["attention_mask"][:, 0] == 0).any() and (prompt["attention_mask"][:, -1] == 1).all(), kind
    assert prompts("caption")["patch_mask"].any()
    episode_prompt = prompts("episode")
    assert episode_prompt["patch_mask"].any()
    assert (episode_prompt["local_positions"] == tl.LOCAL_POSITION_ACTION).any()
    assert (episode_prompt["local_positions"] >= 0).any()


# --- decoding strategies ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", PROMPT_KINDS)
def test_greedy_generate_equals_an_argmax_loop_over_full_forward_passes(kind):
    model, prompt, steps = sharp_model(), prompts(kind), 4
    sequences = model.generate(**prompt, max_new_tokens=steps, **GREEDY)
    expected = prompt["input_ids"]
    for _ in range(steps):
        logits = model(**whole_sequence_inputs(prompt, expected), use_cache=False).logits
        expected = torch.cat([expected, logits[:, -1].argmax(-1, keepdim=True)], dim=1)
    assert torch.equal(sequences, expected)
    assert len(set(generated(sequences, prompt).flatten().tolist())) > 2  # not one repeated token


@pytest.mark.parametrize("kind", PROMPT_KINDS)
def test_seeded_sampling_is_reproducible_and_hot_sampling_departs_from_greedy(kind):
    model, prompt = sharp_model(), prompts(kind)
    hot = dict(GREEDY, do_sample=True, temperature=5.0, top_k=0, top_p=1.0, max_new_tokens=6)

    def sample(seed: int) -> torch.Tensor:
        torch.manual_seed(seed)
        return model.generate(**prompt, **hot)

    first = sample(7)
    assert torch.equal(sample(7), first)
    assert not torch.equal(sample(8), first)
    assert not torch.equal(model.generate(**prompt, **dict(GREEDY, max_new_tokens=6)), first)


@pytest.mark.parametrize("kind", PROMPT_KINDS)
def test_beam_search_returns_its_beams_best_first_scored_by_their_log_probabilities(kind):
    model, prompt, steps, beams, length_penalty = sharp_model(), prompts(kind), 4, 2, 2.0
    out = model.generate(
        **prompt,
        num_beams=beams,
        length_penalty=length_penalty,
        num_return_sequences=beams,
        max_new_tokens=steps,
        return_dict_in_generate=True,
        output_scores=True,
        **GREEDY,
    )
    batch, length = prompt["input_ids"].shape
    assert isinstance(out, GenerateBeamDecoderOnlyOutput)
    assert out.sequences.shape == (batch * beams, length + steps)
    per_prompt = out.sequences_scores.view(batch, beams)
    assert (per_prompt[:, 0] >= per_prompt[:, 1]).all()
    assert not torch.equal(out.sequences[0], out.sequences[1])
    # A beam's score: the summed log-probabilities of its tokens over (generated length ** length_penalty).
    repeated = {name: value.repeat_interleave(beams, dim=0) for name, value in prompt.items()}
    logits = model(**whole_sequence_inputs(repeated, out.sequences), use_cache=False).logits
    log_probs = logits[:, length - 1 : -1].log_softmax(-1).gather(-1, generated(out.sequences, prompt)[..., None])
    expected = log_probs.squeeze(-1).sum(-1) / steps**length_penalty
    torch.testing.assert_close(out.sequences_scores, expected, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("use_cache", [True, False])
@pytest.mark.parametrize("kind", PROMPT_KINDS)
def test_dict_outputs_have_one_entry_per_step_of_the_documented_shapes(kind, use_cache):
    model, prompt, steps = sharp_model(), prompts(kind), 3
    model.set_attn_implementation("eager")  # the attention weights need eager attention
    out = model.generate(
        **prompt,
        max_new_tokens=steps,
        use_cache=use_cache,
        return_dict_in_generate=True,
        output_scores=True,
        output_logits=True,
        output_attentions=True,
        output_hidden_states=True,
        **GREEDY,
    )
    config = model.config
    batch, length = prompt["input_ids"].shape
    assert isinstance(out, GenerateDecoderOnlyOutput)
    assert out.sequences.shape == (batch, length + steps)
    assert len(out.scores) == len(out.logits) == len(out.attentions) == len(out.hidden_states) == steps
    for step in range(steps):
        seen = length + step  # tokens in the sequence at this step
        fed = 1 if use_cache and step > 0 else seen  # a cached step feeds the last token only
        assert out.logits[step].shape == out.scores[step].shape == (batch, config.vocab_size)
        # No logits processor is active: the scores are the raw logits, and greedy picks their argmax.
        torch.testing.assert_close(out.scores[step], out.logits[step])
        assert torch.equal(out.scores[step].argmax(-1), out.sequences[:, length + step])
        assert len(out.attentions[step]) == config.num_hidden_layers
        assert {tuple(a.shape) for a in out.attentions[step]} == {(batch, config.num_attention_heads, fed, seen)}
        assert len(out.hidden_states[step]) == config.num_hidden_layers + 1  # the embeddings, then each layer
        assert {tuple(h.shape) for h in out.hidden_states[step]} == {(batch, fed, config.hidden_size)}
    if use_cache:
        assert out.cache.get_seq_length() == length + steps - 1  # the last token is not fed back
    else:
        assert out.cache is None


# --- equivalences ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", PROMPT_KINDS)
def test_a_left_padded_batch_generates_what_each_prompt_generates_alone(kind):
    model, steps = sharp_model(), 5
    batch_prompt = prompts(kind)
    together = generated(model.generate(**batch_prompt, max_new_tokens=steps, **GREEDY), batch_prompt)
    for row in (0, 1):
        alone_prompt = prompts(kind, rows=(row,))
        alone = generated(model.generate(**alone_prompt, max_new_tokens=steps, **GREEDY), alone_prompt)
        assert torch.equal(together[row], alone[0]), row
    assert not torch.equal(together[0], together[1])


@pytest.mark.parametrize("kind", PROMPT_KINDS)
def test_generating_without_a_cache_equals_generating_with_one(kind):
    model, prompt = sharp_model(), prompts(kind)
    cached = model.generate(**prompt, max_new_tokens=5, **GREEDY)
    assert torch.equal(model.generate(**prompt, max_new_tokens=5, use_cache=False, **GREEDY), cached)


@pytest.mark.parametrize("kind", PROMPT_KINDS)
def test_a_static_cache_generates_what_the_dynamic_cache_generates(kind):
    model, prompt, steps = sharp_model(), prompts(kind), 5
    dynamic = model.generate(**prompt, max_new_tokens=steps, **GREEDY)
    static = model.generate(
        **prompt, max_new_tokens=steps, cache_implementation="static", return_dict_in_generate=True, **GREEDY
    )
    assert isinstance(static.cache, StaticCache)
    # Sized by generate for the whole sequence but its last token (which is never fed back), patches included.
    assert static.cache.get_max_length(0) == prompt["input_ids"].shape[1] + steps - 1
    assert torch.equal(static.sequences, dynamic)


@pytest.mark.parametrize("kind", ["caption", "episode"])
def test_a_compiled_static_cache_decode_after_a_prompt_with_patches_generates_the_eager_tokens(kind):
    """On CUDA, transformers compiles the decode step of a static-cache generate by itself (forced here on CPU): the
    prefill with the patches runs eagerly, the compiled decode steps are text; fullgraph=True raises on a graph break."""
    import torch._dynamo
    from torch._dynamo.utils import counters
    from transformers import CompileConfig

    model, prompt = sharp_model(), prompts(kind)
    compile_config = CompileConfig(fullgraph=True, backend="eager", mode="default")
    compile_config._compile_all_devices = True  # transformers compiles on CUDA only by default
    torch._dynamo.reset()
    counters.clear()
    compiled = model.generate(
        **prompt, max_new_tokens=5, cache_implementation="static", compile_config=compile_config, **GREEDY
    )
    assert counters["stats"]["unique_graphs"] >= 1  # the decode steps did go through torch.compile
    assert torch.equal(compiled, model.generate(**prompt, max_new_tokens=5, **GREEDY))


@pytest.mark.parametrize("kind", PROMPT_KINDS)
def test_continuing_from_a_returned_cache_equals_generating_at_once(kind):
    """The call a user types: the prompt's inputs with the sequences so far, their attention mask and the cache. The
    per-token inputs (local positions, patch mask) stay the prompt's: the tokens after them are generated text."""
    model, prompt = sharp_model(), prompts(kind)
    greedy = dict(GREEDY, return_dict_in_generate=True)
    at_once = model.generate(**prompt, max_new_tokens=5, **greedy)
    first = model.generate(**prompt, max_new_tokens=2, **greedy)
    grown = first.sequences.shape[1] - prompt["input_ids"].shape[1]
    attention_mask = torch.cat([prompt["attention_mask"], torch.ones(first.sequences.shape[0], grown).long()], 1)
    continued = dict(prompt, input_ids=first.sequences, attention_mask=attention_mask)
    rest = model.generate(**continued, cache=first.cache, max_new_tokens=3, **greedy)
    assert torch.equal(rest.sequences, at_once.sequences)
    assert len(rest.cache.layers) == len(at_once.cache.layers) == model.config.num_hidden_layers
    for continued_layer, whole_layer in zip(rest.cache.layers, at_once.cache.layers):
        torch.testing.assert_close(continued_layer.keys, whole_layer.keys)
        torch.testing.assert_close(continued_layer.values, whole_layer.values)


@pytest.mark.parametrize("name", ["local_positions", "patch_mask"])
def test_per_token_inputs_longer_than_the_sequence_are_refused(name):
    model, prompt = sharp_model(), prompts("episode")
    value = prompt[name]
    prompt[name] = torch.cat([value, value[:, -1:]], dim=1)
    with pytest.raises(ValueError, match=rf"{name}: expected at most one column per token .*input_ids has 22"):
        model.generate(**prompt, max_new_tokens=1, **GREEDY)


@pytest.mark.parametrize("kind", PROMPT_KINDS)
@pytest.mark.parametrize("assistant", ["prompt lookup", "the model itself", "another model"])
def test_assisted_decoding_generates_what_greedy_generates(kind, assistant):
    """Assisted decoding verifies the candidate tokens with the model's greedy choice: the tokens are the same
    whether all candidates are accepted (the model itself), none (another random model) or some (prompt lookup)."""
    model, prompt = sharp_model(), prompts(kind, rows=(1,))  # transformers assists one prompt at a time
    expected = model.generate(**prompt, max_new_tokens=6, **GREEDY)
    helper = {
        "prompt lookup": dict(prompt_lookup_num_tokens=2),
        "the model itself": dict(assistant_model=model),
        "another model": dict(assistant_model=sharp_model(seed=1)),
    }[assistant]
    assert torch.equal(model.generate(**prompt, max_new_tokens=6, **helper, **GREEDY), expected)


def test_assisted_decoding_of_a_batch_is_refused_with_a_clear_error():
    """transformers' assisted decoding takes one prompt; Gato does not work around it."""
    model = sharp_model()
    with pytest.raises(ValueError, match="batch_size = 1"):
        model.generate(**prompts("caption"), max_new_tokens=2, prompt_lookup_num_tokens=2, **GREEDY)


@pytest.mark.parametrize(
    "mode",
    [
        dict(penalty_alpha=0.6, top_k=4),  # contrastive search
        dict(dola_layers="low"),
        dict(num_beams=2, num_beam_groups=2, diversity_penalty=1.0),
        dict(num_beams=2, force_words_ids=[[5]]),  # constrained beam search
    ],
)
def test_the_decoding_methods_transformers_moved_to_the_hub_are_refused_with_a_clear_error(mode):
    """transformers 5 moved these to `custom_generate` repositories on the Hub, which it loads only with
    trust_remote_code=True; gato ships no copy of them."""
    with pytest.raises(ValueError, match="trust_remote_code=True"):
        sharp_model().generate(**prompts("text"), max_new_tokens=2, **mode, **GREEDY)


# --- stopping ------------------------------------------------------------------------------------------------------


def test_eos_ends_a_row_which_is_then_padded_and_min_new_tokens_holds_it_back():
    model, prompt, steps = sharp_model(), prompts("text"), 6
    free = generated(model.generate(**prompt, max_new_tokens=steps, **GREEDY), prompt)
    assert free.shape == (2, steps)  # max_new_tokens, exactly, when nothing stops the rows
    # End-of-sequence: the token row 0 generates third, which row 1 never generates.
    eos = int(free[0, 2])
    assert eos not in free[0, :2].tolist() and eos not in free[1].tolist()
    stopped = generated(model.generate(**prompt, max_new_tokens=steps, **dict(GREEDY, eos_token_id=eos)), prompt)
    assert torch.equal(stopped[0, :3], free[0, :3])
    assert (stopped[0, 3:] == tl.PAD_TOKEN_ID).all()  # a finished row is padded while the other row goes on
    assert torch.equal(stopped[1], free[1])
    held = generated(
        model.generate(**prompt, max_new_tokens=steps, min_new_tokens=5, **dict(GREEDY, eos_token_id=eos)), prompt
    )
    assert eos not in held[0, :5].tolist()
    assert torch.equal(held[0, :2], free[0, :2]) and not torch.equal(held[0], stopped[0])
    # Both rows ending at their first token stops the whole batch there.
    both = model.generate(
        **prompt, max_new_tokens=steps, **dict(GREEDY, eos_token_id=[int(free[0, 0]), int(free[1, 0])])
    )
    assert torch.equal(generated(both, prompt), free[:, :1])
