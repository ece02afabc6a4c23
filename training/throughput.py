"""Throughput of the training loop: step time, data wait, tokens per second and MFU (nanoGPT's estimate)."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import torch
from accelerate import Accelerator

# oneDNN (torch's CPU kernels) caches one compiled primitive per operation *shape*, up to 1,024 by default. Gato's
# batches give the patch block and the action-target loss a new row count almost every step, so on the CPU the cache
# kept growing: 70–215 MB a minute of resident memory in the generalist's bf16 training (3.6 → 4.3 GB after 15 min)
# and 5.9 GB at the end of `gato run`'s 2,000 steps against 1.5 GB in float32. 64 entries bound it at the same speed
# (BENCHMARKS.md "oneDNN primitive cache"; benchmarks/onednn_cache_memory.py). A value the user set is kept.
ONEDNN_CACHE_VARIABLE = "ONEDNN_PRIMITIVE_CACHE_CAPACITY"
ONEDNN_CACHE_CAPACITY = 64


def bound_onednn_primitive_cache() -> str:
    """Bound oneDNN's primitive cache (see :data:`ONEDNN_CACHE_CAPACITY`) unless the environment already sets it;
    returns the capacity in force. oneDNN reads the variable when it first uses the cache, so call this before the
    process's first convolution or matrix product on the CPU (``run_training`` and ``run_evaluation`` do)."""
    return os.environ.setdefault(ONEDNN_CACHE_VARIABLE, str(ONEDNN_CACHE_CAPACITY))


# Peak dense bf16 FLOP/s of accelerators we know, for MFU. CPUs have no agreed peak: MFU is left out there.
PEAK_FLOPS = {"H100": 989e12, "H200": 989e12, "A100": 312e12}


def device_name(device: torch.device) -> str:
    """``"cpu"``, or the accelerator's name (``"cuda: NVIDIA H100 80GB HBM3"``)."""
    return f"{device.type}: {torch.cuda.get_device_name(device)}" if device.type == "cuda" else device.type


def peak_flops(accelerator: Accelerator) -> float | None:
    """The device's peak FLOP/s if it is one we know (``PEAK_FLOPS``), else None."""
    if accelerator.device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(accelerator.device)
    return next((flops for key, flops in PEAK_FLOPS.items() if key in name), None)


def flops_per_token(model: torch.nn.Module, context: int) -> float:
    """nanoGPT's estimate of training FLOPs per token: 6·N for the matrices plus 12·layers·width·context for attention."""
    parameters = sum(p.numel() for p in model.parameters())
    config = getattr(model, "config", None)
    if config is None:
        return 6.0 * parameters
    return 6.0 * parameters + 12.0 * config.num_hidden_layers * config.hidden_size * context


@dataclass
class ThroughputMeter:
    """Time, data wait and tokens of the optimizer steps since the last log line (a "window"), and the totals."""

    flops_per_token: float
    peak_flops: float | None
    processes: int = 1
    step_seconds: float = 0.0  # totals over closed windows
    data_wait_seconds: float = 0.0
    tokens_per_second: float = 0.0  # of the last closed window, over all processes
    _window_tokens: int = 0
    _window_wait: float = 0.0
    _window_time: float = 0.0
    _window_steps: int = 0
    _window_clock: float = field(default_factory=time.perf_counter)
    _step_start: float = 0.0

    def start_step(self) -> None:
        self._step_start = time.perf_counter()

    def next_batch(self, batches: Iterator[Any]) -> Any:
        """The loader's next batch, its waiting time counted as data wait."""
        started = time.perf_counter()
        batch = next(batches)
        self._window_wait += time.perf_counter() - started
        self._window_tokens += int(batch["attention_mask"].sum())
        return batch

    def end_step(self) -> None:
        self._window_time += time.perf_counter() - self._step_start
        self._window_steps += 1

    def close_window(self, accelerator: Accelerator) -> dict[str, float]:
        """The window's metrics (``train/…``) over all processes (collective); the totals absorb the window."""
        elapsed = time.perf_counter() - self._window_clock
        tokens = accelerator.reduce(torch.tensor(float(self._window_tokens), device=accelerator.device), "sum").item()
        self.tokens_per_second = tokens / elapsed if elapsed else 0.0
        metrics = {
            "train/tokens_per_s": self.tokens_per_second,
            "train/step_ms": 1000 * self._window_time / max(self._window_steps, 1),
            "train/data_wait_fraction": self._window_wait / self._window_time if self._window_time else 0.0,
        }
        if self.peak_flops is not None:
            metrics["train/mfu"] = self.tokens_per_second * self.flops_per_token / (self.peak_flops * self.processes)
        self.finish()
        self._window_tokens, self._window_clock = 0, time.perf_counter()
        return metrics

    def finish(self) -> None:
        """Add the open window's step and wait times to the totals (the steps after the last log line)."""
        self.step_seconds += self._window_time
        self.data_wait_seconds += self._window_wait
        self._window_wait, self._window_time, self._window_steps = 0.0, 0.0, 0


def progress_postfix(loss: float, metrics: dict[str, float]) -> dict[str, str]:
    """The progress bar's short form of a log line."""
    postfix = {
        "loss": f"{loss:.3f}",
        "tok/s": f"{metrics['train/tokens_per_s']:,.0f}",
        "data wait": f"{metrics['train/data_wait_fraction']:.0%}",
    }
    if "train/mfu" in metrics:
        postfix["mfu"] = f"{metrics['train/mfu']:.1%}"
    return postfix
