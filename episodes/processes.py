"""Worker processes that end with their parent.

A ``ProcessPoolExecutor``'s workers outlive a parent killed with SIGKILL (each holds its environment and buffers,
~360 MB for Atari) and keep the output folder's lock. :func:`die_with_parent` is a pool ``initializer``: on Linux it
asks the kernel for SIGKILL when the parent dies (``prctl(PR_SET_PDEATHSIG)``); everywhere it also starts a daemon
thread that exits the worker once it has been re-parented (``os.getppid()`` changed), the portable fallback.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import signal
import sys
import threading
import time

PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
POLL_SECONDS = 0.5


def _ask_kernel_for_sigkill() -> bool:
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        return libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def die_with_parent(parent_pid: int) -> None:
    """Run in a freshly started worker: end it as soon as ``parent_pid`` is gone (see the module docstring)."""
    _ask_kernel_for_sigkill()
    if os.getppid() != parent_pid:  # the parent died before the request took effect
        os._exit(1)

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(POLL_SECONDS)
        os._exit(1)

    threading.Thread(target=watch, name="die-with-parent", daemon=True).start()
