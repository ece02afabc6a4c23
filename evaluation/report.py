"""Evaluation results → ``eval_results.json``, markdown tables, PNG plots (scores per task, performance profile) and
terminal tables.

The JSON's fields are documented in ``docs/EVALUATION.md`` and read by the model card: keep names stable.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

RESULTS_FILE = "eval_results.json"
TABLE_FILE = "eval_results.md"
CHART_FILE = "normalized_scores.png"
PROFILE_FILE = "performance_profile.png"
SCHEMA_VERSION = 1

# What the model card reads from an ``eval_results.json`` (docs/EVALUATION.md): always the episode count; with
# any task, each task's row and the per-domain and overall summaries.
RESULT_FIELDS = ("episodes_per_task",)
TASK_FIELDS = (
    "task",
    "domain",
    "episodes",
    "mean_return",
    "std_return",
    "expert_return",
    "random_return",
    "normalized_score",
    "success_rate",
)
SUMMARY_FIELDS = (
    "tasks",
    "tasks_scored",
    "mean_normalized_score",
    "median_normalized_score",
    "tasks_above_threshold",
    "fraction_above_threshold",
)


def check_results(results: Any, source: str | Path) -> None:
    """Raise ``ValueError`` naming ``source`` and the first missing or mistyped field when ``results`` lacks what
    the model card reads from a ``gato eval`` results file, instead of a bare ``KeyError`` later."""
    expected = "(expected an eval_results.json written by `gato eval`, fields in docs/EVALUATION.md)"
    if not isinstance(results, Mapping):
        raise ValueError(f"{source}: not a JSON object {expected}")
    for name in RESULT_FIELDS:
        if name not in results:
            raise ValueError(f"{source}: no {name!r} field {expected}")
    tasks = results.get("tasks") or []
    if not isinstance(tasks, list) or not all(isinstance(task, Mapping) for task in tasks):
        raise ValueError(f"{source}: 'tasks' must be a list of objects {expected}")
    for index, task in enumerate(tasks):
        for name in TASK_FIELDS:
            if name not in task:
                raise ValueError(
                    f"{source}: tasks[{index}] ({task.get('task', '?')}) has no {name!r} field {expected}"
                )
    if not tasks:
        return
    domains = results.get("domains")
    if not isinstance(domains, Mapping):
        raise ValueError(f"{source}: 'domains' must be an object {expected}")
    for where, summary in [
        *((f"domains.{name}", value) for name, value in domains.items()),
        ("summary", results.get("summary")),
    ]:
        missing = [name for name in SUMMARY_FIELDS if not isinstance(summary, Mapping) or name not in summary]
        if missing:
            raise ValueError(f"{source}: {where} has no {missing[0]!r} field {expected}")


def _fmt(value: Any, digits: int = 2, percent: bool = False) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "—"
    return f"{100 * value:.0f}%" if percent else f"{value:.{digits}f}"


def task_rows(results: Mapping[str, Any]) -> list[list[str]]:
    """One row per task: task, domain, episodes, mean ± std return, expert, random, normalized score, success,
    held-out action accuracy (teacher-forced; ``—`` when not measured)."""
    return [
        [
            task["task"],
            task["domain"],
            str(task["episodes"]),
            f"{_fmt(task['mean_return'])} ± {_fmt(task['std_return'])}",
            _fmt(task["expert_return"]),
            _fmt(task["random_return"]),
            _fmt(task["normalized_score"], percent=True),
            _fmt(task["success_rate"], percent=True),
            _fmt((task.get("imitation") or {}).get("action_accuracy"), percent=True),
        ]
        for task in results["tasks"]
    ]


# "held-out actions": teacher-forced, the fraction of expert time steps whose whole action the model predicts.
TASK_HEADER = [
    "task",
    "domain",
    "episodes",
    "return (mean ± std)",
    "expert",
    "random",
    "normalized",
    "success",
    "held-out actions",
]
DOMAIN_HEADER = ["domain", "tasks", "mean normalized", "median normalized", "tasks ≥ 50%"]


def domain_rows(results: Mapping[str, Any]) -> list[list[str]]:
    rows = []
    for name, summary in [*results["domains"].items(), ("all", results["summary"])]:
        rows.append(
            [
                name,
                f"{summary['tasks_scored']}/{summary['tasks']}",
                _fmt(summary["mean_normalized_score"], percent=True),
                _fmt(summary["median_normalized_score"], percent=True),
                f"{summary['tasks_above_threshold']} ({_fmt(summary['fraction_above_threshold'], percent=True)})",
            ]
        )
    return rows


STATISTICS_HEADER = ["tasks", "episodes", "IQM", "median", "mean", "optimality gap"]


def _interval(estimate: Mapping[str, float]) -> str:
    """``value [low, high]`` in percent."""
    return f"{100 * estimate['value']:.0f}% [{100 * estimate['low']:.0f}, {100 * estimate['high']:.0f}]"


def statistics_rows(results: Mapping[str, Any]) -> list[list[str]]:
    """One row per domain and one for all tasks: the aggregates of ``results["statistics"]`` with their intervals
    (empty when the results have none: no scored task, or written before statistics existed)."""
    statistics = results.get("statistics")
    if not statistics:
        return []
    return [
        [
            name,
            str(summary["tasks"]),
            str(summary["episodes"]),
            *(_interval(summary[aggregate]) for aggregate in ("iqm", "median", "mean", "optimality_gap")),
        ]
        for name, summary in [*statistics["domains"].items(), ("all", statistics["all"])]
    ]


def statistics_note(results: Mapping[str, Any]) -> str:
    """What the statistics table's brackets are."""
    statistics = results["statistics"]
    return (
        f"Expert-normalized scores of the episodes (each episode's return normalized as the task's mean is): "
        f"interquartile mean, median and mean of the task means, optimality gap (mean shortfall below the expert, "
        f"lower is better); [brackets]: {100 * statistics['confidence']:.0f}% stratified-bootstrap confidence "
        f"intervals over each task's episodes ({statistics['reps']} replicates, seed {statistics['seed']}; Agarwal et al. 2021, "
        f"https://arxiv.org/abs/2108.13264)."
    )


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(" --- " for _ in header) + "|"]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows])


