"""DAgger data: a trained model acts, the task's expert labels every state it reaches.

Imitation from expert episodes alone never shows the states a learner drifts into, nor the way out of them
(Ross et al. 2011): the CPU multi-task model picks up the first object it faces in BabyAI PickupLoc, a state
no expert episode contains, and then carries it to the step limit. One round of DAgger runs the model with
the expert's action executed instead at a rate ``expert_mix`` (β), records the expert's label for every state
(``task.make_labeler``, which plans from whatever state the episode is in) and writes the episodes beside the
expert data as the split ``<task>_dagger``; ``gato train`` then learns from both (its task weights name the
split, or its ``default_weight``). ``gato data generate --dagger-model RUN`` is the command (README, BENCHMARKS.md),
and a data plan's groups can ask for DAgger episodes per task (``dagger_episodes``, :mod:`gato.episodes.plan`:
``gato data generate --plan FILE --dagger-model RUN``). Later rounds (a model trained on the earlier rounds' splits
collects again, DAgger's aggregation) go into ``<task>_dagger<round>`` (``--dagger-round``), so every round's
episodes stay in the data folder beside the others. A split already there from the same generation (model folder,
expert mix, episodes, round, seed: its ``generation.json``) is skipped, so a round can be run again after an
interruption; one from another generation is refused unless ``overwrite``.

The data side knows nothing of models: whoever acts is injected as an :class:`ActorFactory` — a picklable object,
equal by value, that builds the actor of a task (an ``observation -> env action`` callable with a ``reset``). The
command builds it from the model folder (``gato.evaluation.run_evaluation.AgentFactory``: the agent prompted as
``gato eval`` prompts it, greedy); each process builds one actor per factory, task and seed and keeps it.

Deterministic: episode ``i`` of round ``r`` resets with ``episode_seed(seed, dagger_stream(task, r), i)`` (a
stream of its own, apart from the training, evaluation and prompt episodes and from the other rounds) and draws
its expert-or-model coin flips from a generator seeded by that seed; actions are greedy. With ``workers`` > 1
each worker process uses one torch thread.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from collections.abc import Hashable, Sequence
from concurrent.futures import as_completed
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from datasets import Dataset, load_from_disk
from gato.episodes.cards import EPISODE_TASK_CATEGORIES, build_card, write_card
from gato.episodes.generate import GENERATION_FILE, generate_command_line, worker_pool, write_index
from gato.episodes.manifest import verify_manifest
from gato.episodes.recorder import episode_seed, record_episode
from gato.episodes.writer import consolidate_shards, write_shard
from gato.suite.registry import Task, resolve_tasks
from tqdm.auto import tqdm

DAGGER_STREAM = "dagger/"
SPLIT_SUFFIX = "_dagger"
COIN_STREAM = 7  # seeds an episode's expert-or-model coin flips apart from everything else its seed seeds
DEFAULT_EXPERT_MIX = 0.5
SHARD_EPISODES = 8  # episodes a process keeps in memory before writing them, and the progress bar's step


def _round_suffix(dagger_round: int) -> str:
    if isinstance(dagger_round, bool) or not isinstance(dagger_round, int) or dagger_round < 1:
        raise ValueError(f"dagger_round (--dagger-round): expected an integer ≥ 1, got {dagger_round!r}")
    return "" if dagger_round == 1 else str(dagger_round)


def dagger_split(task_name: str, dagger_round: int = 1) -> str:
    """The DatasetDict split that holds a task's DAgger episodes of one round (``babyai_pickup_loc`` →
    ``babyai_pickup_loc_dagger`` for round 1, ``babyai_pickup_loc_dagger2`` for round 2)."""
    return task_name + SPLIT_SUFFIX + _round_suffix(dagger_round)


def dagger_stream(task_name: str, dagger_round: int = 1) -> str:
    """The seed stream of a task's DAgger episodes of one round: each round resets its own rooms and games."""
    return DAGGER_STREAM.rstrip("/") + _round_suffix(dagger_round) + "/" + task_name


class Actor(Protocol):
    """What acts in a DAgger episode: ``reset()`` at every episode start, then ``actor(observation)`` → the
    environment's action, once per step of one environment."""

    def reset(self) -> None: ...

    def __call__(self, observation: Any) -> Any: ...


class ActorFactory(Hashable, Protocol):
    """Builds the :class:`Actor` of a task. Picklable (worker processes receive it) and equal by value (each process
    keeps one actor per factory, task and seed instead of building one per shard).

    Attributes:
        name: what acts (the model folder), recorded in ``generation.json`` and the dataset card.
    """

    name: str

    def check(self, tasks: Sequence[Task]) -> None:
        """Refuse (``ValueError``) tasks the actor cannot act in, before any episode is recorded."""

    def __call__(self, task: Task, seed: int) -> Actor:
        """The actor of ``task`` for the generation seeded by ``seed``."""


