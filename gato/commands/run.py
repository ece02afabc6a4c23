"""``gato run``: the main job — generate the suite's data, train, evaluate, write a Hub-ready folder with its card.

    gato run [--output-dir OUT] [--quick] [--data-plan FILE | --episodes-per-task N] [--tasks NAMES|SUITE]
             [--task-weights a=1,b=2] [--preset NAME] [--max-steps N] ...

The data come from a data plan (per-task expert episodes and action noise, captions, text): the built-in one
(``DEFAULT_DATA_PLAN`` in gato/main_job.py) or ``--data-plan FILE``; ``--episodes-per-task N`` records N clean
episodes of every task instead. ``--quick`` is the few-minute smoke run (``QUICK_SETTINGS``: 20 clean episodes a
task, 200 captions, text, 400 steps, 4 evaluation episodes a task, 8 captions); flags given with it win.

Afterwards OUT is the Hub-ready folder (``from_pretrained(OUT)`` works after ``import gato``; ``OUT/README.md`` is
the model card; ``eval_results.json`` and ``normalized_scores.png`` sit beside it; the data are in ``OUT/data``).
Running the same command again skips the finished stages. How long the defaults take on a 2-core CPU, and under
what load, is stated once, in the README's "The main job" section; the GPU recipe is the same command with a
larger preset and a training YAML (docs/HUB.md).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys

from gato.flags import add_dataclass_flags, command_parser, config_from_flags
from gato.inputs import refuse, writable_folder, yaml_mapping
from gato.main_job import MainJobConfig

_FLAGS = []


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = command_parser(subparsers, "run", "the main job: generate → train → evaluate → Hub-ready folder", __doc__)
    parser.add_argument(
        "--quick",
        action="store_true",
        help="the few-minute smoke run: QUICK_SETTINGS of gato/main_job.py (20 clean expert episodes a task, 200 "
        "captions, text, 400 steps with equal task weights, 4 evaluation episodes a task, 8 captions) under the "
        "flags given; with --data-plan, the plan's data (default: off, the full main job)",
    )
    _FLAGS[:] = add_dataclass_flags(parser, MainJobConfig)
    parser.set_defaults(handler=run)


def config_from_args(args: argparse.Namespace) -> MainJobConfig:
    """The :class:`MainJobConfig` of the flags (over ``--quick``'s settings when given), its paths checked before any
    work."""
    from gato.main_job import quick_config

    base = MainJobConfig()
    if args.quick:
        base = quick_config()
        if args.data_plan is not None:
            # A plan given with --quick is explicit: its episodes, captions and text win over the preset's data.
            data = dataclasses.replace(base.data, episodes_per_task=None, captions=None, text=None)
            base = dataclasses.replace(base, data=data)
    config = config_from_flags(base, args, _FLAGS)
    writable_folder(config.output_dir, "the Hub-ready output folder")
    writable_folder(config.data_path, "the data folder")
    if config.train.training_config:  # read here first, so that a bad file is named as such, not by its parser
        yaml_mapping(config.train.training_config, "a YAML file of TrainingConfig fields")
    config.validate()
    return config


def run(args: argparse.Namespace) -> int:
    from gato.main_job import run_main_job

    try:
        config = config_from_args(args)
        result = run_main_job(config)
    except (ValueError, KeyError) as error:
        return refuse("gato run", error)
    except KeyboardInterrupt:
        print("\ngato run: interrupted; run the same command again to continue where it stopped", file=sys.stderr)
        return 130
    from rich.table import Table

    from gato.evaluation.report import print_results, terminal_console
    from gato.hub_cards.model_card import format_duration, format_peak_rss

    print_results(result.results)
    table = Table(title="gato run stages")
    for column in ("stage", "status", "wall", "CPU", "peak RSS"):
        table.add_column(column, justify="left" if column in ("stage", "status") else "right")
    for stage in result.stages:
        table.add_row(
            stage.name,
            stage.status,
            format_duration(stage.wall_seconds),
            format_duration(stage.cpu_seconds),
            format_peak_rss(dataclasses.asdict(stage)),
        )
    table.add_row(
        "total",
        "",
        format_duration(result.wall_seconds),
        format_duration(result.cpu_seconds),
        format_peak_rss(dataclasses.asdict(result.stages[-1])) if result.stages else "—",
    )
    terminal_console().print(table)
    print(
        f"Hub-ready folder: {result.output_dir}  (model card {result.output_dir}/README.md; "
        f"upload with `gato push {result.output_dir} --repo-id ORG/NAME`)"
    )
    return 0
