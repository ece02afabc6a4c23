"""The training mixture: weighted sampling over episode, caption and text datasets (GATO_SPEC.md sections 1, 4, 7).

Item ``i`` of a :class:`MixtureDataset` is a pure function of ``(seed, i)``: which dataset (by weight),
which episode and where in it, and whether the sequence is prompted (25% by default; of those half from
an episode's end, half uniform). Reading items in order therefore gives a data order that a resumed run
repeats exactly, and DataLoader workers can tokenize any item independently.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from datasets import Dataset, DatasetDict
from gato.episodes.schema import CAPTIONS_SPLITS, TEXT_SPLITS, episode_from_arrow, episode_length, spec_from_dataset
from gato.processing.processing_gato import GatoProcessor
from gato.suite import token_layout
from gato.suite.task_spec import TaskSpec, spec_differences
from torch.utils.data import Dataset as TorchDataset

from .config import PROMPT_FRACTION, prompt_token_budget

SourceKind = str  # "episodes" | "captions" | "text"


@dataclass
class MixtureSource:
    """One dataset of the mixture.

    Args:
        name: its key in the ``DatasetDict`` (a task name, ``captions`` or ``text``); weights refer to it.
        kind: ``"episodes"``, ``"captions"`` or ``"text"``.
        dataset: the rows (Arrow-formatted for episodes, see :func:`split_sources`).
        spec: the task spec (episodes only).
        modality: what validation losses are grouped by: the task's domain, ``captions`` or ``text``.
    """

    name: str
    kind: SourceKind
    dataset: Dataset
    spec: TaskSpec | None = None
    modality: str = ""

    def __len__(self) -> int:
        return len(self.dataset)


@dataclass(frozen=True)
class ItemPlan:
    """What item ``i`` of the mixture is made of (all drawn from ``default_rng([seed, i])``)."""

    source: int
    row: int
    prompted: bool
    prompt_mode: str  # "end" | "uniform" | ""
    prompt_row: int
    position: float  # in [0, 1): where in the episode / text the sequence starts


def split_sources(data: DatasetDict, validation_fraction: float) -> tuple[list[MixtureSource], list[MixtureSource]]:
    """A ``gato data generate`` folder → (training sources, validation sources).

    Episode datasets keep their last ``validation_fraction`` of episodes (at least one, when there are two
    or more) for validation; captions and text use their ``*_validation`` splits. ``captions_test`` is
    evaluation's alone (``gato eval``): training neither learns from it nor validates on it.
    """
    train, validation = [], []
    specs: dict[
        str, tuple[str, TaskSpec]
    ] = {}  # task → (first split, spec): a task's splits (expert, DAgger) must agree
    held_out_names = {CAPTIONS_SPLITS[1], CAPTIONS_SPLITS[2], TEXT_SPLITS[1]}
    for name, dataset in data.items():
        if name in held_out_names:
            continue
        if name in (CAPTIONS_SPLITS[0], TEXT_SPLITS[0]):
            kind = "captions" if name == CAPTIONS_SPLITS[0] else "text"
            train.append(MixtureSource(name, kind, dataset, modality=kind))
            held_out_name = CAPTIONS_SPLITS[1] if kind == "captions" else TEXT_SPLITS[1]
            if held_out_name in data and len(data[held_out_name]) > 0:
                validation.append(MixtureSource(held_out_name, kind, data[held_out_name], modality=kind))
            continue
        spec = spec_from_dataset(dataset)
        first, first_spec = specs.setdefault(spec.name, (name, spec))
        differences = spec_differences(first_spec, spec)
        if differences:
            raise ValueError(
                f"data: splits {first!r} and {name!r} hold task {spec.name!r} with different specs: "
                + "; ".join(differences)
            )
        # Arrow rows decode episodes (frames included) straight from the memory map; numpy/python rows
        # go through nested lists, ~1000× slower for image episodes.
        dataset = dataset.with_format("arrow")
        modality = spec.domain or name
        count = len(dataset)
        held_out = (
            min(count - 1, max(1, int(round(count * validation_fraction))))
            if count > 1 and validation_fraction > 0
            else 0
        )
        train.append(MixtureSource(name, "episodes", dataset.select(range(count - held_out)), spec, modality))
        if held_out:
            validation.append(
                MixtureSource(name, "episodes", dataset.select(range(count - held_out, count)), spec, modality)
            )
    if not train:
        raise ValueError("data: the DatasetDict has no dataset to train on")
    return train, validation


def mixture_weights(
    sources: Sequence[MixtureSource], task_weights: Mapping[str, float], default_weight: float
) -> np.ndarray:
    """Normalised sampling probabilities; unknown names in ``task_weights`` are refused (a typo would be silent)."""
    names = {source.name for source in sources}
    unknown = sorted(set(task_weights) - names)
    if unknown:
        raise ValueError(f"task_weights: no dataset named {unknown}; datasets: {sorted(names)}")
    weights = np.array([float(task_weights.get(source.name, default_weight)) for source in sources])
    if weights.sum() <= 0:
        raise ValueError("task_weights: every dataset has weight 0")
    return weights / weights.sum()


class MixtureDataset(TorchDataset):
    """``length`` sequences drawn from ``sources`` by weight; item ``i`` depends only on ``(seed, i)``.

    Returns the processor's unpadded sequence dicts; batch them with ``processor.collate``.
    """

    def __init__(
        self,
        sources: Sequence[MixtureSource],
        processor: GatoProcessor,
        length: int,
        weights: np.ndarray | None = None,
        seed: int = 0,
        prompt_probability: float = token_layout.PROMPT_PROBABILITY,
        prompt_end_probability: float = token_layout.PROMPT_END_PROBABILITY,
        prompt_fraction: float = PROMPT_FRACTION,
    ) -> None:
        if not sources:
            raise ValueError("sources: expected at least one dataset")
        empty = [source.name for source in sources if len(source) == 0]
        if empty:
            raise ValueError(f"sources: datasets {empty} have no rows")
        self.sources = list(sources)
        self.processor = processor
        self.length = int(length)
        self.weights = (
            np.full(len(sources), 1.0 / len(sources)) if weights is None else np.asarray(weights, dtype=np.float64)
        )
        self.seed = int(seed)
        self.prompt_probability = prompt_probability
        self.prompt_end_probability = prompt_end_probability
        self.prompt_tokens = prompt_token_budget(processor.max_length, prompt_fraction)
        self._check_steps_fit()

    def _check_steps_fit(self) -> None:
        """Refuse up front a task whose time steps cannot fit the context (else a worker fails mid-run)."""
        for source, weight in zip(self.sources, self.weights):
            if source.kind != "episodes" or weight == 0:
                continue
            first = episode_from_arrow(source.dataset[0], source.spec, steps=slice(0, 1))
            step = int(self.processor.episode_step_lengths(first, source.spec)[0])
            if step > self.processor.max_length:
                raise ValueError(
                    f"max_length={self.processor.max_length}: task {source.name!r} has {step}-token time steps; "
                    f"raise max_length or leave the task out (--task-weights {source.name}=0)"
                )

    def __len__(self) -> int:
        return self.length

    def plan(self, index: int) -> ItemPlan:
        rng = np.random.default_rng([self.seed, index])
        source_index = int(rng.choice(len(self.sources), p=self.weights))
        source = self.sources[source_index]
        row = int(rng.integers(len(source)))
        prompted = source.kind == "episodes" and bool(rng.random() < self.prompt_probability)
        mode = ("end" if rng.random() < self.prompt_end_probability else "uniform") if prompted else ""
        prompt_row = int(rng.integers(len(source))) if prompted else -1
        return ItemPlan(source_index, row, prompted, mode, prompt_row, float(rng.random()))

    def __getitem__(self, index: int) -> dict[str, np.ndarray]:
        if not 0 <= index < self.length:
            raise IndexError(f"index {index} out of range for a mixture of {self.length} items")
        plan = self.plan(index)
        source = self.sources[plan.source]
        rng = np.random.default_rng([self.seed, index, 1])
        if source.kind == "captions":
            row = source.dataset[plan.row]
            return self.processor.tokenize_caption(row["image"], row["caption"])
        if source.kind == "text":
            chunks = self.processor.tokenize_text_chunks(source.dataset[plan.row]["text"])
            return chunks[int(plan.position * len(chunks))]
        return self._episode_sequence(source, plan, rng)

    def _episode_sequence(
        self, source: MixtureSource, plan: ItemPlan, rng: np.random.Generator
    ) -> dict[str, np.ndarray]:
        # Only the steps the item needs are read and their frames decoded (Atari frames are compressed one by one):
        # the first step to size the window, then the window itself.
        table = source.dataset[plan.row]
        prompt = None
        budget = self.processor.max_length
        first = episode_from_arrow(table, source.spec, steps=slice(0, 1))
        first_step = int(self.processor.episode_step_lengths(first, source.spec)[0])
        # A prompt needs room for one of its steps and one of the episode's; where a time step is too long
        # for that (e.g. 150-token BabyAI steps at a short context), the sequence goes unprompted.
        if plan.prompted and first_step <= min(self.prompt_tokens, budget - self.prompt_tokens):
            demonstration = episode_from_arrow(source.dataset[plan.prompt_row], source.spec)
            try:
                prompt = self.processor.make_prompt(
                    demonstration, source.spec, self.prompt_tokens, mode=plan.prompt_mode, rng=rng
                )
            except ValueError:  # this demonstration's steps are longer than the budget (variable-length text)
                prompt = None
            else:
                budget -= int(self.processor.episode_step_lengths(prompt, source.spec).sum())
        # Start so that the window is full where the episode allows (sequences cut on time-step boundaries).
        steps = episode_length(table)
        window = max(1, budget // max(1, first_step))
        start = int(plan.position * max(1, steps - window + 1))
        # Twice the estimated window leaves room for variable-length text observations; only the first chunk is kept.
        piece = episode_from_arrow(table, source.spec, steps=slice(start, min(steps, start + 2 * window)))
        return self.processor.tokenize_episode(piece, source.spec, prompt=prompt)[0]


class SequenceListDataset(TorchDataset):
    """A fixed list of sequences (validation sets are built once, up front)."""

    def __init__(self, sequences: list[dict[str, Any]]) -> None:
        self.sequences = sequences

    def __len__(self) -> int:
        return len(self.sequences)

    def __getitem__(self, index: int) -> dict[str, Any]:
        return self.sequences[index]


def validation_sets(
    sources: Sequence[MixtureSource], processor: GatoProcessor, count: int, seed: int = 0
) -> dict[str, SequenceListDataset]:
    """``count`` deterministic, unprompted sequences per modality (text, captions, each control domain)."""
    by_modality: dict[str, list[MixtureSource]] = {}
    for source in sources:
        by_modality.setdefault(source.modality, []).append(source)
    result = {}
    for modality, group in sorted(by_modality.items()):
        mixture = MixtureDataset(group, processor, length=count, seed=seed, prompt_probability=0.0)
        result[modality] = SequenceListDataset([mixture[i] for i in range(count)])
    return result
