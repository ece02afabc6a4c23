"""A whole ``gato train`` run: data folder + config → trained model → Hub-ready folder.

Builds the processor and model from the config, the mixture and per-modality validation sets from the
``gato data generate`` folder, runs :func:`gato.training.loop.train`, and finally writes
``output_dir`` so that ``AutoModelForCausalLM.from_pretrained(output_dir)`` and
``AutoProcessor.from_pretrained(output_dir)`` work (after ``import gato``), with the run's config and the
specs of the tasks it learnt (``task_specs.json``, which ``gato eval`` checks against the suite's; with
``init_from``, the init model's tasks too) and the run's summary (``train_results.json``: steps, wall time, device, losses; the model card reads it).
"""

from __future__ import annotations

import copy
import dataclasses
import json
from pathlib import Path
from typing import Any

import torch
from datasets import Dataset, DatasetDict, load_from_disk
from gato.episodes.manifest import write_model_manifest
from gato.episodes.schema import spec_from_dataset
from gato.modeling_gato import GatoConfig, GatoForCausalLM
from gato.modeling_gato.modeling_gato import write_remote_code
from gato.processing.processing_gato import GatoProcessor
from gato.suite.task_spec import save_task_specs

from .config import TrainingConfig
from .distributed import launched_processes, uses_deepspeed
from .init_from import (
    check_model_settings,
    init_task_specs,
    load_init_config,
    load_init_processor,
    load_init_weights,
)
from .loop import TrainingResult, train
from .lora import add_lora_adapters, merge_lora_adapters
from .mixture import MixtureDataset, MixtureSource, mixture_weights, split_sources, validation_sets
from .throughput import bound_onednn_primitive_cache

TRAINING_CONFIG_FILE = "training_config.yaml"
TRAIN_RESULTS_FILE = "train_results.json"  # the name transformers' Trainer gives its own run summary


def build_model_config(config: TrainingConfig) -> GatoConfig:
    """The preset with the run's overrides; the context length is the run's ``max_length``. With ``init_from``: the
    folder's config, which those settings must describe (a field they set otherwise is refused, naming it)."""
    config.check_model_settings()
    if config.init_from:
        init = load_init_config(config.init_from)
        check_model_settings(config, init)
        return init
    overrides = {"max_position_embeddings": config.max_length, **config.model_overrides}
    return GatoConfig.from_preset(config.preset, **overrides)


def build_processor(model_config: GatoConfig, max_length: int) -> GatoProcessor:
    """The shipped tokenizer and the default image processor, laid out as the model expects."""
    return GatoProcessor.from_defaults(discrete_layout=model_config.discrete_layout, max_length=max_length)


def load_data(path: str) -> DatasetDict:
    if not path:
        raise ValueError("data: expected the folder written by `gato data generate`, got nothing")
    if not Path(path).exists():
        raise ValueError(f"data: {path} does not exist; write it with `gato data generate --out {path}`")
    from gato.episodes.manifest import verify_data_folder  # a changed shard is named, never trained on

    verify_data_folder(path)
    data = load_from_disk(path)
    if isinstance(
        data, Dataset
    ):  # one task's collection (`record_episodes`, `gato data record`): the split is its task
        try:
            return DatasetDict({spec_from_dataset(data).name: data})
        except ValueError as error:
            raise ValueError(
                f"data: {path} holds one dataset that is not a gato episode collection ({error})"
            ) from None
    return data


def select_task_episodes(sources: list[MixtureSource], task_episodes: dict[str, int]) -> list[MixtureSource]:
    """Keep the first K episodes (by index) of each training split named in ``task_episodes``; a name that is no
    episode split, or K larger than the split, is refused naming the task, K and the split's size."""
    by_name = {source.name: source for source in sources if source.kind == "episodes"}
    for name, episodes in task_episodes.items():
        if name not in by_name:
            raise ValueError(f"task_episodes: no episode dataset named {name!r}; episode datasets: {sorted(by_name)}")
        available = len(by_name[name].dataset)
        if episodes > available:
            raise ValueError(
                f"task_episodes: {name}={episodes}, but its training split holds {available} episode{'' if available == 1 else 's'} "
                "(after the validation hold-out, validation_fraction); generate more or ask for fewer"
            )
    return [
        dataclasses.replace(source, dataset=source.dataset.select(range(task_episodes[source.name])))
        if source.kind == "episodes" and source.name in task_episodes
        else source
        for source in sources
    ]