def dagger_command_line(
    tasks: str,
    episodes_per_task: int,
    out: str | os.PathLike,
    model: str,
    *,
    expert_mix: float = DEFAULT_EXPERT_MIX,
    dagger_round: int = 1,
    seed: int = 0,
    workers: int = 1,
) -> str:
    """The hand-written ``gato data generate --dagger-model`` call of these settings, as a split's card records it
    (the command itself and a data plan's DAgger round record the same line for the same episodes)."""
    extra = ["--dagger-model", model, "--expert-mix", f"{expert_mix:g}"]
    extra += ["--dagger-round", str(dagger_round)] if dagger_round != 1 else []
    return generate_command_line(tasks, episodes_per_task, out, seed=seed, workers=workers, extra=extra)


def dagger_generation(seed: int, model: str, expert_mix: float, episodes: int, dagger_round: int) -> dict[str, Any]:
    """What a split's ``generation.json`` records: the settings that shaped its episodes."""
    return {
        "seed": seed,
        "dagger": {"model": model, "expert_mix": expert_mix, "episodes": episodes, "round": dagger_round},
    }


def finished_dagger_split(path: Path, generation: dict[str, Any], overwrite: bool = False) -> bool:
    """True when ``path`` (a ``<task>_dagger[R]`` split) holds exactly ``generation``'s episodes, False when it is
    absent (or ``overwrite``: it is recorded again). A split of another generation, a half-written one and one whose
    files changed since they were written are refused, naming the folder."""
    if not path.exists() or overwrite:
        return False
    try:
        stored = json.loads((path / GENERATION_FILE).read_text())
    except (OSError, ValueError):
        stored = None
    if stored == generation:
        verify_manifest(path)  # no manifest: the index was not rebuilt yet; write_index adds it
        if len(load_from_disk(str(path))) == generation["dagger"]["episodes"]:
            return True

    def describe(record: Any) -> str:
        if not isinstance(record, dict) or not isinstance(record.get("dagger"), dict):
            return "no readable generation.json"
        settings = {**record["dagger"], "seed": record.get("seed")}
        return ", ".join(
            f"{name} {settings.get(name)!r}" for name in ("model", "expert_mix", "episodes", "round", "seed")
        )

    raise ValueError(
        f"out: {path} exists and holds other DAgger episodes ({describe(stored)}; asked: {describe(generation)}); "
        "choose another --out or --dagger-round, or pass --overwrite (overwrite=True)"
    )


def check_dagger_task(task: Task) -> None:
    if task.make_labeler is None:
        raise ValueError(
            f"--tasks: {task.name!r} has no labeler for states its expert did not choose (Task.make_labeler); "
            "DAgger needs one"
        )


def record_dagger_episode(task: Task, actor: Actor, env: Any, seed: int, expert_mix: float) -> dict[str, Any]:
    """One episode: the actor acts (the labeler's action instead with probability ``expert_mix``), the labeler's
    action is recorded. The actor is asked at every step, so its context holds every observation."""
    coins = np.random.default_rng([seed, COIN_STREAM])
    actor.reset()

    def execute(expert_action: Any, observation: Any) -> Any:
        model_action = actor(observation)
        return expert_action if coins.random() < expert_mix else model_action

    return record_episode(
        env,
        None,
        task.spec,
        seed=seed,
        make_policy=task.make_labeler,
        to_episode_step=task.to_episode_step,
        from_env_action=task.from_env_action,
        max_steps=task.max_episode_steps,
        execute=execute,
    )


_ACTORS: dict[tuple[ActorFactory, str, int], tuple[Task, Actor, Any]] = {}


def _actor(make_actor: ActorFactory, task_name: str, seed: int) -> tuple[Task, Actor, Any]:
    """The task, actor and environment that a process records with, built once per process (loading a model for
    every 8-episode shard would cost more than the episodes of a small task)."""
    key = (make_actor, task_name, seed)
    if key not in _ACTORS:
        (task,) = resolve_tasks(task_name)
        _ACTORS[key] = (task, make_actor(task, seed), task.make_env(seed))
    return _ACTORS[key]


def _close_actors() -> None:
    while _ACTORS:
        _ACTORS.popitem()[1][2].close()


def _record_shard(
    make_actor: ActorFactory,
    task_name: str,
    dagger_round: int,
    seed: int,
    expert_mix: float,
    first: int,
    last: int,
    path: str,
    threads: int = 0,
) -> str:
    """Episodes ``first … last-1`` of one task into the shard ``path`` (a worker process sets ``threads``).
    Shards of SHARD_EPISODES episodes: an image task's episodes as Python rows take ~30× their array size."""
    if threads:
        torch.set_num_threads(threads)
    task, actor, env = _actor(make_actor, task_name, seed)
    episodes = [
        record_dagger_episode(
            task, actor, env, episode_seed(seed, dagger_stream(task.name, dagger_round), index), expert_mix
        )
        for index in range(first, last)
    ]
    write_shard(episodes, task.spec, path, start_index=first)
    return path


