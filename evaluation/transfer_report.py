"""The transfer study's results (``scripts/transfer_study.py``, the paper's fine-tuning study) → a markdown table,
a PNG plot and the command that reproduces them; read by the study itself and by the model card.

``transfer.json`` holds ``settings`` (the generalist, the held-out data, tasks, the K values, steps, evaluation
episodes, LoRA, seed, training overrides) and ``tasks``: per task its ``domain``, ``prompt_only`` (one cell) and
``finetune`` / ``scratch`` (a cell per K, keyed by K as a string). A cell holds ``normalized_score`` and
``score_interval`` (95% bootstrap over its evaluation episodes), among other fields.
"""

from __future__ import annotations

import json
import math
import shlex
from pathlib import Path
from typing import Any

RESULTS_FILE = "transfer.json"
TABLE_FILE = "transfer.md"
PLOT_FILE = "transfer.png"
# A run's study lives in RUN/transfer (scripts/generalist.sh); a push sends its results, table and plot, not the
# study's own model folders (gato.hub_cards.push.IGNORE_PATTERNS).
STUDY_DIR = "transfer"
KINDS = ("finetune", "scratch")  # (b) fine-tuned from the generalist, (c) the same size from scratch


def mean_interval(evaluation: dict[str, Any]) -> tuple[float, float] | None:
    """The 95% interval of the mean normalized score in ``gato eval`` results (one task: a bootstrap over episodes)."""
    mean = ((evaluation.get("statistics") or {}).get("all") or {}).get("mean")
    return (mean["low"], mean["high"]) if mean else None


def score_interval(cell: dict[str, Any] | None) -> tuple[float, float] | None:
    """The cell's 95% bootstrap interval of its normalized score (over its evaluation episodes); for a cell recorded
    before intervals were, read from its ``eval_results.json`` when that is still there; None without one."""
    if not cell:
        return None
    if "score_interval" in cell:
        return tuple(cell["score_interval"]) if cell["score_interval"] else None
    path = Path(cell.get("eval_results") or "")
    if not path.is_file():
        return None
    return mean_interval(json.loads(path.read_text()))


def format_score(cell: dict[str, Any] | None, interval: bool = False) -> str:
    value = (cell or {}).get("normalized_score")
    if value is None or not math.isfinite(value):
        return "—"
    bounds = score_interval(cell) if interval else None
    return f"{value:.0%}" + (f" [{100 * bounds[0]:.0f}, {100 * bounds[1]:.0f}]" if bounds else "")


