"""AdamW decay groups and the warm-up + cosine-by-10× schedule (GATO_SPEC.md section 7)."""

import math

import pytest
from gato.training.config import TrainingConfig
from gato.training.optimization import build_optimizer, build_scheduler, parameter_groups
from torch import nn


class _Small(nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(10, 8)
        self.norm = nn.LayerNorm(8)
        self.group_norm = nn.GroupNorm(2, 8)
        self.linear = nn.Linear(8, 8)
        self.head = nn.Linear(8, 10, bias=False)
        self.head.weight = self.embed.weight  # tied, as Gato's output layer is


def test_only_matrices_outside_norms_and_embeddings_are_decayed():
    model = _Small()
    decay, no_decay = parameter_groups(model, weight_decay=0.1)
    decayed = {id(p) for p in decay["params"]}
    assert decayed == {id(model.linear.weight)}
    assert decay["weight_decay"] == 0.1 and no_decay["weight_decay"] == 0.0
    not_decayed = {id(p) for p in no_decay["params"]}
    for parameter in (
        model.embed.weight,
        model.norm.weight,
        model.norm.bias,
        model.group_norm.weight,
        model.linear.bias,
    ):
        assert id(parameter) in not_decayed


def test_tied_parameters_are_listed_once():
    decay, no_decay = parameter_groups(_Small(), weight_decay=0.1)
    ids = [id(p) for p in decay["params"] + no_decay["params"]]
    assert len(ids) == len(set(ids))


def test_optimizer_uses_the_papers_betas():
    optimizer = build_optimizer(_Small(), TrainingConfig())
    assert optimizer.defaults["betas"] == (0.9, 0.95)


def test_schedule_warms_up_linearly_then_decays_to_a_tenth():
    config = TrainingConfig(max_steps=100, warmup_steps=10, learning_rate=1e-3)
    optimizer = build_optimizer(_Small(), config)
    scheduler = build_scheduler(optimizer, config)
    lrs = []
    for _ in range(config.max_steps):
        lrs.append(scheduler.get_last_lr()[0])
        optimizer.step()
        scheduler.step()
    lrs.append(scheduler.get_last_lr()[0])
    assert lrs[0] == 0.0
    assert lrs[5] == pytest.approx(5e-4)
    assert lrs[10] == pytest.approx(1e-3)
    assert lrs[-1] == pytest.approx(1e-4)
    assert all(a >= b for a, b in zip(lrs[10:], lrs[11:]))
    assert lrs[55] == pytest.approx(1e-4 + 0.5 * (1e-3 - 1e-4), rel=1e-6)
    assert not any(math.isnan(lr) for lr in lrs)
