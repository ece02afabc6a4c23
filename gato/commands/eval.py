"""``gato eval``: evaluate a trained folder on control tasks, captions and text.

    gato eval --model DIR --tasks NAMES|SUITE --episodes N [--output-dir OUT] [--num-envs K] [--seed S]
              [--captions N] [--data DIR]

Writes ``eval_results.json`` (fields in docs/EVALUATION.md), ``eval_results.md`` and
``normalized_scores.png`` into ``--output-dir`` (default ``DIR/eval``; ``RUN/eval/checkpoint-N`` for a checkpoint
``RUN/checkpoints/checkpoint-N``) and prints the tables. With
``--output-dir DIR`` (the model folder itself) the results sit where ``gato push`` uploads them from, and the
folder's model card (``README.md``) is rewritten to include them.

Runs unchanged under ``accelerate launch`` (``accelerate launch [--multi_gpu --num_processes N] -m gato.cli eval
...``): the tasks are shared out between the processes, one device each, and the main process writes the
results (docs/EVALUATION.md).
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

from gato.flags import (
    DEFAULT_THREADS,
    THREADS_HELP,
    add_dataclass_flags,
    command_parser,
    config_from_flags,
    non_negative_float,
    positive_int,
)
from gato.inputs import dataset_folder, model_folder, refuse, writable_folder

_FLAGS = []


def register(subparsers: argparse._SubParsersAction) -> None:
    from gato.evaluation.run_evaluation import EvaluationConfig

    parser = command_parser(
        subparsers, "eval", "evaluate a model on tasks: returns, normalized scores, plots", __doc__
    )
    _FLAGS[:] = add_dataclass_flags(
        parser,
        EvaluationConfig,
        defaults=EvaluationConfig(model=""),
        exclude=("do_sample", "temperature"),
        flag_kwargs={
            "model": {
                "required": True,
                "metavar": "DIR",
                "help": "a folder written by `gato train` or `gato run` (model + processor)",
            },
            "continuous_decoding": {"choices": ["median", "argmax"]},
            "cache_implementation": {"choices": ["dynamic", "static"]},
            # ActingConfig.compile also takes a transformers CompileConfig (Python API); the flag is on/off.
            "compile": {"action": argparse.BooleanOptionalAction, "type": None},
            "threads": {"default": DEFAULT_THREADS, "help": THREADS_HELP},
            "max_steps": {"type": positive_int},
            "dtype": {"choices": ["float32", "bfloat16", "auto"]},
        },
    )
    parser.add_argument(
        "--temperature",
        type=non_negative_float,
        default=None,
        help="sample actions at this temperature; 0 or left out: greedy decoding (default: greedy)",
    )
    parser.set_defaults(handler=run)


def config_from_args(args: argparse.Namespace):
    """The :class:`EvaluationConfig` of the flags, its paths checked before any work."""
    from gato.evaluation.run_evaluation import EvaluationConfig

    config = config_from_flags(EvaluationConfig(model=args.model), args, _FLAGS)
    if args.temperature is not None:  # --temperature turns sampling on; ActingConfig reads 0 as greedy
        config.acting = dataclasses.replace(config.acting, do_sample=True, temperature=args.temperature)
    model_folder(config.model)
    if config.data:
        dataset_folder(config.data)
    writable_folder(config.results_dir(), "the results folder")
    return config


def run(args: argparse.Namespace) -> int:
    from gato.evaluation.report import print_results
    from gato.evaluation.run_evaluation import run_evaluation

    try:
        config = config_from_args(args)
        results = run_evaluation(config)
    except (ValueError, KeyError) as error:
        return refuse("gato eval", error)
    if results is None:  # not the main process of an `accelerate launch`: the main one reports and writes
        return 0
    print_results(results)
    output_dir = config.results_dir()
    print(f"results: {output_dir}")
    if output_dir.resolve() == Path(args.model).resolve():
        from gato.hub_cards import write_model_card

        print(f"model card: {write_model_card(output_dir)}")
    return 0
