"""Generate expert episode collections for built-in tasks: parallel, deterministic, resumable.

``generate(tasks, episodes_per_task, out)`` writes ``out`` so that ``datasets.load_from_disk(out)``
returns a ``DatasetDict`` keyed by task name (plus ``captions`` / ``captions_validation`` /
``captions_test`` and ``text`` / ``text_validation`` when asked for)::

    out/
      dataset_dict.json          # the DatasetDict index, rebuilt from the finished folders every run
      README.md                  # card of the whole collection
      cartpole/                  # one finished task: a save_to_disk folder + its README.md card
      .partial/cartpole-s0-c8/chunk-000000-000008/   # finished chunks of an unfinished task

Work is cut into chunks of ``chunk_episodes`` episodes of one task. A chunk builds its environment
once and records episodes ``start … stop-1``; episode ``i`` of task ``t`` is reset with
``episode_seed(seed, t, i)``, so the data depend only on ``seed`` (never on ``workers`` or on where a
previous run stopped). A chunk is written to a temporary folder and renamed into place; when all the
chunks of a task are there they are concatenated into ``out/<task>`` (again through one rename) and
the chunks are removed. A killed run therefore leaves only whole chunks and whole tasks behind, and
the next run skips finished tasks (checked against the stored episode seeds) and finished chunks:
nothing is duplicated and nothing is lost.
"""

from __future__ import annotations

import json
import math
import multiprocessing
import os
import shlex
import shutil
import sys
from collections.abc import Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from datasets import Dataset, DatasetDict, load_from_disk
from gato.suite.registry import Task, get_task, resolve_tasks
from gato.suite.task_spec import spec_differences
from tqdm.auto import tqdm

from .captions import HELD_OUT_PAIRS, build_captions_dataset
from .cards import CAPTION_TASK_CATEGORIES, EPISODE_TASK_CATEGORIES, TEXT_TASK_CATEGORIES, build_card, write_card
from .folder_lock import FolderLock
from .manifest import MANIFEST_FILE, verify_manifest, write_manifest
from .processes import die_with_parent
from .recorder import check_action_noise, episode_seed, record_task_episode
from .schema import CAPTIONS_SPLITS, TEXT_SPLITS, episode_features, spec_from_dataset
from .writer import _save_atomically, consolidate_shards, write_shard

DEFAULT_CHUNK_EPISODES = 8
PARTIAL_DIR = ".partial"

# Tasks handed to worker processes: forked workers inherit this mapping, so tasks that are not in the
# registry (a user's own, or a test's) work too; spawned workers fall back to the registry by name.
_WORKER_TASKS: dict[str, Task] = {}


GENERATION_FILE = "generation.json"  # in each task folder: the settings besides seed/count that shaped it


@dataclass(frozen=True)
class _Chunk:
    task: str
    seed: int
    start: int
    stop: int
    path: str
    noise: float = 0.0


@dataclass
class TaskSummary:
    """One row of the generation table."""

    task: str
    domain: str
    episodes: int
    steps: int
    mean_return: float
    expert_return: float
    random_return: float
    status: str  # "generated", "resumed" (some chunks were already there) or "skipped" (finished before)


def generate_command_line(
    tasks: str,
    episodes_per_task: int,
    out: str | os.PathLike,
    *,
    seed: int = 0,
    workers: int = 1,
    captions: int = 0,
    text: bool = False,
    action_noise: float = 0.0,
    extra: Sequence[str] = (),
) -> str:
    """The ``gato data generate`` command line of these settings (recorded in each dataset card's Reproduce block):
    the one builder used by the command itself and by data plans (:mod:`gato.episodes.plan`), so that a plan's call
    records what the hand-written call would."""
    parts = ["--tasks", tasks, "--episodes-per-task", str(episodes_per_task), "--out", str(out)]
    parts += ["--seed", str(seed), "--workers", str(workers)]
    parts += ["--captions", str(captions)] if captions else []
    parts += ["--text"] if text else []
    parts += ["--action-noise", f"{action_noise:g}"] if action_noise else []
    return "gato data generate " + " ".join(shlex.quote(part) for part in [*parts, *extra])


