"""The training loop: Accelerate for devices, precision, accumulation, checkpoints and trackers.

One screen of control flow (CleanRL's rule): build → (resume) → for each optimizer step: accumulate
micro-batches, clip, step, schedule → log / validate / checkpoint → write the Hub-ready folder.

Exact resume: the training data is a map-style dataset whose item ``i`` depends only on ``(seed, i)``,
read in order, so the data a step sees depends only on the step number; Accelerate's ``save_state``
stores model, optimizer, scheduler and every RNG, and resuming skips the batches already consumed.
A resumed run therefore repeats an uninterrupted run's losses exactly (on deterministic kernels).
"""

from __future__ import annotations

import json
import math
import os
import shutil
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from accelerate import Accelerator
from accelerate.utils import ProjectConfiguration, set_seed
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

from .config import TrainingConfig
from .optimization import build_optimizer, build_scheduler
from .precision import auto_mixed_precision, describe_mixed_precision

CHECKPOINT_PREFIX = "checkpoint-"
STATE_FILE = "gato_training_state.json"
# Peak dense bf16 FLOP/s of accelerators we know, for MFU. CPUs have no agreed peak: MFU is left out there.
PEAK_FLOPS = {"H100": 989e12, "H200": 989e12, "A100": 312e12}


@dataclass
class TrainingResult:
    """What a finished (or interrupted-and-resumed) run reports."""

    step: int
    losses: list[float] = field(default_factory=list)  # training loss per optimizer step run in this process
    validation: dict[str, float] = field(default_factory=dict)
    tokens_per_second: float = 0.0
    step_seconds: float = 0.0  # wall time of this process's optimizer steps (validation and checkpoints excluded)
    data_wait_seconds: float = 0.0  # the part of it spent waiting for the next batch from the data loader
    start_step: int = 0  # the checkpoint step this invocation resumed from (0 for a fresh run)
    steps_this_run: int = 0  # optimizer steps of this invocation
    wall_seconds: float = 0.0  # this invocation's whole loop: steps, validation and checkpoints
    processes: int = 1
    device: str = ""  # "cpu", or the accelerator's name ("cuda: NVIDIA H100 80GB HBM3")
    mixed_precision: str = ""  # what the run computed in: "no" (float32), "bf16" or "fp16" (Accelerate's names)

    def to_dict(self) -> dict[str, Any]:
        """``train_results.json`` (``run_training``): the run's length, speed, where it ran and its validation losses."""
        return {
            "global_step": self.step, "start_step": self.start_step, "steps_this_run": self.steps_this_run,
            "wall_seconds": self.wall_seconds, "step_seconds": self.step_seconds, "data_wait_seconds": self.data_wait_seconds,
            "tokens_per_second": self.tokens_per_second, "processes": self.processes, "device": self.device,
            "mixed_precision": self.mixed_precision,
            "final_loss": self.losses[-1] if self.losses else None, "validation": dict(self.validation),
        }

    @property
    def data_wait_fraction(self) -> float:
        """Share of step time the accelerator sat idle waiting for data: near 0 means the loader keeps up."""
        return self.data_wait_seconds / self.step_seconds if self.step_seconds else 0.0

    def step_time_summary(self, steps: int) -> str:
        """One line: mean step time and how it splits into data wait and compute."""
        steps = max(steps, 1)
        step_ms, wait_ms = 1000 * self.step_seconds / steps, 1000 * self.data_wait_seconds / steps
        return (
            f"step time {step_ms:.1f} ms = data wait {wait_ms:.1f} ms ({self.data_wait_fraction:.1%}) "
            f"+ compute {step_ms - wait_ms:.1f} ms, mean over {steps} steps"
        )


def checkpoint_dirs(output_dir: str | Path) -> list[Path]:
    """Checkpoints in ``output_dir/checkpoints``, oldest first."""
    root = Path(output_dir) / "checkpoints"
    found = [path for path in root.glob(f"{CHECKPOINT_PREFIX}*") if (path / STATE_FILE).exists()]
    return sorted(found, key=lambda path: int(path.name[len(CHECKPOINT_PREFIX):]))


