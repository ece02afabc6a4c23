"""``gato data list`` and ``gato data generate``: thin wrappers over :mod:`gato.episodes`, the suite and (DAgger
episodes, ``--dagger-model``) :mod:`gato.evaluation.dagger`."""

from __future__ import annotations

import argparse
import math
import shlex
import sys

from gato.flags import (HelpFormatter, add_threads_flag, command_parser, non_negative_float, non_negative_int,
                        set_threads)
from gato.inputs import model_folder, writable_folder


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("data", help="list and generate episode datasets", description=__doc__,
                                   formatter_class=HelpFormatter)
    parser.set_defaults(handler=lambda args: (parser.print_help(), 0)[1], parser=parser)
    commands = parser.add_subparsers(dest="data_command", metavar="{list,generate}")

    listing = command_parser(commands, "list", "one line per built-in task: domain, observations, action, reference returns",
                             None)
    listing.set_defaults(handler=list_command)

    generate = command_parser(
        commands, "generate", "record expert episodes into a DatasetDict folder (parallel, deterministic, resumable)", None,
    )
    count, number = non_negative_int, non_negative_float
    generate.add_argument("--tasks", default="default",
                          help="a suite (default, full), a domain, or comma-separated task names")
    generate.add_argument("--episodes-per-task", type=count, required=True, help="episodes recorded per task")
    generate.add_argument("--out", required=True, help="output folder; datasets.load_from_disk(OUT) gives a DatasetDict")
    generate.add_argument("--seed", type=count, default=0, help="collection seed")
    generate.add_argument("--workers", type=count, default=1, help="worker processes")
    generate.add_argument("--captions", type=count, default=0, metavar="N",
                          help="also write N captioned scenes (captions), N/10 with held-out colour×shape pairs "
                               "(captions_validation) and N/10 new scenes of seen pairs (captions_test)")
    generate.add_argument("--text", action="store_true", help="also write the offline text corpus (text, text_validation)")
    generate.add_argument("--action-noise", type=number, default=0.0, metavar="X",
                          help="DART-style noise: execute the expert's action with Gaussian noise of std X (continuous "
                               "actions, in [-1, 1] units) or a random action with probability X (discrete); the "
                               "recorded action stays the expert's (0: clean episodes)")
    generate.add_argument("--dagger-model", default=None, metavar="RUN",
                          help="record DAgger episodes instead: the model of this `gato train` folder acts, the expert "
                               "labels every state, into the split <task>_dagger (train on it with --task-weights) "
                               "(default: none, expert episodes)")
    generate.add_argument("--expert-mix", type=number, default=None, metavar="BETA",
                          help="with --dagger-model: execute the expert's action instead of the model's with this "
                               "probability (default 0.5)")
    generate.add_argument("--dagger-round", type=count, default=1, metavar="R",
                          help="with --dagger-model: the DAgger round; round R ≥ 2 writes <task>_daggerR and resets "
                               "rooms and games of its own (1: <task>_dagger)")
    generate.add_argument("--overwrite", action="store_true", help="regenerate tasks whose folder holds another generation")
    generate.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_threads_flag(generate)
    generate.set_defaults(handler=generate_command)


def _check_paths(args: argparse.Namespace) -> None:
    writable_folder(args.out, "the output folder of the DatasetDict")
    if args.dagger_model is not None:
        model_folder(args.dagger_model)


def _kinds(task) -> str:
    kinds = dict.fromkeys(field.kind for field in task.spec.observations)
    return "+".join(kinds)