def build_model(config: TrainingConfig, model_config: GatoConfig) -> torch.nn.Module:
    """The model at step 0: ``init_from``'s weights, or a fresh one seeded by ``config.seed``; with ``lora_rank``,
    wrapped with LoRA adapters (only they train)."""
    if config.init_from:
        model = load_init_weights(config.init_from, model_config)
    else:
        torch.manual_seed(config.seed)
        model = GatoForCausalLM(model_config)
    if config.lora_rank:
        if uses_deepspeed():  # the merge reads whole weights on one process, which ZeRO-3 partitions (not tried)
            raise ValueError("lora_rank: LoRA runs without DeepSpeed only; launch without a DeepSpeed config")
        model = add_lora_adapters(model, config.lora_rank, seed=config.seed)
    return model


def run_training(config: TrainingConfig, stop_after_steps: int | None = None) -> TrainingResult:
    """Train as ``config`` says and write the Hub-ready folder into ``config.output_dir``."""
    bound_onednn_primitive_cache()
    model_config = build_model_config(config)
    processor = load_init_processor(config) if config.init_from else build_processor(model_config, config.max_length)
    data = load_data(config.data)
    train_sources, validation_sources = split_sources(data, config.validation_fraction)
    train_sources = select_task_episodes(train_sources, config.task_episodes)
    weights = mixture_weights(train_sources, config.task_weights, config.default_weight)
    # The tasks the output knows: those trained now (weight > 0) and, from `init_from`, those the init model learnt.
    trained_specs = [
        source.spec for source, weight in zip(train_sources, weights) if source.kind == "episodes" and weight > 0
    ]
    task_specs = init_task_specs(config, trained_specs)
    # Enough items for every process and micro-step of the run: item i is fixed by (seed, i).
    length = config.max_steps * config.gradient_accumulation_steps * config.batch_size * launched_processes()
    mixture = MixtureDataset(
        train_sources,
        processor,
        length=length,
        weights=weights,
        seed=config.seed,
        prompt_probability=config.prompt_probability,
        prompt_end_probability=config.prompt_end_probability,
        prompt_fraction=config.prompt_fraction,
    )
    validation = validation_sets(
        validation_sources, processor, count=config.eval_batches * config.batch_size, seed=config.seed
    )

    model = build_model(config, model_config)

    def write_model_files(folder: Path) -> None:
        """What a model folder holds beside the weights and their config: processor, training config, task specs."""
        processor.save_pretrained(folder)
        config.to_yaml(folder / TRAINING_CONFIG_FILE)
        save_task_specs(task_specs, folder)

    def write_checkpoint_files(folder: Path) -> None:
        """A checkpoint beside its ``model.safetensors``: the config and the model's code (with the ``auto_map``), as
        ``save_pretrained`` writes them, so that it loads like the final folder (also with ``trust_remote_code``
        where gato is not installed), and the rest."""
        checkpoint_config = copy.deepcopy(model.config)
        checkpoint_config.architectures = [type(model).__name__]
        checkpoint_config.save_pretrained(folder)
        write_remote_code(folder)
        write_model_files(folder)
        write_model_manifest(folder)  # loaders check it as they check a run's folder

    def write_hub_folder(
        trained: torch.nn.Module, state_dict: dict[str, torch.Tensor], result: TrainingResult
    ) -> None:
        output_dir = Path(config.output_dir)
        if config.lora_rank:  # the adapters merged into the weights: a plain model folder every loader reads
            merge_lora_adapters(trained).save_pretrained(output_dir)
        else:
            trained.save_pretrained(output_dir, state_dict=state_dict)
        write_model_files(output_dir)
        # With the seed and the episodes each task trained on, so that the results file says what it came from.
        episodes = {
            source.name: len(source.dataset)
            for source, weight in zip(train_sources, weights)
            if source.kind == "episodes" and weight > 0
        }
        summary = {
            **result.to_dict(),
            "seed": config.seed,
            "train_episodes": episodes,
            "init_from": config.init_from or None,
            "lora_rank": config.lora_rank,
        }
        (output_dir / TRAIN_RESULTS_FILE).write_text(json.dumps(summary, indent=2) + "\n")
        write_model_manifest(output_dir)  # every file written above, with its sha256

    return train(
        config,
        model,
        mixture,
        processor.collate,
        validation_datasets=validation,
        on_finish=write_hub_folder,
        stop_after_steps=stop_after_steps,
        data_fingerprint=data_fingerprint(data),
        # A checkpoint's weights with LoRA are base + adapters, which a plain model folder cannot hold.
        write_model_folder=None if config.lora_rank else write_checkpoint_files,
    )


def data_fingerprint(data: DatasetDict) -> dict[str, list[Any]]:
    """Each split's rows and ``datasets`` fingerprint (stored in the folder): a resume on other data is refused."""
    return {name: [split.num_rows, split._fingerprint] for name, split in sorted(data.items())}