def choose_mixed_precision(setting: str, use_cpu: bool | None = None) -> str:
    """``mixed_precision`` for Accelerate: ``auto`` → ``bf16`` on a GPU with bf16 or a CPU with native bf16
    (AVX512-BF16 / AMX, detected by :func:`~gato.training.precision.auto_mixed_precision`), else ``no``."""
    if setting != "auto":
        return setting
    return auto_mixed_precision(use_cpu)[0]


def check_process_group(num_processes: int) -> None:
    """Refuse a process group smaller than the launch (``WORLD_SIZE``): e.g. ``accelerate launch --multi_gpu`` on
    a CPU machine starts N unsynchronised processes that would each do the whole job into one output_dir."""
    launched = int(os.environ.get("WORLD_SIZE", "1"))
    if launched != num_processes:
        raise ValueError(
            f"WORLD_SIZE: the launcher started {launched} processes but Accelerate formed a group of "
            f"{num_processes}; on CPU launch with `ACCELERATE_USE_CPU=1 accelerate launch --multi_gpu`"
        )


def _device_name(device: torch.device) -> str:
    return f"{device.type}: {torch.cuda.get_device_name(device)}" if device.type == "cuda" else device.type


def peak_flops(accelerator: Accelerator) -> float | None:
    if accelerator.device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(accelerator.device)
    return next((flops for key, flops in PEAK_FLOPS.items() if key in name), None)