def expected_seeds(task_name: str, seed: int, episodes: int) -> list[int]:
    """The ``env.reset`` seeds of episodes ``0 … episodes-1`` (what a finished task's ``seed`` column holds)."""
    return [episode_seed(seed, task_name, index) for index in range(episodes)]


def _record_chunk(chunk: _Chunk) -> tuple[str, int]:
    """Worker: record one chunk and write it as a shard; returns (task, episodes written).

    Episodes are streamed into the shard: each is validated (and its frames compressed) as soon as it is recorded,
    so a worker holds one raw episode at a time whatever the chunk size or the episode count."""
    task = _WORKER_TASKS.get(chunk.task) or get_task(chunk.task)
    env = task.make_env(episode_seed(chunk.seed, f"{task.name}/env", chunk.start))
    try:
        episodes = (
            record_task_episode(task, episode_seed(chunk.seed, task.name, index), env=env, noise=chunk.noise)
            for index in range(chunk.start, chunk.stop)
        )
        write_shard(episodes, task.spec, chunk.path, start_index=chunk.start)
    finally:
        env.close()
    return chunk.task, chunk.stop - chunk.start


def stored_action_noise(path: Path) -> float:
    """The action noise a finished task folder was recorded with (0 for folders older than the setting)."""
    generation = path / GENERATION_FILE
    return float(json.loads(generation.read_text()).get("action_noise", 0.0)) if generation.exists() else 0.0


def _finished_task(path: Path, task: Task, seed: int, episodes: int, overwrite: bool, noise: float = 0.0) -> bool:
    """True when ``path`` holds exactly this generation of ``task``; False when it is absent."""
    if not (path / "state.json").exists():
        return False
    try:
        verify_manifest(path)
    except ValueError:
        if not overwrite:
            raise
        shutil.rmtree(path)
        return False
    stored = load_from_disk(str(path))
    # Same seeds are not the same data when the task's encoding changed since (e.g. BabyAI's grid, 147 values → 49).
    encoding = spec_differences(spec_from_dataset(stored), task.spec)
    if (
        not encoding
        and list(stored["seed"]) == expected_seeds(task.name, seed, episodes)
        and stored_action_noise(path) == noise
    ):
        return True
    if overwrite:
        shutil.rmtree(path)
        return False
    if encoding:
        raise ValueError(
            f"{path}: holds {task.name!r} episodes recorded with another spec than this version's (stored → now: "
            + "; ".join(encoding)
            + "); choose another --out or pass --overwrite (overwrite=True) to record them again"
        )
    raise ValueError(
        f"{path}: holds {len(stored)} episodes of {task.name!r} from another generation (seed, episode count or "
        f"action noise {stored_action_noise(path)} differ from seed={seed}, episodes_per_task={episodes}, "
        f"action_noise={noise}); choose another --out or pass --overwrite (overwrite=True)"
    )


def _drop_chunks_of_another_spec(partial: Path, task: Task) -> None:
    """Remove a task's unfinished chunks when any was recorded with another spec or storage (an older version's
    encoding, raw frames before compression): resuming would mix them in one dataset, and chunks are only a cache of work."""
    finished = [path for path in partial.glob("chunk-*") if (path / "state.json").exists()] if partial.is_dir() else []
    features = episode_features(task.spec)
    stored = [load_from_disk(str(path)) for path in finished]
    if any(spec_differences(spec_from_dataset(chunk), task.spec) or chunk.features != features for chunk in stored):
        shutil.rmtree(partial)


def _summary(task: Task, dataset: Dataset, status: str) -> TaskSummary:
    returns = np.asarray(dataset["episode_return"], dtype=np.float64)
    return TaskSummary(
        task.name,
        task.domain,
        len(dataset),
        int(np.sum(dataset["num_steps"])),
        float(returns.mean()) if len(returns) else math.nan,
        task.expert_return,
        task.random_return,
        status,
    )


