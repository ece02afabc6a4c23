"""One writer per output folder, workers that die with their parent, and a lock a killed run does not leave stuck:
real `gato data generate` processes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import psutil
import pytest
from gato.episodes.folder_lock import LOCK_FILE, FolderInUseError, FolderLock

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="flock and prctl are Linux facilities")


def _gato(*args: str) -> list[str]:
    return [sys.executable, "-m", "gato.cli", "data", "generate", *args, "--no-progress"]


def _wait_for(condition, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {seconds} s waiting for {what}")
        time.sleep(0.1)


def test_lock_refuses_a_second_holder_and_is_free_again_after_release(tmp_path):
    with FolderLock(tmp_path, "first"):
        assert f"first (pid {os.getpid()})" in (tmp_path / LOCK_FILE).read_text()
        # flock is per open file: a second open in the same process conflicts just as another process would.
        with pytest.raises(FolderInUseError, match=rf"{tmp_path}: in use by first \(pid {os.getpid()}\)"):
            FolderLock(tmp_path, "second").acquire()
    with FolderLock(tmp_path, "third"):  # released: taken again at once
        pass


def test_a_folder_that_cannot_be_written_is_one_clear_error(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(ValueError, match=rf"{tmp_path / 'file' / 'out'}: cannot write into it"):
        FolderLock(tmp_path / "file" / "out").acquire()  # a file where a folder is expected on the way


@pytest.mark.slow  # three `gato` processes (~10 s of imports each on a busy 2-core machine)
def test_second_writer_is_refused_and_a_killed_writer_takes_its_workers_and_lock_with_it(tmp_path):
    out = tmp_path / "data"
    env = {**os.environ, "HF_DATASETS_OFFLINE": "1", "HF_HUB_OFFLINE": "1"}
    first = subprocess.Popen(
        _gato("--tasks", "atari_breakout", "--episodes-per-task", "200", "--workers", "2", "--out", str(out)),
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    parent = psutil.Process(first.pid)
    try:
        _wait_for(lambda: len(parent.children()) >= 2 or first.poll() is not None, 120, "the two workers")
        assert first.poll() is None, first.stderr.read().decode()
        assert f"(pid {first.pid})" in (out / LOCK_FILE).read_text()

        second = subprocess.run(
            _gato("--tasks", "acrobot", "--episodes-per-task", "2", "--seed", "1", "--out", str(out)),
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert second.returncode == 2
        assert f"{out}: in use by gato data generate (pid {first.pid})" in second.stderr
        assert "Traceback" not in second.stderr
        # Refused before generating: nothing written (a wall-clock bound here failed under load, 60.4 and 64 s, while
        # the two workers of the first run held both cores; it measured the machine, not the refusal).
        assert not (out / "acrobot").exists() and not (out / "atari_breakout").exists()

        workers = parent.children()
        os.kill(first.pid, signal.SIGKILL)
        first.wait()
        gone, alive = psutil.wait_procs(workers, timeout=5)
        assert not alive, f"workers {[p.pid for p in alive]} outlived their killed parent"
    finally:
        for process in [*workers, parent] if "workers" in locals() else [parent]:
            if process.is_running():
                process.kill()
        first.wait()

    # The killed run's lock is not stuck: the next run takes the folder and finishes.
    third = subprocess.run(
        _gato("--tasks", "acrobot", "--episodes-per-task", "2", "--out", str(out)),
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert third.returncode == 0, third.stderr
    assert (out / "acrobot" / "state.json").exists()
    assert (out / LOCK_FILE).read_text() == ""  # released on a normal exit
