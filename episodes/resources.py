"""Peak memory of this process and its workers, for stage summaries and benchmarks.

``resource.getrusage``'s ``ru_maxrss`` is the high-water mark of resident memory since the process started (for
``RUSAGE_CHILDREN``: of the largest child that has been waited for, e.g. a finished pool worker, not their sum).
It never goes down, so a summary printed after each stage shows the peak *so far*.
"""

from __future__ import annotations

import resource
import sys

# ru_maxrss is in kilobytes on Linux, in bytes on macOS.
_RU_MAXRSS_UNIT = 1 if sys.platform == "darwin" else 1024


def peak_rss_bytes(children: bool = False) -> int:
    """Peak resident set size in bytes: of this process, or (``children=True``) of its largest finished child."""
    who = resource.RUSAGE_CHILDREN if children else resource.RUSAGE_SELF
    return int(resource.getrusage(who).ru_maxrss) * _RU_MAXRSS_UNIT


def peak_rss_summary() -> str:
    """``"peak RSS 1.23 GB (largest worker 0.45 GB)"``: a cell for a stage summary (GB = 10⁹ bytes)."""
    own, child = peak_rss_bytes(), peak_rss_bytes(children=True)
    return f"peak RSS {own / 1e9:.2f} GB" + (f" (largest worker {child / 1e9:.2f} GB)" if child else "")
