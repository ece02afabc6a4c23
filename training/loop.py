"""The training loop: Accelerate for devices, precision, accumulation and trackers.

One screen of control flow (nanoGPT's and CleanRL's rule): build → (resume) → for each optimizer step:
accumulate micro-batches, clip, step, schedule → log / validate / checkpoint → write the Hub-ready folder.
Throughput and MFU live in ``throughput.py``, checkpoints in ``checkpoints.py``, world size and rank in
``distributed.py``.

Exact resume: the training data is a map-style dataset whose item ``i`` depends only on ``(seed, i)``,
read in order, so the data a step sees depends only on the step number; a checkpoint stores model,
optimizer, scheduler and every RNG (as safetensors and JSON), and resuming skips the batches already
consumed. A resumed run therefore repeats an uninterrupted run's losses exactly (same machine, same thread
count); a resume with other settings is refused.
"""

from __future__ import annotations

import inspect
import math
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from accelerate import Accelerator
from accelerate.utils import DistributedType, set_seed
from gato.modeling_gato.modeling_gato import target_mask
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

from .checkpoints import CHECKPOINT_PREFIX, checkpoint_dirs, resume_from_checkpoint, save_checkpoint
from .config import TrainingConfig
from .distributed import build_accelerator, check_process_group
from .optimization import build_optimizer, build_scheduler
from .precision import auto_mixed_precision, describe_mixed_precision
from .throughput import ThroughputMeter, device_name, flops_per_token, peak_flops, progress_postfix

