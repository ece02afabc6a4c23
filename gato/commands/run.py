"""``gato run``: the main job — generate the suite's data, train, evaluate, write a Hub-ready folder with its card.

    gato run [--output-dir OUT] [--preset NAME] [--max-steps N] [--tasks NAMES|SUITE] [--episodes-per-task N] ...

Afterwards OUT is the Hub-ready folder (``from_pretrained(OUT)`` works after ``import gato``; ``OUT/README.md`` is
the model card; ``eval_results.json`` and ``normalized_scores.png`` sit beside it; the data are in ``OUT/data``).
Running the same command again skips the finished stages. The defaults finish on 2 CPU cores in about a quarter
of an hour; the GPU recipe is the same command with a larger preset and a training YAML (docs/HUB.md).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys

from gato.commands.train import _parse_mapping
from gato.main_job import MainJobConfig

_DEFAULTS = MainJobConfig()


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("run", help="the main job: generate → train → evaluate → Hub-ready folder",
                                   description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add = parser.add_argument
    add("--output-dir", default=_DEFAULTS.output_dir, help=f"the Hub-ready folder (default {_DEFAULTS.output_dir})")
    add("--tasks", default=_DEFAULTS.tasks, help="suite (default, full), domains or task names, comma-separated (default: default)")
    add("--episodes-per-task", type=int, default=_DEFAULTS.episodes_per_task, help=f"expert episodes per task (default {_DEFAULTS.episodes_per_task})")
    add("--captions", type=int, default=_DEFAULTS.captions, help=f"captioned training scenes, 0 for none (default {_DEFAULTS.captions})")
    add("--no-text", dest="text", action="store_false", help="no text corpus")
    add("--preset", default=_DEFAULTS.preset, help=f"model size preset (default {_DEFAULTS.preset}, widened by --model-overrides)")
    add("--model-overrides", type=_parse_mapping, default=None, metavar="KEY=VALUE,...",
        help="GatoConfig fields over the preset (default: "
             + ",".join(f"{k}={v}" for k, v in _DEFAULTS.model_overrides.items()) + "; pass '' for the bare preset)")
    add("--max-steps", type=int, default=_DEFAULTS.max_steps, help=f"training steps (default {_DEFAULTS.max_steps})")
    add("--batch-size", type=int, default=_DEFAULTS.batch_size, help=f"sequences per step (default {_DEFAULTS.batch_size})")
    add("--max-length", type=int, default=_DEFAULTS.max_length, help=f"context in tokens (default {_DEFAULTS.max_length})")
    add("--learning-rate", type=float, default=_DEFAULTS.learning_rate, help=f"peak learning rate (default {_DEFAULTS.learning_rate})")
    add("--warmup-steps", type=int, default=_DEFAULTS.warmup_steps, help=f"warm-up steps (default {_DEFAULTS.warmup_steps})")
    add("--training-config", help="YAML of TrainingConfig fields applied first (the flags above override it)")
    add("--eval-episodes", type=int, default=_DEFAULTS.eval_episodes, help=f"evaluation episodes per task (default {_DEFAULTS.eval_episodes})")
    add("--eval-max-steps", type=int, default=None, help="cut evaluation episodes after this many steps (default: the task's horizon)")
    add("--eval-captions", type=int, default=_DEFAULTS.eval_captions, help=f"held-out images captioned (default {_DEFAULTS.eval_captions})")
    add("--num-envs", type=int, default=_DEFAULTS.num_envs, help=f"environments stepped together in evaluation (default {_DEFAULTS.num_envs})")
    add("--seed", type=int, default=_DEFAULTS.seed)
    add("--workers", type=int, default=_DEFAULTS.workers, help=f"data generation processes (default {_DEFAULTS.workers})")
    add("--threads", type=int, default=_DEFAULTS.threads, help="torch CPU threads (default: torch's choice)")
    add("--data-dir", help="where the data go (default OUT/data); share one between runs as a cache")
    add("--overwrite-data", action="store_true", help="regenerate data folders that hold another generation")
    add("--no-progress", dest="progress", action="store_false", help="no progress bars")
    parser.set_defaults(handler=run)


def config_from_args(args: argparse.Namespace) -> MainJobConfig:
    values = {f.name: getattr(args, f.name) for f in dataclasses.fields(MainJobConfig) if hasattr(args, f.name)}
    if values.get("model_overrides") is None:
        values.pop("model_overrides", None)
    return MainJobConfig(**values)


def run(args: argparse.Namespace) -> int:
    from gato.main_job import run_main_job

    config = config_from_args(args)
    try:
        result = run_main_job(config)
    except (ValueError, KeyError) as error:
        print(f"gato run: {error.args[0] if error.args else error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\ngato run: interrupted; run the same command again to continue where it stopped", file=sys.stderr)
        return 130
    from rich.console import Console
    from rich.table import Table

    from gato.evaluation.report import print_results

    print_results(result.results)
    table = Table(title="gato run stages")
    for column in ("stage", "status", "wall", "CPU"):
        table.add_column(column, justify="left" if column in ("stage", "status") else "right")
    for stage in result.stages:
        table.add_row(stage.name, stage.status, f"{stage.wall_seconds:.1f} s", f"{stage.cpu_seconds:.1f} s")
    table.add_row("total", "", f"{result.wall_seconds:.1f} s", f"{result.cpu_seconds:.1f} s")
    Console().print(table)
    print(f"Hub-ready folder: {result.output_dir}  (model card {result.output_dir}/README.md; "
          f"upload with `gato push {result.output_dir} --repo-id ORG/NAME`)")
    return 0