def train(
    config: TrainingConfig,
    model: torch.nn.Module,
    train_dataset: Dataset,
    collate_fn: Callable[[list[Any]], Mapping[str, torch.Tensor]],
    validation_datasets: Mapping[str, Dataset] | None = None,
    accelerator: Accelerator | None = None,
    on_finish: Callable[[torch.nn.Module, dict[str, torch.Tensor], TrainingResult], None] | None = None,
    stop_after_steps: int | None = None,
) -> TrainingResult:
    """Train ``model`` on ``train_dataset`` for ``config.max_steps`` optimizer steps.

    Args:
        train_dataset: map-style; item ``i`` must depend only on ``i`` (and the run's seed) for exact resume.
            It needs at least ``max_steps × batch_size × accumulation × processes`` items.
        collate_fn: sequences → a batch of model inputs (the processor's ``collate``).
        validation_datasets: name (a modality: ``text``, ``captions``, a control domain) → dataset; the
            mean loss over ``config.eval_batches`` batches of each is logged as ``val/<name>``.
        on_finish: called on the main process at the end with the unwrapped model, its full state dict
            (gathered across processes under ZeRO-3) and the run's result; it writes the Hub-ready folder.
        stop_after_steps: stop (as if killed) after this many optimizer steps of *this* invocation, for
            tests of resume; the last checkpoint is whatever ``save_steps`` produced.
    """
    output_dir = Path(config.output_dir)
    if accelerator is None:
        accelerator = Accelerator(
            mixed_precision=choose_mixed_precision(config.mixed_precision),
            gradient_accumulation_steps=config.gradient_accumulation_steps,
            log_with=None if config.report_to == "none" else config.report_to,
            project_config=ProjectConfiguration(project_dir=str(output_dir), logging_dir=str(output_dir / "logs")),
        )
    check_process_group(accelerator.num_processes)
    accelerator.print(describe_mixed_precision(config.mixed_precision, accelerator))
    set_seed(config.seed)
    if config.gradient_checkpointing and hasattr(model, "gradient_checkpointing_enable"):
        model.gradient_checkpointing_enable()

    optimizer = build_optimizer(model, config)
    scheduler = build_scheduler(optimizer, config)
    # Sequential order and a private generator: the data a step sees is a function of the step alone, and
    # building the loader draws nothing from the global RNG (which the model's patch sampling uses).
    train_loader = DataLoader(
        train_dataset,
        batch_size=config.batch_size,
        shuffle=False,
        collate_fn=collate_fn,
        num_workers=config.num_workers,
        generator=torch.Generator().manual_seed(config.seed),
        persistent_workers=False,
    )
    # The scheduler is stepped by hand once per optimizer step (a prepared one steps once per process), and
    # registered so that save_state / load_state carry it.
    model, optimizer, train_loader = accelerator.prepare(model, optimizer, train_loader)
    accelerator.register_for_checkpointing(scheduler)

    start_step = 0
    if config.resume:
        checkpoints = checkpoint_dirs(output_dir)
        if checkpoints:
            accelerator.load_state(str(checkpoints[-1]))
            start_step = json.loads((checkpoints[-1] / STATE_FILE).read_text())["step"]
            accelerator.print(f"resumed from {checkpoints[-1]} at step {start_step}")
        else:
            accelerator.print(f"--resume: no checkpoint in {output_dir / 'checkpoints'}; starting from step 0")

    if accelerator.is_main_process and config.report_to != "none":
        accelerator.init_trackers("gato", config={k: v for k, v in config.to_dict().items() if not isinstance(v, dict)})

    micro_batches_done = start_step * config.gradient_accumulation_steps
    batches = iter(accelerator.skip_first_batches(train_loader, micro_batches_done) if micro_batches_done else train_loader)
    flops_per_token = _flops_per_token(accelerator.unwrap_model(model), config.max_length)
    peak = peak_flops(accelerator)
    result = TrainingResult(step=start_step, start_step=start_step, processes=accelerator.num_processes,
                            device=_device_name(accelerator.device), mixed_precision=str(accelerator.mixed_precision))
    started = time.perf_counter()
    progress = tqdm(
        total=config.max_steps, initial=start_step, desc="train", disable=not accelerator.is_local_main_process, dynamic_ncols=True
    )
    model.train()
    tokens_seen, clock = 0, time.perf_counter()
    window_wait, window_time, window_steps = 0.0, 0.0, 0  # data wait / whole step time / steps since the last log
    step = start_step
    steps_this_run = 0
    while step < config.max_steps:
        step_start = time.perf_counter()
        step_loss = torch.zeros((), device=accelerator.device)
        for _ in range(config.gradient_accumulation_steps):
            fetch_start = time.perf_counter()
            batch = next(batches)
            window_wait += time.perf_counter() - fetch_start
            with accelerator.accumulate(model):
                loss = model(**batch, use_cache=False).loss
                accelerator.backward(loss)
                if accelerator.sync_gradients:
                    accelerator.clip_grad_norm_(model.parameters(), config.max_grad_norm)
                optimizer.step()
                if accelerator.sync_gradients:
                    scheduler.step()
                optimizer.zero_grad(set_to_none=True)
            step_loss += loss.detach() / config.gradient_accumulation_steps
            tokens_seen += int(batch["attention_mask"].sum())
        step += 1
        steps_this_run += 1
        mean_loss = accelerator.reduce(step_loss, reduction="mean").item()  # .item() waits for the device
        window_time += time.perf_counter() - step_start
        window_steps += 1
        result.losses.append(mean_loss)
        result.step = step

        if step % config.logging_steps == 0 or step == config.max_steps:
            elapsed = time.perf_counter() - clock
            tokens_per_second = accelerator.reduce(torch.tensor(float(tokens_seen), device=accelerator.device), "sum").item() / elapsed
            result.tokens_per_second = tokens_per_second
            result.step_seconds += window_time
            result.data_wait_seconds += window_wait
            data_wait = window_wait / window_time if window_time else 0.0
            logs = {
                "train/loss": mean_loss, "train/lr": scheduler.get_last_lr()[0], "train/tokens_per_s": tokens_per_second,
                "train/step_ms": 1000 * window_time / window_steps, "train/data_wait_fraction": data_wait,
            }
            postfix = {"loss": f"{mean_loss:.3f}", "tok/s": f"{tokens_per_second:,.0f}", "data wait": f"{data_wait:.0%}"}
            if peak is not None:
                logs["train/mfu"] = tokens_per_second * flops_per_token / (peak * accelerator.num_processes)
                postfix["mfu"] = f"{logs['train/mfu']:.1%}"
            progress.set_postfix(postfix)
            if config.report_to != "none":
                accelerator.log(logs, step=step)
            tokens_seen, clock = 0, time.perf_counter()
            window_wait, window_time, window_steps = 0.0, 0.0, 0
        if validation_datasets and (step % config.eval_steps == 0 or step == config.max_steps):
            result.validation = evaluate_loss(model, validation_datasets, collate_fn, config, accelerator)
            if config.report_to != "none":
                accelerator.log({f"val/{name}": value for name, value in result.validation.items()}, step=step)
            if accelerator.is_main_process:
                progress.write("  ".join(f"val/{name} {value:.3f}" for name, value in result.validation.items()))
            model.train()
        if step % config.save_steps == 0 or step == config.max_steps:
            save_checkpoint(accelerator, output_dir, step, config.save_total_limit)
        progress.update(1)
        if stop_after_steps is not None and steps_this_run >= stop_after_steps:
            break
    progress.close()
    result.step_seconds += window_time  # the steps after the last log line
    result.data_wait_seconds += window_wait
    result.steps_this_run, result.wall_seconds = steps_this_run, time.perf_counter() - started
    accelerator.print(result.step_time_summary(steps_this_run))
    if step >= config.max_steps and on_finish is not None:
        accelerator.wait_for_everyone()
        # Gathering the weights is collective under ZeRO-3: every process takes part, the main one writes.
        state_dict = accelerator.get_state_dict(model)
        if accelerator.is_main_process:
            on_finish(accelerator.unwrap_model(model), state_dict, result)
    accelerator.end_training()
    return result