__all__ = [
    "CHECKPOINT_PREFIX",
    "TrainingResult",
    "checkpoint_dirs",
    "choose_mixed_precision",
    "evaluate_loss",
    "make_deterministic",
    "train",
]


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
    torch_threads: int = 0  # torch's intra-op threads: bitwise reproducibility holds for the same count

    def to_dict(self) -> dict[str, Any]:
        """``train_results.json`` (``run_training``): the run's length, speed, where it ran and its validation losses."""
        return {
            "global_step": self.step,
            "start_step": self.start_step,
            "steps_this_run": self.steps_this_run,
            "wall_seconds": self.wall_seconds,
            "step_seconds": self.step_seconds,
            "data_wait_seconds": self.data_wait_seconds,
            "tokens_per_second": self.tokens_per_second,
            "processes": self.processes,
            "device": self.device,
            "mixed_precision": self.mixed_precision,
            "torch_threads": self.torch_threads,
            "final_loss": self.losses[-1] if self.losses else None,
            "validation": dict(self.validation),
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


def choose_mixed_precision(setting: str, use_cpu: bool | None = None) -> str:
    """``mixed_precision`` for Accelerate: ``auto`` → ``bf16`` on a GPU with bf16 or a CPU with native bf16
    (AVX512-BF16 / AMX, detected by :func:`~gato.training.precision.auto_mixed_precision`), else ``no``."""
    if setting != "auto":
        return setting
    return auto_mixed_precision(use_cpu)[0]


def make_deterministic(seed: int) -> dict[str, Any]:
    """Seed every RNG and choose deterministic kernels where they cost little; return what reproducibility depends on.

    On CPU torch's kernels are deterministic for a fixed thread count; on CUDA cuBLAS needs a fixed workspace
    and cuDNN must not benchmark. Kernels without a deterministic version warn instead of failing
    (docs/RELIABILITY.md, "Same seed, same result").
    """
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # read when cuBLAS starts
    torch.backends.cudnn.benchmark = False
    torch.use_deterministic_algorithms(True, warn_only=True)
    set_seed(seed)
    return {"torch_threads": torch.get_num_threads(), "torch": torch.__version__}


def train(
    config: TrainingConfig,
    model: torch.nn.Module,
    train_dataset: Dataset,
    collate_fn: Callable[[list[Any]], Mapping[str, torch.Tensor]],
    validation_datasets: Mapping[str, Dataset] | None = None,
    accelerator: Accelerator | None = None,
    on_finish: Callable[[torch.nn.Module, dict[str, torch.Tensor], TrainingResult], None] | None = None,
    stop_after_steps: int | None = None,
    data_fingerprint: Any = None,
    write_model_folder: Callable[[Path], None] | None = None,
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
        data_fingerprint: JSON-able identity of the training data (``run_training`` gives the data folder's
            splits, sizes and fingerprints); a resume on other data is refused.
        write_model_folder: writes a model folder's other files (config, processor, …) into each checkpoint
            beside its weights, so that a checkpoint loads as a model (:func:`save_checkpoint`).
    """
    output_dir = Path(config.output_dir)
    if accelerator is None:
        accelerator = build_accelerator(
            choose_mixed_precision(config.mixed_precision),
            config.gradient_accumulation_steps,
            None if config.report_to == "none" else config.report_to,
            output_dir,
        )
    check_process_group(accelerator.num_processes)
    accelerator.print(describe_mixed_precision(config.mixed_precision, accelerator))
    environment = make_deterministic(config.seed)
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
    # The scheduler is stepped by hand once per optimizer step (a prepared one steps once per process).
    model, optimizer, train_loader = accelerator.prepare(model, optimizer, train_loader)
    settings = _run_settings(config, accelerator, data_fingerprint)
    start_step = 0
    if config.resume:
        start_step = resume_from_checkpoint(
            accelerator, model, optimizer, scheduler, output_dir, settings, environment
        )
    if accelerator.is_main_process and config.report_to != "none":
        accelerator.init_trackers(
            "gato", config={k: v for k, v in config.to_dict().items() if not isinstance(v, dict)}
        )

    micro_batches_done = start_step * config.gradient_accumulation_steps
    batches = iter(
        accelerator.skip_first_batches(train_loader, micro_batches_done) if micro_batches_done else train_loader
    )
    meter = ThroughputMeter(
        flops_per_token(accelerator.unwrap_model(model), config.max_length),
        peak_flops(accelerator),
        processes=accelerator.num_processes,
    )
    result = TrainingResult(
        step=start_step,
        start_step=start_step,
        processes=accelerator.num_processes,
        device=device_name(accelerator.device),
        mixed_precision=str(accelerator.mixed_precision),
        torch_threads=environment["torch_threads"],
    )
    started = time.perf_counter()
    progress = tqdm(
        total=config.max_steps,
        initial=start_step,
        desc="train",
        disable=not accelerator.is_local_main_process,
        dynamic_ncols=True,
    )
    model.train()
    step = start_step
    token_weighted = _accepts_num_items_in_batch(accelerator.unwrap_model(model))
    while step < config.max_steps:
        meter.start_step()
        micro_batches = [meter.next_batch(batches) for _ in range(config.gradient_accumulation_steps)]
        # The step's loss is the mean over every target token of every micro-batch on every process, as one
        # process would compute it at the same global batch: each micro-batch's loss is its sum over the global
        # count, scaled back up by what DDP/DeepSpeed (mean over processes) and accumulation (÷ steps) divide by.
        targets = accelerator.reduce(
            sum(count_targets(batch) for batch in micro_batches).to(accelerator.device), "sum"
        )
        scale = accelerator.num_processes * config.gradient_accumulation_steps if token_weighted else 1
        step_loss = torch.zeros((), device=accelerator.device)
        for batch in micro_batches:
            with accelerator.accumulate(model):
                extra = {"num_items_in_batch": targets} if token_weighted else {}
                loss = model(**batch, use_cache=False, **extra).loss
                accelerator.backward(loss * scale)
                if accelerator.sync_gradients:
                    accelerator.clip_grad_norm_(model.parameters(), config.max_grad_norm)
                optimizer.step()
                if accelerator.sync_gradients:
                    scheduler.step()
                optimizer.zero_grad(set_to_none=True)
            step_loss += loss.detach() if token_weighted else loss.detach() / config.gradient_accumulation_steps
        step += 1
        # .item() waits for the device
        result.losses.append(accelerator.reduce(step_loss, reduction="sum" if token_weighted else "mean").item())
        result.step = step
        meter.end_step()

        if step % config.logging_steps == 0 or step == config.max_steps:
            _log_step(accelerator, config, meter, progress, result.losses[-1], scheduler.get_last_lr()[0], step)
        if validation_datasets and (step % config.eval_steps == 0 or step == config.max_steps):
            result.validation = evaluate_loss(model, validation_datasets, collate_fn, config, accelerator)
            _log_validation(accelerator, config, progress, result.validation, step)
            model.train()
        if step % config.save_steps == 0 or step == config.max_steps:
            save_checkpoint(
                accelerator,
                model,
                optimizer,
                scheduler,
                output_dir,
                step,
                settings,
                keep=config.save_total_limit,
                environment=environment,
                write_model_folder=write_model_folder,
            )
        progress.update(1)
        if stop_after_steps is not None and step - start_step >= stop_after_steps:
            break
    progress.close()
    meter.finish()
    result.tokens_per_second, result.step_seconds, result.data_wait_seconds = (
        meter.tokens_per_second,
        meter.step_seconds,
        meter.data_wait_seconds,
    )
    result.steps_this_run, result.wall_seconds = step - start_step, time.perf_counter() - started
    accelerator.print(result.step_time_summary(result.steps_this_run))
    if step >= config.max_steps and on_finish is not None:
        accelerator.wait_for_everyone()
        # Gathering the weights is collective under ZeRO-3: every process takes part, the main one writes.
        state_dict = accelerator.get_state_dict(model)
        if accelerator.is_main_process:
            on_finish(accelerator.unwrap_model(model), state_dict, result)
    accelerator.end_training()
    return result


def count_targets(batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
    """Target tokens of a batch as the model counts them: a label, in the loss mask, not padding (shifted by one)."""
    return target_mask(batch["labels"], batch.get("loss_mask"), batch.get("attention_mask")).sum()


def _accepts_num_items_in_batch(model: torch.nn.Module) -> bool:
    """Whether the model's loss can be normalised by a given target count (transformers' ``num_items_in_batch``)."""
    parameters = inspect.signature(model.forward).parameters
    return "num_items_in_batch" in parameters or any(p.kind == p.VAR_KEYWORD for p in parameters.values())


def _run_settings(config: TrainingConfig, accelerator: Accelerator, data_fingerprint: Any) -> dict[str, Any]:
    """What a checkpoint must have been trained with for a resume to continue it exactly."""
    deepspeed = accelerator.state.deepspeed_plugin
    return {
        **config.to_dict(),
        "data_fingerprint": data_fingerprint,
        "processes": accelerator.num_processes,
        "distributed_type": accelerator.distributed_type.value,
        "zero_stage": deepspeed.zero_stage if accelerator.distributed_type == DistributedType.DEEPSPEED else None,
    }


def _log_step(
    accelerator: Accelerator,
    config: TrainingConfig,
    meter: ThroughputMeter,
    progress: tqdm,
    loss: float,
    learning_rate: float,
    step: int,
) -> None:
    metrics = meter.close_window(accelerator)
    progress.set_postfix(progress_postfix(loss, metrics))
    if config.report_to != "none":
        accelerator.log({"train/loss": loss, "train/lr": learning_rate, **metrics}, step=step)


def _log_validation(
    accelerator: Accelerator, config: TrainingConfig, progress: tqdm, losses: dict[str, float], step: int
) -> None:
    if config.report_to != "none":
        accelerator.log({f"val/{name}": value for name, value in losses.items()}, step=step)
    if accelerator.is_main_process:
        progress.write("  ".join(f"val/{name} {value:.3f}" for name, value in losses.items()))


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
            targets = count_targets(batch)
            total += model(**batch, use_cache=False).loss.float() * targets
            count += targets
        total, count = accelerator.reduce(total, "sum"), accelerator.reduce(count, "sum")
        results[name] = (total / count.clamp(min=1)).item() if count > 0 else math.nan
    return results
