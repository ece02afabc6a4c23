"""``gato compare``: two evaluations of the same tasks side by side — is the candidate better than the baseline?

    gato compare BASELINE CANDIDATE [--labels NAME,NAME] [--output-dir DIR] [--reps N] [--seed S]

BASELINE and CANDIDATE are folders evaluated by ``gato eval`` (a model or results folder holding
``eval_results.json``) or the results files themselves. Prints, per domain and over all tasks, both interquartile
means, their difference and the probability of improvement with 95% stratified-bootstrap intervals, the tasks at ≥ 50%
of the expert on each side; per task, both mean scores, their difference with its interval and the probability of
improvement (gato/evaluation/comparison.py: only tasks both sides scored; episodes that both sides played from the
same seeds are resampled as pairs). ``--output-dir`` also writes ``comparison.json`` and ``comparison.md``
there.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass, field
from pathlib import Path

from gato.flags import add_dataclass_flags, command_parser, config_from_flags, positive_int
from gato.inputs import refuse, writable_folder

JSON_FILE = "comparison.json"
MARKDOWN_FILE = "comparison.md"


@dataclass
class CompareConfig:
    """Which two evaluations ``gato compare`` sets side by side.

    Args:
        baseline: the reference evaluation: a folder evaluated by `gato eval`, or its eval_results.json.
        candidate: the evaluation compared with it (same forms).
        labels: the two sides' names in the tables, baseline first, separated by a comma.
        output_dir: also write comparison.json and comparison.md into this folder.
        reps: bootstrap replicates of each interval.
        seed: seed of the bootstrap (the same results and seed give the same intervals).
    """

    baseline: str = field(default="", metadata={"positional": True, "argparse": {"metavar": "BASELINE"}})
    candidate: str = field(default="", metadata={"positional": True, "argparse": {"metavar": "CANDIDATE"}})
    labels: str = "baseline,candidate"
    output_dir: str | None = field(default=None, metadata={"argparse": {"metavar": "DIR"}})
    reps: int = field(default=2000, metadata={"argparse": {"type": positive_int}})
    seed: int = 0


_FLAGS = []


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = command_parser(subparsers, "compare", "compare two evaluations: differences with intervals", __doc__)
    _FLAGS[:] = add_dataclass_flags(parser, CompareConfig)
    parser.set_defaults(handler=run)


def parse_labels(text: str) -> tuple[str, str]:
    labels = [label.strip() for label in text.split(",")]
    if len(labels) != 2 or not all(labels):
        raise ValueError(f"--labels: expected two non-empty names separated by a comma, got {text!r}")
    return labels[0], labels[1]


def run(args: argparse.Namespace) -> int:
    from gato.evaluation.comparison import compare_results, markdown_comparison, read_results

    config = config_from_flags(CompareConfig(), args, _FLAGS)
    try:
        labels = parse_labels(config.labels)
        output_dir = writable_folder(config.output_dir, "the comparison's folder") if config.output_dir else None
        comparison = compare_results(
            read_results(config.baseline), read_results(config.candidate), reps=config.reps, seed=config.seed
        )
    except ValueError as error:
        return refuse("gato compare", error)
    text = markdown_comparison(comparison, *labels)
    print(text)
    if output_dir is not None:
        output_dir = Path(output_dir)
        try:
            output_dir.mkdir(parents=True, exist_ok=True)
            (output_dir / JSON_FILE).write_text(json.dumps(comparison, indent=2) + "\n", encoding="utf-8")
            (output_dir / MARKDOWN_FILE).write_text(text, encoding="utf-8")
        except OSError as error:
            return refuse("gato compare", ValueError(f"{output_dir}: cannot write the comparison ({error})"))
        print(f"comparison: {output_dir / JSON_FILE}, {output_dir / MARKDOWN_FILE}")
    return 0
