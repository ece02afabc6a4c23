"""Fine-tuning a trained model on one task with few demonstrations (``gato finetune``, the transfer study).

A fine-tune is a ``gato train`` run (:func:`finetune_training_config`): ``init_from`` the trained folder, the one
task at weight 1 and every other dataset at 0, its first K episodes (``task_episodes``), and optionally LoRA
adapters (``lora_rank``). ``from_scratch`` is the paper's comparison (Reed et al. 2022, section 5.2): the same model
size (the folder's config) from random initialisation on the same episodes and steps. Light to import (no torch):
``gato finetune --help`` builds its flags from :class:`FinetuneConfig`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .config import TrainingConfig

# TrainingConfig fields a fine-tune sets itself (from the folder and the task): not flags of `gato finetune`.
FINETUNE_SETS = ("preset", "model_overrides", "max_length", "task_weights", "default_weight", "task_episodes")
FINETUNE_SETS += ("init_from", "lora_rank")


@dataclass
class FinetuneConfig:
    """What ``gato finetune`` fine-tunes (the training settings are ``TrainingConfig``'s).

    Args:
        model: the trained folder to start from (``gato train``'s output): its config, weights and processor.
        task: the task to fine-tune on, a split of the data folder; the run trains on it alone (every other dataset
            at weight 0; their validation losses are still reported, to show what the model forgets).
        episodes: train on the first K episodes (by index) of the task's training split.
        from_scratch: train the same model size (the folder's config) from random initialisation instead, on the
            same episodes and steps (the paper's comparison for fine-tuning).
        lora: train LoRA adapters on every attention and MLP projection instead of every weight; they are merged
            into the weights at the end, so the output is a plain model folder (needs ``peft``).
        lora_rank: rank of the LoRA adapters.
    """

    model: str = ""
    task: str = ""
    episodes: int = 0
    from_scratch: bool = False
    lora: bool = False
    lora_rank: int = 8

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Refuse settings that cannot work, naming the field (empty ``model``/``task``/``episodes``: the CLI requires them)."""
        if self.episodes < 0 or isinstance(self.episodes, bool):
            raise ValueError(f"episodes must be ≥ 1, got {self.episodes!r}")
        if self.lora_rank < 1:
            raise ValueError(f"lora_rank must be ≥ 1, got {self.lora_rank}")
        if self.lora and self.from_scratch:
            raise ValueError(
                "lora / from_scratch: LoRA adapts a trained model's frozen weights; a model from scratch trains them "
                "all (leave out --lora)"
            )

    def check_complete(self) -> None:
        for name in ("model", "task"):
            if not getattr(self, name):
                raise ValueError(f"{name}: required (--{name})")
        if self.episodes < 1:
            raise ValueError(f"episodes must be ≥ 1, got {self.episodes} (--episodes K)")


def finetune_training_config(finetune: FinetuneConfig, train: TrainingConfig) -> TrainingConfig:
    """The ``gato train`` run of a fine-tune: ``train``'s settings with the model, task, episodes and LoRA set.

    The model's size and context come from ``finetune.model`` (verified there); ``from_scratch`` trains them from a
    fresh initialisation seeded by ``train.seed``.
    """
    from .init_from import init_model_settings  # reads the folder's config (transformers)

    finetune.check_complete()
    settings: dict[str, Any] = {
        **init_model_settings(finetune.model),
        "init_from": "" if finetune.from_scratch else finetune.model,
        "task_weights": {finetune.task: 1.0},
        "default_weight": 0.0,
        "task_episodes": {finetune.task: finetune.episodes},
        "lora_rank": finetune.lora_rank if finetune.lora else 0,
    }
    data = train.to_dict()
    data.update(settings)
    return TrainingConfig.from_dict(data)


def run_finetune(finetune: FinetuneConfig, train: TrainingConfig) -> Any:
    """Fine-tune as ``finetune`` says into ``train.output_dir``; returns the run's ``TrainingResult``."""
    from .run_training import run_training

    return run_training(finetune_training_config(finetune, train))
