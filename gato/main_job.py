"""The main job behind ``gato run``: nothing → data → trained model → evaluation → Hub-ready folder.

Four stages, each a call into the library part that owns it:

1. **data**: ``gato.episodes.plan.run_plan`` records the data plan (per-task expert episodes and action noise,
   captions, the offline text corpus; ``DEFAULT_DATA_PLAN`` unless ``--data-plan``) into ``OUT/data`` through
   ``gato.episodes.generate``, which resumes by itself, skipping finished tasks;
2. **train**: ``gato.training.run_training`` trains into ``OUT`` (model safetensors, config with ``auto_map``,
   remote code, processor and tokenizer files, ``training_config.yaml``), resuming from ``OUT/checkpoints``;
   skipped when ``OUT`` already holds a model trained with the same configuration;
3. **eval**: ``gato.evaluation.run_evaluation`` writes ``eval_results.json``, ``eval_results.md`` and
   ``normalized_scores.png`` into ``OUT`` itself (beside the model, where the Hub shows them); skipped when
   those results are newer than the model and were made with the same settings;
4. **card**: ``gato.hub_cards.write_model_card`` writes ``OUT/README.md`` from the three files above.

Afterwards ``OUT`` is the Hub-ready folder: ``AutoModelForCausalLM.from_pretrained(OUT)`` works (after
``import gato``) and ``gato push OUT --repo-id ORG/NAME`` uploads it. ``OUT/main_job.json`` records every
stage's wall and CPU time (the CPU time counts this process and its finished children, so on a shared
machine it says how much work a stage was, whatever the load) and the peak resident memory so far (of this
process and of its largest finished worker).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import resource
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from gato.flags import DEFAULT_THREADS

MAIN_JOB_FILE = "main_job.json"
DATA_SUBDIR = "data"
STAGES = ("data", "train", "eval", "card")

# The CPU defaults, chosen by measuring (docs/HUB.md gives the run): a model a little wider and deeper than
# `gato-tiny`, a 384-token context (every default task's time step fits many times over: the longest,
# an Atari frame, is 25 patches + 1 action + the separator), a high learning rate for a short run.
CPU_MODEL_OVERRIDES: dict[str, Any] = {
    "hidden_size": 128,
    "num_hidden_layers": 3,
    "num_attention_heads": 4,
    "intermediate_size": 512,
}


# The data of `gato run` without --data-plan (a `gato.episodes.plan.DataPlan` as a mapping, its YAML layout):
# per-task episode counts and DART action noise, captions and text. Measured for issue #19 §4 (BENCHMARKS.md "Time to
# competence"): data is cheap (about a minute on two workers), so every task gets enough episodes that 2,000 steps
# rarely repeat one; Pendulum is recorded with noise (DART), which clean data never taught (BENCHMARKS.md).
DEFAULT_DATA_PLAN: dict[str, Any] = {
    "episodes_per_task": 100,
    "captions": 1000,
    "text": True,
    "groups": [
        {"tasks": ["cartpole", "acrobot", "mountain_car"], "episodes_per_task": 100},
        {"tasks": ["pendulum"], "episodes_per_task": 300, "action_noise": 1.0},
        {"tasks": ["babyai_goto_red_ball", "babyai_pickup_loc"], "episodes_per_task": 2000},
        {"tasks": ["metaworld_reach"], "episodes_per_task": 100},
        {"tasks": ["atari_breakout"], "episodes_per_task": 20},
    ],
}

# The training mixture's sampling weights of `gato run` without --task-weights (dataset name → weight; datasets not
# named weigh 1, `TrainingConfig.default_weight`). Only the entries for datasets the run has are used. Empty: equal
# weights did better at 2,000 steps than the CPU multi-task recipe's (4 vs 2 tasks ≥ 50%, BENCHMARKS.md).
DEFAULT_TASK_WEIGHTS: dict[str, float] = {}

# `gato run --quick`: the few-minute smoke run (the main job's defaults before data plans): 20 clean expert episodes
# of each task, 200 captions, the text corpus, 400 training steps with the loop's default (equal) task weights,
# 4 evaluation episodes a task and 8 held-out captions. Flags given with --quick win over these.
QUICK_SETTINGS: dict[str, dict[str, Any]] = {
    "data": {"episodes_per_task": 20, "captions": 200, "text": True},
    "train": {"max_steps": 400, "task_weights": {}},
    "eval": {"episodes": 4, "captions": 8},
}


@dataclass
class DataSettings:
    """The data stage of ``gato run``.

    What is recorded comes from a data plan (``gato.episodes.plan.DataPlan``: per-task episodes and action noise,
    captions, text): the built-in ``DEFAULT_DATA_PLAN``, or the YAML file ``data_plan``. ``episodes_per_task``
    replaces the plan by N clean episodes of every task; ``captions`` and ``text`` override the plan's.

    Args:
        data_plan: a data plan YAML file (docs/DATA.md "Data plans") (default: the built-in plan, DEFAULT_DATA_PLAN
            in gato/main_job.py).
        episodes_per_task: record N clean expert episodes of every task instead of a data plan (default: none, the
            data plan's counts).
        captions: captioned scenes generated for training (0 = none); a tenth more are held out (default: the data
            plan's).
        text: also generate the offline text corpus and train on it (default: the data plan's).
        workers: processes recording episodes in parallel.
        data_dir: where the generated data go (default: OUT/data; point several runs at one cache).
        overwrite_data: regenerate tasks whose data folder holds another generation (other seed or episode count).
    """

    data_plan: str | None = field(default=None, metadata={"argparse": {"metavar": "FILE"}})
    episodes_per_task: int | None = field(default=None, metadata={"argparse": {"metavar": "N"}})
    captions: int | None = field(default=None, metadata={"argparse": {"metavar": "N"}})
    text: bool | None = None
    workers: int = 2
    data_dir: str | None = None
    overwrite_data: bool = False


@dataclass
class TrainSettings:
    """The train stage of ``gato run``: the fields of ``TrainingConfig`` it sets (the rest keep their defaults or
    come from ``training_config``).

    Args:
        preset: model size preset (``GatoConfig.from_preset``: ``gato-tiny``, ``gato-79m``, …).
        model_overrides: ``GatoConfig`` fields over the preset; the CPU default widens ``gato-tiny`` (pass '' for
            the bare preset).
        max_steps: training steps.
        batch_size: sequences per step.
        max_length: context in tokens.
        learning_rate: peak learning rate.
        warmup_steps: linear warm-up steps (at most ``max_steps``).
        task_weights: sampling weight per dataset (task, captions, text), as ``gato train --task-weights``; '' = every
            dataset weight 1 (default: the built-in DEFAULT_TASK_WEIGHTS of gato/main_job.py, for the datasets
            this run has).
        training_config: a YAML file of ``TrainingConfig`` fields applied before the flags above (the GPU recipe).
    """

    preset: str = "gato-tiny"
    model_overrides: dict[str, Any] = field(default_factory=lambda: dict(CPU_MODEL_OVERRIDES))
    max_steps: int = 2000
    batch_size: int = 8
    max_length: int = 384
    learning_rate: float = 1e-3
    warmup_steps: int = 30
    task_weights: dict[str, float] | None = None
    training_config: str | None = None


@dataclass
class EvalSettings:
    """The eval stage of ``gato run`` (flags ``--eval-…``).

    Args:
        episodes: evaluation episodes per task.
        max_steps: cut evaluation episodes after this many steps (default: each task's horizon).
        captions: held-out images captioned in the evaluation (needs training captions).
        num_envs: environments stepped together in the evaluation.
    """

    episodes: int = 10
    max_steps: int | None = None
    captions: int = 20
    num_envs: int = field(default=4, metadata={"flag": "num-envs"})


@dataclass
class MainJobConfig:
    """Everything ``gato run`` does, nested by stage like the stages themselves (``data``, ``train``, ``eval``).

    Args:
        output_dir: the Hub-ready folder written at the end (data go to OUT/data unless --data-dir).
        tasks: suite (``default``, ``full``), domains or task names, comma-separated: generated, trained, evaluated
            (default: every task the data plan names, the built-in plan's being the default suite; with
            --episodes-per-task, the default suite).
        seed: seeds the data, the model initialisation, the data order and the evaluation episodes.
        threads: torch CPU threads in training and evaluation (0 = torch's default, one per core; 1 was 2–5× faster
            than that on a busy 2-core machine and at most 1.5× slower on a lightly loaded one, BENCHMARKS.md "Threads").
        progress: progress bars.
    """

    output_dir: str = "runs/gato"
    tasks: str | None = field(default=None, metadata={"argparse": {"metavar": "NAMES"}})
    data: DataSettings = field(default_factory=DataSettings)
    train: TrainSettings = field(default_factory=TrainSettings)
    eval: EvalSettings = field(default_factory=EvalSettings, metadata={"flag_prefix": "eval-"})
    seed: int = 0
    threads: int = DEFAULT_THREADS
    progress: bool = True

    def validate(self) -> None:
        checks = {
            "data.workers": (self.data.workers, 1),
            "train.max_steps": (self.train.max_steps, 1),
            "train.batch_size": (self.train.batch_size, 1),
            "train.max_length": (self.train.max_length, 1),
            "train.warmup_steps": (self.train.warmup_steps, 0),
            "eval.episodes": (self.eval.episodes, 1),
            "eval.num_envs": (self.eval.num_envs, 1),
            "eval.captions": (self.eval.captions, 0),
            "threads": (self.threads, 0),
        }
        if self.data.episodes_per_task is not None:
            checks["data.episodes_per_task"] = (self.data.episodes_per_task, 1)
        if self.data.captions is not None:
            checks["data.captions"] = (self.data.captions, 0)
        for name, (value, least) in checks.items():
            if value < least:
                raise ValueError(f"{name}: expected ≥ {least}, got {value}")
        if self.eval.max_steps is not None and self.eval.max_steps < 1:
            raise ValueError(f"eval.max_steps (--eval-max-steps): expected ≥ 1 or none, got {self.eval.max_steps}")
        for name, weight in (self.train.task_weights or {}).items():
            if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not 0 <= weight < math.inf:
                raise ValueError(f"train.task_weights (--task-weights): {name}: expected a number ≥ 0, got {weight!r}")
        if self.data.data_plan is not None and self.data.episodes_per_task is not None:
            raise ValueError(
                "data.episodes_per_task (--episodes-per-task) replaces the data plan by N clean episodes of every "
                "task, and data.data_plan (--data-plan) names one: give one of them"
            )
        plan = self.data_plan()
        if self.eval.captions and not plan.captions:
            raise ValueError(
                "eval.captions (--eval-captions): the held-out images come from the generated captions; "
                "set --captions > 0 or --eval-captions 0"
            )
        self.task_names()  # an unknown --tasks name is refused before any work
        self.training().check_model_settings()  # as are a preset, a model field or a value training would refuse
        if self.train.task_weights is not None:
            present = {*self._generated_datasets(), *self._datasets_on_disk()}
            unknown = sorted(set(self.train.task_weights) - present)
            if unknown:
                raise ValueError(
                    f"train.task_weights (--task-weights): no dataset named {unknown} in this run; "
                    f"datasets: {sorted(present)}"
                )

    def _datasets_on_disk(self) -> list[str]:
        """The datasets already in the data folder (a shared cache may hold more than this run's tasks)."""
        listing = self.data_path / "dataset_dict.json"
        try:
            return list(json.loads(listing.read_text(encoding="utf-8")).get("splits", []))
        except (OSError, ValueError, AttributeError):
            return []

    def data_plan(self) -> Any:
        """The data plan of the data stage (a ``gato.episodes.plan.DataPlan``): ``data.data_plan``'s file or the
        built-in ``DEFAULT_DATA_PLAN``, or, with ``data.episodes_per_task``, N clean episodes of every task (the
        built-in plan's captions and text); ``data.captions`` / ``data.text`` over it."""
        from gato.episodes.plan import DataPlan
        from gato.inputs import yaml_mapping

        data = self.data
        if data.data_plan is not None:
            plan = DataPlan.from_dict(yaml_mapping(data.data_plan, "a data plan YAML file"), where=data.data_plan)
        else:
            plan = DataPlan.from_dict(DEFAULT_DATA_PLAN, where="DEFAULT_DATA_PLAN")
            if data.episodes_per_task is not None:
                plan = DataPlan(episodes_per_task=data.episodes_per_task, captions=plan.captions, text=plan.text)
        return plan.with_overrides(captions=data.captions, text=data.text)

    @property
    def task_selection(self) -> str | None:
        """The ``tasks`` the data plan is run for: ``tasks``; else, when ``--episodes-per-task`` replaces the plan, the
        default suite; else ``None`` (every task the plan names)."""
        if self.tasks:
            return self.tasks
        return "default" if self.data.episodes_per_task is not None else None

    def task_names(self) -> list[str]:
        """The names of the tasks this job generates, trains on and evaluates, in order."""
        try:
            return list(self.data_plan().recipes(self.task_selection))
        except KeyError as error:
            raise ValueError(f"tasks (--tasks): {error.args[0]}") from None

    def task_weights(self) -> dict[str, float]:
        """``train.task_weights`` as given; by default ``DEFAULT_TASK_WEIGHTS`` for the datasets this run has (its
        tasks, ``captions`` and ``text`` when generated), as the mixture refuses weights of absent datasets."""
        if self.train.task_weights is not None:
            return dict(self.train.task_weights)
        present = self._generated_datasets()
        return {name: weight for name, weight in DEFAULT_TASK_WEIGHTS.items() if name in present}

    def _generated_datasets(self) -> set[str]:
        """The datasets the data stage writes: the tasks, and ``captions`` / ``text`` when the plan asks for them."""
        plan = self.data_plan()
        return {*self.task_names(), *(["captions"] if plan.captions else []), *(["text"] if plan.text else [])}

    @property
    def data_path(self) -> Path:
        return Path(self.data.data_dir) if self.data.data_dir else Path(self.output_dir) / DATA_SUBDIR

    def training(self) -> Any:
        """The ``TrainingConfig`` of the train stage (YAML file first, then this config's fields)."""
        from gato.training.config import TrainingConfig

        train = self.train
        base = TrainingConfig.from_yaml(train.training_config) if train.training_config else TrainingConfig()
        return base.with_overrides(
            preset=train.preset,
            model_overrides={**base.model_overrides, **train.model_overrides},
            task_weights={**base.task_weights, **self.task_weights()},
            data=str(self.data_path),
            output_dir=self.output_dir,
            max_steps=train.max_steps,
            batch_size=train.batch_size,
            max_length=train.max_length,
            learning_rate=train.learning_rate,
            warmup_steps=min(train.warmup_steps, train.max_steps),
            seed=self.seed,
            # Validate and checkpoint a few times per run whatever its length; the last step always does both.
            eval_steps=max(1, train.max_steps // 4),
            save_steps=max(1, train.max_steps // 4),
            logging_steps=max(1, min(10, train.max_steps // 10)),
            eval_batches=2,
            report_to="none",
            resume=True,
        )

    def evaluation(self) -> Any:
        """The ``EvaluationConfig`` of the eval stage: results land in ``output_dir`` itself."""
        from gato.evaluation.run_evaluation import EvaluationConfig

        plan = self.data_plan()
        return EvaluationConfig(
            model=self.output_dir,
            tasks=self.task_selection or ",".join(self.task_names()),
            episodes=self.eval.episodes,
            output_dir=self.output_dir,
            num_envs=self.eval.num_envs,
            seed=self.seed,
            max_steps=self.eval.max_steps,
            captions=self.eval.captions if plan.captions else 0,
            data=str(self.data_path),
            text=plan.text,
            threads=self.threads,
            progress=self.progress,
        )


def quick_config(**fields: Any) -> MainJobConfig:
    """The ``gato run --quick`` configuration: the defaults with ``QUICK_SETTINGS`` over them (and ``fields``)."""
    base = MainJobConfig(**fields)
    return dataclasses.replace(
        base,
        **{stage: dataclasses.replace(getattr(base, stage), **settings) for stage, settings in QUICK_SETTINGS.items()},
    )


@dataclass
class StageReport:
    """What one stage did: ``status`` is ``done`` or ``skipped``; seconds of wall and CPU time; peak resident memory
    in MB (10⁶ bytes) by the end of the stage, of this process and of its largest finished worker (``None``: none)
    — a high-water mark since the job started (``gato.episodes.resources``), so a stage lighter than an earlier
    one shows the earlier peak."""

    name: str
    status: str
    wall_seconds: float
    cpu_seconds: float
    details: dict[str, Any] = field(default_factory=dict)
    peak_rss_mb: float | None = None
    peak_worker_rss_mb: float | None = None


@dataclass
class MainJobResult:
    output_dir: str
    stages: list[StageReport]
    results: dict[str, Any]  # the eval_results.json dict

    @property
    def wall_seconds(self) -> float:
        return sum(stage.wall_seconds for stage in self.stages)

    @property
    def cpu_seconds(self) -> float:
        return sum(stage.cpu_seconds for stage in self.stages)


def _cpu_seconds() -> float:
    """User + system CPU time of this process and its reaped children (data workers), in seconds."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def training_is_done(config: Any) -> bool:
    """``output_dir`` holds a model trained with exactly this ``TrainingConfig`` (resume aside)."""
    from gato.training.checkpoints import config_differences
    from gato.training.run_training import TRAINING_CONFIG_FILE

    output_dir = Path(config.output_dir)
    saved = output_dir / TRAINING_CONFIG_FILE
    if not (output_dir / "model.safetensors").exists() or not saved.exists():
        return False
    return not config_differences(yaml.safe_load(saved.read_text()) or {}, config.to_dict())  # `resume` aside


# The evaluation settings that change the results (threads and progress bars do not).
_RESULT_SETTINGS = (
    "tasks",
    "episodes",
    "num_envs",
    "seed",
    "max_steps",
    "captions",
    "text",
    "prompt_tokens",
    "do_sample",
)


def evaluation_is_done(config: Any) -> bool:
    """``output_dir/eval_results.json`` is newer than the model and was made with these settings."""
    from gato.evaluation.report import RESULTS_FILE

    results_file, model_file = Path(config.output_dir) / RESULTS_FILE, Path(config.model) / "model.safetensors"
    if (
        not results_file.exists()
        or not model_file.exists()
        or results_file.stat().st_mtime < model_file.stat().st_mtime
    ):
        return False
    settings = json.loads(results_file.read_text()).get("settings", {})
    wanted = config.settings()
    return all(settings.get(key) == wanted[key] for key in _RESULT_SETTINGS)


def run_main_job(config: MainJobConfig, log: Callable[[str], None] = print) -> MainJobResult:
    """Run (or resume) the four stages; see the module docstring. ``log`` receives one line per stage event."""
    from gato.training.distributed import launched_processes

    config.validate()
    launched = launched_processes()
    if launched > 1:  # N copies would each generate, train and evaluate into one output_dir
        raise ValueError(
            f"WORLD_SIZE: gato run is one process, but the launcher started {launched}; run the stages instead: "
            "`gato data generate`, then `accelerate launch -m gato.cli train …` and `accelerate launch -m gato.cli eval …` "
            "(docs/TRAINING.md)"
        )
    training, evaluation = config.training(), config.evaluation()  # refuse bad settings before any work
    output_dir = Path(config.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    previous = _load_job_file(output_dir)
    stages: list[StageReport] = []

    def stage(name: str, work: Callable[[], tuple[str, dict[str, Any]]]) -> None:
        from gato.episodes.resources import peak_rss_bytes
        from gato.hub_cards.model_card import format_duration, format_peak_rss

        log(f"[{len(stages) + 1}/{len(STAGES)}] {name}: {STAGE_DESCRIPTIONS[name]}")
        wall, cpu = time.perf_counter(), _cpu_seconds()
        status, details = work()
        worker = peak_rss_bytes(children=True)
        report = StageReport(
            name,
            status,
            time.perf_counter() - wall,
            _cpu_seconds() - cpu,
            details,
            peak_rss_mb=peak_rss_bytes() / 1e6,
            peak_worker_rss_mb=worker / 1e6 if worker else None,
        )
        if status == "skipped" and name in previous:  # keep what the stage cost when it last ran
            before = previous[name]
            first = before.get("details", {}).get("first_run") if before.get("status") == "skipped" else before
            report.details = {**before.get("details", {}), **details, "first_run": first}
        stages.append(report)
        _save_job_file(output_dir, config, stages)  # an interrupted job still records the stages it finished
        log(
            f"      {name} {status} in {format_duration(report.wall_seconds)} (CPU {format_duration(report.cpu_seconds)}, "
            f"peak RSS {format_peak_rss(dataclasses.asdict(report))})"
        )

    def data() -> tuple[str, dict[str, Any]]:
        from gato.episodes.generate import summary_table
        from gato.episodes.plan import run_plan

        plan = config.data_plan()
        run = run_plan(
            plan,
            config.data_path,
            tasks=config.task_selection,
            seed=config.seed,
            workers=config.data.workers,
            overwrite=config.data.overwrite_data,
            progress=config.progress,
        )
        log(summary_table(run.summaries))
        dagger = plan.dagger_recipes(config.task_selection)
        if dagger:  # the job has no DAgger stage: say so, and how to run one, instead of ignoring the plan's ask
            source = config.data.data_plan or "the data plan"
            log(
                f"      note: {source} asks for DAgger episodes of {', '.join(dagger)}; `gato run` records expert "
                "episodes only. A DAgger round needs the trained model: afterwards run `gato data generate --plan "
                f"{source} --out {config.data_path} --dagger-model {config.output_dir}`, then `gato train --init-from "
                f'{config.output_dir}` on that data (docs/DATA.md, "Data plans")'
            )
        status = "skipped" if all(summary.status == "skipped" for summary in run.summaries) else "done"
        return status, {
            "data_plan": plan.to_dict(),
            "datasets": {name: len(split) for name, split in run.dataset_dict.items()},
        }

    def train() -> tuple[str, dict[str, Any]]:
        from gato.training.checkpoints import checkpoint_dirs, config_differences

        if training_is_done(training):
            return "skipped", {}
        started = previous.get("training_config")
        changed = config_differences(started, training.to_dict()) if started is not None else []
        if changed and checkpoint_dirs(training.output_dir):
            # Resuming those checkpoints would continue another run's schedule and data order.
            raise ValueError(
                f"output_dir: {training.output_dir}/checkpoints hold a run with other training settings "
                f"({'; '.join(changed)}); use another --output-dir or delete that checkpoints folder"
            )
        _save_job_file(output_dir, config, stages, training.to_dict())
        from gato.flags import set_threads
        from gato.training.run_training import run_training

        set_threads(config.threads)
        result = run_training(training)
        return "done", {
            "steps": result.step,
            "final_loss": result.losses[-1] if result.losses else None,
            "validation": result.validation,
            "tokens_per_second": result.tokens_per_second,
        }

    def evaluate() -> tuple[str, dict[str, Any]]:
        if evaluation_is_done(evaluation):
            return "skipped", {}
        from gato.evaluation.run_evaluation import run_evaluation

        results = run_evaluation(evaluation)
        return "done", {"summary": results["summary"]}

    def card() -> tuple[str, dict[str, Any]]:
        from gato.hub_cards import write_model_card

        path = write_model_card(output_dir, job=_job_record(config, stages))
        return "done", {"path": str(path)}

    stage("data", data)
    stage("train", train)
    stage("eval", evaluate)
    stage("card", card)
    from gato.evaluation.report import RESULTS_FILE

    results = json.loads((output_dir / RESULTS_FILE).read_text())
    return MainJobResult(str(output_dir), stages, results)


STAGE_DESCRIPTIONS = {
    "data": "recording expert episodes, captions and text",
    "train": "training the model",
    "eval": "evaluating on the tasks, captions and text",
    "card": "writing the model card",
}


def _job_record(config: MainJobConfig, stages: list[StageReport]) -> dict[str, Any]:
    return {"config": dataclasses.asdict(config), **{stage.name: dataclasses.asdict(stage) for stage in stages}}


def _load_job_file(output_dir: Path) -> dict[str, Any]:
    path = output_dir / MAIN_JOB_FILE
    return json.loads(path.read_text()) if path.exists() else {}


def _save_job_file(
    output_dir: Path, config: MainJobConfig, stages: list[StageReport], training: dict[str, Any] | None = None
) -> None:
    path = output_dir / MAIN_JOB_FILE
    tmp = path.with_suffix(".tmp")
    record = {
        **_job_record(config, stages),
        "training_config": training or _load_job_file(output_dir).get("training_config"),
    }
    tmp.write_text(json.dumps(record, indent=2, default=str) + "\n")
    os.replace(tmp, path)


__all__ = [
    "DataSettings",
    "EvalSettings",
    "MainJobConfig",
    "TrainSettings",
    "MainJobResult",
    "StageReport",
    "run_main_job",
    "training_is_done",
    "evaluation_is_done",
    "CPU_MODEL_OVERRIDES",
    "DEFAULT_DATA_PLAN",
    "DEFAULT_TASK_WEIGHTS",
    "QUICK_SETTINGS",
    "quick_config",
    "MAIN_JOB_FILE",
]
