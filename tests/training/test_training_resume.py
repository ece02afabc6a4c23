"""Exact resume: a run stopped after a checkpoint and resumed repeats an uninterrupted run's losses."""

from types import SimpleNamespace

import torch
from torch import nn

from gato.training.config import TrainingConfig
from gato.training.loop import checkpoint_dirs, train


class _NoisyBigram(nn.Module):
    """Draws from the global RNG in forward (as Gato's patch-position sampling does), so RNG state matters."""

    def __init__(self):
        super().__init__()
        self.config = SimpleNamespace(num_hidden_layers=1, hidden_size=16)
        self.embed = nn.Embedding(12, 16)
        self.head = nn.Linear(16, 12)

    def forward(self, input_ids, attention_mask, labels, use_cache=False):
        hidden = self.embed(input_ids) + 0.1 * torch.randn(*input_ids.shape, 16)
        logits = self.head(hidden)[:, :-1]
        return SimpleNamespace(loss=nn.functional.cross_entropy(logits.reshape(-1, 12), labels[:, 1:].reshape(-1)))


class _IndexedSequences(torch.utils.data.Dataset):
    """Item i depends only on i: the contract the loop's exact resume relies on."""

    def __len__(self):
        return 10_000

    def __getitem__(self, index):
        half = torch.randint(0, 12, (6,), generator=torch.Generator().manual_seed(index))
        return torch.cat([half, half])


def _collate(items):
    ids = torch.stack(items)
    return {"input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": ids}


def _run(output_dir, resume=False, stop_after_steps=None):
    torch.manual_seed(0)
    config = TrainingConfig(
        output_dir=str(output_dir), max_steps=12, batch_size=4, gradient_accumulation_steps=2, save_steps=5,
        warmup_steps=2, learning_rate=3e-2, logging_steps=1, report_to="none", resume=resume,
    )
    return train(config, _NoisyBigram(), _IndexedSequences(), _collate, stop_after_steps=stop_after_steps)


def test_resumed_run_repeats_the_uninterrupted_losses(tmp_path):
    uninterrupted = _run(tmp_path / "a")
    killed = _run(tmp_path / "b", stop_after_steps=8)  # dies after step 8; last checkpoint at step 5
    assert killed.step == 8
    assert [int(p.name.split("-")[1]) for p in checkpoint_dirs(tmp_path / "b")] == [5]
    resumed = _run(tmp_path / "b", resume=True)
    assert resumed.step == 12
    assert resumed.losses == uninterrupted.losses[5:]
    assert uninterrupted.losses[-1] < uninterrupted.losses[0]


def test_checkpoints_beyond_the_limit_are_deleted(tmp_path):
    _run(tmp_path / "c")
    assert [int(p.name.split("-")[1]) for p in checkpoint_dirs(tmp_path / "c")] == [10, 12]