def _card(
    path: Path, task: Task, dagger_round: int, dataset: Dataset, model: str, expert_mix: float, seed: int, command: str
) -> None:
    details = (
        f"DAgger episodes of `{task.name}`, round {dagger_round} (`gato.episodes.dagger`): the model `{model}` acted greedily, the "
        f"expert's action was executed instead with probability {expert_mix:g}, and every recorded action is "
        f"the expert's label for the state reached (`Task.make_labeler`). Episode i was reset with "
        f"`episode_seed({seed}, '{dagger_stream(task.name, dagger_round)}', i)`. Returns are those of the mixed execution."
    )
    write_card(
        path,
        build_card(
            pretty_name=f"gato DAgger episodes: {task.name}",
            summary="One row per episode; per-step observations, actions (the expert's labels) and rewards (docs/DATA.md).",
            features=dataset.features,
            command=command,
            task_categories=EPISODE_TASK_CATEGORIES,
            tags=("gato", "generalist-agent", "imitation-learning", "dagger", task.domain),
            details=details,
            size_rows=len(dataset),
        ),
    )


def generate_dagger(
    make_actor: ActorFactory,
    tasks: str | Sequence[Task],
    episodes_per_task: int,
    out: str | os.PathLike,
    *,
    expert_mix: float = DEFAULT_EXPERT_MIX,
    dagger_round: int = 1,
    seed: int = 0,
    workers: int = 1,
    overwrite: bool = False,
    progress: bool = True,
    command: str | None = None,
) -> dict[str, Dataset]:
    """Record ``episodes_per_task`` DAgger episodes of each task, the actors of ``make_actor`` acting (for a model
    folder: ``gato.evaluation.run_evaluation.AgentFactory(folder)``), into ``out/<task>_dagger``
    (``out/<task>_dagger<round>`` for ``dagger_round`` ≥ 2) and rebuild ``out``'s DatasetDict index; returns
    ``{split: dataset}`` of the splits this call wrote.

    A split already there with the same generation (model, ``expert_mix``, episodes, round, seed) is skipped (not in
    the result), so an interrupted call can be run again; with ``overwrite`` every split is recorded again. Refuses
    tasks without a labeler, tasks the actor refuses (``make_actor.check``: a model trained on another spec of a
    task, as ``gato eval`` does) and a split of another generation unless ``overwrite`` (a split is written whole,
    through one rename, or not at all), all before any episode is recorded.
    """
    if episodes_per_task < 1 or workers < 1:
        raise ValueError(f"episodes_per_task and workers: expected ≥ 1, got {episodes_per_task} and {workers}")
    if not 0.0 <= expert_mix <= 1.0:
        raise ValueError(f"expert_mix: expected a probability in [0, 1], got {expert_mix}")
    _round_suffix(dagger_round)  # refuses a bad round before any work
    task_list = resolve_tasks(tasks) if isinstance(tasks, str) else list(tasks)
    for task in task_list:
        check_dagger_task(task)
    make_actor.check(task_list)
    model = make_actor.name
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    generation = dagger_generation(seed, model, expert_mix, episodes_per_task, dagger_round)
    finished = {
        task.name
        for task in task_list
        if finished_dagger_split(out / dagger_split(task.name, dagger_round), generation, overwrite)
    }
    command = command or dagger_command_line(
        ",".join(task.name for task in task_list),
        episodes_per_task,
        out,
        model,
        expert_mix=expert_mix,
        dagger_round=dagger_round,
        seed=seed,
        workers=workers,
    )
    written: dict[str, Dataset] = {}
    for task in task_list:
        if task.name in finished:
            continue
        split = dagger_split(task.name, dagger_round)
        for stale in out.glob(f".{split}.shards-*"):  # a killed run's shards never became data
            shutil.rmtree(stale, ignore_errors=True)
        shards = out / f".{split}.shards-{os.getpid()}"
        shared = (make_actor, task.name, dagger_round, seed, expert_mix)
        spans = [
            (first, min(first + SHARD_EPISODES, episodes_per_task), str(shards / f"{first:06d}"))
            for first in range(0, episodes_per_task, SHARD_EPISODES)
        ]
        with tqdm(
            total=episodes_per_task, desc=f"dagger {task.name}", unit="episode", disable=not progress, file=sys.stderr
        ) as bar:
            if workers == 1:
                try:
                    for first, last, path in spans:
                        _record_shard(*shared, first, last, path)
                        bar.update(last - first)
                finally:
                    _close_actors()
            else:
                with worker_pool(min(workers, len(spans))) as pool:
                    futures = {
                        pool.submit(_record_shard, *shared, first, last, path, threads=1): last - first
                        for first, last, path in spans
                    }
                    for future in as_completed(futures):
                        future.result()
                        bar.update(futures[future])
        paths = [path for _, _, path in spans]  # in episode order
        dataset = consolidate_shards(paths, out / split)
        shutil.rmtree(shards, ignore_errors=True)
        (out / split / GENERATION_FILE).write_text(json.dumps(generation) + "\n")
        _card(out / split, task, dagger_round, dataset, model, expert_mix, seed, command)
        written[split] = dataset
    write_index(out)
    return written


__all__ = [
    "Actor",
    "ActorFactory",
    "DEFAULT_EXPERT_MIX",
    "dagger_command_line",
    "dagger_generation",
    "dagger_split",
    "dagger_stream",
    "finished_dagger_split",
    "generate_dagger",
    "record_dagger_episode",
]
