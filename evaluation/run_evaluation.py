"""The whole evaluation of a Hub-ready folder: control rollouts, captions, text → one results dict (and files).

``gato eval`` is a thin wrapper over :func:`run_evaluation`; the results dict is what ``eval_results.json``
holds (fields in docs/EVALUATION.md).

Under ``accelerate launch`` the control tasks are shared out between the processes (task ``i`` goes to process
``i mod N``, each on its own device) and gathered on the main process, which adds captions, text and held-out
action accuracy and writes the files. A task's episodes are seeded by (seed, task, episode), not by process, so
the results are the same whatever the number of processes.
"""

from __future__ import annotations

import dataclasses
import datetime
import platform
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gato.modeling_gato.acting import ActingConfig
from gato.suite.registry import check_env_id, parse_env_kwargs, resolve_model_tasks, tasks_for_env
from gato.suite.task_spec import load_task_specs

from .report import SCHEMA_VERSION, write_results
from .scores import SCORE_THRESHOLD, domain_summaries, score_summary

if TYPE_CHECKING:
    import torch

# The rollouts (the agent, gymnasium, datasets) and the statistics (scipy) are imported where they run, so that
# reading an EvaluationConfig (`gato eval --help`) imports none of them.


@dataclass
class EvaluationConfig:
    """What ``gato eval`` evaluates.

    Args:
        model: the model folder (``save_pretrained`` + processor, as ``gato train`` writes it).
        tasks: suite, domain or task names, comma-separated (``resolve_tasks``); ``""`` = no control tasks.
        episodes: evaluation episodes per task.
        output_dir: where the JSON, markdown and PNG go (default: ``<model>/eval``; for a run's checkpoint
            ``RUN/checkpoints/checkpoint-<step>``, ``RUN/eval/checkpoint-<step>``).
        num_envs: environments stepped together per task.
        seed: seeds the evaluation episodes (and, through a stream of its own, the prompt demonstrations) and the
            sampler.
        max_steps: cut episodes after this many steps (default: each task's horizon).
        acting: how the agent acts (:class:`~gato.modeling_gato.acting.ActingConfig`: sampling or greedy, the greedy
            rule of continuous actions, the KV cache and ``torch.compile``, the overflow rule) and the prompt
            demonstration's length (``prompt_tokens``; ``None`` = as in training, ``prompt_fraction × max_length``
            from the folder's ``training_config.yaml``; 0 = none). A mapping of its fields is accepted.
        captions: caption this many rows of each held-out caption split of ``data`` (0 = skip):
            ``captions_validation`` (held-out colour×shape pairs) and, when present, ``captions_test`` (new scenes).
        data: a ``gato data generate`` folder for the caption and text validation splits.
        text: compute the validation loss on ``data``'s text validation split when it has one.
        threads: torch CPU threads (0 = torch's default).
        device: ``"auto"`` (this process's accelerator as ``accelerate`` assigns it: ``cuda:<local rank>`` under
            ``accelerate launch`` on GPUs, the GPU if there is one, else the CPU) or a torch device (``"cpu"``, ``"cuda:1"``).
        dtype: the dtype the model's weights act and evaluate in: ``float32`` (default: the published scores are
            the same on every machine), ``bfloat16``, or ``auto`` (bf16 where the CPU or GPU computes it natively,
            as ``mixed_precision: auto`` trains; ``gato.training.precision.resolve_dtype``). Action, text and loss
            logits are computed in float32 either way; bf16 chose the same greedy action as float32 for 98.4% of
            held-out action tokens (BENCHMARKS.md, "bf16 on the CPU").
        progress: show progress bars (the main process's).
        env: the gymnasium id to play a task in that the suite does not know but the model does (its
            ``task_specs.json``); default: the id its spec stores. With ``tasks`` left at its default, ``env`` alone
            evaluates the model's tasks recorded in that id.
        env_kwargs: the ``gym.make`` arguments of ``env``'s environments, a JSON object (e.g. ``{"g": 9.81}``).
    """

    model: str
    tasks: str = "default"
    episodes: int = 10
    output_dir: str | None = None
    num_envs: int = 4
    seed: int = 0
    max_steps: int | None = None
    acting: ActingConfig = field(default_factory=ActingConfig)
    captions: int = 0
    data: str | None = None
    text: bool = True
    threads: int = 0
    device: str = "auto"
    dtype: str = "float32"
    progress: bool = True
    env: str | None = None
    env_kwargs: str | None = None

    def results_dir(self) -> Path:
        """``output_dir``, else ``<model>/eval``; for a training checkpoint ``RUN/checkpoints/checkpoint-<step>``,
        ``RUN/eval/checkpoint-<step>``: files added inside a checkpoint would make ``--resume`` refuse it (it
        accepts only the files its ``checkpoint.json`` lists)."""
        if self.output_dir:
            return Path(self.output_dir)
        from gato.training.checkpoints import is_checkpoint  # torch and accelerate: not for reading the config

        resolved = Path(self.model).resolve()  # `--model .` inside a checkpoint names it too
        if resolved.parent.name == "checkpoints" and is_checkpoint(resolved):
            return resolved.parent.parent / "eval" / resolved.name
        return Path(self.model) / "eval"

    def parsed_env_kwargs(self) -> dict[str, Any] | None:
        """``env_kwargs`` as a dict (None when not given)."""
        return parse_env_kwargs(self.env_kwargs)

    def __post_init__(self) -> None:
        if isinstance(self.acting, Mapping):  # e.g. from YAML or JSON
            self.acting = ActingConfig(**self.acting)
        if not isinstance(self.acting, ActingConfig):
            raise ValueError(
                f"acting: expected an ActingConfig or a mapping of its fields, got {type(self.acting).__name__}"
            )

    def settings(self) -> dict[str, Any]:
        """The settings that ``eval_results.json`` records (flat: the acting fields beside the others; what the
        results depend on, so without ``model``, ``output_dir`` and ``progress``)."""
        settings: dict[str, Any] = {}
        for item in dataclasses.fields(self):
            if item.name == "acting":
                settings.update(self.acting.to_dict())
            elif item.name not in ("model", "output_dir", "progress"):
                settings[item.name] = getattr(self, item.name)
        return settings

    def validate(self) -> None:
        if self.episodes < 1:
            raise ValueError(f"episodes: expected ≥ 1, got {self.episodes}")
        if self.num_envs < 1:
            raise ValueError(f"num_envs: expected ≥ 1, got {self.num_envs}")
        if self.captions < 0:
            raise ValueError(f"captions: expected ≥ 0, got {self.captions}")
        if self.captions and not self.data:
            raise ValueError("captions: the caption split comes from --data DIR (a `gato data generate` folder)")
        self.parsed_env_kwargs()
        if self.env:  # a mistyped id is named here, before any model or environment is loaded
            check_env_id(self.env)
        if self.device != "auto":
            import torch

            try:
                torch.device(self.device)
            except RuntimeError as error:
                raise ValueError(
                    f"device: expected 'auto' or a torch device such as 'cpu' or 'cuda:0', got {self.device!r}"
                ) from error
        from gato.training.precision import resolve_dtype

        resolve_dtype(self.dtype)  # "dtype: expected one of auto, float32, bfloat16; got …"
        if not Path(self.model).is_dir():
            raise ValueError(f"model: {self.model} is not a folder (expected the output of `gato train`)")