def save_checkpoint(accelerator: Accelerator, output_dir: Path, step: int, keep: int) -> Path:
    path = output_dir / "checkpoints" / f"{CHECKPOINT_PREFIX}{step}"
    accelerator.save_state(str(path))
    if accelerator.is_main_process:
        # The step file is written last: a checkpoint without it (a kill mid-save) is ignored on resume.
        (path / STATE_FILE).write_text(json.dumps({"step": step}))
        for old in checkpoint_dirs(output_dir)[:-keep] if keep else []:
            shutil.rmtree(old, ignore_errors=True)
    accelerator.wait_for_everyone()
    return path


@torch.no_grad()
def evaluate_loss(
    model: torch.nn.Module,
    datasets: Mapping[str, Dataset],
    collate_fn: Callable[[list[Any]], Mapping[str, torch.Tensor]],
    config: TrainingConfig,
    accelerator: Accelerator,
) -> dict[str, float]:
    """Mean masked loss per named validation set over its first ``eval_batches`` batches (token-weighted)."""
    model.eval()
    results = {}
    for name, dataset in datasets.items():
        loader = accelerator.prepare_data_loader(
            DataLoader(dataset, batch_size=config.batch_size, shuffle=False, collate_fn=collate_fn)
        )
        total, count = torch.zeros((), device=accelerator.device), torch.zeros((), device=accelerator.device)
        for index, batch in enumerate(loader):
            if index >= config.eval_batches:
                break
            targets = (batch["labels"][:, 1:] != -100).sum()
            total += model(**batch, use_cache=False).loss.float() * targets
            count += targets
        total, count = accelerator.reduce(total, "sum"), accelerator.reduce(count, "sum")
        results[name] = (total / count.clamp(min=1)).item() if count > 0 else math.nan
    return results


def _flops_per_token(model: torch.nn.Module, context: int) -> float:
    """nanoGPT's estimate: 6·N for the matrices plus 12·layers·width·context for attention."""
    parameters = sum(p.numel() for p in model.parameters())
    config = getattr(model, "config", None)
    if config is None:
        return 6.0 * parameters
    return 6.0 * parameters + 12.0 * config.num_hidden_layers * config.hidden_size * context