def _task_card(path: Path, task: Task, dataset: Dataset, seed: int, command: str, noise: float = 0.0) -> None:
    summary = _summary(task, dataset, "")
    noise_note = ""
    if noise:
        choices = task.extra.get("noise_actions")
        among = "" if choices is None else f" (drawn from actions {', '.join(map(str, choices))})"
        how = (
            f"Gaussian noise of standard deviation {noise} (in the spec's action units, clipped)"
            if task.spec.action.kind == "continuous"
            else f"a uniformly random action{among} with probability {noise}"
        )
        noise_note = (
            f" The environment executed the expert's action with {how}, while the recorded action is the "
            "expert's own (DART-style noise injection): returns are those of the noisy execution."
        )
    details = (
        f"Expert episodes of the built-in task `{task.name}` (domain `{task.domain}`), recorded with the suite's "
        f"expert policy: {summary.episodes} episodes, {summary.steps} steps, mean return {summary.mean_return:.2f} "
        f"(expert reference {task.expert_return:.2f}, random {task.random_return:.2f}). Episode `i` is reset with "
        f"`gato.episodes.episode_seed({seed}, {task.name!r}, i)`; horizon {task.max_episode_steps} steps. "
        "The task's spec (observation fields and action) is stored as JSON in `info.description` and read back "
        "with `gato.episodes.spec_from_dataset`." + noise_note
    )
    atari = (
        "\n\nFrames are rendered from Atari 2600 ROMs shipped with `ale-py`; see their license."
        if task.domain == "atari"
        else ""
    )
    write_card(
        path,
        build_card(
            pretty_name=f"gato episodes: {task.name}",
            summary="One row per episode; per-step observations, actions and rewards (docs/DATA.md).",
            features=dataset.features,
            command=command,
            task_categories=EPISODE_TASK_CATEGORIES,
            tags=("gato", "generalist-agent", "imitation-learning", task.domain),
            details=details + atari,
            size_rows=len(dataset),
        ),
    )


def write_index(out: Path) -> DatasetDict:
    """Rebuild ``dataset_dict.json`` from the finished dataset folders in ``out`` (atomically), and the manifests
    that cover it: the collection's own, and one for each split folder written without (e.g. DAgger splits)."""
    splits = sorted(
        p.name for p in out.iterdir() if p.is_dir() and not p.name.startswith(".") and (p / "state.json").exists()
    )
    tmp = out / ".dataset_dict.json.tmp"
    tmp.write_text(json.dumps({"splits": splits}))
    os.replace(tmp, out / "dataset_dict.json")
    for split in splits:
        if not (out / split / MANIFEST_FILE).exists():
            write_manifest(out / split)
    write_manifest(out, recursive=False)
    return load_from_disk(str(out))


