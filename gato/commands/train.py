"""``gato train``: train a Gato model on a ``gato data generate`` folder.

    gato train --config run.yaml [overrides]
    gato train --preset gato-tiny --data DIR --max-steps N --output-dir OUT [overrides] [--resume]

Every field of :class:`gato.training.config.TrainingConfig` is a flag (``--batch-size 8``,
``--learning-rate 3e-4``, ``--task-weights cartpole=2,text=0.5``, ``--model-overrides hidden_size=128``);
flags override the YAML file. Runs unchanged under ``accelerate launch``.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import typing

import yaml

from gato.training.config import TrainingConfig


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("train", help="train a Gato model on a task mixture", description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", help="YAML file of TrainingConfig fields")
    hints = typing.get_type_hints(TrainingConfig)
    for field in dataclasses.fields(TrainingConfig):
        flag = "--" + field.name.replace("_", "-")
        kind = typing.get_origin(hints[field.name]) or hints[field.name]
        if kind is bool:
            parser.add_argument(flag, dest=field.name, action=argparse.BooleanOptionalAction, default=None)
        elif kind is dict:
            parser.add_argument(flag, dest=field.name, type=_parse_mapping, default=None, metavar="KEY=VALUE,...")
        else:
            parser.add_argument(flag, dest=field.name, type=kind, default=None)
    parser.set_defaults(handler=run)


def _parse_mapping(text: str) -> dict[str, typing.Any]:
    """``a=1,b=x`` → ``{"a": 1, "b": "x"}`` (values parsed as YAML scalars)."""
    result = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise argparse.ArgumentTypeError(f"expected KEY=VALUE pairs separated by commas, got {item!r}")
        result[key.strip()] = yaml.safe_load(value)
    return result


def config_from_args(args: argparse.Namespace) -> TrainingConfig:
    base = TrainingConfig.from_yaml(args.config) if args.config else TrainingConfig()
    overrides = {field.name: getattr(args, field.name) for field in dataclasses.fields(TrainingConfig)}
    return base.with_overrides(**overrides)


def run(args: argparse.Namespace) -> int:
    from gato.training.run_training import run_training  # heavy imports only when training

    try:
        config = config_from_args(args)
    except ValueError as error:
        print(f"gato train: {error}", file=sys.stderr)
        return 2
    try:
        result = run_training(config)
    except ValueError as error:  # bad data or settings found while building the run: the message names them
        print(f"gato train: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"\ngato train: interrupted; continue with the same command and --resume (checkpoints in {config.output_dir}/checkpoints)",
              file=sys.stderr)
        return 130
    if os.environ.get("RANK", "0") != "0":  # under `accelerate launch` the main process reports
        return 0
    print(f"trained {result.step} steps; final loss {result.losses[-1]:.4f}" if result.losses else f"nothing to do at step {result.step}")
    for name, value in sorted(result.validation.items()):
        print(f"  validation loss {name:<20} {value:.4f}")
    print(f"Hub-ready folder: {config.output_dir}")
    return 0
