"""Starting a run from a trained gato folder (``TrainingConfig.init_from``): its config, weights, processor and specs.

Every read goes through the folder's manifest first (:func:`gato.episodes.manifest.verify_manifest`, as ``gato eval``
loads a model), and the weights are read from safetensors only, so a damaged or crafted folder is named, never
trained on, and nothing is unpickled. The model's config comes from the folder; the run's ``preset``,
``model_overrides`` and ``max_length`` must describe it (:func:`init_model_settings` gives the ones that do,
:func:`check_model_settings` refuses a run whose settings build another config, naming each field).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from gato.episodes.manifest import verify_manifest
from gato.modeling_gato import GatoConfig, GatoForCausalLM
from gato.modeling_gato.configuration_gato import PRESETS
from gato.processing.processing_gato import GatoProcessor
from gato.suite.task_spec import TaskSpec, load_task_specs, spec_differences
from transformers import PreTrainedConfig

from .config import TrainingConfig

WEIGHTS_FILE = "model.safetensors"


def architecture_fields() -> list[str]:
    """The fields ``GatoConfig`` adds to transformers' ``PreTrainedConfig`` (the model's shape and vocabulary), which a
    run's preset, overrides and context must reproduce; transformers' bookkeeping fields are not compared."""
    inherited = {item.name for item in dataclasses.fields(PreTrainedConfig)}
    return [item.name for item in dataclasses.fields(GatoConfig) if item.name not in inherited]


def _verified_folder(path: str) -> Path:
    """``path`` as a folder whose manifest verifies and that holds safetensors weights; errors name the path."""
    folder = Path(path)
    if not folder.is_dir():
        raise ValueError(
            f"init_from: {path} is {'a file' if folder.exists() else 'missing'}; expected a trained gato folder "
            "(the output of `gato train`)"
        )
    try:
        verify_manifest(folder)
    except ValueError as error:  # ManifestError: names each changed or missing file
        raise ValueError(f"init_from: {error}") from None
    for name in ("config.json", WEIGHTS_FILE):
        if not (folder / name).is_file():
            raise ValueError(
                f"init_from: {folder / name} is missing; expected a folder written by `gato train` "
                "(weights are read from safetensors only)"
            )
    return folder


def load_init_config(path: str) -> GatoConfig:
    """The model config of the trained folder ``path``, after verifying the folder."""
    folder = _verified_folder(path)
    try:
        return GatoConfig.from_pretrained(str(folder))
    except (OSError, ValueError, TypeError) as error:
        raise ValueError(f"init_from: {folder / 'config.json'} cannot be read as a gato config ({error})") from None


def init_model_settings(path: str) -> dict[str, Any]:
    """``preset``, ``model_overrides`` and ``max_length`` that rebuild the config of the folder ``path``: the preset
    closest to it (fewest fields that differ) and those fields as overrides; ``max_length`` is its context."""
    init = load_init_config(path)
    names = [name for name in architecture_fields() if name != "max_position_embeddings"]
    best: tuple[str, dict[str, Any]] | None = None
    for preset in PRESETS:
        reference = GatoConfig.from_preset(preset)
        overrides = {name: getattr(init, name) for name in names if getattr(init, name) != getattr(reference, name)}
        if best is None or len(overrides) < len(best[1]):
            best = (preset, overrides)
    preset, overrides = best
    return {"preset": preset, "model_overrides": overrides, "max_length": init.max_position_embeddings}


def check_model_settings(config: TrainingConfig, init: GatoConfig) -> None:
    """Refuse a run whose ``preset`` + ``model_overrides`` + ``max_length`` build another config than ``init``."""
    try:
        wanted = GatoConfig.from_preset(
            config.preset, **{"max_position_embeddings": config.max_length, **config.model_overrides}
        )
    except (ValueError, TypeError) as error:
        raise ValueError(f"preset / model_overrides: {error}") from None
    differences = [
        f"{name}: {getattr(init, name)!r} in {config.init_from}, {getattr(wanted, name)!r} from the run's settings"
        for name in architecture_fields()
        if getattr(init, name) != getattr(wanted, name)
    ]
    if differences:
        raise ValueError(
            f"init_from: the run's preset ({config.preset}), model_overrides and max_length ({config.max_length}) "
            f"describe another model than {config.init_from}'s config.json: "
            + "; ".join(differences)
            + ". The model comes from the folder: leave --preset, --model-overrides and --max-length out "
            "(`gato train --init-from` fills them from it) or give the folder's values "
            "(max_length is its max_position_embeddings)"
        )


def load_init_weights(path: str, model_config: GatoConfig) -> GatoForCausalLM:
    """The model of ``path`` (verified, safetensors only) built on ``model_config`` (:func:`load_init_config`'s); a
    weight missing from the file or one the model has no place for is refused, never initialised at random."""
    folder = _verified_folder(path)
    try:
        model, info = GatoForCausalLM.from_pretrained(
            str(folder), config=model_config, use_safetensors=True, output_loading_info=True
        )
    except (OSError, ValueError, RuntimeError) as error:
        raise ValueError(
            f"init_from: {folder / WEIGHTS_FILE} cannot be loaded into its config's model ({error})"
        ) from None
    problems = {kind: sorted(info.get(kind) or []) for kind in ("missing_keys", "unexpected_keys", "mismatched_keys")}
    if any(problems.values()):
        raise ValueError(
            f"init_from: {folder / WEIGHTS_FILE} does not fit its config's model: "
            + "; ".join(f"{kind.replace('_', ' ')} {names[:3]}" for kind, names in problems.items() if names)
        )
    return model


def load_init_processor(config: TrainingConfig) -> GatoProcessor:
    """The processor (tokenizer, image processor, layout) saved in ``config.init_from``, cutting ``max_length``."""
    _verified_folder(config.init_from)
    try:
        processor = GatoProcessor.from_pretrained(config.init_from)
    except (OSError, ValueError, TypeError) as error:
        raise ValueError(f"init_from: the processor of {config.init_from} cannot be loaded ({error})") from None
    processor.max_length = config.max_length
    return processor


def init_task_specs(config: TrainingConfig, trained: list[TaskSpec]) -> list[TaskSpec]:
    """The specs the output's ``task_specs.json`` lists: the tasks trained now and those the init model learnt.
    A task trained now with another spec than the init model learnt it with is refused (its tokens would mean
    other things to the weights)."""
    specs = {spec.name: spec for spec in trained}
    if not config.init_from:
        return list(specs.values())
    learnt = load_task_specs(config.init_from)
    for name, spec in learnt.items():
        if name in specs and (differences := spec_differences(spec, specs[name])):
            raise ValueError(
                f"init_from: {config.init_from} learnt task {name!r} with another spec than the data gives it "
                f"(task_specs.json → data): {'; '.join(differences)}"
            )
        specs.setdefault(name, spec)
    return [specs[name] for name in sorted(specs)]