def _generate_captions(out: Path, count: int, seed: int, command: str) -> None:
    paths = [out / name for name in CAPTIONS_SPLITS]
    expected = (count, max(1, count // 10), max(1, count // 10))
    if all((p / "state.json").exists() for p in paths):
        for path in paths:
            verify_manifest(path)  # a damaged split is named, never silently kept or rewritten
        if tuple(len(load_from_disk(str(p))) for p in paths) == expected:
            return
    splits = build_captions_dataset(num_train=expected[0], num_validation=expected[1], num_test=expected[2], seed=seed)
    held_out = ", ".join(f"{colour} {shape}" for colour, shape in HELD_OUT_PAIRS)
    for path, split in zip(paths, ("train", "validation", "test")):
        _save_atomically(splits[split], path)
        write_card(
            path,
            build_card(
                pretty_name=f"gato captions ({split})",
                summary="Rendered 64×64 scenes of 1–3 coloured shapes with truthful captions and the structured scene.",
                features=splits[split].features,
                command=command,
                task_categories=CAPTION_TASK_CATEGORIES,
                details=(
                    f"Generated by `gato.episodes.captions.build_captions_dataset` with seed {seed}. Objects sit in "
                    f"distinct cells of a 3×3 grid. The colour×shape pairs {held_out} never occur in `captions` "
                    "(train); every `captions_validation` scene contains one. `captions_test` scenes use only "
                    "the training pairs, and none has a caption that occurs in `captions`."
                ),
                size_rows=len(splits[split]),
            ),
        )
        write_manifest(path)


def _generate_text(out: Path, command: str, text_sources: Any = None) -> None:
    paths = [out / name for name in TEXT_SPLITS]
    if all((p / "state.json").exists() for p in paths):
        for path in paths:
            verify_manifest(path)
        return
    try:
        from .text_corpus import DEFAULT_SOURCES, build_text_dataset, split_text_dataset
    except ImportError as error:  # the corpus module is optional for everything else
        raise ValueError(f"--text: the text corpus (gato.episodes.text_corpus) is not available: {error}") from error
    splits = split_text_dataset(build_text_dataset(text_sources if text_sources is not None else DEFAULT_SOURCES))
    if len(splits["validation"]) == 0 and len(splits["train"]) > 1:
        # A tiny corpus may hash nothing into validation, and datasets cannot load a saved empty dataset back:
        # the last training document becomes the validation split.
        last = len(splits["train"]) - 1
        splits["validation"], splits["train"] = splits["train"].select([last]), splits["train"].select(range(last))
    for path, split in zip(paths, ("train", "validation")):
        _save_atomically(splits[split], path)
        write_card(
            path,
            build_card(
                pretty_name=f"gato text corpus ({split})",
                summary="English prose that ships inside installed packages (docstrings, READMEs) plus the project's vocabulary.",
                features=splits[split].features,
                command=command,
                task_categories=TEXT_TASK_CATEGORIES,
                license="other",
                details=(
                    "Built offline by `gato.episodes.text_corpus.build_text_dataset`; each document keeps its "
                    "`source`. The text comes under the licenses of the packages it was read from (PSF, BSD, "
                    "Apache-2.0, MIT, …); documents are split by a hash of their text."
                ),
                size_rows=len(splits[split]),
            ),
        )
        write_manifest(path)


def _remove_stale_temporaries(out: Path) -> None:
    """Delete half-written folders a killed run left (``.<name>.tmp-<pid>``); they never became data."""
    for stale in [*out.glob(".*.tmp-*"), *out.glob(f"{PARTIAL_DIR}/*/.*.tmp-*")]:
        shutil.rmtree(stale, ignore_errors=True)


def worker_pool(workers: int) -> ProcessPoolExecutor:
    """A process pool whose workers see the tasks registered at run time (users', tests'): fork where available.
    The workers end when this process dies, even by SIGKILL (:func:`gato.episodes.processes.die_with_parent`)."""
    method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
    return ProcessPoolExecutor(
        max_workers=workers,
        mp_context=multiprocessing.get_context(method),
        initializer=die_with_parent,
        initargs=(os.getpid(),),
    )


def generate(
    tasks: str | Sequence[Task],
    episodes_per_task: int,
    out: str | os.PathLike,
    *,
    seed: int = 0,
    workers: int = 1,
    captions: int = 0,
    text: bool = False,
    chunk_episodes: int = DEFAULT_CHUNK_EPISODES,
    overwrite: bool = False,
    progress: bool = True,
    command: str | None = None,
    text_sources: Any = None,
    action_noise: float = 0.0,
) -> tuple[DatasetDict, list[TaskSummary]]:
    """Generate (or resume) expert episodes of ``tasks`` into ``out``; see the module docstring.

    Args:
        tasks: a suite (``"default"``, ``"full"``), domain or comma-separated task names, or Task objects.
        episodes_per_task: episodes recorded per task.
        seed: the collection's seed; episode ``i`` of task ``t`` uses ``episode_seed(seed, t, i)``.
        workers: processes recording chunks in parallel (1: in this process).
        captions: also write ``captions`` (this many scenes), ``captions_validation`` (a tenth, each with a
            held-out colour×shape pair) and ``captions_test`` (a tenth, new scenes of seen pairs).
        text: also write ``text`` / ``text_validation`` from the offline corpus.
        overwrite: regenerate tasks whose folder holds another generation (else that is an error).
        action_noise: execute the expert's actions with noise while recording the expert's own
            (``gato.episodes.recorder.action_noise``: Gaussian std for continuous actions, the probability of a
            random action for discrete ones); 0 = clean expert episodes.
        command: the command line recorded in the dataset cards (default: :func:`generate_command_line` of these
            settings, what ``gato data generate`` itself records).

    Returns:
        The ``DatasetDict`` of every finished folder in ``out`` and one :class:`TaskSummary` per task.
    """
    if episodes_per_task < 1:
        raise ValueError(f"episodes_per_task: expected ≥ 1, got {episodes_per_task}")
    for name, value in (("workers", workers), ("chunk_episodes", chunk_episodes)):
        if value < 1:
            raise ValueError(f"{name}: expected ≥ 1, got {value}")
    task_list = resolve_tasks(tasks) if isinstance(tasks, str) else list(tasks)
    for task in task_list:  # before any work: a bad value would otherwise fail inside a worker
        check_action_noise(task.spec, action_noise)
    command = command or generate_command_line(
        tasks if isinstance(tasks, str) else ",".join(task.name for task in task_list),
        episodes_per_task,
        out,
        seed=seed,
        workers=workers,
        captions=captions,
        text=text,
        action_noise=action_noise,
    )
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"out: {out} is a file; expected a folder to write the DatasetDict into")
    with FolderLock(out, "gato data generate"):  # one writer per folder; a killed run's lock dies with it
        return _generate_locked(
            task_list,
            episodes_per_task,
            out,
            seed=seed,
            workers=workers,
            captions=captions,
            text=text,
            chunk_episodes=chunk_episodes,
            overwrite=overwrite,
            progress=progress,
            command=command,
            text_sources=text_sources,
            action_noise=action_noise,
        )


def _generate_locked(
    task_list: list[Task],
    episodes_per_task: int,
    out: Path,
    *,
    seed: int,
    workers: int,
    captions: int,
    text: bool,
    chunk_episodes: int,
    overwrite: bool,
    progress: bool,
    command: str,
    text_sources: Any,
    action_noise: float,
) -> tuple[DatasetDict, list[TaskSummary]]:
    _remove_stale_temporaries(out)  # safe only under the lock: another run's temporaries would be in use

    status: dict[str, str] = {}
    pending: dict[str, list[_Chunk]] = {}
    for task in task_list:
        _WORKER_TASKS[task.name] = task
        if _finished_task(out / task.name, task, seed, episodes_per_task, overwrite, action_noise):
            status[task.name] = "skipped"
            continue
        noise_tag = f"-n{action_noise:g}" if action_noise else ""
        partial = out / PARTIAL_DIR / f"{task.name}-s{seed}-c{chunk_episodes}{noise_tag}"
        chunks = [
            _Chunk(
                task.name,
                seed,
                start,
                min(start + chunk_episodes, episodes_per_task),
                str(partial / f"chunk-{start:06d}-{min(start + chunk_episodes, episodes_per_task):06d}"),
                action_noise,
            )
            for start in range(0, episodes_per_task, chunk_episodes)
        ]
        pending[task.name] = chunks
        _drop_chunks_of_another_spec(partial, task)
        done_before = [c for c in chunks if (Path(c.path) / "state.json").exists()]
        status[task.name] = "resumed" if done_before else "generated"

    todo = [c for chunks in pending.values() for c in chunks if not (Path(c.path) / "state.json").exists()]
    remaining = {name: sum(1 for c in todo if c.task == name) for name in pending}
    by_name = {task.name: task for task in task_list}
    bar = tqdm(
        total=sum(c.stop - c.start for c in todo), desc="episodes", unit="ep", disable=not progress, file=sys.stderr
    )

    def chunk_done(name: str, count: int) -> None:
        bar.update(count)
        remaining[name] -= 1
        if remaining[name] == 0:
            _finish_task(by_name[name], pending[name], out, seed, command, action_noise)

    for name in [n for n, left in remaining.items() if left == 0]:  # all chunks were already on disk
        _finish_task(by_name[name], pending[name], out, seed, command, action_noise)
    try:
        if workers == 1:
            for chunk in todo:
                chunk_done(*_record_chunk(chunk))
        elif todo:
            with worker_pool(workers) as pool:
                futures: set[Future] = {pool.submit(_record_chunk, chunk) for chunk in todo}
                try:
                    while futures:
                        finished, futures = wait(futures, return_when=FIRST_COMPLETED)
                        for future in finished:
                            chunk_done(*future.result())
                except BaseException:
                    for future in futures:  # a failed chunk stops the run; finished chunks stay on disk
                        future.cancel()
                    raise
    finally:
        bar.close()

    if captions:
        _generate_captions(out, captions, seed, command)
    if text:
        _generate_text(out, command, text_sources)
    dataset_dict = write_index(out)
    summaries = [_summary(task, dataset_dict[task.name], status[task.name]) for task in task_list]
    _collection_card(out, dataset_dict, summaries, command)
    write_manifest(out, recursive=False)  # the index and the card; each split folder has its own manifest
    return dataset_dict, summaries


def _finish_task(task: Task, chunks: list[_Chunk], out: Path, seed: int, command: str, noise: float = 0.0) -> None:
    dataset = consolidate_shards([chunk.path for chunk in chunks], out / task.name)
    (out / task.name / GENERATION_FILE).write_text(json.dumps({"seed": seed, "action_noise": noise}) + "\n")
    _task_card(out / task.name, task, dataset, seed, command, noise)
    write_manifest(out / task.name)
    shutil.rmtree(Path(chunks[0].path).parent, ignore_errors=True)
    partial_root = out / PARTIAL_DIR
    if partial_root.exists() and not any(partial_root.iterdir()):
        partial_root.rmdir()


def summary_table(summaries: Sequence[TaskSummary]) -> str:
    """The generation table as aligned text: task, domain, episodes, steps, mean returns, status."""
    header = ("task", "domain", "episodes", "steps", "data return", "expert", "random", "status")
    rows = [
        (
            s.task,
            s.domain,
            str(s.episodes),
            str(s.steps),
            f"{s.mean_return:.2f}",
            f"{s.expert_return:.2f}",
            f"{s.random_return:.2f}",
            s.status,
        )
        for s in summaries
    ]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    numeric = {2, 3, 4, 5, 6}
    lines = [
        "  ".join(
            cell.rjust(w) if i in numeric else cell.ljust(w) for i, (cell, w) in enumerate(zip(row, widths))
        ).rstrip()
        for row in [header, *rows]
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _collection_card(out: Path, dataset_dict: DatasetDict, summaries: Sequence[TaskSummary], command: str) -> None:
    from datasets import Features, Value

    splits = "\n".join(f"- `{name}`: {len(dataset)} rows" for name, dataset in dataset_dict.items())
    card = build_card(
        pretty_name="gato training data",
        summary=(
            "A `DatasetDict` keyed by task name (one row per expert episode), plus the captioning set and the "
            "text corpus when generated. Each task's folder has its own card with its schema.\n\n" + splits
        ),
        features=Features({"<task>": Value("string")}) if not summaries else dataset_dict[summaries[0].task].features,
        command=command,
        task_categories=EPISODE_TASK_CATEGORIES,
        details="```\n" + summary_table(summaries) + "\n```" if summaries else "",
        size_rows=sum(len(d) for d in dataset_dict.values()),
    )
    write_card(out, card)
