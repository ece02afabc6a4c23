"""Where a model fails a BabyAI task: success rate by the mission's location word, by the expert's length and
by what the model picked up first.

Plays ``--model`` on ``--task`` as ``gato eval`` does (``gato.evaluation.rollout.run_episodes``: same seeds, the
folder's prompt length, greedy unless ``--temperature``; the episodes and returns of ``gato eval``), noting at every
``pickup`` what the agent faced (nothing, the mission's object, another object) and every ``drop``, then
replays each evaluation seed with the expert to read the episode's mission and how many steps the expert
needs. Prints one Markdown table (BENCHMARKS.md, "Why PickupLoc fails" and session 7) and, with ``--out FILE``,
writes every episode as JSON.

    python scripts/babyai_failures.py --model runs/multitask --episodes 100
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict

import numpy as np
import torch
from gato.episodes.recorder import record_task_episode
from gato.evaluation.rollout import make_agent, run_episodes
from gato.evaluation.run_evaluation import check_trained_specs, load_model_and_processor
from gato.modeling_gato.acting import ActingConfig
from gato.suite.babyai import DROP, PICKUP
from gato.suite.registry import resolve_tasks

LOCATIONS = {"in front of you": "front", "behind you": "behind", "on your left": "left", "on your right": "right"}


class PickupWatcher:
    """A ``run_episodes`` ``before_step`` hook: ``events[i]`` lists what episode ``i``'s agent faced at each
    ``pickup`` — ``nothing``, ``target`` (an object the mission names), ``wrong`` (another object), ``full hand``
    — and its ``drop``s, in order."""

    def __init__(self) -> None:
        self.events: dict[int, list[str]] = defaultdict(list)

    def __call__(self, env, actions, episodes) -> None:
        for slot, index in enumerate(episodes):
            if index is None:
                continue
            state, action = env.envs[slot].unwrapped, int(np.asarray(actions[slot]).item())
            ahead, carrying = state.grid.get(*state.front_pos), state.carrying
            if action == PICKUP:
                self.events[index].append(
                    "full hand"
                    if carrying is not None
                    else "nothing"
                    if ahead is None or not ahead.can_pickup()
                    else "target"
                    if any(ahead is target for target in state.instrs.desc.obj_set)
                    else "wrong"
                )
            elif action == DROP and carrying is not None:
                self.events[index].append("drop")


def first_pickup(events: list[str]) -> str:
    """What the agent faced at its first ``pickup`` (``none`` if it never tried one)."""
    return next((event for event in events if event != "drop"), "none")


def mission_location(mission: str) -> str:
    """The location a BabyAI mission names ("… on your left" → ``left``), ``none`` without one."""
    return next((short for phrase, short in LOCATIONS.items() if phrase in mission), "none")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="a folder written by `gato train`")
    parser.add_argument("--task", default="babyai_pickup_loc", help="a BabyAI task (default: babyai_pickup_loc)")
    parser.add_argument("--episodes", type=int, default=100, help="evaluation episodes (default: 100)")
    parser.add_argument("--short", type=int, default=5, help="expert lengths up to this count as short (default: 5)")
    parser.add_argument(
        "--temperature",
        type=float,
        default=None,
        help="sample actions at this temperature (default: greedy; 0 = greedy)",
    )
    parser.add_argument("--threads", type=int, default=0, help="torch threads (default: torch's)")
    parser.add_argument("--out", default=None, help="also write every episode (mission, success, lengths) as JSON")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    (task,) = resolve_tasks(args.task)
    if not any(field.name == "mission" for field in task.spec.observations):
        raise SystemExit(f"--task: {task.name!r} has no mission; expected a BabyAI task")
    check_trained_specs(args.model, [task])  # as `gato eval` does: a model of another BabyAI encoding is refused
    model, processor = load_model_and_processor(args.model)
    acting = ActingConfig(
        do_sample=args.temperature is not None, temperature=1.0 if args.temperature is None else args.temperature
    )
    agent = make_agent(model, processor, task, acting, seed=0, model_dir=args.model)  # the folder's prompt length
    watcher = PickupWatcher()
    returns, lengths, _, seeds = run_episodes(agent, task, args.episodes, num_envs=1, before_step=watcher)
    episodes = []
    for index, seed in enumerate(seeds):
        expert = record_task_episode(task, seed)  # the evaluation episode's seed: same mission, same room
        mission = str(expert["observations"]["mission"][0])
        events = watcher.events[index]
        episodes.append(
            {
                "seed": seed,
                "mission": mission,
                "location": mission_location(mission),
                "success": bool(returns[index] > 0),
                "return": float(returns[index]),
                "length": int(lengths[index]),
                "expert_length": len(expert["actions"]),
                "pickups": events,
                "first_pickup": first_pickup(events),
            }
        )
    groups: dict[str, list[bool]] = defaultdict(list)
    for episode in episodes:
        short = episode["expert_length"] <= args.short
        groups[f"expert solves it in ≤ {args.short} steps" if short else f"expert needs > {args.short} steps"].append(
            episode["success"]
        )
        groups[f"mission location: {episode['location']}"].append(episode["success"])
        groups[f"first pickup: {episode['first_pickup']}"].append(episode["success"])
        if "wrong" in episode["pickups"]:
            groups[
                "a wrong pickup, then a drop" if "drop" in episode["pickups"] else "a wrong pickup, never a drop"
            ].append(episode["success"])
    failures = [episode for episode in episodes if not episode["success"]]
    print(
        f"{task.name}: {args.model}, {len(episodes)} episodes, success {sum(e['success'] for e in episodes) / len(episodes):.0%}; "
        f"{sum(e['length'] >= task.max_episode_steps for e in failures)} of {len(failures)} failures ran to the "
        f"{task.max_episode_steps}-step limit\n"
    )
    print("| episodes | count | success |\n| --- | ---: | ---: |")
    for name in sorted(groups):
        print(f"| {name} | {len(groups[name])} | {sum(groups[name]) / len(groups[name]):.0%} |")
    if args.out:
        with open(args.out, "w") as file:
            json.dump(episodes, file, indent=1)


if __name__ == "__main__":
    main()
