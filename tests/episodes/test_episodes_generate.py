"""Generation: deterministic given a seed (whatever the workers), resumable after an interruption or a
kill without duplicating or losing episodes, captions and text when asked for."""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import datasets
import numpy as np
import pytest
from cartpole_task import make_cartpole_task
from gato.episodes.generate import PARTIAL_DIR, expected_seeds, generate
from gato.episodes.recorder import record_task_episode
from gato.episodes.schema import spec_from_dataset
from gato.episodes.writer import write_shard
from gato.suite.task_spec import ObservationField

TASKS = [
    make_cartpole_task("test_cart_a", max_episode_steps=20),
    make_cartpole_task("test_cart_b", max_episode_steps=20),
]


def _assert_same(left: datasets.DatasetDict, right: datasets.DatasetDict, names) -> None:
    for name in names:
        a, b = left[name].with_format("numpy"), right[name].with_format("numpy")
        assert len(a) == len(b)
        assert list(a["seed"]) == list(b["seed"])
        for i in range(len(a)):
            np.testing.assert_array_equal(a[i]["observations"]["state"], b[i]["observations"]["state"])
            np.testing.assert_array_equal(a[i]["actions"], b[i]["actions"])


def test_same_seed_same_data_whatever_the_workers(tmp_path):
    one, summaries = generate(TASKS, 5, tmp_path / "one", seed=3, chunk_episodes=2, progress=False)
    two, _ = generate(TASKS, 5, tmp_path / "two", seed=3, chunk_episodes=2, workers=2, progress=False)
    _assert_same(one, two, ["test_cart_a", "test_cart_b"])
    assert [s.episodes for s in summaries] == [5, 5]
    assert one["test_cart_a"]["seed"] == expected_seeds("test_cart_a", 3, 5)
    assert spec_from_dataset(datasets.load_from_disk(str(tmp_path / "one"))["test_cart_a"]).name == "test_cart_a"
    other, _ = generate(TASKS[:1], 5, tmp_path / "other", seed=4, chunk_episodes=2, progress=False)
    assert not np.array_equal(
        other["test_cart_a"].with_format("numpy")[0]["observations"]["state"],
        one["test_cart_a"].with_format("numpy")[0]["observations"]["state"],
    )


class _Interrupt(RuntimeError):
    pass


def _interrupting(task, budget: list[int]):
    """The task, but its expert raises once ``budget[0]`` episodes have started (a simulated crash)."""
    original = task.make_expert

    def make_expert(env):
        budget[0] -= 1
        if budget[0] < 0:
            raise _Interrupt("simulated crash")
        return original(env)

    return type(task)(**{**task.__dict__, "make_expert": make_expert})


def test_interrupted_generation_resumes_without_duplicates_or_losses(tmp_path):
    out = tmp_path / "out"
    budget = [7]  # task a: chunks [0,2) [2,4) [4,5) finish; task b: chunk [0,2) finishes, [2,4) crashes
    with pytest.raises(_Interrupt):
        generate([_interrupting(t, budget) for t in TASKS], 5, out, seed=0, chunk_episodes=2, progress=False)
    assert (out / "test_cart_a" / "state.json").exists() and not (out / "test_cart_b").exists()
    assert len(list((out / ".partial").glob("test_cart_b-*/chunk-*"))) == 1

    stale = [
        out / ".test_cart_b.tmp-99999",
        next((out / ".partial").glob("test_cart_b-*")) / ".chunk-000002-000004.tmp-99999",
    ]
    for folder in stale:  # what a run killed inside save_to_disk leaves behind
        folder.mkdir()
        (folder / "data-00000-of-00001.arrow").write_bytes(b"half")
    resumed, summaries = generate(TASKS, 5, out, seed=0, chunk_episodes=2, progress=False)
    assert [s.status for s in summaries] == ["skipped", "resumed"]
    assert not any(folder.exists() for folder in stale)
    clean, _ = generate(TASKS, 5, tmp_path / "clean", seed=0, chunk_episodes=2, progress=False)
    _assert_same(resumed, clean, ["test_cart_a", "test_cart_b"])
    assert not (out / ".partial").exists()
    assert sorted(datasets.load_from_disk(str(out))) == ["test_cart_a", "test_cart_b"]


KILL_SCRIPT = textwrap.dedent("""
    import sys, time
    sys.path.insert(0, {tests!r})
    from cartpole_task import make_cartpole_task, cartpole_heuristic
    from gato.episodes.generate import generate

    def slow(env):
        def policy(observation):
            time.sleep(0.01)
            return cartpole_heuristic(observation)
        return policy

    tasks = [make_cartpole_task(name, max_episode_steps=20) for name in ("test_cart_a", "test_cart_b")]
    for task in tasks:
        task.make_expert = slow
    generate(tasks, 6, {out!r}, seed=0, chunk_episodes=1, progress=False)
""")


