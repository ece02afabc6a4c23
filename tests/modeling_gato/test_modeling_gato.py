"""GatoForCausalLM on the tiny config: forward/backward, masked loss, KV cache, embeddings, generate, sizes.

The builders at the top (tiny config, hand-made batches in the processor contract, a stand-in tokenizer)
are imported by the other modeling test files.
"""

from __future__ import annotations

import numpy as np
import torch
from gato.modeling_gato import GatoConfig, GatoForCausalLM
from gato.suite import token_layout as tl
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import PreTrainedTokenizerFast


def tiny_config(**overrides) -> GatoConfig:
    return GatoConfig.from_preset("gato-tiny", **overrides)


def tiny_model(seed: int = 0, **overrides) -> GatoForCausalLM:
    torch.manual_seed(seed)
    return GatoForCausalLM(tiny_config(**overrides)).eval()


def control_batch(batch: int = 2, seed: int = 0) -> dict[str, torch.Tensor]:
    """Two image time steps per row, right padding on row 1: ``[2 patches, 2 values, |, 2 actions] x 2``.

    Row 0 has 14 tokens, row 1 the first time step only (7 tokens, then padding), so padding and
    ``patch_valid`` are both exercised.
    """
    g = torch.Generator().manual_seed(seed)
    step = 7  # 2 patches + 2 values + separator + 2 actions
    length = 2 * step
    input_ids = torch.randint(
        tl.CONTINUOUS_OFFSET, tl.CONTINUOUS_OFFSET + tl.CONTINUOUS_BINS, (batch, length), generator=g
    )
    local = torch.tensor([0, 1, 2, 3, tl.LOCAL_POSITION_NONE, tl.LOCAL_POSITION_ACTION, tl.LOCAL_POSITION_ACTION] * 2)
    patch_mask = torch.tensor([True, True, False, False, False, False, False] * 2)
    loss_mask = (local == tl.LOCAL_POSITION_ACTION).long()
    input_ids[:, patch_mask] = tl.PATCH_PLACEHOLDER_ID
    input_ids[:, local == tl.LOCAL_POSITION_NONE] = tl.SEPARATOR_TOKEN_ID
    attention_mask = torch.ones(batch, length, dtype=torch.long)
    patch_valid = torch.ones(batch, 4, dtype=torch.bool)
    patch_mask = patch_mask.expand(batch, -1).clone()
    if batch > 1:  # row 1: one time step, then padding
        attention_mask[1, step:] = 0
        patch_mask[1, step:] = False
        patch_valid[1, 2:] = False
        input_ids[1, step:] = tl.PAD_TOKEN_ID
    loss_mask = loss_mask.expand(batch, -1) * attention_mask
    local_positions = torch.where(attention_mask.bool(), local.expand(batch, -1), tl.LOCAL_POSITION_NONE)
    rows = torch.tensor([[0, 64], [64, 128]]).repeat(2, 1)  # two patches stacked vertically per image
    return {
        "input_ids": input_ids,
        "attention_mask": attention_mask,
        "loss_mask": loss_mask,
        "labels": torch.where(loss_mask.bool(), input_ids, tl.IGNORE_INDEX),
        "local_positions": local_positions,
        "patch_mask": patch_mask,
        "patch_pixels": torch.rand(batch, 4, 3, 16, 16, generator=g) / 2 - 0.25,
        "patch_rows": rows.expand(batch, -1, -1).clone(),
        "patch_cols": torch.tensor([0, 128]).expand(batch, 4, 2).clone(),
        "patch_valid": patch_valid,
    }


def stand_in_tokenizer() -> PreTrainedTokenizerFast:
    """A word-level tokenizer with the layout's special ids, so processor tests need no SentencePiece model."""
    vocab = {"<pad>": tl.PAD_TOKEN_ID, "<unk>": tl.UNK_TOKEN_ID, "<s>": tl.BOS_TOKEN_ID, "</s>": tl.EOS_TOKEN_ID}
    vocab.update({word: 4 + i for i, word in enumerate("a cat on the mat go left right".split())})
    backend = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    return PreTrainedTokenizerFast(
        tokenizer_object=backend, pad_token="<pad>", unk_token="<unk>", bos_token="<s>", eos_token="</s>"
    )


