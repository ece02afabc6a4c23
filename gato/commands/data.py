"""``gato data list``, ``gato data generate`` and ``gato data record``: thin wrappers over :mod:`gato.episodes`, the suite and (DAgger
episodes, ``--dagger-model``) :mod:`gato.episodes.dagger`, the model acting through
``gato.evaluation.run_evaluation.AgentFactory``."""

from __future__ import annotations

import argparse
import math
import sys
from dataclasses import dataclass, field

from gato.commands import record
from gato.flags import (
    DEFAULT_THREADS,
    THREADS_HELP,
    HelpFormatter,
    add_dataclass_flags,
    command_parser,
    config_from_flags,
    set_threads,
)
from gato.inputs import model_folder, refuse, writable_folder, yaml_mapping


@dataclass
class GenerateConfig:
    """What ``gato data generate`` records.

    Args:
        tasks: a suite (default, full, generalist, held_out), a domain, or comma-separated task names; with --plan, which of the plan's
            tasks to record (default: the default suite; with --plan, every task the plan names).
        episodes_per_task: episodes recorded per task (default: none; required unless --plan).
        plan: record the data plan of this YAML file: per-task episodes and action noise, captions, text
            (docs/DATA.md "Data plans"); --captions and --text override the plan's, --episodes-per-task and
            --action-noise are refused with it, the plan sets them per task. With --dagger-model: one DAgger
            round of the plan instead, the DAgger episodes (and expert mix) its groups give each task
            (dagger_episodes, expert_mix) (default: none).
        out: output folder; `datasets.load_from_disk(OUT)` gives a DatasetDict.
        seed: collection seed.
        workers: worker processes.
        captions: also write N captioned scenes (captions), N/10 with held-out colour×shape pairs
            (captions_validation) and N/10 new scenes of seen pairs (captions_test).
        text: also write the offline text corpus (text, text_validation).
        action_noise: DART-style noise: execute the expert's action with Gaussian noise of std X (continuous
            actions, in [-1, 1] units) or a random action with probability X (discrete); the recorded action stays
            the expert's (0: clean episodes).
        dagger_model: record DAgger episodes instead: the model of this `gato train` folder acts, the expert labels
            every state, into the split <task>_dagger (`gato train` weighs it by its own --task-weights entry, else
            --default-weight); with --plan, the plan's DAgger episodes of each task (default: none, expert episodes).
        expert_mix: with --dagger-model: execute the expert's action instead of the model's with this probability
            (default: 0.5; with --plan the plan's groups set it).
        dagger_round: with --dagger-model: the DAgger round; round R ≥ 2 writes <task>_daggerR and resets rooms and
            games of its own (1: <task>_dagger).
        overwrite: regenerate tasks whose folder holds another generation.
        progress: a progress bar.
        threads: torch CPU threads (0 = torch's default, one per core).
    """

    tasks: str | None = field(default=None, metadata={"argparse": {"metavar": "NAMES"}})
    episodes_per_task: int | None = field(default=None, metadata={"argparse": {"metavar": "N"}})
    out: str = field(default="", metadata={"argparse": {"required": True, "metavar": "DIR"}})
    plan: str | None = field(default=None, metadata={"argparse": {"metavar": "FILE"}})
    seed: int = 0
    workers: int = 1
    captions: int = field(default=0, metadata={"argparse": {"metavar": "N"}})
    text: bool = False
    action_noise: float = field(default=0.0, metadata={"argparse": {"metavar": "X"}})
    dagger_model: str | None = field(default=None, metadata={"argparse": {"metavar": "RUN"}})
    expert_mix: float | None = field(default=None, metadata={"argparse": {"metavar": "BETA"}})
    dagger_round: int = field(default=1, metadata={"argparse": {"metavar": "R"}})
    overwrite: bool = False
    progress: bool = True
    threads: int = DEFAULT_THREADS


_GENERATE_FLAGS = []


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "data",
        help="list and generate episode datasets",
        description="Episode datasets: `gato data list` shows the built-in tasks and suites, `gato data generate`\n"
        "records the suite's expert episodes (and captions, text, DAgger episodes), `gato data record` records\n"
        "episodes of your own gymnasium environment and policy.",
        formatter_class=HelpFormatter,
    )
    parser.set_defaults(handler=lambda args: (parser.print_help(), 0)[1], parser=parser)
    commands = parser.add_subparsers(dest="data_command", metavar="{list,generate,record}")

    listing = command_parser(
        commands, "list", "one line per built-in task: domain, observations, action, reference returns", None
    )
    listing.set_defaults(handler=list_command)

    generate = command_parser(
        commands,
        "generate",
        "record expert episodes into a DatasetDict folder (parallel, deterministic, resumable)",
        None,
    )
    _GENERATE_FLAGS[:] = add_dataclass_flags(generate, GenerateConfig, flag_kwargs={"threads": {"help": THREADS_HELP}})
    generate.set_defaults(handler=generate_command)
    record.register(
        commands
    )  # `gato data record`: your own gymnasium environment and policy (gato/commands/record.py)


