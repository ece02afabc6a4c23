"""The loop's step-time breakdown: how much of each optimizer step waits for the data loader."""

import time
from types import SimpleNamespace

import torch
from gato.training.config import TrainingConfig
from gato.training.loop import train
from torch import nn


class _Bigram(nn.Module):
    def __init__(self):
        super().__init__()
        self.config = SimpleNamespace(num_hidden_layers=1, hidden_size=8)
        self.embed = nn.Embedding(12, 8)
        self.head = nn.Linear(8, 12)

    def forward(self, input_ids, attention_mask, labels, use_cache=False):
        logits = self.head(self.embed(input_ids))[:, :-1]
        return SimpleNamespace(loss=nn.functional.cross_entropy(logits.reshape(-1, 12), labels[:, 1:].reshape(-1)))


class _Sequences(torch.utils.data.Dataset):
    def __init__(self, seconds_per_item=0.0):
        self.seconds_per_item = seconds_per_item

    def __len__(self):
        return 1_000

    def __getitem__(self, index):
        time.sleep(self.seconds_per_item)  # a slow decode / tokenization step
        return torch.randint(0, 12, (8,), generator=torch.Generator().manual_seed(index))


def _collate(items):
    ids = torch.stack(items)
    return {"input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": ids}


def _run(tmp_path, seconds_per_item, logging_steps=4):
    config = TrainingConfig(
        output_dir=str(tmp_path),
        max_steps=6,
        batch_size=4,
        save_steps=100,
        warmup_steps=1,
        logging_steps=logging_steps,
        report_to="none",
        num_workers=0,  # loading happens inside next(batches)
    )
    return train(config, _Bigram(), _Sequences(seconds_per_item), _collate)


def test_a_slow_loader_shows_as_data_wait(tmp_path):
    slow = _run(tmp_path / "slow", seconds_per_item=0.05)  # 200 ms of loading per step of a tiny model
    fast = _run(tmp_path / "fast", seconds_per_item=0.0)
    # every step's loading is counted as waiting (Accelerate's loader may fetch the first batch before step 1)
    assert slow.data_wait_seconds >= 5 * 4 * 0.05
    assert fast.data_wait_seconds < slow.data_wait_seconds - 0.8  # the same steps without the sleeps
    assert fast.data_wait_fraction < slow.data_wait_fraction
    for result in (slow, fast):
        assert 0.0 <= result.data_wait_seconds <= result.step_seconds


def test_steps_after_the_last_log_line_are_counted(tmp_path):
    # 6 steps logged every 4: steps 5 and 6 fall after the last window and must still be in the totals
    result = _run(tmp_path, seconds_per_item=0.01, logging_steps=4)
    assert result.data_wait_seconds >= 5 * 4 * 0.01
    summary = result.step_time_summary(6)
    assert "over 6 steps" in summary and "data wait" in summary and "compute" in summary