def markdown_table(results: dict[str, Any], generalist: str | None = None) -> str:
    """The study's table and a note on its settings; ``generalist`` names the pretrained model there (default: the
    recorded path)."""
    lines = [
        "| task | domain | prompt-only | K | fine-tuned | from scratch |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for task, entry in results["tasks"].items():
        prompt_only = format_score(entry.get("prompt_only"), interval=True)
        for k in results["settings"]["episodes"]:
            finetuned = format_score(entry.get("finetune", {}).get(str(k)), interval=True)
            scratch = format_score(entry.get("scratch", {}).get(str(k)), interval=True)
            lines.append(f"| {task} | {entry['domain']} | {prompt_only} | {k} | {finetuned} | {scratch} |")
    settings = results["settings"]
    lines.append("")
    lines.append(
        f"Expert-normalized score (mean) of {settings['eval_episodes']} evaluation episodes a cell, [95% bootstrap "
        f"confidence interval over those episodes]; {settings['max_steps']} "
        f"training steps for every fine-tuned{' (LoRA)' if settings['lora'] else ''} and from-scratch model; "
        f"generalist: {generalist or settings['model']}."
    )
    return "\n".join(lines) + "\n"


def plot(results: dict[str, Any], path: Path) -> None:
    """Normalized score against K, pretrained against scratch, one panel per task; prompt-only as a horizontal line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import NullLocator, PercentFormatter

    episodes = results["settings"]["episodes"]
    tasks = list(results["tasks"])
    columns = min(3, len(tasks))
    rows = math.ceil(len(tasks) / columns)
    figure, axes = plt.subplots(rows, columns, figsize=(4.2 * columns, 3.4 * rows), squeeze=False)
    for axis, task in zip(axes.flat, tasks):
        entry = results["tasks"][task]
        for kind, label, style in (
            ("finetune", "fine-tuned from the generalist", "o-"),
            ("scratch", "from scratch", "s--"),
        ):
            points = sorted(
                (int(k), cell["normalized_score"], score_interval(cell))
                for k, cell in entry.get(kind, {}).items()
                if cell.get("normalized_score") is not None
            )
            if points:
                (line,) = axis.plot([k for k, _, _ in points], [v for _, v, _ in points], style, label=label)
                spans = [(k, bounds) for k, _, bounds in points if bounds]
                if spans:  # the cells' 95% intervals as a band
                    axis.fill_between(
                        [k for k, _ in spans],
                        [low for _, (low, _) in spans],
                        [high for _, (_, high) in spans],
                        color=line.get_color(),
                        alpha=0.15,
                        linewidth=0,
                    )
        prompt_only = (entry.get("prompt_only") or {}).get("normalized_score")
        if prompt_only is not None:
            axis.axhline(prompt_only, color="grey", linestyle=":", label="prompt-only generalist")
        # On the normalized scale: 0 = a random policy, 100% = the expert, whatever the cells' own range.
        shown = [value for line in axis.get_lines() for value in line.get_ydata()]
        shown += [
            bound for kind in KINDS for cell in entry.get(kind, {}).values() for bound in score_interval(cell) or ()
        ]
        axis.set_ylim(min([0.0, *shown]) - 0.05, max([1.0, *shown]) + 0.05)
        axis.yaxis.set_major_formatter(PercentFormatter(1.0))
        axis.set_xscale("log")
        axis.set_xticks(episodes, labels=[str(k) for k in episodes])
        axis.xaxis.set_minor_locator(NullLocator())
        axis.set_title(task, fontsize=10)
        axis.set_xlabel("demonstrations K")
        axis.set_ylabel("normalized score")
        axis.grid(alpha=0.3)
    for axis in list(axes.flat)[len(tasks) :]:
        axis.axis("off")
    handles, labels = axes.flat[0].get_legend_handles_labels()
    figure.legend(handles, labels, loc="lower center", ncol=3, frameon=False)
    figure.tight_layout(rect=(0, 0.08, 1, 1))
    figure.savefig(path, dpi=120)
    plt.close(figure)


def study_command(settings: dict[str, Any], model: str = "MODEL", data: str = "HELD_OUT", out: str = "OUT") -> str:
    """The ``scripts/transfer_study.py`` command of a study with these ``settings``, its paths named ``model``,
    ``data`` and ``out`` (the recorded ones are this machine's)."""
    words = ["python", "scripts/transfer_study.py", "--model", model, "--data", data]
    words += ["--tasks", ",".join(settings["tasks"]), "--episodes", ",".join(str(k) for k in settings["episodes"])]
    words += ["--max-steps", str(settings["max_steps"]), "--eval-episodes", str(settings["eval_episodes"])]
    if settings.get("eval_max_steps"):
        words += ["--eval-max-steps", str(settings["eval_max_steps"])]
    training = dict(settings.get("training") or {})
    for name in ("learning_rate", "batch_size", "warmup_steps"):
        if name in training:
            words += [f"--{name.replace('_', '-')}", f"{training.pop(name):g}"]
    if training:
        words += ["--train-overrides", ",".join(f"{key}={value}" for key, value in training.items())]
    if settings.get("lora"):
        words.append("--lora")
    if settings.get("seed"):
        words += ["--seed", str(settings["seed"])]
    return shlex.join([*words, "--out", out])


def read_results(folder: str | Path) -> dict[str, Any] | None:
    """``folder/transfer.json`` with its ``settings`` and ``tasks``, or None when the folder holds no study; a file
    that is not such a study is refused naming the path and what is missing."""
    path = Path(folder) / RESULTS_FILE
    if not path.is_file():
        return None
    try:
        results = json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise ValueError(f"{path}: not valid JSON ({error})") from None
    if not isinstance(results, dict):
        raise ValueError(f"{path}: not a transfer study's results (expected a JSON object)")
    missing = [key for key in ("settings", "tasks") if not isinstance(results.get(key), dict)]
    missing += [
        f"settings.{key}"
        for key in ("tasks", "episodes", "max_steps", "eval_episodes")
        if "settings" not in missing and key not in results["settings"]
    ]
    if missing:
        raise ValueError(f"{path}: not a transfer study's results (missing {', '.join(missing)})")
    return results