def tiny_processor(height: int = 16, width: int = 32):
    from gato.processing.image_processing_gato import GatoImageProcessor
    from gato.processing.processing_gato import GatoProcessor

    return GatoProcessor(
        tokenizer=stand_in_tokenizer(), image_processor=GatoImageProcessor(size={"height": height, "width": width})
    )


def random_image(rng: np.random.Generator, height: int = 16, width: int = 32) -> np.ndarray:
    return rng.integers(0, 256, (height, width, 3), dtype=np.uint8)


# --- forward / backward -------------------------------------------------------------------------------------


def test_forward_backward_reaches_every_parameter():
    model = tiny_model().train()
    batch = control_batch()
    out = model(**batch)
    assert out.loss is not None and torch.isfinite(out.loss)
    out.loss.backward()
    no_grad = [name for name, p in model.named_parameters() if p.grad is None or not torch.any(p.grad != 0)]
    assert no_grad == []


def test_text_only_training_step_still_reaches_every_parameter():
    """Data-parallel training needs every parameter in every step's graph, images or not (zero gradients)."""
    model = tiny_model().train()
    ids = torch.randint(4, 1000, (2, 6))
    model(input_ids=ids, labels=ids).loss.backward()
    missing = [name for name, p in model.named_parameters() if p.grad is None]
    assert missing == []
    assert torch.count_nonzero(model.model.embed_patches.projection.weight.grad) == 0
    model.eval()
    with torch.no_grad():  # outside training nothing changes
        torch.testing.assert_close(model(input_ids=ids).logits, tiny_model()(input_ids=ids).logits, rtol=0, atol=0)


def test_image_free_training_step_runs_the_patch_embedding_through_its_modules_and_draws_no_random_number():
    """DeepSpeed ZeRO-3 gathers a module's partitioned parameters in its forward hooks and checks that the ranks call
    the same modules: the zero-gradient stand-in for an image-free batch must call the patch and local-position
    embeddings' modules as a real image does, and must not draw random numbers (the training run's random stream
    stays the one without it)."""
    model = tiny_model().train()
    calls = []
    for name, module in model.model.named_modules():
        if name.startswith(("embed_patches", "embed_local_positions")):
            module.register_forward_hook(lambda module, args, output, name=name: calls.append(name))
    batch = control_batch()  # images and local positions
    model(**batch)
    with_image, calls[:] = list(calls), []
    ids = torch.randint(4, 1000, (2, 6))
    state = torch.get_rng_state()
    model(input_ids=ids, labels=ids).loss.backward()
    assert torch.equal(torch.get_rng_state(), state)
    assert calls == with_image


def test_loss_logits_only_at_targets():
    model = tiny_model()
    batch = control_batch()
    out = model(**batch)
    num_targets = int(batch["loss_mask"][:, 1:].sum())
    assert out.logits.shape == (num_targets, model.config.vocab_size)


def test_loss_is_mean_next_token_cross_entropy_over_targets():
    model = tiny_model()
    batch = control_batch()
    loss = model(**batch).loss
    full = model(**{k: v for k, v in batch.items() if k not in ("labels", "loss_mask")}).logits  # (B, L, V)
    targets = batch["labels"][:, 1:]
    keep = batch["loss_mask"][:, 1:].bool()
    expected = torch.nn.functional.cross_entropy(full[:, :-1][keep], targets[keep])
    torch.testing.assert_close(loss, expected, rtol=1e-5, atol=1e-6)


def test_changing_observation_targets_leaves_loss_unchanged():
    model = tiny_model()
    batch = control_batch()
    batch["labels"] = batch["input_ids"].clone()  # labels everywhere: the loss mask alone must select targets
    loss = model(**batch).loss
    observation = batch["loss_mask"] == 0
    batch["labels"] = torch.where(observation, torch.randint(0, 1000, batch["labels"].shape), batch["labels"])
    torch.testing.assert_close(model(**batch).loss, loss, rtol=0, atol=0)
    batch["labels"][:, -1] = (batch["labels"][:, -1] + 1) % model.config.vocab_size  # an action target: changes
    assert not torch.equal(model(**batch).loss, loss)


def test_num_items_in_batch_divides_the_summed_loss():
    model = tiny_model()
    batch = control_batch()
    mean = model(**batch).loss
    num_targets = int(batch["loss_mask"][:, 1:].sum())
    summed = model(**batch, num_items_in_batch=torch.tensor(1)).loss
    torch.testing.assert_close(summed / num_targets, mean, rtol=1e-5, atol=1e-6)


