"""Measure every built-in task's expert and random mean returns and store them in the suite.

Runs N seeded episodes per task and policy (expert seeds 0..N-1, random seeds 10000..10000+N-1), prints
a table, and merges the results into ``suite/reference_returns.json`` (the values ``Task.expert_return``
/ ``Task.random_return`` and normalized scores use) unless ``--dry-run``. ``--markdown`` also prints
the table as Markdown for docs/SUITE.md.

    python scripts/measure_returns.py --tasks full --episodes 20
    python scripts/measure_returns.py --tasks atari_pong --episodes 10 --dry-run
"""

from __future__ import annotations

import argparse
import datetime
import json
import time

from gato.suite.measure import measure, summarize
from gato.suite.registry import REFERENCE_RETURNS_PATH, Task, load_reference_returns, resolve_tasks
from tqdm.auto import tqdm

RANDOM_SEED_OFFSET = 10_000  # random-policy episodes use other seeds than the expert's


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", default="full", help="suite, domain or comma-separated task names (default: full)")
    parser.add_argument("--episodes", type=int, default=20, help="episodes per task and policy (default: 20)")
    parser.add_argument("--dry-run", action="store_true", help="print the table without writing the JSON file")
    parser.add_argument("--markdown", action="store_true", help="also print the table as Markdown")
    return parser.parse_args()


def obs_kinds(task: Task) -> str:
    return "+".join(dict.fromkeys(field.kind for field in task.spec.observations))


def main() -> None:
    args = parse_args()
    tasks = resolve_tasks(args.tasks)
    stored = load_reference_returns()
    rows = []
    for task in tqdm(tasks, desc="tasks", unit="task"):
        start = time.perf_counter()
        env = task.make_env(0)
        results = {}
        for policy, seed in (("expert", 0), ("random", RANDOM_SEED_OFFSET)):
            episodes = []
            for index in tqdm(range(args.episodes), desc=f"{task.name} {policy}", unit="ep", leave=False):
                episodes.extend(measure(task, policy, 1, seed=seed + index, env=env))
            results[policy] = summarize(episodes)
        env.close()
        expert, random = results["expert"], results["random"]
        entry = {
            "expert_return": expert["mean_return"],
            "expert_return_std": expert["std_return"],
            "expert_length": expert["mean_length"],
            "random_return": random["mean_return"],
            "random_return_std": random["std_return"],
            "random_length": random["mean_length"],
            "episodes": args.episodes,
            "max_episode_steps": task.max_episode_steps,
            "measured": datetime.date.today().isoformat(),
        }
        if task.extra.get("has_success"):
            entry["expert_success_rate"] = expert["success_rate"]
            entry["random_success_rate"] = random["success_rate"]
        stored[task.name] = entry
        rows.append((task, entry, time.perf_counter() - start))
        if not args.dry_run:  # write after every task: a long run that is stopped keeps what it measured
            REFERENCE_RETURNS_PATH.write_text(json.dumps(dict(sorted(stored.items())), indent=2) + "\n")

    header = f"{'task':32s} {'domain':16s} {'obs':24s} {'action':10s} {'expert':>10s} {'random':>10s} {'eps':>4s} {'succ(e/r)':>10s} {'secs':>6s}"
    print(header)
    print("-" * len(header))
    for task, entry, seconds in rows:
        success = (
            f"{entry['expert_success_rate']:.2f}/{entry['random_success_rate']:.2f}"
            if "expert_success_rate" in entry
            else "-"
        )
        print(
            f"{task.name:32s} {task.domain:16s} {obs_kinds(task):24s} {task.spec.action.kind:10s} "
            f"{entry['expert_return']:10.2f} {entry['random_return']:10.2f} {entry['episodes']:4d} {success:>10s} {seconds:6.1f}"
        )
    if args.markdown:
        print()
        print(
            "| task | domain | observations | action | horizon | expert return | random return | episodes | success (expert / random) |"
        )
        print("| --- | --- | --- | --- | ---: | ---: | ---: | ---: | --- |")
        for task, entry, _ in rows:
            success = (
                f"{entry['expert_success_rate']:.2f} / {entry['random_success_rate']:.2f}"
                if "expert_success_rate" in entry
                else "–"
            )
            action = f"{task.spec.action.kind} ×{task.spec.action.size}"
            print(
                f"| `{task.name}` | {task.domain} | {obs_kinds(task)} | {action} | {task.max_episode_steps} | "
                f"{entry['expert_return']:.2f} ± {entry['expert_return_std']:.2f} | "
                f"{entry['random_return']:.2f} ± {entry['random_return_std']:.2f} | {entry['episodes']} | {success} |"
            )


if __name__ == "__main__":
    main()
