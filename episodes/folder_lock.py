"""One writer per output folder: an exclusive lock that the kernel drops when its holder dies.

``with FolderLock(out, "gato data generate"):`` takes an ``flock`` on ``out/.gato.lock`` without waiting; a second
writer is refused at once with :class:`FolderInUseError` naming the folder and the holder's pid. The lock belongs
to the open file, not to the file's existence, so a killed run (SIGKILL, power loss) never leaves it stuck: the
next run takes it even though ``.gato.lock`` is still there. Forked worker processes share the open file, so the
folder stays locked until they are gone too (they end with their parent, :mod:`gato.episodes.processes`).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from types import TracebackType

try:  # POSIX; on other systems the folder is not locked (gato's machines are Linux)
    import fcntl
except ImportError:  # pragma: no cover - exercised on Windows only
    fcntl = None

LOCK_FILE = ".gato.lock"

logger = logging.getLogger(__name__)


class FolderInUseError(ValueError):
    """Another live process holds the folder's lock (a ValueError: the commands report it as one clear line)."""


class FolderLock:
    """An exclusive, non-blocking lock on ``folder`` (created if needed) for the life of a ``with`` block."""

    def __init__(self, folder: str | os.PathLike, what: str = "gato") -> None:
        self.folder = Path(folder)
        self.what = what
        self.path = self.folder / LOCK_FILE
        self._fd: int | None = None

    def acquire(self) -> "FolderLock":
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)  # no O_TRUNC: the holder's pid stays readable
        except OSError as error:
            raise ValueError(
                f"{self.folder}: cannot write into it ({error.strerror}); expected a folder this user "
                "can create files in"
            ) from None
        if fcntl is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:  # held by a live process (EWOULDBLOCK)
                holder = os.pread(fd, 200, 0).decode(errors="replace").strip() or "another process"
                os.close(fd)
                raise FolderInUseError(
                    f"{self.folder}: in use by {holder}; two writers would overwrite each other's data. "
                    "Wait for it to finish (or stop it), or choose another output folder"
                ) from None
            except OSError as error:  # a file system without locks (some network mounts): write, but say so
                logger.warning(
                    "%s: cannot be locked (%s); a second writer into it would not be refused", self.folder, error
                )
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{self.what} (pid {os.getpid()})\n".encode(), 0)
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            os.ftruncate(self._fd, 0)
            os.close(self._fd)  # closing drops the flock (once forked children holding it are gone too)
            self._fd = None

    def __enter__(self) -> "FolderLock":
        return self.acquire()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()