def test_text_only_forward_behaves_like_a_causal_lm():
    model = tiny_model()
    ids = torch.randint(4, 1000, (2, 9))
    out = model(input_ids=ids)
    assert out.logits.shape == (2, 9, model.config.vocab_size)
    assert out.cache is not None and out.cache.get_seq_length() == 9
    assert model(input_ids=ids, use_cache=False).cache is None
    last = model(input_ids=ids, logits_to_keep=1).logits
    torch.testing.assert_close(last, out.logits[:, -1:], rtol=1e-5, atol=1e-5)


def test_padding_does_not_change_real_positions():
    model = tiny_model()
    batch = control_batch()
    full = model(**{k: v[:1] for k, v in batch.items() if k not in ("labels", "loss_mask")}).logits
    short = {k: v[:1] for k, v in batch.items() if k not in ("labels", "loss_mask")}
    short = {
        **short,
        "input_ids": short["input_ids"][:, :7],
        "attention_mask": short["attention_mask"][:, :7],
        "local_positions": short["local_positions"][:, :7],
        "patch_mask": short["patch_mask"][:, :7],
        "patch_valid": torch.tensor([[True, True, False, False]]),
    }
    torch.testing.assert_close(model(**short).logits, full[:, :7], rtol=1e-5, atol=1e-5)


def test_patch_count_mismatch_is_a_value_error():
    model = tiny_model()
    batch = control_batch()
    batch["patch_valid"][1, 2] = True
    try:
        model(**batch)
    except ValueError as error:
        assert "patch_valid" in str(error)
    else:
        raise AssertionError("expected a ValueError")


# --- KV cache -------------------------------------------------------------------------------------------------


def test_cached_step_by_step_logits_equal_full_sequence_logits():
    """Prefill the first time step (with its patches), then feed the rest one token at a time (tol 1e-5)."""
    model = tiny_model()
    batch = {k: v[:1] for k, v in control_batch().items() if k not in ("labels", "loss_mask", "attention_mask")}
    full = model(**batch).logits[0]
    prefix = 7
    first = {
        "input_ids": batch["input_ids"][:, :prefix],
        "local_positions": batch["local_positions"][:, :prefix],
        "patch_mask": batch["patch_mask"][:, :prefix],
        "patch_pixels": batch["patch_pixels"][:, :2],
        "patch_rows": batch["patch_rows"][:, :2],
        "patch_cols": batch["patch_cols"][:, :2],
    }
    out = model(**first, use_cache=True)
    logits = [out.logits[0]]
    cache = out.cache
    for position in range(prefix, batch["input_ids"].shape[1]):
        step = {
            "input_ids": batch["input_ids"][:, position : position + 1],
            "local_positions": batch["local_positions"][:, position : position + 1],
        }
        if batch["patch_mask"][0, position]:
            patch = int(batch["patch_mask"][0, :position].sum())
            step.update(
                patch_mask=batch["patch_mask"][:, position : position + 1],
                patch_pixels=batch["patch_pixels"][:, patch : patch + 1],
                patch_rows=batch["patch_rows"][:, patch : patch + 1],
                patch_cols=batch["patch_cols"][:, patch : patch + 1],
            )
        out = model(**step, cache=cache, use_cache=True)
        cache = out.cache
        logits.append(out.logits[0])
    torch.testing.assert_close(torch.cat(logits), full, rtol=1e-5, atol=1e-5)


def test_learned_global_positions_work_with_the_cache():
    model = tiny_model(position_embedding_type="learned")
    ids = torch.randint(4, 1000, (1, 8))
    full = model(input_ids=ids).logits
    out = model(input_ids=ids[:, :5], use_cache=True)
    rest = model(input_ids=ids[:, 5:], cache=out.cache, use_cache=True).logits
    torch.testing.assert_close(torch.cat([out.logits, rest], 1), full, rtol=1e-5, atol=1e-5)


# --- embeddings -----------------------------------------------------------------------------------------------


def test_patch_position_is_middle_in_eval_and_uniform_in_train():
    model = tiny_model()
    embed = model.model.embed_patches
    interval = torch.tensor([[51, 77]]).expand(4000, 2)  # the spec's example: columns [0.4, 0.6]
    assert embed.position_index(interval).unique().tolist() == [64]
    embed.train()
    torch.manual_seed(0)
    samples = embed.position_index(interval)
    assert samples.min() >= 51 and samples.max() <= 76
    assert samples.unique().numel() == 26  # every bin of [51, 77) is drawn
    counts = torch.bincount(samples - 51).float()
    assert counts.min() > 0.5 * counts.mean()


