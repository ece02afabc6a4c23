"""The main job behind ``gato run``: nothing → data → trained model → evaluation → Hub-ready folder.

Four stages, each a call into the library part that owns it:

1. **data**: ``gato.episodes.generate`` records expert episodes of the suite (plus captions and the offline
   text corpus) into ``OUT/data``; it resumes by itself, skipping finished tasks;
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
machine it says how much work a stage was, whatever the load).
"""

from __future__ import annotations

import dataclasses
import json
import os
import resource
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

MAIN_JOB_FILE = "main_job.json"
DATA_SUBDIR = "data"
STAGES = ("data", "train", "eval", "card")

# The CPU defaults, chosen by measuring (docs/HUB.md gives the run): a model a little wider and deeper than
# `gato-tiny`, a 384-token context (every default task's time step fits many times over: the longest,
# an Atari frame, is 25 patches + 1 action + the separator), a high learning rate for a short run.
CPU_MODEL_OVERRIDES: dict[str, Any] = {"hidden_size": 128, "num_hidden_layers": 3, "num_attention_heads": 4,
                                       "intermediate_size": 512}


@dataclass
class MainJobConfig:
    """Everything ``gato run`` does, with defaults that finish on 2 CPU cores in about a quarter of an hour.

    Args:
        output_dir: the Hub-ready folder written at the end (data go to ``output_dir/data`` unless ``data_dir``).
        tasks: suite (``default``, ``full``), domain or task names, comma-separated: generated, trained, evaluated.
        episodes_per_task: expert episodes recorded per task.
        captions: captioned scenes generated for training (``0`` = none); a tenth more are held out.
        text: also generate the offline text corpus and train on it.
        preset: model size preset (``GatoConfig.from_preset``: ``gato-tiny``, ``gato-79m``, …).
        model_overrides: ``GatoConfig`` fields that override the preset (the CPU default widens ``gato-tiny``).
        max_steps / batch_size / max_length / learning_rate / warmup_steps: the training run (``TrainingConfig``).
        training_config: a YAML file of ``TrainingConfig`` fields applied before the flags above (the GPU recipe).
        eval_episodes: evaluation episodes per task; ``eval_max_steps`` cuts long episodes (default: each task's horizon).
        eval_captions: held-out images captioned in the evaluation (needs ``captions``).
        num_envs: environments stepped together in the evaluation.
        seed: seeds the data, the model initialisation, the data order and the evaluation episodes.
        workers: processes recording episodes in parallel.
        threads: torch CPU threads in training and evaluation (0 = torch's default; 1 is often fastest for tiny
            models on a busy machine).
        data_dir: where the generated data go (default ``output_dir/data``; point several runs at one cache).
        overwrite_data: regenerate tasks whose data folder holds another generation (other seed or episode count).
        progress: progress bars.
    """

    output_dir: str = "runs/gato"
    tasks: str = "default"
    episodes_per_task: int = 20
    captions: int = 200
    text: bool = True
    preset: str = "gato-tiny"
    model_overrides: dict[str, Any] = field(default_factory=lambda: dict(CPU_MODEL_OVERRIDES))
    max_steps: int = 400
    batch_size: int = 8
    max_length: int = 384
    learning_rate: float = 1e-3
    warmup_steps: int = 30
    training_config: str | None = None
    eval_episodes: int = 4
    eval_max_steps: int | None = None
    eval_captions: int = 8
    num_envs: int = 4
    seed: int = 0
    workers: int = 2
    threads: int = 0
    data_dir: str | None = None
    overwrite_data: bool = False
    progress: bool = True

    def validate(self) -> None:
        for name in ("episodes_per_task", "max_steps", "batch_size", "max_length", "eval_episodes", "num_envs", "workers"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}: expected ≥ 1, got {getattr(self, name)}")
        for name in ("captions", "eval_captions", "threads", "warmup_steps"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name}: expected ≥ 0, got {getattr(self, name)}")
        if self.eval_captions and not self.captions:
            raise ValueError("eval_captions: the held-out images come from the generated captions; set captions > 0 or eval_captions 0")

    @property
    def data_path(self) -> Path:
        return Path(self.data_dir) if self.data_dir else Path(self.output_dir) / DATA_SUBDIR

    def training(self) -> Any:
        """The ``TrainingConfig`` of the train stage (YAML file first, then this config's fields)."""
        from gato.training.config import TrainingConfig

        base = TrainingConfig.from_yaml(self.training_config) if self.training_config else TrainingConfig()
        return base.with_overrides(
            preset=self.preset, model_overrides={**base.model_overrides, **self.model_overrides}, data=str(self.data_path),
            output_dir=self.output_dir, max_steps=self.max_steps, batch_size=self.batch_size, max_length=self.max_length,
            learning_rate=self.learning_rate, warmup_steps=min(self.warmup_steps, self.max_steps), seed=self.seed,
            # Validate and checkpoint a few times per run whatever its length; the last step always does both.
            eval_steps=max(1, self.max_steps // 4), save_steps=max(1, self.max_steps // 4),
            logging_steps=max(1, min(10, self.max_steps // 10)), eval_batches=2, report_to="none", resume=True,
        )

    def evaluation(self) -> Any:
        """The ``EvaluationConfig`` of the eval stage: results land in ``output_dir`` itself."""
        from gato.evaluation.run_evaluation import EvaluationConfig

        return EvaluationConfig(
            model=self.output_dir, tasks=self.tasks, episodes=self.eval_episodes, output_dir=self.output_dir,
            num_envs=self.num_envs, seed=self.seed, max_steps=self.eval_max_steps,
            captions=self.eval_captions if self.captions else 0, data=str(self.data_path), text=self.text,
            threads=self.threads, progress=self.progress,
        )


@dataclass
class StageReport:
    """What one stage did: ``status`` is ``done`` or ``skipped``; seconds of wall and CPU time."""

    name: str
    status: str
    wall_seconds: float
    cpu_seconds: float
    details: dict[str, Any] = field(default_factory=dict)


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
_RESULT_SETTINGS = ("tasks", "episodes", "num_envs", "seed", "max_steps", "captions", "text", "prompt_tokens", "do_sample")


def evaluation_is_done(config: Any) -> bool:
    """``output_dir/eval_results.json`` is newer than the model and was made with these settings."""
    from gato.evaluation.report import RESULTS_FILE

    results_file, model_file = Path(config.output_dir) / RESULTS_FILE, Path(config.model) / "model.safetensors"
    if not results_file.exists() or not model_file.exists() or results_file.stat().st_mtime < model_file.stat().st_mtime:
        return False
    settings = json.loads(results_file.read_text()).get("settings", {})
    wanted = dataclasses.asdict(config)
    return all(settings.get(key) == wanted[key] for key in _RESULT_SETTINGS)


def run_main_job(config: MainJobConfig, log: Callable[[str], None] = print) -> MainJobResult:
    """Run (or resume) the four stages; see the module docstring. ``log`` receives one line per stage event."""
    config.validate()
    launched = int(os.environ.get("WORLD_SIZE", "1"))
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
        log(f"[{len(stages) + 1}/{len(STAGES)}] {name}: {STAGE_DESCRIPTIONS[name]}")
        wall, cpu = time.perf_counter(), _cpu_seconds()
        status, details = work()
        report = StageReport(name, status, time.perf_counter() - wall, _cpu_seconds() - cpu, details)
        if status == "skipped" and name in previous:  # keep what the stage cost when it last ran
            before = previous[name]
            first = before.get("details", {}).get("first_run") if before.get("status") == "skipped" else before
            report.details = {**before.get("details", {}), **details, "first_run": first}
        stages.append(report)
        _save_job_file(output_dir, config, stages)  # an interrupted job still records the stages it finished
        log(f"      {name} {status} in {_duration(report.wall_seconds)} (CPU {_duration(report.cpu_seconds)})")

    def data() -> tuple[str, dict[str, Any]]:
        from gato.episodes.generate import generate, summary_table

        dataset_dict, summaries = generate(
            config.tasks, config.episodes_per_task, config.data_path, seed=config.seed, workers=config.workers,
            captions=config.captions, text=config.text, overwrite=config.overwrite_data, progress=config.progress,
        )
        log(summary_table(summaries))
        status = "skipped" if all(summary.status == "skipped" for summary in summaries) else "done"
        return status, {"datasets": {name: len(split) for name, split in dataset_dict.items()}}

    def train() -> tuple[str, dict[str, Any]]:
        from gato.training.checkpoints import checkpoint_dirs, config_differences

        if training_is_done(training):
            return "skipped", {}
        started = previous.get("training_config")
        changed = config_differences(started, training.to_dict()) if started is not None else []
        if changed and checkpoint_dirs(training.output_dir):
            # Resuming those checkpoints would continue another run's schedule and data order.
            raise ValueError(f"output_dir: {training.output_dir}/checkpoints hold a run with other training settings "
                             f"({'; '.join(changed)}); use another --output-dir or delete that checkpoints folder")
        _save_job_file(output_dir, config, stages, training.to_dict())
        import torch

        from gato.training.run_training import run_training

        if config.threads:
            torch.set_num_threads(config.threads)
        result = run_training(training)
        return "done", {"steps": result.step, "final_loss": result.losses[-1] if result.losses else None,
                        "validation": result.validation, "tokens_per_second": result.tokens_per_second}

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


def _duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, seconds = divmod(round(seconds), 60)
    return f"{minutes} min {seconds} s"


def _job_record(config: MainJobConfig, stages: list[StageReport]) -> dict[str, Any]:
    return {"config": dataclasses.asdict(config), **{stage.name: dataclasses.asdict(stage) for stage in stages}}


def _load_job_file(output_dir: Path) -> dict[str, Any]:
    path = output_dir / MAIN_JOB_FILE
    return json.loads(path.read_text()) if path.exists() else {}


def _save_job_file(output_dir: Path, config: MainJobConfig, stages: list[StageReport],
                   training: dict[str, Any] | None = None) -> None:
    path = output_dir / MAIN_JOB_FILE
    tmp = path.with_suffix(".tmp")
    record = {**_job_record(config, stages), "training_config": training or _load_job_file(output_dir).get("training_config")}
    tmp.write_text(json.dumps(record, indent=2, default=str) + "\n")
    os.replace(tmp, path)


__all__ = ["MainJobConfig", "MainJobResult", "StageReport", "run_main_job", "training_is_done", "evaluation_is_done",
           "CPU_MODEL_OVERRIDES", "MAIN_JOB_FILE"]