def _return(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{value:.2f}"


def list_command(args: argparse.Namespace) -> int:
    from gato.suite.registry import list_suites, list_tasks

    tasks = list_tasks()
    rows = [(t.name, t.domain, _kinds(t), f"{t.spec.action.kind}({t.spec.action.num_values if t.spec.action.kind == 'discrete' else t.spec.action.size})",
             _return(t.expert_return), _return(t.random_return)) for t in tasks]
    header = ("task", "domain", "observations", "action", "expert", "random")
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        print("  ".join(cell.rjust(w) if i >= 4 else cell.ljust(w) for i, (cell, w) in enumerate(zip(row, widths))).rstrip())
    suites = list_suites()
    print(f"\n{len(tasks)} tasks; suites: " + "; ".join(f"{name} ({len(names)} tasks)" for name, names in suites.items()))
    return 0


def generate_command(args: argparse.Namespace) -> int:
    try:
        _check_paths(args)
    except ValueError as error:
        print(f"gato data generate: {error}", file=sys.stderr)
        return 2
    set_threads(args.threads)
    if args.dagger_model is not None:
        return dagger_command(args)
    for flag, value, default in (("--expert-mix", args.expert_mix, None), ("--dagger-round", args.dagger_round, 1)):
        if value != default:
            print(f"gato data generate: {flag} needs --dagger-model", file=sys.stderr)
            return 2
    from gato.episodes.generate import generate, summary_table

    command = "gato data generate " + " ".join(
        shlex.quote(part) for part in [
            "--tasks", args.tasks, "--episodes-per-task", str(args.episodes_per_task), "--out", args.out,
            "--seed", str(args.seed), "--workers", str(args.workers),
            *(["--captions", str(args.captions)] if args.captions else []), *(["--text"] if args.text else []),
            *(["--action-noise", f"{args.action_noise:g}"] if args.action_noise else []),
        ]
    )
    try:
        dataset_dict, summaries = generate(
            args.tasks, args.episodes_per_task, args.out, seed=args.seed, workers=args.workers, captions=args.captions,
            text=args.text, overwrite=args.overwrite, progress=not args.no_progress, command=command,
            action_noise=args.action_noise,
        )
    except (KeyError, ValueError) as error:
        print(f"gato data generate: {error.args[0] if error.args else error}", file=sys.stderr)
        return 2
    print(summary_table(summaries))
    print(f"\n{args.out}: DatasetDict with {len(dataset_dict)} datasets: {', '.join(dataset_dict)}")
    return 0


def dagger_command(args: argparse.Namespace) -> int:
    from gato.evaluation.dagger import DEFAULT_EXPERT_MIX, generate_dagger

    others = [flag for flag, value in (("--captions", args.captions), ("--text", args.text), ("--action-noise", args.action_noise)) if value]
    if others:
        print(f"gato data generate: {', '.join(others)} cannot go with --dagger-model (it records only DAgger episodes)", file=sys.stderr)
        return 2
    expert_mix = DEFAULT_EXPERT_MIX if args.expert_mix is None else args.expert_mix
    command = "gato data generate " + " ".join(shlex.quote(part) for part in [
        "--tasks", args.tasks, "--episodes-per-task", str(args.episodes_per_task), "--out", args.out, "--seed", str(args.seed),
        "--workers", str(args.workers), "--dagger-model", args.dagger_model, "--expert-mix", f"{expert_mix:g}",
        *(["--dagger-round", str(args.dagger_round)] if args.dagger_round != 1 else [])])
    try:
        written = generate_dagger(args.dagger_model, args.tasks, args.episodes_per_task, args.out, expert_mix=expert_mix,
                                  dagger_round=args.dagger_round, seed=args.seed, workers=args.workers, overwrite=args.overwrite,
                                  progress=not args.no_progress, command=command)
    except (KeyError, ValueError, FileNotFoundError) as error:
        print(f"gato data generate: {error.args[0] if error.args else error}", file=sys.stderr)
        return 2
    for split, dataset in written.items():
        returns = dataset["episode_return"]
        print(f"{args.out}/{split}: {len(dataset)} episodes, {sum(dataset['num_steps'])} steps, "
              f"mean return {sum(returns) / len(returns):.2f} (mixed execution)")
    return 0
