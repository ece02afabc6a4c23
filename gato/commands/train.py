"""``gato train``: train a Gato model on a ``gato data generate`` folder.

    gato train --config run.yaml [overrides]
    gato train --preset gato-tiny --data DIR --max-steps N --output-dir OUT [overrides] [--resume]

Every field of :class:`gato.training.config.TrainingConfig` is a flag (``--batch-size 8``,
``--learning-rate 3e-4``, ``--task-weights cartpole=2,text=0.5``, ``--model-overrides hidden_size=128``);
flags override the YAML file. Runs unchanged under ``accelerate launch``.

``--init-from DIR`` starts from a trained folder's weights, config and processor with a fresh optimizer and
schedule; ``--preset``, ``--model-overrides`` and ``--max-length`` left out are taken from DIR's config, and
given ones must agree with it. ``--task-episodes NAME=K`` trains on the first K episodes of a task;
``--lora-rank R`` trains LoRA adapters and saves them merged (``gato finetune`` combines the three).
"""

from __future__ import annotations

import argparse
import sys

from gato.flags import add_dataclass_flags, add_threads_flag, command_parser, config_from_flags, set_threads
from gato.inputs import dataset_folder, refuse, writable_folder, yaml_mapping
from gato.training.config import TRACKER_MODULES, TrainingConfig

_FLAGS = []


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = command_parser(subparsers, "train", "train a Gato model on a task mixture", __doc__)
    parser.add_argument(
        "--config",
        help="YAML file of TrainingConfig fields, applied before the flags (default: none, the defaults below)",
    )
    _FLAGS[:] = add_dataclass_flags(
        parser,
        TrainingConfig,
        flag_kwargs={
            "mixed_precision": {"choices": ["auto", "no", "bf16", "fp16"]},
            "report_to": {"choices": ["none", *TRACKER_MODULES]},
        },
    )
    add_threads_flag(parser)
    parser.set_defaults(handler=run)


def config_from_args(args: argparse.Namespace) -> TrainingConfig:
    """The YAML file (``--config``) with the given flags over it; its paths checked before any work."""
    from_file = yaml_mapping(args.config, "a YAML file of TrainingConfig fields") if args.config else {}
    config = config_from_flags(TrainingConfig.from_dict(from_file), args, _FLAGS)
    if config.init_from:  # the model settings not given (flag or file) come from the init folder's config
        from gato.training.init_from import init_model_settings

        given = set(from_file) | {flag.dest for flag in _FLAGS if getattr(args, flag.dest, None) is not None}
        config = config.with_overrides(
            **{name: value for name, value in init_model_settings(config.init_from).items() if name not in given}
        )
    if not config.data:
        raise ValueError(
            "data: no data folder; pass --data DIR (a `gato data generate` folder) or set `data` in --config"
        )
    config.check_tracker_installed()
    dataset_folder(config.data)
    writable_folder(config.output_dir, "the output folder: model, checkpoints, logs")
    return config


def run(args: argparse.Namespace) -> int:
    try:
        config = config_from_args(args)
    except ValueError as error:
        return refuse("gato train", error)
    from gato.training.run_training import run_training  # heavy imports only when training

    set_threads(args.threads)
    try:
        result = run_training(config)
    except ValueError as error:  # bad data or settings found while building the run: the message names them
        return refuse("gato train", error)
    except KeyboardInterrupt:
        print(
            f"\ngato train: interrupted; continue with the same command and --resume (checkpoints in {config.output_dir}/checkpoints)",
            file=sys.stderr,
        )
        return 130
    from gato.training.distributed import is_main_rank

    if not is_main_rank():  # under `accelerate launch` the main process reports
        return 0
    print(
        f"trained {result.step} steps; final loss {result.losses[-1]:.4f}"
        if result.losses
        else f"nothing to do at step {result.step}"
    )
    for name, value in sorted(result.validation.items()):
        print(f"  validation loss {name:<20} {value:.4f}")
    print(f"Hub-ready folder: {config.output_dir}")
    return 0