def eval_command(settings: dict[str, Any], model: str = "MODEL", output_dir: str | None = None) -> str:
    """The ``gato eval`` command line of an ``eval_results.json``'s ``settings`` (flags only where not default),
    writing into ``output_dir`` when given (the model folder itself: then it also rewrites the model card)."""
    defaults = EvaluationConfig(model=model).settings()
    parts = ["gato eval", f"--model {model}"]
    for key, value in settings.items():
        flag = f"--{key.replace('_', '-')}"
        if key == "temperature" and settings.get("do_sample"):  # --temperature is what turns sampling on
            parts.append(f"--temperature {value:g}")
        elif key not in defaults or key in ("do_sample", "temperature") or value == defaults[key]:
            continue
        elif isinstance(value, bool):  # every boolean setting has --x / --no-x (gato/flags.py)
            parts.append(flag if value else f"--no-{key.replace('_', '-')}")
        elif key == "env_kwargs":
            parts.append(f"{flag} {shlex.quote(value)}")
        else:
            parts.append(f"{flag} {value}")
    if output_dir:
        parts.append(f"--output-dir {output_dir}")
    return " ".join(parts)


def load_model_and_processor(path: str | Path) -> tuple[torch.nn.Module, Any]:
    """A gato folder → ``(model in eval mode, processor)`` through the Auto classes (offline)."""
    from gato.episodes.manifest import verify_manifest  # a bit-flipped model.safetensors is named, never evaluated
    from transformers import AutoModelForCausalLM, AutoProcessor

    import gato  # noqa: F401  (registers the Auto classes)

    if Path(path).is_dir():  # a Hub id is checked by huggingface_hub's own download
        verify_manifest(path)
    model = AutoModelForCausalLM.from_pretrained(str(path)).eval()
    processor = AutoProcessor.from_pretrained(str(path))
    return model, processor


