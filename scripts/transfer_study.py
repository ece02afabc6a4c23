"""The paper's fine-tuning study (Reed et al. 2022, section 5.2) on held-out tasks: does a pretrained generalist learn
a task it never saw from fewer demonstrations than the same model trained from scratch?

For every task of ``--tasks`` (default: the ``held_out`` suite, one task per domain that the generalist never saw):

  (a) prompt-only: the generalist itself, prompted with an expert demonstration (``gato eval``'s library path);
  (b) fine-tuned from the generalist on the task's first K expert episodes, for each K of ``--episodes``
      (``gato finetune``'s library path; ``--lora`` for LoRA adapters instead of every weight);
  (c) the generalist's size trained from scratch on the same K episodes and steps (``gato finetune --from-scratch``);

each (b) and (c) model evaluated like (a), with ``--eval-episodes`` episodes. Writes into ``--out``:
``transfer.json`` (every cell: normalized score, mean return, the model folder and its evaluation), ``transfer.md``
(the table) and ``transfer.png`` (normalized score against K, pretrained against scratch, one panel per task,
prompt-only as a horizontal line). Each cell is recorded in ``transfer.json`` as soon as it is finished, so running
the same command again skips the finished cells and resumes an interrupted training from its checkpoints; other
settings than the recorded ones are refused — except another ``--model`` of the same size and context (the finished
generalist after one of its checkpoints): the from-scratch cells, which take only its size, are kept, and the
prompt-only and fine-tuned cells run again (their earlier folders renamed ``*.was-<old model>``). So the scratch arm
can run while the generalist still trains.

    python scripts/transfer_study.py --model runs/generalist --data data/held_out --tasks held_out \\
        --episodes 5,20,100 --max-steps 2000 --eval-episodes 50 --out runs/transfer

``--data`` is a ``gato data generate`` folder holding the tasks (``--episodes-per-task`` at least the largest K plus
the validation hold-out, 5%). ``--train-config FILE`` sets any other training field (YAML of ``TrainingConfig``
fields, as ``gato train --config``); ``--learning-rate``, ``--batch-size``, ``--warmup-steps`` and ``--seed`` are
flags of their own.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path
from typing import Any

from gato.evaluation.transfer_report import (
    KINDS,
    PLOT_FILE,
    RESULTS_FILE,
    TABLE_FILE,
    format_score,
    markdown_table,
    mean_interval,
    plot,
    read_results,
)
from gato.training.config import TrainingConfig

from gato.flags import parse_mapping, positive_int, set_threads
from gato.inputs import yaml_mapping

MODEL_SETTINGS = ("preset", "model_overrides", "max_length")  # the generalist's size and context (init_model_settings)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="the pretrained generalist (a `gato train` folder)")
    parser.add_argument("--data", required=True, help="a `gato data generate` folder holding the tasks' episodes")
    parser.add_argument("--tasks", default="held_out", help="suite, domain or task names (default: held_out)")
    parser.add_argument("--episodes", default="5,20,100", help="the K values: demonstrations to fine-tune on")
    parser.add_argument("--max-steps", type=positive_int, required=True, help="training steps of every (b), (c) run")
    parser.add_argument("--eval-episodes", type=positive_int, default=50, help="evaluation episodes of every cell")
    parser.add_argument("--eval-max-steps", type=positive_int, help="cut evaluation episodes (default: the horizon)")
    parser.add_argument("--out", required=True, help="folder of the study's models, evaluations, JSON, table, plot")
    parser.add_argument("--lora", action="store_true", help="fine-tune LoRA adapters (rank 8) instead of every weight")
    parser.add_argument("--learning-rate", type=float, help="peak learning rate (default: TrainingConfig's)")
    parser.add_argument("--batch-size", type=positive_int, help="sequences per step (default: TrainingConfig's)")
    parser.add_argument("--warmup-steps", type=int, help="warm-up steps (default: TrainingConfig's)")
    parser.add_argument("--seed", type=int, default=0, help="training and evaluation seed")
    parser.add_argument("--train-config", help="YAML of other TrainingConfig fields for every training run")
    parser.add_argument(
        "--train-overrides", type=parse_mapping, default={}, help="KEY=VALUE,... TrainingConfig fields"
    )
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (0 = torch's default)")
    parser.add_argument(
        "--arms",
        default="prompt_only,finetune,scratch",
        help="the arms to run now, comma-separated (e.g. scratch: from a checkpoint while the generalist trains; "
        "not a setting: a later run of every arm continues the same study)",
    )
    return parser.parse_args(argv)


def parse_episodes(text: str) -> list[int]:
    try:
        values = sorted({int(part) for part in text.split(",") if part.strip()})
    except ValueError:
        raise ValueError(f"episodes: expected comma-separated whole numbers, got {text!r}") from None
    if not values or values[0] < 1:
        raise ValueError(f"episodes: expected numbers ≥ 1, got {text!r}")
    return values


def study_settings(args: argparse.Namespace, tasks: list[str], episodes: list[int]) -> dict[str, Any]:
    """What every cell depends on; a resumed study must present the same (``transfer.json``'s ``settings``)."""
    training = {
        **(yaml_mapping(args.train_config, "a YAML file of TrainingConfig fields") if args.train_config else {})
    }
    training.update(args.train_overrides)
    for name in ("learning_rate", "batch_size", "warmup_steps"):
        if getattr(args, name) is not None:
            training[name] = getattr(args, name)
    return {
        "model": str(Path(args.model).resolve()),
        "data": str(Path(args.data).resolve()),
        "tasks": tasks,
        "episodes": episodes,
        "max_steps": args.max_steps,
        "eval_episodes": args.eval_episodes,
        "eval_max_steps": args.eval_max_steps,
        "lora": args.lora,
        "seed": args.seed,
        "training": training,
    }


def check_enough_episodes(data: str, tasks: list[str], largest: int, validation_fraction: float) -> None:
    """Refuse up front a task whose training split holds fewer than the largest K (not after hours of other cells)."""
    from gato.training.mixture import split_sources
    from gato.training.run_training import load_data

    sources, _ = split_sources(load_data(data), validation_fraction)
    sizes = {source.name: len(source.dataset) for source in sources if source.kind == "episodes"}
    problems = [
        f"{task}: {'no split' if task not in sizes else f'{sizes[task]} training episodes'}"
        for task in tasks
        if sizes.get(task, 0) < largest
    ]
    if problems:
        raise ValueError(
            f"data: {data} needs ≥ {largest} training episodes (after the {validation_fraction:.0%} validation "
            f"hold-out) of every task: " + "; ".join(problems)
        )


def evaluate_cell(model: str, task: str, out: Path, settings: dict[str, Any]) -> dict[str, Any]:
    """``gato eval``'s library path on one task; the cell's normalized score, returns and where the results are."""
    from gato.evaluation.run_evaluation import EvaluationConfig, run_evaluation

    config = EvaluationConfig(
        model=model,
        tasks=task,
        episodes=settings["eval_episodes"],
        output_dir=str(out),
        num_envs=min(4, settings["eval_episodes"]),
        seed=settings["seed"],
        max_steps=settings["eval_max_steps"],
        text=False,
        threads=0,  # the script's --threads is already set
        progress=False,
    )
    evaluation = run_evaluation(config)
    (result,) = evaluation["tasks"]
    interval = mean_interval(evaluation)
    return {
        "normalized_score": result["normalized_score"],
        "score_interval": list(interval) if interval else None,
        "mean_return": result["mean_return"],
        "std_return": result["std_return"],
        "success_rate": result["success_rate"],
        "eval_episodes": result["episodes"],
        "eval_results": str(out / "eval_results.json"),
    }


def train_cell(kind: str, task: str, episodes: int, out: Path, settings: dict[str, Any]) -> dict[str, Any]:
    """(b) or (c): ``gato finetune``'s library path, resuming from the cell's own checkpoints if it was interrupted."""
    from gato.training.finetune import FinetuneConfig, finetune_training_config
    from gato.training.run_training import run_training

    train = TrainingConfig.from_dict(
        {
            "report_to": "none",
            **settings["training"],
            "data": settings["data"],
            "output_dir": str(out),
            "max_steps": settings["max_steps"],
            "seed": settings["seed"],
            "resume": (out / "checkpoints").is_dir(),  # an interrupted cell continues from its checkpoints
        }
    )
    finetune = FinetuneConfig(
        model=settings["model"],
        task=task,
        episodes=episodes,
        from_scratch=kind == "scratch",
        lora=settings["lora"] and kind == "finetune",
    )
    started = time.perf_counter()
    config = finetune_training_config(finetune, train)
    result = run_training(config)
    return {
        "model": str(out),
        # What a from-scratch cell takes of the generalist: its size and context, not its weights (load_results).
        "model_settings": {name: getattr(config, name) for name in MODEL_SETTINGS},
        "train_steps": result.step,
        "final_loss": result.losses[-1] if result.losses else None,
        "train_seconds": time.perf_counter() - started,
    }


def cells(tasks: list[str], episodes: list[int]) -> list[tuple[str, str, int | None]]:
    """Every cell in order: per task, prompt-only, then fine-tuned and scratch for each K."""
    return [
        (task, kind, k)
        for task in tasks
        for kind, k in [("prompt_only", None), *((kind, k) for k in episodes for kind in KINDS)]
    ]


def load_results(path: Path, settings: dict[str, Any]) -> dict[str, Any]:
    """The finished cells of an earlier run of the same study (refused if it had other settings)."""
    from gato.training.checkpoints import config_differences

    try:
        results = read_results(path.parent)
    except ValueError as error:
        raise ValueError(f"{error}; move it away to start the study again") from None
    if results is None:
        return {"settings": settings, "tasks": {}}
    recorded = results["settings"]
    if differences := config_differences(recorded, settings, ignore=("model",), absent={}):
        raise ValueError(
            f"{path}: recorded with other settings ("
            + "; ".join(differences)
            + "); use another --out, or the same settings"
        )
    if recorded.get("model") != settings["model"]:
        return _keep_scratch_cells(path, results, settings)
    return results


def _keep_scratch_cells(path: Path, results: dict[str, Any], settings: dict[str, Any]) -> dict[str, Any]:
    """Another generalist than the recorded one: its prompt-only and fine-tuned cells are not this model's, but the
    from-scratch cells take only its size and context, so they are kept when those are the same (the arm can run
    before the generalist's final weights exist, from one of its checkpoints). Another size is refused."""
    from gato.training.init_from import init_model_settings

    wanted = json.loads(json.dumps(init_model_settings(settings["model"])))  # as transfer.json holds it
    scratch = [cell for entry in results["tasks"].values() for cell in entry.get("scratch", {}).values()]
    if any(cell.get("model_settings") != wanted for cell in scratch):
        raise ValueError(
            f"{path}: recorded with the generalist {results['settings']['model']}, whose from-scratch cells do not "
            f"record the size and context of {settings['model']} ({wanted}); use another --out"
        )
    previous = Path(results["settings"]["model"]).name
    for task, entry in results["tasks"].items():
        entry.pop("prompt_only", None)
        entry["finetune"] = {}
        # The earlier model's cell folders move aside (kept, and not resumed by the new model's trainings).
        for folder in [path.parent / task / "prompt_only", *sorted((path.parent / task).glob("finetune-k*"))]:
            if folder.is_dir() and ".was-" not in folder.name:
                target, number = folder.with_name(f"{folder.name}.was-{previous}"), 1
                while target.exists():
                    number += 1
                    target = folder.with_name(f"{folder.name}.was-{previous}-{number}")
                folder.rename(target)
    print(
        f"{path}: the generalist is now {settings['model']} (was {results['settings']['model']}): keeping its "
        f"{len(scratch)} from-scratch cell(s), same size and context; the prompt-only and fine-tuned cells run again "
        f"(the earlier ones' folders renamed *.was-{previous})",
        flush=True,
    )
    return {**results, "settings": settings}


def write_json(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    os.replace(tmp, path)  # a kill mid-write leaves the previous file


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    from gato.suite.registry import resolve_tasks

    set_threads(args.threads)
    tasks = {task.name: task for task in resolve_tasks(args.tasks)}
    episodes = parse_episodes(args.episodes)
    settings = study_settings(args, list(tasks), episodes)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    results_path = out / RESULTS_FILE
    results = load_results(results_path, settings)
    fraction = TrainingConfig.from_dict(settings["training"]).validation_fraction  # the training runs' hold-out
    check_enough_episodes(settings["data"], list(tasks), episodes[-1], fraction)

    arms = [arm.strip() for arm in args.arms.split(",") if arm.strip()]
    if not arms or set(arms) - {"prompt_only", *KINDS}:
        raise ValueError(f"arms (--arms): expected some of prompt_only, finetune, scratch, got {args.arms!r}")
    todo = [cell for cell in cells(list(tasks), episodes) if cell[1] in arms]
    for index, (task, kind, k) in enumerate(todo, start=1):
        entry = results["tasks"].setdefault(task, {"domain": tasks[task].domain, "finetune": {}, "scratch": {}})
        name = "prompt-only" if kind == "prompt_only" else f"{kind} K={k}"
        done = entry.get("prompt_only") if kind == "prompt_only" else entry[kind].get(str(k))
        if done is not None:
            print(f"[{index}/{len(todo)}] {task} {name}: done before ({format_score(done)})", flush=True)
            continue
        print(f"[{index}/{len(todo)}] {task} {name}: ", end="", flush=True)
        started = time.perf_counter()
        if kind == "prompt_only":
            cell = evaluate_cell(settings["model"], task, out / task / "prompt_only", settings)
            entry["prompt_only"] = cell
        else:
            folder = out / task / f"{kind}-k{k}"
            cell = train_cell(kind, task, k, folder, settings)
            cell.update(evaluate_cell(str(folder), task, folder / "eval", settings))
            entry[kind][str(k)] = cell
        write_json(results_path, results)
        print(f"normalized score {format_score(cell)} ({time.perf_counter() - started:.1f} s)", flush=True)

    (out / TABLE_FILE).write_text(markdown_table(results))
    plot(results, out / PLOT_FILE)
    print(markdown_table(results))
    print(f"wrote {results_path}, {out / TABLE_FILE}, {out / PLOT_FILE}")
    return results


if __name__ == "__main__":
    try:
        main()
    except (ValueError, KeyError) as error:  # bad settings or data: one line naming them, no traceback
        raise SystemExit(f"transfer_study: {error.args[0] if isinstance(error, KeyError) else error}") from None