def _check_paths(config: GenerateConfig) -> None:
    writable_folder(config.out, "the output folder of the DatasetDict")
    if config.dagger_model is not None:
        model_folder(config.dagger_model)


def _kinds(task) -> str:
    kinds = dict.fromkeys(field.kind for field in task.spec.observations)
    return "+".join(kinds)


def _return(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{value:.2f}"


def list_command(args: argparse.Namespace) -> int:
    from gato.suite.registry import list_suites, list_tasks

    tasks = list_tasks()
    rows = [
        (
            t.name,
            t.domain,
            _kinds(t),
            f"{t.spec.action.kind}({t.spec.action.num_values if t.spec.action.kind == 'discrete' else t.spec.action.size})",
            _return(t.expert_return),
            _return(t.random_return),
        )
        for t in tasks
    ]
    header = ("task", "domain", "observations", "action", "expert", "random")
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        print(
            "  ".join(
                cell.rjust(w) if i >= 4 else cell.ljust(w) for i, (cell, w) in enumerate(zip(row, widths))
            ).rstrip()
        )
    suites = list_suites()
    print(
        f"\n{len(tasks)} tasks; suites: " + "; ".join(f"{name} ({len(names)} tasks)" for name, names in suites.items())
    )
    return 0


def generate_command(args: argparse.Namespace) -> int:
    config = config_from_flags(GenerateConfig(), args, _GENERATE_FLAGS)
    try:
        _check_paths(config)
        if config.tasks is not None and not config.tasks.strip():  # `--tasks ""` (an unset shell variable)
            raise ValueError("tasks (--tasks): expected a suite, a domain or task names, got an empty string")
    except ValueError as error:
        return refuse("gato data generate", error)
    set_threads(config.threads)
    if config.plan is not None:
        return plan_command(config, args)
    if config.episodes_per_task is None:
        print("gato data generate: --episodes-per-task N is required (or --plan FILE, a data plan)", file=sys.stderr)
        return 2
    config.tasks = config.tasks or "default"
    if config.dagger_model is not None:
        return dagger_command(config)
    if _dagger_flags_without_model(config):
        return 2
    from gato.episodes.generate import generate, summary_table

    try:
        dataset_dict, summaries = generate(
            config.tasks,
            config.episodes_per_task,
            config.out,
            seed=config.seed,
            workers=config.workers,
            captions=config.captions,
            text=config.text,
            overwrite=config.overwrite,
            progress=config.progress,
            action_noise=config.action_noise,
        )
    except (KeyError, ValueError) as error:
        return refuse("gato data generate", error)
    print(summary_table(summaries))
    print(f"\n{config.out}: DatasetDict with {len(dataset_dict)} datasets: {', '.join(dataset_dict)}")
    return 0


def _dagger_flags_without_model(config: GenerateConfig) -> bool:
    """True (after saying so) when a DAgger-only flag came without --dagger-model."""
    for flag, value, default in (
        ("--expert-mix", config.expert_mix, None),
        ("--dagger-round", config.dagger_round, 1),
    ):
        if value != default:
            print(f"gato data generate: {flag} needs --dagger-model", file=sys.stderr)
            return True
    return False


def _refused_together(given: dict[str, bool], other: str) -> bool:
    """True (after saying so on stderr) when any flag of ``given`` (flag → whether it was given) came with ``other``."""
    refused = [flag for flag, present in given.items() if present]
    if refused:
        print(f"gato data generate: {', '.join(refused)} cannot go with {other}", file=sys.stderr)
    return bool(refused)


def plan_command(config: GenerateConfig, args: argparse.Namespace) -> int:
    """``gato data generate --plan FILE``: the plan's ``generate`` calls (``gato.episodes.plan.run_plan``), one table;
    with ``--dagger-model RUN``, one DAgger round of the plan instead (:func:`dagger_plan_command`).

    ``--captions`` / ``--text`` override the plan's; ``--episodes-per-task`` and ``--action-noise`` are refused (the
    plan sets them per task: edit the plan)."""
    if _refused_together(
        {"--episodes-per-task": args.episodes_per_task is not None, "--action-noise": args.action_noise is not None},
        "--plan (the plan sets the episodes and the action noise of each task; edit the plan, or drop --plan)",
    ):
        return 2
    if config.dagger_model is not None:
        return dagger_plan_command(config, args)
    if _dagger_flags_without_model(config):
        return 2
    from gato.episodes.generate import summary_table
    from gato.episodes.plan import DataPlan, run_plan

    try:
        plan = DataPlan.from_dict(yaml_mapping(config.plan, "a data plan YAML file"), where=config.plan)
        plan = plan.with_overrides(captions=args.captions, text=args.text)
        run = run_plan(
            plan,
            config.out,
            tasks=config.tasks,
            seed=config.seed,
            workers=config.workers,
            overwrite=config.overwrite,
            progress=config.progress,
        )
    except (KeyError, ValueError) as error:
        return refuse("gato data generate", error)
    print(summary_table(run.summaries))
    print(
        f"\n{config.out}: DatasetDict with {len(run.dataset_dict)} datasets: {', '.join(run.dataset_dict)} "
        f"({len(run.calls)} generate call{'s' if len(run.calls) != 1 else ''} of the plan {config.plan})"
    )
    if any(group.dagger_episodes for group in plan.groups):
        print(
            f"The plan also asks for DAgger episodes (dagger_episodes): once a model is trained on these data, "
            f"record a round with `gato data generate --plan {config.plan} --out {config.out} --dagger-model RUN`."
        )
    return 0


def dagger_plan_command(config: GenerateConfig, args: argparse.Namespace) -> int:
    """``gato data generate --plan FILE --dagger-model RUN [--dagger-round R]``: one DAgger round of the plan
    (``gato.episodes.plan.run_dagger_plan``): each selected task whose group sets ``dagger_episodes`` gets that many
    DAgger episodes, with its group's ``expert_mix``. ``--expert-mix`` is refused (the plan sets it per group), as
    are ``--captions`` and ``--text`` (a round records only DAgger episodes)."""
    if _refused_together(
        {
            "--expert-mix": config.expert_mix is not None,
            "--captions": args.captions is not None,
            "--text": args.text is not None,
        },
        "--plan and --dagger-model (a DAgger round of a plan records only DAgger episodes, each group's expert_mix "
        "setting β; edit the plan)",
    ):
        return 2
    from gato.episodes.plan import DataPlan, run_dagger_plan
    from gato.evaluation.run_evaluation import AgentFactory

    try:
        plan = DataPlan.from_dict(yaml_mapping(config.plan, "a data plan YAML file"), where=config.plan)
        run = run_dagger_plan(
            plan,
            AgentFactory(config.dagger_model),
            config.out,
            tasks=config.tasks,
            dagger_round=config.dagger_round,
            seed=config.seed,
            workers=config.workers,
            overwrite=config.overwrite,
            progress=config.progress,
        )
    except (KeyError, ValueError, FileNotFoundError) as error:
        return refuse("gato data generate", error)
    for name, split in run.splits.items():
        _print_dagger_split(config.out, split, run.datasets[name], run.status[name])
    print(
        f"\n{config.out}: DAgger round {config.dagger_round} of the plan {config.plan} by {config.dagger_model} "
        f"({len(run.calls)} call{'s' if len(run.calls) != 1 else ''})"
    )
    return 0


def _print_dagger_split(out: str, split: str, dataset, status: str) -> None:
    returns = dataset["episode_return"]
    print(
        f"{out}/{split}: {len(dataset)} episodes, {sum(dataset['num_steps'])} steps, "
        f"mean return {sum(returns) / len(returns):.2f} (mixed execution), {status}"
    )


def dagger_command(config: GenerateConfig) -> int:
    from gato.episodes.dagger import DEFAULT_EXPERT_MIX, dagger_command_line, dagger_split, generate_dagger
    from gato.evaluation.run_evaluation import AgentFactory
    from gato.suite.registry import resolve_tasks

    if _refused_together(
        {
            "--captions": bool(config.captions),
            "--text": bool(config.text),
            "--action-noise": bool(config.action_noise),
        },
        "--dagger-model (it records only DAgger episodes)",
    ):
        return 2
    expert_mix = DEFAULT_EXPERT_MIX if config.expert_mix is None else config.expert_mix
    command = dagger_command_line(
        config.tasks,
        config.episodes_per_task,
        config.out,
        config.dagger_model,
        expert_mix=expert_mix,
        dagger_round=config.dagger_round,
        seed=config.seed,
        workers=config.workers,
    )
    try:
        written = generate_dagger(
            AgentFactory(config.dagger_model),
            config.tasks,
            config.episodes_per_task,
            config.out,
            expert_mix=expert_mix,
            dagger_round=config.dagger_round,
            seed=config.seed,
            workers=config.workers,
            overwrite=config.overwrite,
            progress=config.progress,
            command=command,
        )
    except (KeyError, ValueError, FileNotFoundError) as error:
        return refuse("gato data generate", error)
    from datasets import load_from_disk

    for task in resolve_tasks(config.tasks):
        split = dagger_split(task.name, config.dagger_round)
        dataset = written[split] if split in written else load_from_disk(f"{config.out}/{split}")
        _print_dagger_split(config.out, split, dataset, "generated" if split in written else "skipped")
    return 0
