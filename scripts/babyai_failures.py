"""Where a model fails a BabyAI task: success rate by the mission's location word and by the expert's length.

Evaluates ``--model`` on ``--task`` as ``gato eval`` does (same seeds, the folder's prompt length, greedy
unless ``--temperature``), then replays each evaluation seed with the expert to read the episode's mission
and how many steps the expert needs. Prints one Markdown table (the one in BENCHMARKS.md, "Why PickupLoc
fails") and, with ``--out FILE``, writes every episode as JSON.

    python scripts/babyai_failures.py --model runs/multitask --episodes 100
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict

import torch

from gato.episodes.recorder import record_task_episode
from gato.evaluation.rollout import evaluate_task
from gato.evaluation.run_evaluation import check_trained_specs, load_model_and_processor, trained_prompt_tokens
from gato.suite.registry import resolve_tasks

LOCATIONS = {"in front of you": "front", "behind you": "behind", "on your left": "left", "on your right": "right"}


def mission_location(mission: str) -> str:
    """The location a BabyAI mission names ("… on your left" → ``left``), ``none`` without one."""
    return next((short for phrase, short in LOCATIONS.items() if phrase in mission), "none")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="a folder written by `gato train`")
    parser.add_argument("--task", default="babyai_pickup_loc", help="a BabyAI task (default: babyai_pickup_loc)")
    parser.add_argument("--episodes", type=int, default=100, help="evaluation episodes (default: 100)")
    parser.add_argument("--short", type=int, default=5, help="expert lengths up to this count as short (default: 5)")
    parser.add_argument("--temperature", type=float, default=None, help="sample actions at this temperature (default: greedy)")
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
    result = evaluate_task(
        model, processor, task, args.episodes, num_envs=1, prompt_tokens=trained_prompt_tokens(args.model, processor),
        do_sample=args.temperature is not None, temperature=args.temperature or 1.0,
    )
    episodes = []
    for episode_return, length, seed in zip(result.returns, result.lengths, result.seeds):
        expert = record_task_episode(task, seed)  # the evaluation episode's seed: same mission, same room
        mission = str(expert["observations"]["mission"][0])
        episodes.append({"seed": seed, "mission": mission, "location": mission_location(mission),
                         "success": episode_return > 0, "length": length, "expert_length": len(expert["actions"])})
    groups: dict[str, list[bool]] = defaultdict(list)
    for episode in episodes:
        short = episode["expert_length"] <= args.short
        groups[f"expert solves it in ≤ {args.short} steps" if short else f"expert needs > {args.short} steps"].append(episode["success"])
        groups[f"mission location: {episode['location']}"].append(episode["success"])
    failures = [episode for episode in episodes if not episode["success"]]
    print(f"{task.name}: {args.model}, {len(episodes)} episodes, success {sum(e['success'] for e in episodes) / len(episodes):.0%}; "
          f"{sum(e['length'] >= task.max_episode_steps for e in failures)} of {len(failures)} failures ran to the "
          f"{task.max_episode_steps}-step limit\n")
    print("| episodes | count | success |\n| --- | ---: | ---: |")
    for name in sorted(groups):
        print(f"| {name} | {len(groups[name])} | {sum(groups[name]) / len(groups[name]):.0%} |")
    if args.out:
        with open(args.out, "w") as file:
            json.dump(episodes, file, indent=1)


if __name__ == "__main__":
    main()