@dataclass(frozen=True)
class AgentFactory:
    """The agent of a saved gato folder for a task, prompted as ``gato eval`` prompts it (greedy, the folder's prompt
    length): the actor of DAgger episodes (``gato.episodes.dagger.ActorFactory``). Picklable and equal by value,
    so that each worker process loads the model once per task.

    Args:
        model: a folder written by ``gato train``.
    """

    model: str

    @property
    def name(self) -> str:
        return self.model

    def check(self, tasks: list[Any]) -> None:
        """Refuse tasks the folder learnt with another spec (:func:`check_trained_specs`)."""
        check_trained_specs(self.model, tasks)

    def __call__(self, task: Any, seed: int) -> Any:
        """A :class:`~gato.evaluation.agent.GatoAgent` for one environment of ``task``, prompted with the expert
        demonstration of ``seed``'s prompt stream."""
        from .rollout import make_agent

        network, processor = load_model_and_processor(self.model)
        agent = make_agent(network, processor, task, seed=seed, model_dir=self.model)
        agent.reset()
        return agent


def trained_validation_fraction(model_dir: str) -> float:
    """The ``validation_fraction`` the folder was trained with (its ``training_config.yaml``), else the default."""
    from gato.training.config import TrainingConfig

    path = Path(model_dir) / "training_config.yaml"
    return (
        TrainingConfig.from_yaml(path).validation_fraction if path.exists() else TrainingConfig().validation_fraction
    )


def check_trained_specs(model_dir: str | Path, tasks: list[Any]) -> None:
    """Refuse to evaluate a task whose spec differs from the one the model learnt it with (its tokens would mean
    other things to the model); models without ``task_specs.json`` (trained before it existed) are not checked."""
    from gato.suite.task_spec import TASK_SPECS_FILE, load_task_specs, spec_differences

    trained = load_task_specs(model_dir)
    problems = []
    for task in tasks:
        if task.name in trained:
            problems += [f"{task.name}: {line}" for line in spec_differences(trained[task.name], task.spec)]
    if problems:
        raise ValueError(
            f"tasks: {model_dir} learnt these tasks with other observations or actions than this version of the suite "
            f"gives them ({TASK_SPECS_FILE}, trained → now):\n  "
            + "\n  ".join(problems)
            + "\nRetrain on data written by this version (`gato data generate`), or evaluate other tasks."
        )


def add_imitation_accuracy(
    task_results: list[dict[str, Any]], model, processor, data, validation_fraction: float
) -> None:
    """Set each task result's ``imitation`` to the held-out action accuracy when ``data`` holds that task's episodes."""
    from gato.training.mixture import split_sources

    from .imitation import held_out_action_accuracy

    _, validation = split_sources(data, validation_fraction)
    held_out = {source.name: source for source in validation if source.kind == "episodes"}
    for result in task_results:
        source = held_out.get(result["task"])
        if source is not None:
            result["imitation"] = held_out_action_accuracy(model, processor, source.dataset, source.spec)


