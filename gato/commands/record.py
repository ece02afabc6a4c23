"""``gato data record``: episodes of any registered gymnasium environment, played by your policy, into a gato episode
collection that ``gato train`` takes as it is (:mod:`gato.episodes.record_env`).

    gato data record --env ID [--env-kwargs JSON] (--policy module:callable | --expert sb3:PATH.zip) --episodes N
                     --out DIR [--name NAME] [--seed S] [--max-steps T] [--measure-references]

The spec is built from the environment's spaces (no hand-written spec) and stored with the data, with the environment
id, its arguments and the policy: ``gato train --data DIR`` learns the task, and ``gato eval --tasks NAME`` /
``load_agent(RUN, NAME)`` play it without registering it in code. ``--out`` naming a ``gato data generate`` folder adds
the task beside the suite's tasks.
"""

from __future__ import annotations

import argparse
import shlex

from gato.episodes.record_config import RecordConfig
from gato.flags import add_dataclass_flags, command_parser, config_from_flags
from gato.inputs import refuse

_FLAGS = []


def register(commands: argparse._SubParsersAction) -> None:
    """Add ``record`` to ``gato data``'s subcommands."""
    parser = command_parser(
        commands, "record", "record your policy in any gymnasium environment (spec from its spaces)", __doc__
    )
    # RecordConfig.policy is one setting with two spellings, one of them required: --policy for your own callable,
    # --expert for a saved stable-baselines3 model (the recorded command line keeps the spelling that was used).
    who = parser.add_mutually_exclusive_group(required=True)
    who.add_argument(
        "--policy",
        metavar="MODULE:CALLABLE",
        help="callable(observation) -> action (or a factory callable(env) -> policy), importable from here "
        "(default: none; this or --expert)",
    )
    who.add_argument(
        "--expert",
        metavar="sb3:PATH.zip",
        help="a saved stable-baselines3 model (sb3:ALGO:PATH.zip to name "
        "its algorithm; needs the sb3 extra) (default: none; this or --policy)",
    )
    _FLAGS[:] = add_dataclass_flags(
        parser, RecordConfig, defaults=RecordConfig(env="", policy="", episodes=1, out=""), exclude=("policy",)
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from gato.episodes.record_env import record_env_task

    base = RecordConfig(env=args.env, policy=args.policy or args.expert, episodes=args.episodes, out=args.out)
    config = config_from_flags(base, args, _FLAGS)
    command = "gato data record " + " ".join(
        shlex.quote(part)
        for part in [
            "--env",
            config.env,
            *(["--env-kwargs", config.env_kwargs] if config.env_kwargs else []),
            "--policy" if args.policy else "--expert",
            config.policy,
            "--episodes",
            str(config.episodes),
            "--out",
            config.out,
            *(["--name", config.name] if config.name else []),
            *(["--domain", config.domain] if config.domain else []),
            "--seed",
            str(config.seed),
            *(["--max-steps", str(config.max_steps)] if config.max_steps else []),
            *(
                ["--measure-references", "--reference-episodes", str(config.reference_episodes)]
                if config.measure_references
                else []
            ),
        ]
    )
    try:
        dataset, spec, path = record_env_task(config, command=command)
    except (ValueError, KeyError, ImportError) as error:
        return refuse("gato data record", error)
    fields = ", ".join(
        f"{f.name} ({f.kind}{'' if not f.shape else ' ' + 'x'.join(map(str, f.shape))})" for f in spec.observations
    )
    print(
        f"{path}: task {spec.name!r}, {len(dataset)} episodes, {sum(dataset['num_steps'])} steps, "
        f"mean return {sum(dataset['episode_return']) / len(dataset):.2f}"
    )
    print(f"observations: {fields}; action: {spec.action.kind} ×{spec.action.size}")
    if "expert_return" in spec.extra:
        print(f"reference returns: policy {spec.extra['expert_return']:.2f}, random {spec.extra['random_return']:.2f}")
    return 0