CAPTION_HEADER = [
    "split",
    "samples",
    "colour",
    "shape",
    "colour+shape",
    "held-out colour+shape",
    "precision",
    "scenes",
    "BLEU",
]


def caption_results(results: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The evaluated caption splits: held-out pairs (``captions``), then new scenes (``captions_test``)."""
    return [results[key] for key in ("captions", "captions_test") if results.get(key)]


def caption_row(captions: Mapping[str, Any]) -> list[str]:
    """One row of :data:`CAPTION_HEADER` (``scene_accuracy`` is absent from results written before it existed)."""
    return [
        captions["split"],
        str(captions["samples"]),
        _fmt(captions["colour_accuracy"], percent=True),
        _fmt(captions["shape_accuracy"], percent=True),
        _fmt(captions["colour_shape_accuracy"], percent=True),
        _fmt(captions["held_out_colour_shape_accuracy"], percent=True),
        _fmt(captions["mention_precision"], percent=True),
        _fmt(captions.get("scene_accuracy"), percent=True),
        _fmt(captions["bleu"], 1),
    ]


def markdown_report(results: Mapping[str, Any]) -> str:
    """The markdown report: control tasks, domains, captions and text (sections only for what was evaluated)."""
    parts = [f"# Evaluation of `{results['model']}`", ""]
    if results["tasks"]:
        parts += [
            "## Control",
            "",
            markdown_table(TASK_HEADER, task_rows(results)),
            "",
            "Normalized score = (return − random) / (expert − random): 0 is a uniformly random policy, 1 the expert "
            "(as in the Gato paper, Reed et al. 2022).",
            "",
            markdown_table(DOMAIN_HEADER, domain_rows(results)),
            "",
        ]
        if statistics_rows(results):
            parts += [
                markdown_table(["domain", *STATISTICS_HEADER], statistics_rows(results)),
                "",
                statistics_note(results),
                "",
            ]
    splits = caption_results(results)
    if splits:
        parts += [
            "## Captions",
            "",
            markdown_table(CAPTION_HEADER, [caption_row(c) for c in splits]),
            "",
            '`captions_validation`: every scene holds a colour×shape pair never seen in training ("held-out\n'
            'colour+shape" is over those objects); `captions_test`: new scenes of the training pairs. "scenes": the\n'
            "caption names every object's colour and shape, once per object, and nothing else.",
            "",
        ]
        for c in splits:
            parts += [f"{c['split']}:", ""]
            parts += [
                f"- reference: {ex['reference']}\n  generated: {ex['generated'] or '(empty)'}" for ex in c["examples"]
            ] + [""]
    text = results.get("text")
    if text:
        parts += [
            "## Text",
            "",
            markdown_table(
                ["split", "documents", "tokens", "loss (nats/token)", "perplexity"],
                [
                    [
                        text["split"],
                        str(text["documents"]),
                        str(text["tokens"]),
                        _fmt(text["loss"], 3),
                        _fmt(text["perplexity"], 1),
                    ]
                ],
            ),
            "",
        ]
    return "\n".join(parts)


def score_plot_title(results: Mapping[str, Any]) -> str:
    """The model folder's name (not its path: the plot travels with the model card) and the episode count."""
    return f"{Path(str(results['model'])).name}: {results['episodes_per_task']} episodes per task"


def bar_chart(results: Mapping[str, Any], path: str | Path) -> Path | None:
    """PNG bar chart of the normalized score per task (tasks without a score are left out), with the 50% line."""
    import matplotlib

    matplotlib.use("Agg")  # files only; no display on servers
    import matplotlib.pyplot as plt

    scored = [task for task in results["tasks"] if task["normalized_score"] is not None]
    if not scored:
        return None
    names = [task["task"] for task in scored]
    values = [100 * task["normalized_score"] for task in scored]
    domains = sorted({task["domain"] for task in scored})
    palette = plt.get_cmap("tab10")
    colours = [palette(domains.index(task["domain"]) % 10) for task in scored]
    figure, axes = plt.subplots(figsize=(max(4.0, 0.5 * len(names) + 2) + 1.5, 4))  # + the legend
    axes.bar(range(len(names)), values, color=colours)
    axes.axhline(
        100 * results["summary"]["threshold"], color="grey", linestyle="--", linewidth=1, label="50% of expert"
    )
    axes.axhline(0, color="black", linewidth=0.8)
    axes.set_xticks(range(len(names)), names, rotation=45, ha="right")
    axes.set_ylabel("expert-normalized score (%)")
    axes.set_title(score_plot_title(results))
    handles = [plt.Rectangle((0, 0), 1, 1, color=palette(i % 10)) for i in range(len(domains))]
    axes.legend(
        handles + axes.get_legend_handles_labels()[0][:1],
        domains + ["50% of expert"],
        fontsize=8,
        loc="upper left",
        bbox_to_anchor=(1.0, 1.0),
    )  # beside the bars: inside, it hides the tallest
    figure.tight_layout()
    path = Path(path)
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return path


def profile_plot(results: Mapping[str, Any], path: str | Path) -> Path | None:
    """PNG performance profile: the fraction of episodes scoring above τ against τ, with its confidence band
    (Agarwal et al. 2021); None when the results have no statistics."""
    statistics = results.get("statistics")
    if not statistics:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    profile = statistics["performance_profile"]
    taus = [100 * tau for tau in profile["thresholds"]]
    figure, axes = plt.subplots(figsize=(5, 3.5))
    axes.plot(taus, profile["fraction"], color="tab:blue", label=f"all tasks ({statistics['all']['tasks']})")
    axes.fill_between(
        taus,
        profile["low"],
        profile["high"],
        color="tab:blue",
        alpha=0.25,
        label=f"{100 * statistics['confidence']:.0f}% CI",
    )
    axes.axvline(100 * results["summary"]["threshold"], color="grey", linestyle="--", linewidth=1)
    axes.set_xlabel("expert-normalized score τ (%)")
    axes.set_ylabel("fraction of episodes with score > τ")
    axes.set_ylim(-0.02, 1.02)
    axes.set_title(score_plot_title(results), fontsize=9)
    axes.legend(fontsize=8)
    figure.tight_layout()
    path = Path(path)
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return path


def write_results(results: Mapping[str, Any], output_dir: str | Path) -> dict[str, Path]:
    """Write ``eval_results.json``, ``eval_results.md`` and (when any task has a score) the PNG chart and profile."""
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    paths = {"json": output_dir / RESULTS_FILE, "markdown": output_dir / TABLE_FILE}
    paths["json"].write_text(json.dumps(results, indent=2, allow_nan=False) + "\n")
    paths["markdown"].write_text(markdown_report(results) + "\n")
    chart = bar_chart(results, output_dir / CHART_FILE)
    if chart is not None:
        paths["chart"] = chart
    profile = profile_plot(results, output_dir / PROFILE_FILE)
    if profile is not None:
        paths["profile"] = profile
    return paths


# Rich lays tables out for 80 columns where stdout is no terminal (a log file, a pipe) and then cuts every cell
# ("acrob…", "norm…"); a log gets this width instead: tables still take only the width they need.
LOG_WIDTH = 240


def terminal_console() -> Any:
    """A ``rich.console.Console`` for the command's tables: the terminal's width, or ``LOG_WIDTH`` when the output
    goes to a file or a pipe (unless ``COLUMNS`` says otherwise)."""
    from rich.console import Console

    console = Console()
    if not console.is_terminal and "COLUMNS" not in os.environ:
        console = Console(width=LOG_WIDTH)
    return console


def print_results(results: Mapping[str, Any]) -> None:
    """The task and domain tables (and caption/text figures) in the terminal, with rich."""
    from rich.table import Table

    console = terminal_console()
    if results["tasks"]:
        for title, header, rows in (
            ("control tasks", TASK_HEADER, task_rows(results)),
            ("domains", DOMAIN_HEADER, domain_rows(results)),
            ("normalized scores, 95% CI", ["domain", *STATISTICS_HEADER], statistics_rows(results)),
        ):
            if not rows:
                continue
            table = Table(title=title)
            for column in header:
                table.add_column(column, justify="left" if column in ("task", "domain") else "right")
            for row in rows:
                table.add_row(*row)
            console.print(table)
    for c in caption_results(results):
        console.print(
            f"captions ({c['split']}, {c['samples']}): colour {_fmt(c['colour_accuracy'], percent=True)}, "
            f"shape {_fmt(c['shape_accuracy'], percent=True)}, colour+shape {_fmt(c['colour_shape_accuracy'], percent=True)}, "
            f"scenes {_fmt(c.get('scene_accuracy'), percent=True)}, BLEU {_fmt(c['bleu'], 1)}"
        )
    if results.get("text"):
        t = results["text"]
        console.print(
            f"text ({t['split']}): loss {_fmt(t['loss'], 3)} nats/token, perplexity {_fmt(t['perplexity'], 1)}"
        )


__all__ = [
    "RESULTS_FILE",
    "check_results",
    "TABLE_FILE",
    "CHART_FILE",
    "PROFILE_FILE",
    "STATISTICS_HEADER",
    "statistics_rows",
    "statistics_note",
    "profile_plot",
    "SCHEMA_VERSION",
    "CAPTION_HEADER",
    "caption_results",
    "caption_row",
    "markdown_report",
    "markdown_table",
    "bar_chart",
    "write_results",
    "print_results",
]