def run_evaluation(config: EvaluationConfig, write: bool = True) -> dict[str, Any] | None:
    """Evaluate as ``config`` says; returns the ``eval_results.json`` dict (and writes the files when ``write``).

    Under ``accelerate launch`` every process evaluates its share of the tasks; the main process returns the
    whole results dict and writes it, the others return ``None``.
    """
    config.validate()
    # A task the suite does not know is rebuilt from the model's stored spec and its environment id (gato.suite.spaces).
    specs = load_task_specs(config.model)
    names = config.tasks
    if config.env and names == EvaluationConfig.tasks:  # `gato eval --env ID`: the model's tasks recorded in that id
        names = ",".join(tasks_for_env(specs, config.env))  # none: refused naming env, never the default suite
    tasks = resolve_model_tasks(names, specs, config.env, config.parsed_env_kwargs()) if names.strip() else []
    check_trained_specs(config.model, tasks)
    import torch
    from accelerate.utils import gather_object
    from gato.training.distributed import build_partial_state, process_share
    from gato.training.throughput import bound_onednn_primitive_cache

    from .rollout import default_prompt_tokens, evaluate_task
    from .statistics import score_statistics

    bound_onednn_primitive_cache()  # before the first CPU kernel: observations of every size reach the patch block
    # One process and no process group unless started by `accelerate launch` (docs/TRAINING.md).
    state = build_partial_state()
    if config.threads:
        torch.set_num_threads(config.threads)
    model, processor = load_model_and_processor(config.model)
    model.to(state.device if config.device == "auto" else torch.device(config.device))
    from gato.training.precision import cast_for_acting

    cast_for_acting(model, config.dtype)  # after the move: `auto` asks the device the model is on
    acting = config.acting
    if acting.prompt_tokens is None:  # as the folder was trained
        acting = dataclasses.replace(acting, prompt_tokens=default_prompt_tokens(processor, config.model))
    own_results = [
        evaluate_task(
            model,
            processor,
            task,
            config.episodes,
            acting_config=acting,
            num_envs=config.num_envs,
            seed=config.seed,
            max_steps=config.max_steps,
            progress=config.progress and state.is_main_process,
        ).to_dict()
        for task in process_share(tasks, state)
    ]
    if state.num_processes > 1:
        order = {task.name: index for index, task in enumerate(tasks)}
        own_results = sorted(gather_object(own_results), key=lambda result: order[result["task"]])
    if not state.is_main_process:
        return None
    task_results = own_results
    captions = captions_test = text = None
    if config.data:
        from gato.episodes.schema import CAPTIONS_SPLITS, TEXT_SPLITS
        from gato.training.run_training import load_data

        data = load_data(config.data)
        add_imitation_accuracy(task_results, model, processor, data, trained_validation_fraction(config.model))
        if config.captions:
            from .captioning import evaluate_captions

            split, test_split = CAPTIONS_SPLITS[1], CAPTIONS_SPLITS[2]
            if split not in data:
                raise ValueError(
                    f"captions: {config.data} has no {split!r} split (generate it with `gato data generate --captions N`)"
                )
            captions = evaluate_captions(model, processor, data[split], samples=config.captions, split=split)
            if test_split in data:  # folders generated before the split existed have none
                captions_test = evaluate_captions(
                    model, processor, data[test_split], samples=config.captions, split=test_split
                )
        if config.text and TEXT_SPLITS[1] in data:
            from .validation_loss import evaluate_text

            text = evaluate_text(model, processor, list(data[TEXT_SPLITS[1]]["text"]), split=TEXT_SPLITS[1])
    import gato

    results = {
        "schema_version": SCHEMA_VERSION,
        "model": str(config.model),
        "model_type": model.config.model_type,
        "num_parameters": int(sum(p.numel() for p in model.parameters())),
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "gato_version": gato.__version__,
        "device": str(next(model.parameters()).device),
        "dtype": str(next(model.parameters()).dtype).removeprefix("torch."),
        "processes": state.num_processes,
        "platform": platform.platform(),
        "episodes_per_task": config.episodes,
        "settings": config.settings(),
        "tasks": task_results,
        "domains": domain_summaries(task_results, SCORE_THRESHOLD),
        "summary": score_summary([result["normalized_score"] for result in task_results], SCORE_THRESHOLD),
        # IQM, median, mean, optimality gap with stratified-bootstrap intervals over the episodes (statistics.py).
        "statistics": score_statistics(task_results, seed=config.seed),
        "captions": captions,
        "captions_test": captions_test,
        "text": text,
    }
    if write:
        write_results(results, config.results_dir())
    return results


__all__ = ["AgentFactory", "EvaluationConfig", "load_model_and_processor", "run_evaluation"]
