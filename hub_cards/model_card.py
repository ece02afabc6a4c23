"""The model card of a trained Gato folder: ``huggingface_hub``'s ``ModelCard`` with metadata the Hub validates.

The card is built from what ``gato train`` and ``gato eval`` leave in the folder — ``config.json``,
``training_config.yaml``, ``eval_results.json`` (fields in docs/EVALUATION.md), ``normalized_scores.png`` —
and, for a ``gato run`` folder, ``main_job.json`` (stage times). The metadata holds license, tags, pipeline tag,
library, datasets and a **model-index** with one entry per evaluated task (expert-normalized score, mean
return, success rate), per domain and over all tasks (mean normalized score, fraction of tasks ≥ 50%), and the
caption and text figures. Dataset cards are written by ``gato.episodes.cards`` while the data are generated.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml
from huggingface_hub import EvalResult, ModelCard, ModelCardData

CARD_FILE = "README.md"
LICENSE = "apache-2.0"
LIBRARY_NAME = "transformers"
# transformers 5 serves captions through `image-text-to-text` (`image-to-text` is redirected to it), so that is the
# tag `pipeline(model=REPO_ID)` reads; the Hub allows one pipeline tag, the other modalities are tags.
PIPELINE_TAG = "image-text-to-text"
TAGS = ("gato", "generalist-agent", "reinforcement-learning", "robotics", "image-to-text", "multimodal")
CONTROL_TASK_TYPE = "reinforcement-learning"
PAPER_URL = "https://arxiv.org/abs/2205.06175"
# Caption splits (``split`` of a caption result) → (their name in the card, what their images are).
CAPTION_SPLITS = {
    "captions_validation": (
        "held-out colour×shape pairs",
        "every scene holds a colour×shape pair never seen in training",
    ),
    "captions_test": ("new scenes", "scenes never seen in training, of the colour×shape pairs seen in training"),
}
CITATION = """@article{reed2022generalist,
  title   = {A Generalist Agent},
  author  = {Scott Reed and Konrad Zolna and Emilio Parisotto and Sergio G{\\'o}mez Colmenarejo and Alexander Novikov
             and Gabriel Barth-Maron and Mai Gim{\\'e}nez and Yury Sulsky and Jackie Kay and Jost Tobias Springenberg
             and Tom Eccles and Jake Bruce and Ali Razavi and Ashley Edwards and Nicolas Heess and Yutian Chen
             and Raia Hadsell and Oriol Vinyals and Mahyar Bordbar and Nando de Freitas},
  journal = {Transactions on Machine Learning Research},
  year    = {2022},
  url     = {https://arxiv.org/abs/2205.06175}
}"""


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _metrics(
    task_type: str,
    task_name: str,
    dataset_type: str,
    dataset_name: str,
    metrics: Sequence[tuple[str, str, Any]],
    dataset_config: str | None = None,
    dataset_split: str | None = None,
) -> list[EvalResult]:
    """One ``EvalResult`` per ``(metric_type, metric_name, value)`` whose value is a finite number (JSON nulls are left out)."""
    return [
        EvalResult(
            task_type=task_type,
            task_name=task_name,
            dataset_type=dataset_type,
            dataset_name=dataset_name,
            dataset_config=dataset_config,
            dataset_split=dataset_split,
            metric_type=metric_type,
            metric_name=metric_name,
            metric_value=round(float(value), 4),
        )
        for metric_type, metric_name, value in metrics
        if _finite(value)
    ]


def eval_results_from_json(results: Mapping[str, Any]) -> list[EvalResult]:
    """``eval_results.json`` (docs/EVALUATION.md) → the model-index ``EvalResult`` list.

    Control tasks are ``reinforcement-learning`` results whose dataset is the suite task (``dataset_type`` = the
    task's registry name, ``dataset_config`` = its domain); domains and the whole suite are datasets
    ``gato-suite/<domain>`` and ``gato-suite``. Captions are ``image-to-text`` on each held-out caption split;
    text is ``text-generation`` on the text validation split.
    """
    evals: list[EvalResult] = []
    for task in results.get("tasks", []):
        evals += _metrics(
            CONTROL_TASK_TYPE,
            "Control",
            task["task"],
            f"{task['task']} ({task['domain']})",
            [
                ("expert_normalized_score", "Expert-normalized score", task.get("normalized_score")),
                ("mean_return", "Mean return", task.get("mean_return")),
                ("success_rate", "Success rate", task.get("success_rate")),
            ],
            dataset_config=task["domain"],
        )
    summaries = [
        *((f"gato-suite/{name}", f"{name} (domain)", summary) for name, summary in results.get("domains", {}).items())
    ]
    if results.get("summary"):
        summaries.append(("gato-suite", "all evaluated tasks", results["summary"]))
    for dataset_type, dataset_name, summary in summaries:
        evals += _metrics(
            CONTROL_TASK_TYPE,
            "Control",
            dataset_type,
            dataset_name,
            [
                ("mean_expert_normalized_score", "Mean expert-normalized score", summary.get("mean_normalized_score")),
                (
                    "median_expert_normalized_score",
                    "Median expert-normalized score",
                    summary.get("median_normalized_score"),
                ),
                (
                    "fraction_above_50_percent_expert",
                    "Fraction of tasks ≥ 50% of expert",
                    summary.get("fraction_above_threshold"),
                ),
            ],
        )
    statistics = results.get("statistics") or {}
    intervals = [
        *(
            (f"gato-suite/{name}", f"{name} (domain)", summary)
            for name, summary in statistics.get("domains", {}).items()
        )
    ]
    if statistics.get("all"):
        intervals.append(("gato-suite", "all evaluated tasks", statistics["all"]))
    for dataset_type, dataset_name, summary in intervals:
        evals += _metrics(
            CONTROL_TASK_TYPE,
            "Control",
            dataset_type,
            dataset_name,
            [
                (
                    f"{name}_expert_normalized_score{bound}",
                    f"{label} expert-normalized score{text}",
                    summary[name][key],
                )
                for name, label in (("iqm", "Interquartile mean"), ("optimality_gap", "Optimality gap of"))
                for key, bound, text in (
                    ("value", "", ""),
                    ("low", "_ci_low", ", 95% CI low"),
                    ("high", "_ci_high", ", 95% CI high"),
                )
            ],
        )
    from gato.evaluation.report import caption_results

    for captions in caption_results(results):
        name, _ = CAPTION_SPLITS[captions["split"]]
        evals += _metrics(
            "image-to-text",
            "Image captioning",
            "gato-captions",
            f"gato captions ({name})",
            [
                ("colour_shape_accuracy", "Colour+shape mention accuracy", captions.get("colour_shape_accuracy")),
                (
                    "held_out_colour_shape_accuracy",
                    "Held-out colour+shape accuracy",
                    captions.get("held_out_colour_shape_accuracy"),
                ),
                ("scene_accuracy", "Scenes captioned right", captions.get("scene_accuracy")),
                ("mention_precision", "Mention precision", captions.get("mention_precision")),
                ("bleu", "BLEU", captions.get("bleu")),
            ],
            dataset_split=captions["split"],
        )
    text = results.get("text")
    if text:
        evals += _metrics(
            "text-generation",
            "Language modelling",
            "gato-text",
            "gato offline text corpus",
            [
                ("loss", "Loss (nats/token)", text.get("loss")),
                ("perplexity", "Perplexity", text.get("perplexity")),
            ],
            dataset_split=text.get("split"),
        )
    return evals


def _read(folder: Path, name: str) -> Any:
    path = folder / name
    if not path.exists():
        return None
    try:
        return yaml.safe_load(path.read_text()) if path.suffix in (".yaml", ".yml") else json.loads(path.read_text())
    except (json.JSONDecodeError, yaml.YAMLError) as error:
        raise ValueError(
            f"{path}: not valid {'YAML' if path.suffix in ('.yaml', '.yml') else 'JSON'} ({error})"
        ) from None


def format_duration(seconds: float) -> str:
    """``75.4`` → ``"1 min 15 s"``; under a minute, whole seconds (``"9 s"``)."""
    minutes, seconds = divmod(round(float(seconds)), 60)
    return f"{minutes} min {seconds} s" if minutes else f"{seconds} s"


def format_peak_rss(stage: Mapping[str, Any]) -> str:
    """A stage record's peak resident memory (``StageReport.peak_rss_mb`` / ``peak_worker_rss_mb``) →
    ``"812 MB"`` or ``"812 MB (worker 450 MB)"``; ``"—"`` for records written before memory was recorded."""
    own = stage.get("peak_rss_mb")
    if own is None:
        return "—"
    worker = stage.get("peak_worker_rss_mb")
    return f"{own:,.0f} MB" + (f" (worker {worker:,.0f} MB)" if worker else "")


def _training_run(run: Mapping[str, Any]) -> str:
    """One paragraph from ``train_results.json``: how long the run took, where, and its final validation losses."""
    steps, this_run = int(run["global_step"]), int(run.get("steps_this_run", 0))
    where = f"{run.get('device') or 'an unknown device'}, {run.get('processes', 1)} process(es)"
    if run.get("start_step"):
        took = f"its last {this_run} steps (resumed from step {run['start_step']}) took {format_duration(run['wall_seconds'])}"
    else:
        took = f"they took {format_duration(run['wall_seconds'])}"
    text = f"Training ran {steps:,} optimizer steps; {took} on {where}"
    if this_run and run.get("step_seconds"):
        step_ms = 1000 * run["step_seconds"] / this_run
        text += f", {step_ms:.0f} ms a step of which {100 * run['data_wait_seconds'] / run['step_seconds']:.1f}% waiting for data"
    losses = run.get("validation") or {}
    if losses:
        text += ". Final validation losses: " + ", ".join(
            f"{name} {value:.3f}" for name, value in sorted(losses.items())
        )
    return text + " (`train_results.json`)."


def _example_task(folder: Path, results: Mapping[str, Any] | None) -> str:
    """A task the model plays, for the card's snippet: the first evaluated, else the first it learnt, else cartpole."""
    from gato.suite.task_spec import load_task_specs

    evaluated = [task["task"] for task in (results or {}).get("tasks", [])]
    return (evaluated or list(load_task_specs(folder)) or ["cartpole"])[0]


_REPRODUCE_BLOCK = re.compile(r"## Reproduce\s*```bash\n(.*?)```", flags=re.S)


def _reproduce_lines(cards: list[Path]) -> list[str]:
    commands: list[str] = []
    for card in cards:
        if card.is_file():
            for block in _REPRODUCE_BLOCK.findall(card.read_text(encoding="utf-8")):
                commands += [line.strip() for line in block.splitlines() if line.strip()]
    return list(dict.fromkeys(commands))


def _card_commands(data: Path) -> list[str]:
    """The ``gato data generate`` / ``gato data record`` lines that wrote a data folder, each once, in split order:
    those of its splits' dataset cards, else the folder card's. The folder card records only the **last** call into
    the folder, which wrote some split whose card already names it (perhaps with other flags, e.g. ``--workers``, of
    a resumed call): listing it too repeated a task with two recipes."""
    if not data.is_dir():
        return []
    return _reproduce_lines(sorted(data.glob(f"*/{CARD_FILE}"))) or _reproduce_lines([data / CARD_FILE])


def data_commands(folder: Path, training: Mapping[str, Any], job: Mapping[str, Any] | None = None) -> list[str]:
    """The commands that make the training data again, for the card's reproduce block: those its dataset cards name
    (the data folder of ``training_config.yaml``, as given or relative to the run folder), else the ``gato data
    generate`` line of a ``gato run`` (``main_job.json``'s config), else one line for the tasks the model learnt
    (``task_specs.json``) whose episode count the folder does not record (said in a comment)."""
    data = str(training.get("data") or "")
    for candidate in (Path(data), folder / data) if data else ():
        commands = _card_commands(candidate)
        if commands:
            return commands
    config = (job or {}).get("config") if isinstance(job, Mapping) else None
    if isinstance(config, Mapping) and config.get("tasks") and config.get("episodes_per_task"):
        extras = [
            f"--captions {config['captions']}" if config.get("captions") else "",
            "--text" if config.get("text") else "",
        ]
        return [
            " ".join(
                part
                for part in [
                    "gato data generate",
                    f"--tasks {config['tasks']}",
                    f"--episodes-per-task {config['episodes_per_task']}",
                    f"--out {data or 'data'}",
                    f"--seed {config.get('seed', 0)}",
                    *extras,
                ]
                if part
            )
        ]
    from gato.suite.task_spec import load_task_specs

    tasks = ",".join(load_task_specs(folder)) or "default"
    return [
        f"gato data generate --tasks {tasks} --episodes-per-task N --out {data or 'data'} --text  "
        "# N: the episodes per task of the training data (this folder does not record it)"
    ]


def _transfer_sections(folder: Path) -> list[str]:
    """The transfer study of ``folder/transfer`` (``scripts/transfer_study.py``), when the run holds one: what the
    arms are, the table, the plot and the command; nothing otherwise."""
    from gato.evaluation.transfer_report import PLOT_FILE, STUDY_DIR, markdown_table, read_results, study_command

    study = read_results(folder / STUDY_DIR)
    if study is None:
        return []
    settings = study["settings"]
    sections = [
        "## Transfer to held-out tasks",
        "The paper's fine-tuning study on tasks this model never saw (not in its data, prompts or DAgger rounds): "
        "(a) this model prompted with a demonstration of the task; (b) this model fine-tuned on the task's first K "
        f"expert episodes; (c) the same size trained from scratch on the same K episodes, {settings['max_steps']} "
        "steps for both (b) and (c).",
        markdown_table(study, generalist="this model"),
    ]
    if (folder / STUDY_DIR / PLOT_FILE).exists():
        sections.append(
            f"![Normalized score against demonstrations, pretrained against scratch]({STUDY_DIR}/{PLOT_FILE})"
        )
    command = study_command(settings, model=".", data="HELD_OUT", out=f"{STUDY_DIR}")
    largest = max(settings["episodes"])
    sections.append(
        f"```bash\ngato data generate --tasks {','.join(settings['tasks'])} --episodes-per-task N --out HELD_OUT  "
        f"# N: ≥ {largest} training episodes a task after the 5% validation hold-out\n{command}\n```"
    )
    return sections


def build_model_card(
    run_dir: str | Path,
    *,
    repo_id: str | None = None,
    datasets: Sequence[str] | None = None,
    job: Mapping[str, Any] | None = None,
) -> ModelCard:
    """The model card of ``run_dir`` (a ``gato train`` / ``gato run`` folder), not yet written.

    Args:
        run_dir: the folder; ``config.json`` is required, ``training_config.yaml``, ``eval_results.json``,
            ``normalized_scores.png`` and ``main_job.json`` are used when present.
        repo_id: the Hub id the folder is (or will be) pushed to; names the model and the loading snippets.
        datasets: Hub ids of the training data, for the ``datasets`` metadata (the data of a local run are not
            on the Hub unless pushed, so by default the card describes them in prose only).
        job: the ``main_job.json`` record (default: read from ``run_dir``).
    """
    from gato.evaluation.report import (
        CHART_FILE,
        DOMAIN_HEADER,
        PROFILE_FILE,
        RESULTS_FILE,
        STATISTICS_HEADER,
        TASK_HEADER,
        caption_results,
        check_results,
        domain_rows,
        markdown_table,
        statistics_note,
        statistics_rows,
        task_rows,
    )
    from gato.evaluation.run_evaluation import eval_command
    from gato.training.run_training import TRAIN_RESULTS_FILE

    folder = Path(run_dir)
    config = _read(folder, "config.json")
    if not config:
        raise ValueError(
            f"run_dir: {folder} has no config.json (expected a folder written by `gato train` or `gato run`)"
        )
    training = _read(folder, "training_config.yaml") or {}
    results = _read(folder, RESULTS_FILE)
    if results is not None:
        check_results(results, folder / RESULTS_FILE)
    job = job if job is not None else _read(folder, "main_job.json")
    model_name = repo_id.split("/")[-1] if repo_id else folder.resolve().name
    load_path = repo_id or str(folder)
    evals = eval_results_from_json(results) if results else None
    data = ModelCardData(
        license=LICENSE,
        library_name=LIBRARY_NAME,
        pipeline_tag=PIPELINE_TAG,
        tags=list(TAGS),
        datasets=list(datasets) if datasets else None,
        model_name=model_name,
        eval_results=evals or None,
    )

    parameters = results.get("num_parameters") if results else None
    size = (
        f"{config['num_hidden_layers']} layers, width {config['hidden_size']}, {config['num_attention_heads']} heads, "
        f"FFN {config['intermediate_size']}, context {config['max_position_embeddings']} tokens"
        + (f", {parameters / 1e6:.1f}M parameters" if parameters else "")
    )
    sections = [
        f"# {model_name}",
        f"A [Gato]({PAPER_URL}) generalist agent (Reed et al., 2022) built with the `gato` package: one decoder-only "
        "transformer and one set of weights that acts in control environments, captions images and models text, "
        f"all through one token stream. Model: {size}.",
        "## How to use",
        "```python\nimport gato  # registers the Gato classes with transformers' Auto classes and pipelines\n"
        "from transformers import AutoModelForCausalLM, AutoProcessor, pipeline\n\n"
        f"model = AutoModelForCausalLM.from_pretrained({load_path!r})\n"
        f"processor = AutoProcessor.from_pretrained({load_path!r})\n\n"
        f'captioner = pipeline("image-to-text", model={load_path!r})  # or "image-text-to-text"\n'
        "print(captioner(\"scene.png\"))  # [{'generated_text': '...'}]\n```",
        "Acting in one of its tasks (a built-in one, or one it learnt from recorded data), "
        "prompted with an expert demonstration as in the paper:",
        "```python\nfrom gato.pipelines import load_agent\n\n"
        f'policy = load_agent({load_path!r}, "{_example_task(folder, results)}")\n'
        "returns = policy.play(episodes=3)            # or step it yourself:\n"
        "env = policy.make_env(seed=0)\nobservation, _ = env.reset(seed=0)\npolicy.reset()\n"
        "observation, reward, terminated, truncated, info = env.step(policy(observation))\n```",
        "Without `gato` installed, `AutoModelForCausalLM.from_pretrained(..., trust_remote_code=True)` loads the model "
        "from the code files in this repository.",
    ]
    if results:
        episodes = results["episodes_per_task"]
        sections += [
            "## Evaluation",
            f"`gato eval`, {episodes} episode{'s' if episodes != 1 else ''} per task, prompted with an "
            "expert demonstration of the task, as the paper deploys Gato. Normalized score = (return − random) / "
            "(expert − random): 0 is a uniformly random policy, 100% the scripted expert.",
        ]
        if results.get("tasks"):
            sections += [
                markdown_table(DOMAIN_HEADER, domain_rows(results)),
                markdown_table(TASK_HEADER, task_rows(results)),
            ]
            if (folder / CHART_FILE).exists():
                sections.append(f"![Expert-normalized score per task]({CHART_FILE})")
            if statistics_rows(results):
                sections += [
                    markdown_table(["domain", *STATISTICS_HEADER], statistics_rows(results)),
                    statistics_note(results),
                ]
                if (folder / PROFILE_FILE).exists():
                    sections.append(f"![Performance profile: fraction of episodes above each score]({PROFILE_FILE})")
        for captions in caption_results(results):
            if not captions.get("examples"):
                continue
            name, meaning = CAPTION_SPLITS[captions["split"]]
            sections += [
                f"### Sample captions: {name}",
                f"Held-out images (`{captions['split']}`; {meaning}):",
                markdown_table(
                    ["reference", "generated"],
                    [[ex["reference"], ex["generated"] or "(empty)"] for ex in captions["examples"]],
                ),
            ]
            scores = [
                (label, captions.get(metric))
                for label, metric in (
                    ("colour", "colour_accuracy"),
                    ("shape", "shape_accuracy"),
                    ("colour and shape", "colour_shape_accuracy"),
                    ("the held-out colour×shape pair", "held_out_colour_shape_accuracy"),
                )
            ]
            named = ", ".join(f"{label} {100 * value:.0f}%" for label, value in scores if _finite(value))
            if named:
                scenes = (
                    f"; scenes captioned with every object's colour and shape (once per object) and nothing else: "
                    f"{100 * captions['scene_accuracy']:.0f}%"
                    if _finite(captions.get("scene_accuracy"))
                    else ""
                )
                bleu = f"; BLEU {captions['bleu']:.1f}" if _finite(captions.get("bleu")) else ""
                sections.append(
                    f"Over {captions['samples']} held-out images, objects named with the right {named}{scenes}{bleu}."
                )
        text = results.get("text")
        if text and _finite(text.get("loss")):
            sections.append(
                f"Text: validation loss {text['loss']:.3f} nats/token (perplexity {text['perplexity']:.1f}) "
                f"on {text['documents']} held-out documents of the offline corpus."
            )
    sections += _transfer_sections(folder)
    sections.append("## Training")
    if training:
        sections += [
            "Trained with `gato train` on expert episodes of the built-in suite recorded by `gato data generate`"
            " (each dataset folder carries its own card), plus captions and text when generated. The full "
            "configuration (`training_config.yaml`):",
            "```yaml\n" + yaml.safe_dump(training, sort_keys=False).strip() + "\n```",
        ]
    train_run = _read(folder, TRAIN_RESULTS_FILE)
    if train_run:
        sections.append(_training_run(train_run))
    if training and results and isinstance(results.get("settings"), Mapping):
        sections += [
            "To reproduce (the data folder and the run folder as you name them):",
            "```bash\n"
            + "".join(line + "\n" for line in data_commands(folder, training, job))
            + f"gato train --config training_config.yaml --output-dir {model_name}\n"
            + eval_command(dict(results["settings"]), model=model_name, output_dir=model_name)
            + "\n```",
        ]
    if job:
        stages = [job[name] for name in ("data", "train", "eval", "card") if isinstance(job.get(name), Mapping)]
        rows = []
        for stage in stages:
            first = stage.get("details", {}).get("first_run") if stage["status"] == "skipped" else None
            timed = first or stage
            status = (
                "done" if stage["status"] == "done" else ("skipped (times of its last run)" if first else "skipped")
            )
            rows.append(
                [
                    stage["name"],
                    status,
                    format_duration(timed["wall_seconds"]),
                    format_duration(timed["cpu_seconds"]),
                    format_peak_rss(timed),
                ]
            )
        datasets_sizes = next((s["details"].get("datasets") for s in stages if s["name"] == "data"), None)
        if datasets_sizes:
            sections.append(
                "Data (rows = episodes, scenes or documents): "
                + ", ".join(f"`{name}` {count}" for name, count in datasets_sizes.items())
                + "."
            )
        sections += [
            "`gato run` stages (wall time and CPU time of the process and its workers; peak RSS: the highest "
            "resident memory of the process, and of its largest finished worker, by the end of the stage):",
            markdown_table(["stage", "status", "wall", "CPU", "peak RSS"], rows),
        ]
    sections += [
        "## Intended uses and limitations",
        "- A research and teaching artefact: a faithful, small-scale reproduction of Gato's tokenization, model, "
        "prompting and training recipe on open environments (classic control, BabyAI, Meta-World, Atari).\n"
        "- The agent acts only in environments whose observation and action specs it was trained on, and it needs a "
        "demonstration prompt of the task. Scores measure imitation of scripted experts on the built-in suite, with "
        "few evaluation episodes: they are noisy and say nothing about other environments.\n"
        "- Captions and text come from small synthetic and offline corpora: the model is not a general captioner or "
        "chat model, and must not be used to control real hardware or make decisions about people.",
        "## Citation",
        "```bibtex\n" + CITATION + "\n```",
    ]
    content = f"---\n{data.to_yaml()}\n---\n\n" + "\n\n".join(sections) + "\n"
    return ModelCard(content, ignore_metadata_errors=False)


def write_model_card(run_dir: str | Path, **kwargs: Any) -> Path:
    """Build the card (:func:`build_model_card`) and save it as ``run_dir/README.md``; returns the path."""
    card = build_model_card(run_dir, **kwargs)
    path = Path(run_dir) / CARD_FILE
    card.save(path)
    return path


__all__ = [
    "build_model_card",
    "write_model_card",
    "eval_results_from_json",
    "CARD_FILE",
    "TAGS",
    "PIPELINE_TAG",
    "LICENSE",
]