def test_patch_embeddings_random_in_train_deterministic_in_eval():
    model = tiny_model()
    batch = control_batch()
    a, b = model(**batch).loss, model(**batch).loss
    assert torch.equal(a, b)
    model.train()
    torch.manual_seed(1)
    c = model(**batch).loss
    torch.manual_seed(2)
    assert not torch.equal(c, model(**batch).loss)


def test_local_positions_none_adds_nothing_and_actions_share_one_embedding():
    model = tiny_model()
    local = torch.tensor([[tl.LOCAL_POSITION_NONE, 0, 1, tl.LOCAL_POSITION_ACTION, tl.LOCAL_POSITION_ACTION, 10_000]])
    emb = model.model.embed_local_positions_of(local, torch.float32)[0]
    assert torch.equal(emb[0], torch.zeros_like(emb[0]))
    assert torch.equal(emb[3], emb[4]) and not torch.equal(emb[1], emb[2]) and not torch.equal(emb[1], emb[3])
    last = model.model.embed_local_positions.weight[model.config.max_local_positions - 1]
    assert torch.equal(emb[5], last)  # beyond the table: shares the last observation index
    ids = torch.randint(4, 1000, (1, 6))
    none = torch.full_like(ids, tl.LOCAL_POSITION_NONE)
    torch.testing.assert_close(model(input_ids=ids, local_positions=none).logits, model(input_ids=ids).logits)


def test_gradient_checkpointing_gives_the_same_gradients():
    batch = control_batch()
    grads = []
    for checkpointing in (False, True):
        model = tiny_model().train()
        if checkpointing:
            model.activation_checkpointing_enable()
        model(**batch).loss.backward()
        grads.append(model.model.layers[0].mlp.fc_in.weight.grad.clone())
    torch.testing.assert_close(grads[0], grads[1], rtol=1e-5, atol=1e-6)


# --- generate ---------------------------------------------------------------------------------------------------


def caption_prompt(seed: int = 0) -> dict[str, torch.Tensor]:
    """A caption prompt as the processor lays it out: the image's patches, then ``bos``."""
    processor = tiny_processor()
    sequence = processor.tokenize_caption(random_image(np.random.default_rng(seed)), "a cat")
    prompt_length = int(sequence["patch_mask"].sum()) + 1  # patches + bos
    batch = processor.collate(
        [{k: (v[:prompt_length] if v.shape[:1] == sequence["input_ids"].shape else v) for k, v in sequence.items()}]
    )
    return {k: v for k, v in batch.items() if k not in ("labels", "loss_mask")}


def test_generate_caption_from_image_prompt_matches_full_recompute():
    model = tiny_model()
    prompt = caption_prompt()
    assert prompt["patch_mask"].any() and prompt["input_ids"][0, -1] == tl.BOS_TOKEN_ID
    generated = model.generate(**prompt, max_new_tokens=5, do_sample=False, eos_token_id=None, pad_token_id=0)
    length = prompt["input_ids"].shape[1]
    assert generated.shape == (1, length + 5)
    # Greedy tokens recomputed without a cache, the image patches in every forward.
    ids = prompt["input_ids"]
    for _ in range(5):
        extra = ids.shape[1] - length
        pad = lambda t, value: torch.cat([t, torch.full((1, extra), value, dtype=t.dtype)], 1)  # noqa: E731
        logits = model(
            input_ids=ids,
            attention_mask=pad(prompt["attention_mask"], 1),
            local_positions=pad(prompt["local_positions"], tl.LOCAL_POSITION_NONE),
            patch_mask=pad(prompt["patch_mask"], False),
            patch_pixels=prompt["patch_pixels"],
            patch_rows=prompt["patch_rows"],
            patch_cols=prompt["patch_cols"],
            use_cache=False,
        ).logits
        ids = torch.cat([ids, logits[:, -1:].argmax(-1)], 1)
    assert torch.equal(generated, ids)
    uncached = model.generate(
        **prompt, max_new_tokens=5, do_sample=False, eos_token_id=None, pad_token_id=0, use_cache=False
    )
    assert torch.equal(uncached, generated)


