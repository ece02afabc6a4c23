"""``gato finetune``: fine-tune a trained model on one task with K demonstrations (or train its size from scratch).

    gato finetune --model DIR --task NAME --episodes K --data DATA --max-steps N --output-dir OUT
                  [--lora [--lora-rank R]] [--from-scratch] [training flags]

A thin command over ``gato train``: ``--init-from DIR --task-weights NAME=1 --default-weight 0 --task-episodes
NAME=K`` with DIR's model size, context and processor. ``--from-scratch`` trains the same size from random
initialisation on the same K episodes and steps (the paper's comparison); ``--lora`` trains LoRA adapters and saves
them merged into a plain model folder. Every other ``gato train`` flag (``--learning-rate``, ``--batch-size``,
``--resume``, …) works as there. OUT is a Hub-ready folder, as ``gato train`` writes it.
"""

from __future__ import annotations

import argparse
import sys

from gato.flags import add_dataclass_flags, add_threads_flag, command_parser, config_from_flags, set_threads
from gato.inputs import dataset_folder, refuse, writable_folder
from gato.training.config import TRACKER_MODULES, TrainingConfig
from gato.training.finetune import FINETUNE_SETS, FinetuneConfig

_FINETUNE_FLAGS = []
_TRAIN_FLAGS = []


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = command_parser(
        subparsers, "finetune", "fine-tune a trained model on one task with K demonstrations", __doc__
    )
    _FINETUNE_FLAGS[:] = add_dataclass_flags(
        parser,
        FinetuneConfig,
        flag_kwargs={
            "model": {"required": True, "metavar": "DIR"},
            "task": {"required": True, "metavar": "NAME"},
            "episodes": {"required": True, "metavar": "K"},
        },
    )
    _TRAIN_FLAGS[:] = add_dataclass_flags(
        parser,
        TrainingConfig,
        exclude=FINETUNE_SETS,
        flag_kwargs={
            "mixed_precision": {"choices": ["auto", "no", "bf16", "fp16"]},
            "report_to": {"choices": ["none", *TRACKER_MODULES]},
        },
    )
    add_threads_flag(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    try:
        finetune = config_from_flags(FinetuneConfig(), args, _FINETUNE_FLAGS)
        train = config_from_flags(TrainingConfig(), args, _TRAIN_FLAGS)
        if not train.data:
            raise ValueError("data: no data folder; pass --data DIR (a `gato data generate` folder holding the task)")
        train.check_tracker_installed()
        dataset_folder(train.data)
        writable_folder(train.output_dir, "the output folder: model, checkpoints, logs")
        from gato.training.finetune import finetune_training_config  # reads DIR's config: transformers

        config = finetune_training_config(finetune, train)
    except ValueError as error:
        return refuse("gato finetune", error)
    from gato.training.run_training import run_training

    set_threads(args.threads)
    try:
        result = run_training(config)
    except ValueError as error:
        return refuse("gato finetune", error)
    except KeyboardInterrupt:
        print(
            f"\ngato finetune: interrupted; continue with the same command and --resume "
            f"(checkpoints in {config.output_dir}/checkpoints)",
            file=sys.stderr,
        )
        return 130
    from gato.training.distributed import is_main_rank

    if not is_main_rank():
        return 0
    how = "from scratch" if finetune.from_scratch else f"from {finetune.model}" + (" (LoRA)" if finetune.lora else "")
    print(f"fine-tuned {finetune.task} on {finetune.episodes} episodes {how}: {result.step} steps", end="")
    print(f"; final loss {result.losses[-1]:.4f}" if result.losses else "")
    for name, value in sorted(result.validation.items()):
        print(f"  validation loss {name:<20} {value:.4f}")
    print(f"Hub-ready folder: {config.output_dir}")
    return 0
