"""The training run's configuration: a typed dataclass, loadable from YAML and overridable by CLI flags.

Defaults follow GATO_SPEC.md section 7 (AdamW β=(0.9, 0.95), weight decay 0.1, warm-up then cosine
decay by 10×, clipping 1.0, 25% prompted sequences); sizes and step counts default to something a CPU
finishes, and the paper's full recipe is a YAML file away.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import math
import types
import typing
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml
from gato.suite import token_layout

# The prompt takes at most this fraction of a training sequence's ``max_length``; evaluation prompts a model with as
# many tokens as it was trained with (:func:`prompt_token_budget` on both sides).
PROMPT_FRACTION = 0.25

# Accelerate's trackers (``log_with``) and the package each needs.
TRACKER_MODULES = {
    "tensorboard": "tensorboard",
    "wandb": "wandb",
    "trackio": "trackio",
    "comet_ml": "comet_ml",
    "mlflow": "mlflow",
    "clearml": "clearml",
    "dvclive": "dvclive",
    "swanlab": "swanlab",
    "aim": "aim",
}


def prompt_token_budget(max_length: int, prompt_fraction: float = PROMPT_FRACTION) -> int:
    """Tokens a prompt demonstration may take in a ``max_length``-token sequence: ``prompt_fraction × max_length``
    rounded down, at least 1. The training mixture and the evaluation agent both size their prompts with it."""
    return max(1, int(max_length * prompt_fraction))


@dataclass
class TrainingConfig:
    """Every knob of a ``gato train`` run.

    Args:
        preset: model size preset (``GatoConfig.from_preset``), e.g. ``gato-tiny``, ``gato-79m``.
        model_overrides: ``GatoConfig`` fields that override the preset (e.g. ``{"hidden_size": 128}``).
        data: folder written by ``gato data generate`` (``datasets.load_from_disk`` gives a ``DatasetDict``).
        task_weights: sampling weight per dataset name (task, ``captions``, ``text``); datasets not named
            get ``default_weight``. The paper samples its mixture by weight.
        default_weight: weight of datasets absent from ``task_weights``.
        validation_fraction: fraction of each dataset's episodes held out for per-modality validation loss.
        output_dir: where checkpoints, logs and the final Hub-ready folder go.
        max_steps: optimizer steps.
        batch_size: sequences per process per micro-step.
        gradient_accumulation_steps: micro-steps per optimizer step.
        max_length: tokens per sequence (the paper's 1024).
        learning_rate: peak learning rate after warm-up.
        min_lr_ratio: the cosine decays to ``learning_rate * min_lr_ratio`` (the paper decays by 10×).
        warmup_steps: linear warm-up steps.
        weight_decay: AdamW's decoupled weight decay (none on norms, biases, embeddings).
        adam_beta1: AdamW's first-moment decay.
        adam_beta2: AdamW's second-moment decay.
        adam_epsilon: AdamW's epsilon.
        max_grad_norm: gradient-norm clipping.
        prompt_probability: fraction of sequences prefixed with a same-task demonstration.
        prompt_end_probability: of those, the fraction whose demonstration comes from an episode's end.
        prompt_fraction: the prompt takes at most this fraction of ``max_length``.
        mixed_precision: ``"no"``, ``"bf16"`` or ``"fp16"``; ``"auto"`` picks bf16 where the hardware has it.
        gradient_checkpointing: recompute activations in the backward pass to save memory.
        seed: seeds the model initialisation and the data order (the run is a function of it).
        num_workers: DataLoader worker processes tokenizing in the background (0: in the training process).
        logging_steps: every how many optimizer steps to log.
        eval_steps: every how many optimizer steps to compute the validation losses.
        save_steps: every how many optimizer steps to checkpoint.
        eval_batches: validation batches per dataset at each evaluation.
        save_total_limit: checkpoints kept on disk (older ones are deleted).
        init_from: a trained gato folder (``gato train``'s output) to start from: its weights, its model config and
            its processor (verified against its manifest, safetensors only); the optimizer and schedule start
            fresh. ``preset``, ``model_overrides`` and ``max_length`` must then describe that folder's config
            (``gato train --init-from`` fills the ones not given from it; a differing one is refused). A
            ``resume`` continues from the run's own checkpoints. ``""``: a freshly initialised model.
        task_episodes: train on only the first K episodes (by index) of a dataset's training split, per dataset
            name (``{"cartpole": 5}``): fine-tuning on few demonstrations. K larger than the split is refused.
        lora_rank: ``0`` trains every weight; ``r > 0`` freezes the model and trains rank-``r`` LoRA adapters
            (``peft``) on every attention and MLP projection, merged into the weights when the run ends, so the
            output is a plain model folder.
        report_to: Accelerate tracker: ``none`` or one of ``TRACKER_MODULES`` (``tensorboard``, ``wandb``, …); its
            package must be installed (``gato train`` checks at start).
        resume: continue from the last checkpoint in ``output_dir``.
    """

    preset: str = "gato-tiny"
    model_overrides: dict[str, Any] = field(default_factory=dict)
    data: str = ""
    task_weights: dict[str, float] = field(default_factory=dict)
    default_weight: float = 1.0
    validation_fraction: float = 0.05
    output_dir: str = "runs/gato"
    max_steps: int = 1000
    batch_size: int = 8
    gradient_accumulation_steps: int = 1
    max_length: int = token_layout.MAX_LENGTH
    learning_rate: float = 1e-4
    min_lr_ratio: float = 0.1
    warmup_steps: int = 100
    weight_decay: float = 0.1
    adam_beta1: float = 0.9
    adam_beta2: float = 0.95
    adam_epsilon: float = 1e-8
    max_grad_norm: float = 1.0
    prompt_probability: float = token_layout.PROMPT_PROBABILITY
    prompt_end_probability: float = token_layout.PROMPT_END_PROBABILITY
    prompt_fraction: float = PROMPT_FRACTION
    mixed_precision: str = "auto"
    gradient_checkpointing: bool = False
    seed: int = 0
    num_workers: int = 2
    logging_steps: int = 10
    eval_steps: int = 200
    save_steps: int = 200
    eval_batches: int = 4
    save_total_limit: int = 2
    init_from: str = ""
    task_episodes: dict[str, int] = field(default_factory=dict)
    lora_rank: int = 0
    report_to: str = "tensorboard"
    resume: bool = False

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Refuse values that cannot work, naming the field and what is expected."""
        positive = [
            "max_steps",
            "batch_size",
            "gradient_accumulation_steps",
            "max_length",
            "logging_steps",
            "eval_steps",
            "save_steps",
        ]
        for name in positive:
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be ≥ 1, got {getattr(self, name)}")
        for name in ["warmup_steps", "num_workers", "eval_batches", "save_total_limit", "seed", "lora_rank"]:
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be ≥ 0, got {getattr(self, name)}")
        for name in ["prompt_probability", "prompt_end_probability", "min_lr_ratio", "weight_decay"]:
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {getattr(self, name)}")
        for name in ["validation_fraction", "prompt_fraction"]:
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ValueError(f"{name} must be in [0, 1), got {getattr(self, name)}")
        if not self.learning_rate > 0 or not math.isfinite(self.learning_rate):
            raise ValueError(f"learning_rate must be a positive finite number, got {self.learning_rate}")
        if self.max_grad_norm <= 0:
            raise ValueError(f"max_grad_norm must be > 0, got {self.max_grad_norm}")
        for name in ["adam_beta1", "adam_beta2"]:
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ValueError(f"{name} must be in [0, 1), got {getattr(self, name)}")
        if self.mixed_precision not in ("auto", "no", "bf16", "fp16"):
            raise ValueError(f"mixed_precision must be one of auto, no, bf16, fp16; got {self.mixed_precision!r}")
        if self.report_to != "none" and self.report_to not in TRACKER_MODULES:
            raise ValueError(
                f"report_to must be 'none' or one of {', '.join(TRACKER_MODULES)}; got {self.report_to!r}"
            )
        if self.default_weight < 0 or any(w < 0 or not math.isfinite(w) for w in self.task_weights.values()):
            raise ValueError(
                f"task_weights / default_weight must be finite and ≥ 0, got {self.task_weights}, {self.default_weight}"
            )

        for name, episodes in self.task_episodes.items():
            if isinstance(episodes, bool) or not isinstance(episodes, int) or episodes < 1:
                raise ValueError(f"task_episodes: {name} must be a whole number of episodes ≥ 1, got {episodes!r}")

    def check_model_settings(self) -> None:
        """Refuse a ``preset`` that is not one and ``model_overrides`` that name no ``GatoConfig`` field (apart from
        ``validate``: it imports the model's config, which ``gato train --help`` must not)."""
        from gato.modeling_gato.configuration_gato import PRESETS, GatoConfig

        if self.preset not in PRESETS:
            raise ValueError(f"preset must be one of {', '.join(PRESETS)}; got {self.preset!r}")
        try:
            GatoConfig.check_fields(self.model_overrides)
        except ValueError as error:
            raise ValueError(f"model_overrides: {error}") from None

    def check_tracker_installed(self) -> None:
        """Refuse a ``report_to`` tracker whose package is not installed (before the run, not at its first log)."""
        if self.report_to != "none" and importlib.util.find_spec(TRACKER_MODULES[self.report_to]) is None:
            raise ValueError(
                f"report_to: the {self.report_to!r} tracker is not installed "
                f"(pip install {TRACKER_MODULES[self.report_to].replace('_', '-')}), or pass --report-to none"
            )

    # --- YAML -------------------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_yaml(self, path: str | Path) -> None:
        Path(path).write_text(yaml.safe_dump(self.to_dict(), sort_keys=False))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "TrainingConfig":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown training config field(s) {unknown}; known fields: {sorted(known)}")
        return cls(**{name: _coerce(cls, name, value) for name, value in data.items()})

    @classmethod
    def from_yaml(cls, path: str | Path) -> "TrainingConfig":
        try:
            data = yaml.safe_load(Path(path).read_text()) or {}
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as error:
            raise ValueError(
                f"{path}: cannot be read as YAML ({type(error).__name__}) (expected a YAML file of "
                "training config fields)"
            ) from None
        if not isinstance(data, dict):
            raise ValueError(f"{path}: expected a mapping of training config fields, got {type(data).__name__}")
        return cls.from_dict(data)

    def with_overrides(self, **overrides: Any) -> "TrainingConfig":
        """A copy with the given fields replaced (None values are ignored: the CLI's unset flags)."""
        data = self.to_dict()
        data.update({k: v for k, v in overrides.items() if v is not None})
        return self.from_dict(data)


def _coerce(cls: type, name: str, value: Any) -> Any:
    """Check a YAML / CLI value against the field's annotation, so ``max_steps: "ten"`` names the field."""
    annotation = typing.get_type_hints(cls)[name]
    origin = typing.get_origin(annotation) or annotation
    if origin in (int, float, str, bool):
        if origin is float and isinstance(value, int) and not isinstance(value, bool):
            return float(value)
        if origin is int and isinstance(value, float) and value.is_integer():
            return int(value)
        if not isinstance(value, origin) or (origin is int and isinstance(value, bool)):
            raise ValueError(f"{name} must be {origin.__name__}, got {value!r}")
    elif origin in (dict, types.MappingProxyType) and not isinstance(value, dict):
        raise ValueError(f"{name} must be a mapping, got {value!r}")
    return value