def test_generate_text():
    model = tiny_model()
    ids = torch.tensor([[tl.BOS_TOKEN_ID, 10, 11]])
    out = model.generate(
        ids, attention_mask=torch.ones_like(ids), max_new_tokens=4, do_sample=False, eos_token_id=None
    )
    assert out.shape == (1, 7) and torch.equal(out[:, :3], ids)


# --- sizes -------------------------------------------------------------------------------------------------------


def test_preset_parameter_counts_beside_the_paper():
    from gato.modeling_gato import PAPER_PARAMETER_COUNTS

    print("\npreset        ours (M)   paper (M)   ratio")
    for name, paper in PAPER_PARAMETER_COUNTS.items():
        with torch.device("meta"):  # no memory: only shapes
            model = GatoForCausalLM(GatoConfig.from_preset(name))
        ours = sum(p.numel() for p in model.parameters())  # the tied output layer counts once
        print(f"{name:<12} {ours / 1e6:9.1f} {paper / 1e6:11.1f} {ours / paper:7.3f}")
        assert 0.8 < ours / paper < 1.25, (name, ours, paper)


def test_unknown_preset_lists_the_known_ones():
    try:
        GatoConfig.from_preset("gato-7b")
    except ValueError as error:
        assert "gato-79m" in str(error) and "gato-tiny" in str(error)
    else:
        raise AssertionError("expected a ValueError")


# --- transformers conventions -------------------------------------------------------------------------------------


def test_shift_labels_give_the_same_loss_as_labels_and_loss_mask():
    """Pre-shifted targets (sequence/context parallelism): position l predicts shift_labels[:, l]."""
    model = tiny_model()
    batch = control_batch()
    expected = model(**batch)
    targets = torch.where(batch["loss_mask"].bool() & batch["attention_mask"].bool(), batch["labels"], tl.IGNORE_INDEX)
    shift_labels = torch.cat([targets[:, 1:], torch.full_like(targets[:, :1], tl.IGNORE_INDEX)], dim=1)
    inputs = {k: v for k, v in batch.items() if k not in ("labels", "loss_mask")}
    shifted = model(**inputs, shift_labels=shift_labels)
    torch.testing.assert_close(shifted.loss, expected.loss, rtol=0, atol=0)
    assert torch.equal(shifted.logits, expected.logits)
    # shift_labels win over labels (transformers' rule); a rank holding half the sequence computes its own part.
    wrong = torch.zeros_like(batch["labels"])
    torch.testing.assert_close(
        model(**inputs, labels=wrong, shift_labels=shift_labels).loss, expected.loss, rtol=0, atol=0
    )


def test_loss_mask_beside_shift_labels_is_refused():
    model = tiny_model()
    batch = control_batch()
    try:
        model(**batch, shift_labels=batch["labels"])
    except ValueError as error:
        assert "loss_mask" in str(error) and "shift_labels" in str(error)
    else:
        raise AssertionError("expected a ValueError")


def test_generate_continues_from_a_returned_cache_with_an_image_prompt():
    """A caption prompt's per-token inputs (local_positions, patch_mask, patches) are cut to the uncached tokens."""
    model = tiny_model()
    prompt = caption_prompt()
    greedy = dict(do_sample=False, eos_token_id=None, pad_token_id=0)
    at_once = model.generate(**prompt, max_new_tokens=6, **greedy)
    first = model.generate(**prompt, max_new_tokens=3, return_dict_in_generate=True, **greedy)
    length = first.sequences.shape[1]
    tail = length - prompt["input_ids"].shape[1]
    continued = dict(prompt, input_ids=first.sequences, attention_mask=torch.ones_like(first.sequences))
    continued["local_positions"] = torch.cat(
        [prompt["local_positions"], torch.full((1, tail), tl.LOCAL_POSITION_NONE)], 1
    )
    continued["patch_mask"] = torch.cat([prompt["patch_mask"], torch.zeros(1, tail, dtype=torch.bool)], 1)
    second = model.generate(**continued, cache=first.cache, max_new_tokens=3, **greedy)
    assert torch.equal(second, at_once)


