"""The chunked output layer + cross-entropy: the plain path's loss and gradients, without the full logits."""

import gato.modeling_gato.modeling_gato as modeling
import pytest
import torch
import torch.nn.functional as F
from gato.modeling_gato import GatoConfig, GatoForCausalLM
from gato.modeling_gato.loss_gato import linear_cross_entropy
from gato.suite.token_layout import IGNORE_INDEX


def _inputs(rows: int = 37, hidden: int = 16, vocab: int = 50, seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    states = torch.randn(rows, hidden, generator=generator, requires_grad=True)
    weight = torch.randn(vocab, hidden, generator=generator, requires_grad=True)
    targets = torch.randint(0, vocab, (rows,), generator=generator)
    return states, weight, targets


def _loss_and_grads(loss_fn, states, weight, targets, autocast: bool = False):
    states, weight = states.detach().clone().requires_grad_(), weight.detach().clone().requires_grad_()
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
        loss = loss_fn(states, weight, targets)
    (3.0 * loss).backward()  # a non-unit incoming gradient must scale the stored ones
    return loss.detach(), states.grad, weight.grad


def _plain(states, weight, targets):
    return F.cross_entropy(F.linear(states, weight).float(), targets, reduction="sum")


@pytest.mark.parametrize("chunk_size", [1, 8, 37, 1000])
def test_float32_matches_the_plain_loss_and_gradients(chunk_size):
    inputs = _inputs()
    expected = _loss_and_grads(_plain, *inputs)
    got = _loss_and_grads(lambda s, w, t: linear_cross_entropy(s, w, t, chunk_size=chunk_size), *inputs)
    assert got[0].dtype == torch.float32
    for actual, reference in zip(got, expected):
        torch.testing.assert_close(actual, reference, rtol=1e-5, atol=1e-5)


def test_bf16_autocast_matches_the_plain_path_to_bf16_rounding():
    inputs = _inputs(rows=64, hidden=32, vocab=300)
    expected = _loss_and_grads(_plain, *inputs, autocast=True)
    got = _loss_and_grads(lambda s, w, t: linear_cross_entropy(s, w, t, chunk_size=16), *inputs, autocast=True)
    exact = _loss_and_grads(_plain, *inputs)
    torch.testing.assert_close(got[0], expected[0], rtol=2e-3, atol=1e-2)
    for actual, reference in zip(got[1:], expected[1:]):
        assert actual.dtype == torch.float32
        torch.testing.assert_close(actual, reference, rtol=2e-2, atol=2e-2)
    # It really computed in bf16: it is further from the float32 result than float32 rounding.
    assert not torch.allclose(got[2], exact[2], rtol=1e-5, atol=1e-6)


def test_no_gradient_mode_gives_the_loss_only():
    states, weight, targets = _inputs()
    with torch.no_grad():
        loss = linear_cross_entropy(states, weight, targets, chunk_size=5)
    torch.testing.assert_close(loss, _plain(states, weight, targets).detach(), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
    ("states", "weight", "targets", "message"),
    [
        (torch.zeros(4, 8), torch.zeros(10, 6), torch.zeros(4, dtype=torch.long), "hidden must be"),
        (torch.zeros(4, 8), torch.zeros(10, 8), torch.zeros(3, dtype=torch.long), "targets must be"),
    ],
)
def test_mismatched_shapes_are_named(states, weight, targets, message):
    with pytest.raises(ValueError, match=message):
        linear_cross_entropy(states, weight, targets)


def _tiny_batch():
    generator = torch.Generator().manual_seed(1)
    ids = torch.randint(0, 1000, (3, 20), generator=generator)
    labels = ids.clone()
    labels[0, :7] = IGNORE_INDEX
    mask = torch.ones_like(ids)
    mask[2, 15:] = 0
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}


def _model_step(monkeypatch, fused: bool):
    if not fused:
        monkeypatch.setattr(modeling, "fused_loss_applies", lambda training, weight: False)
    torch.manual_seed(0)
    model = GatoForCausalLM(GatoConfig.from_preset("gato-tiny", max_position_embeddings=32)).train()
    output = model(**_tiny_batch(), use_cache=False)
    output.loss.backward()
    monkeypatch.undo()
    return output, {name: p.grad for name, p in model.named_parameters()}


def test_training_forward_takes_the_chunked_path_with_the_same_loss_and_gradients(monkeypatch):
    plain, plain_grads = _model_step(monkeypatch, fused=False)
    fused, fused_grads = _model_step(monkeypatch, fused=True)
    assert plain.logits is not None and fused.logits is None  # the chunked path never built the logits
    torch.testing.assert_close(fused.loss, plain.loss, rtol=1e-5, atol=1e-6)
    assert fused_grads.keys() == plain_grads.keys()
    for name, grad in plain_grads.items():
        torch.testing.assert_close(fused_grads[name], grad, rtol=1e-4, atol=1e-6, msg=name)


def test_evaluation_forward_keeps_the_logits():
    torch.manual_seed(0)
    model = GatoForCausalLM(GatoConfig.from_preset("gato-tiny", max_position_embeddings=32)).eval()
    batch = _tiny_batch()
    output = model(**batch, use_cache=False)
    targets = int(((batch["labels"][:, 1:] != IGNORE_INDEX) & batch["attention_mask"][:, 1:].bool()).sum())
    assert output.logits.shape == (targets, model.config.vocab_size)


def test_skip_logits_overrides_the_mode(monkeypatch):
    torch.manual_seed(0)
    model = GatoForCausalLM(GatoConfig.from_preset("gato-tiny", max_position_embeddings=32))
    batch = _tiny_batch()
    assert model.train()(**batch, skip_logits=False).logits is not None
    skipped = model.eval()(**batch, skip_logits=True)
    assert skipped.logits is None
    torch.testing.assert_close(skipped.loss, model(**batch).loss, rtol=1e-5, atol=1e-6)
