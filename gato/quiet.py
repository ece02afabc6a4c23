"""Quiet by default: the library lines that every ``gato`` command would print and that say nothing to act on.

- DeepSpeed's accelerator banner ("Setting accelerator to CPU …", and its INFO/WARNING lines) on every command
  and every rank: DeepSpeed is imported by accelerate whether or not the run uses it;
- accelerate's "Removed shared tensor {'lm_head.weight'} while saving" at every checkpoint: Gato ties its output
  layer to the embedding on purpose, and the line breaks the progress bar;
- transformers' "Loading weights" and "Writing model shards" bars at every load and save (a few milliseconds for
  these models; they ignored `--no-progress`);
- the environments' banners: the Arcade Learning Environment's "A.L.E: … [Powered by Stella]" in every process
  that makes an Atari game (data workers inherit the setting), Meta-World's scripted policies' "Constant(s) may be
  too high" warning.

Errors still show. ``--verbose`` (every command has it) keeps them all.
"""

from __future__ import annotations

import importlib.util
import logging
import warnings


class _DropRecords(logging.Filter):
    def __init__(self, below: int = logging.NOTSET, containing: str | None = None) -> None:
        super().__init__()
        self.below, self.containing = below, containing

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < self.below:
            return False
        return self.containing is None or self.containing not in record.getMessage()


# Logger name → the filter that quiets it (module-level objects: adding one twice is a no-op).
_FILTERS = {
    "DeepSpeed": _DropRecords(below=logging.ERROR),
    "accelerate.utils.other": _DropRecords(containing="Removed shared tensor"),
}


def quiet_libraries(verbose: bool = False) -> None:
    """Silence the lines above for this process (``verbose``: lift the filters again)."""
    for name, record_filter in _FILTERS.items():
        logger = logging.getLogger(name)
        if verbose:
            logger.removeFilter(record_filter)
        else:
            logger.addFilter(record_filter)
    from transformers.utils import logging as transformers_logging

    (transformers_logging.enable_progress_bar if verbose else transformers_logging.disable_progress_bar)()
    if importlib.util.find_spec("ale_py") is not None:
        import ale_py

        ale_py.ALEInterface.setLoggerMode(ale_py.LoggerMode.Info if verbose else ale_py.LoggerMode.Error)
    if not verbose:
        warnings.filterwarnings("ignore", message=r"Constant\(s\) may be too high", category=UserWarning)


__all__ = ["quiet_libraries"]
