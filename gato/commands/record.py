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

from gato.flags import command_parser
from gato.inputs import refuse


def register(commands: argparse._SubParsersAction) -> None:
    """Add ``record`` to ``gato data``'s subcommands."""
    # Defaults as in gato.episodes.record_env.RecordConfig, not imported here: `gato --help` stays free of datasets.
    parser = command_parser(
        commands, "record", "record your policy in any gymnasium environment (spec from its spaces)", __doc__
    )
    parser.add_argument("--env", required=True, metavar="ID", help="a registered gymnasium id, e.g. CartPole-v1")
    parser.add_argument(
        "--env-kwargs", default=None, metavar="JSON", help="gym.make arguments, a JSON object (default: none)"
    )
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
    parser.add_argument("--episodes", type=int, required=True, help="episodes to record")
    parser.add_argument(
        "--out", required=True, help="a new folder, or a `gato data generate` folder to add the task to"
    )
    parser.add_argument(
        "--name", default=None, help="the task's name (default: from the id, CartPole-v1 → cartpole_v1)"
    )
    parser.add_argument("--domain", default=None, help="the task's domain (default: its name)")
    parser.add_argument("--seed", type=int, default=0, help="collection seed")
    parser.add_argument(
        "--max-steps", type=int, default=None, help="cut episodes after this many steps (default: the id's horizon)"
    )
    parser.add_argument(
        "--measure-references",
        action="store_true",
        help="measure the policy's and a random policy's mean returns, for expert-normalized scores",
    )
    parser.add_argument("--reference-episodes", type=int, default=10, help="episodes of each reference measurement")
    parser.add_argument("--overwrite", action="store_true", help="replace the task's folder when it exists")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from gato.episodes.record_env import RecordConfig, record_env_task

    config = RecordConfig(
        env=args.env,
        policy=args.policy or args.expert,
        episodes=args.episodes,
        out=args.out,
        env_kwargs=args.env_kwargs,
        name=args.name,
        domain=args.domain,
        seed=args.seed,
        max_steps=args.max_steps,
        measure_references=args.measure_references,
        reference_episodes=args.reference_episodes,
        overwrite=args.overwrite,
    )
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