def test_generate_from_a_cache_that_ends_inside_the_image():
    """Only some of the prompt's patches are cached: the remaining ones must still reach the model, in order."""
    model = tiny_model()
    prompt = caption_prompt()
    greedy = dict(do_sample=False, eos_token_id=None, pad_token_id=0)
    at_once = model.generate(**prompt, max_new_tokens=3, **greedy)
    cached = 1  # the first patch only
    first = {
        k: (v[:, :cached] if k in ("input_ids", "attention_mask", "local_positions", "patch_mask") else v)
        for k, v in prompt.items()
    }
    first["patch_valid"] = torch.arange(prompt["patch_pixels"].shape[1])[None] < cached
    cache = model(**first, use_cache=True).cache
    assert torch.equal(model.generate(**prompt, cache=cache, max_new_tokens=3, **greedy), at_once)


def test_training_batches_can_be_passed_to_generate():
    """labels / loss_mask are targets: generate drops them (as transformers drops labels) instead of crashing."""
    model = tiny_model()
    batch = {k: v[:1] for k, v in control_batch().items()}
    expected = model.generate(
        **{k: v for k, v in batch.items() if k not in ("labels", "loss_mask")},
        max_new_tokens=2,
        do_sample=False,
        eos_token_id=None,
        pad_token_id=0,
    )
    assert torch.equal(
        model.generate(**batch, max_new_tokens=2, do_sample=False, eos_token_id=None, pad_token_id=0), expected
    )


def test_generate_with_a_static_cache_equals_the_dynamic_cache():
    model = tiny_model(initializer_range=0.2)  # sharper logits: the greedy tokens depend on the positions
    ids = torch.tensor([[tl.BOS_TOKEN_ID, 10, 11, 12]])
    kwargs = dict(
        attention_mask=torch.ones_like(ids), max_new_tokens=6, do_sample=False, eos_token_id=None, pad_token_id=0
    )
    dynamic = model.generate(ids, **kwargs)
    static = model.generate(ids, cache_implementation="static", **kwargs)
    assert torch.equal(static, dynamic) and len(set(dynamic[0, 4:].tolist())) > 1


def test_text_only_forward_compiles_as_one_graph():
    """Why `_can_compile_fullgraph = True`: the text forward has no graph break (fullgraph=True would raise)."""
    import torch._dynamo

    model = tiny_model()
    ids = torch.randint(4, 1000, (2, 5))
    torch._dynamo.reset()
    compiled = torch.compile(model, fullgraph=True, backend="eager")
    torch.testing.assert_close(
        compiled(input_ids=ids, use_cache=False).logits, model(input_ids=ids, use_cache=False).logits
    )
    assert type(model)._can_compile_fullgraph


def test_generate_from_inputs_embeds_equals_generate_from_ids():
    """generate() accepts a prompt as inputs_embeds (it reads prepare_inputs_for_generation's signature for it)."""
    model = tiny_model(initializer_range=0.2)
    ids = torch.randint(4, 1000, (2, 6))
    kwargs = dict(
        attention_mask=torch.ones_like(ids), max_new_tokens=4, do_sample=False, eos_token_id=None, pad_token_id=0
    )
    from_ids = model.generate(ids, **kwargs)
    from_embeds = model.generate(inputs_embeds=model.get_input_embeddings()(ids), **kwargs)
    assert torch.equal(from_embeds, from_ids[:, ids.shape[1] :])


def test_static_cache_generate_compiles_its_decode_steps_as_one_graph():
    """generate(cache_implementation="static") compiles the forward when the hardware allows it (CUDA; here forced):
    with fullgraph=True any graph break, e.g. an input check that reads values, would raise; the tokens equal eager."""
    import torch._dynamo
    from torch._dynamo.utils import counters
    from transformers import CompileConfig

    model = tiny_model(initializer_range=0.2)
    ids = torch.tensor([[tl.BOS_TOKEN_ID, 10, 11, 12]])
    kwargs = dict(
        attention_mask=torch.ones_like(ids), max_new_tokens=5, do_sample=False, eos_token_id=None, pad_token_id=0
    )
    compile_config = CompileConfig(fullgraph=True, backend="eager", mode="default")
    compile_config._compile_all_devices = True  # transformers compiles on CUDA only by default
    torch._dynamo.reset()
    counters.clear()
    compiled = model.generate(ids, cache_implementation="static", compile_config=compile_config, **kwargs)
    assert counters["stats"]["unique_graphs"] >= 1  # the decode steps did go through torch.compile
    assert torch.equal(compiled, model.generate(ids, **kwargs))