@pytest.mark.slow  # a subprocess that imports gato: ~10–30 s on a busy 2-core machine
def test_killed_generation_resumes(tmp_path):
    """SIGKILL a real generation after the first task finished; the next run completes it exactly."""
    out = tmp_path / "out"
    script = KILL_SCRIPT.format(tests=str(Path(__file__).parent), out=str(out))
    process = subprocess.Popen([sys.executable, "-c", script], env={**os.environ, "HF_DATASETS_OFFLINE": "1"})
    deadline = time.monotonic() + 120
    while not (out / "test_cart_a" / "state.json").exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    assert (out / "test_cart_a" / "state.json").exists()
    assert not (out / "test_cart_b" / "state.json").exists()  # killed in the middle of the second task
    resumed, summaries = generate(TASKS, 6, out, seed=0, chunk_episodes=1, progress=False)
    for name in ("test_cart_a", "test_cart_b"):
        assert resumed[name]["seed"] == expected_seeds(name, 0, 6)  # each episode once, in order
    clean, _ = generate(TASKS, 6, tmp_path / "clean", seed=0, chunk_episodes=1, progress=False)
    _assert_same(resumed, clean, ["test_cart_a", "test_cart_b"])


def test_other_generation_in_the_folder_is_refused(tmp_path):
    generate(TASKS[:1], 2, tmp_path, seed=0, progress=False)
    with pytest.raises(ValueError, match="another generation"):
        generate(TASKS[:1], 3, tmp_path, seed=0, progress=False)
    _, summaries = generate(TASKS[:1], 3, tmp_path, seed=0, progress=False, overwrite=True)
    assert summaries[0].episodes == 3


def test_same_seeds_with_another_spec_are_refused_not_skipped(tmp_path):
    # A folder written before a task's encoding changed holds the same seeds; skipping it would keep stale tokens.
    generate(TASKS[:1], 2, tmp_path, seed=0, progress=False)
    old = TASKS[0]
    binned_directly = (ObservationField("state", "continuous", (4,), mu_law=False),)
    changed = dataclasses.replace(old, spec=dataclasses.replace(old.spec, observations=binned_directly))
    with pytest.raises(
        ValueError, match=r"another spec.*'state': continuous \(4,\), μ-law → continuous \(4,\), no μ-law"
    ):
        generate([changed], 2, tmp_path, seed=0, progress=False)
    dataset_dict, summaries = generate([changed], 2, tmp_path, seed=0, progress=False, overwrite=True)
    assert summaries[0].status == "generated" and spec_from_dataset(dataset_dict[old.name]) == changed.spec
    _, summaries = generate([changed], 2, tmp_path, seed=0, progress=False)
    assert summaries[0].status == "skipped"


def test_unfinished_chunks_of_another_spec_are_recorded_again_not_resumed(tmp_path):
    # A generation interrupted before a task's encoding changed leaves chunks in the old encoding; same features
    # (only μ-law differs), so concatenating them would silently mix encodings under one spec.
    old = TASKS[0]
    binned_directly = (ObservationField("state", "continuous", (4,), mu_law=False),)
    changed = dataclasses.replace(old, spec=dataclasses.replace(old.spec, observations=binned_directly))
    stale = tmp_path / PARTIAL_DIR / f"{old.name}-s0-c1" / "chunk-000000-000001"
    write_shard([record_task_episode(old, expected_seeds(old.name, 0, 2)[0])], old.spec, stale)
    dataset_dict, summaries = generate([changed], 2, tmp_path, seed=0, chunk_episodes=1, progress=False)
    assert summaries[0].status == "generated"  # not "resumed"
    assert spec_from_dataset(dataset_dict[old.name]) == changed.spec and list(
        dataset_dict[old.name]["seed"]
    ) == expected_seeds(old.name, 0, 2)


def test_captions_and_text_join_the_dataset_dict(tmp_path):
    from gato.episodes.text_corpus import CorpusSource

    dataset_dict, _ = generate(
        TASKS[:1],
        1,
        tmp_path,
        captions=20,
        text=True,
        progress=False,
        text_sources=(
            CorpusSource("gato-vocabulary", "gato_vocabulary"),
            CorpusSource("readmes", "package_readmes", ("tqdm", "rich")),
        ),
    )
    assert sorted(dataset_dict) == [
        "captions",
        "captions_test",
        "captions_validation",
        "test_cart_a",
        "text",
        "text_validation",
    ]
    assert len(dataset_dict["captions"]) == 20 and len(dataset_dict["captions_validation"]) == 2
    assert len(dataset_dict["captions_test"]) == 2
    test_card = (tmp_path / "captions_test" / "README.md").read_text()
    assert "`captions_test` scenes use only the training pairs" in test_card
    assert len(dataset_dict["text"]) > 0
    card = (tmp_path / "captions" / "README.md").read_text()
    assert "license: apache-2.0" in card and "image-to-text" in card and "red triangle" in card
    assert "## Schema" in (tmp_path / "test_cart_a" / "README.md").read_text()
