"""gato: a transformers-native reimplementation of DeepMind's Gato (Reed et al., 2022).

``import gato`` exposes the public surface and registers the Gato classes with transformers' Auto
classes, so ``AutoConfig`` / ``AutoModelForCausalLM`` / ``AutoProcessor`` load gato folders without
``trust_remote_code``. The classes themselves are imported on first use.

The one exception is the ``gato`` command (the console script, or ``python -m gato.cli``): registering needs
torch and transformers (seconds), so there ``gato.cli`` calls :func:`register_auto_classes` only once a
subcommand is about to run, and ``gato --help`` or a usage error answers at once.
"""

import sys
from importlib import import_module
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

try:
    __version__ = version("gato")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"

# Public names → the submodule that defines them, imported when first asked for.
_LAZY_ATTRIBUTES = {
    "GatoConfig": ".modeling_gato",
    "GatoModel": ".modeling_gato",
    "GatoForCausalLM": ".modeling_gato",
    "GatoProcessor": ".processing",
    "GatoAgent": ".evaluation.agent",  # pulls in the suite, gymnasium and datasets
}
_registered = False


def register_auto_classes() -> None:
    """Register the Gato classes with transformers' Auto classes and pipelines (per process; idempotent)."""
    global _registered
    if _registered:
        return
    from transformers import AutoConfig, AutoImageProcessor, AutoModel, AutoModelForCausalLM, AutoProcessor

    from .modeling_gato import GatoConfig, GatoForCausalLM, GatoModel
    from .pipelines import register_pipelines
    from .processing import GatoProcessor
    from .processing.image_processing_gato import GatoImageProcessor

    # --- Auto-class registration (per process; transformers forgets it on exit) -------------------------
    AutoConfig.register(GatoConfig.model_type, GatoConfig, exist_ok=True)
    AutoModel.register(GatoConfig, GatoModel, exist_ok=True)
    AutoModelForCausalLM.register(GatoConfig, GatoForCausalLM, exist_ok=True)
    AutoImageProcessor.register(GatoConfig, image_processor_classes={"pil": GatoImageProcessor}, exist_ok=True)
    AutoProcessor.register(GatoConfig, GatoProcessor, exist_ok=True)
    # --- pipelines: captions through pipeline("image-to-text" / "image-text-to-text", model=FOLDER) --------------
    register_pipelines()
    _registered = True


def _started_by_the_gato_command() -> bool:
    # The console script's argv[0] is the `gato` executable; `python -m gato.cli` (also what `accelerate launch -m
    # gato.cli` starts) shows in the interpreter's own arguments. Any other program, `python -m otherpkg` whose
    # package imports gato included, registers at import.
    first = getattr(sys, "argv", None) or [""]
    if Path(first[0]).name in ("gato", "gato.exe"):
        return True
    original = getattr(sys, "orig_argv", [])
    return any(arg == "-m" and original[index + 1 : index + 2] == ["gato.cli"] for index, arg in enumerate(original))


__all__ = ["__version__", "processing", "register_auto_classes", *_LAZY_ATTRIBUTES]


def __getattr__(name: str):
    if name in _LAZY_ATTRIBUTES:
        return getattr(import_module(_LAZY_ATTRIBUTES[name], __name__), name)
    if name == "processing":
        return import_module(".processing", __name__)
    raise AttributeError(f"module 'gato' has no attribute {name!r}")


if not _started_by_the_gato_command():
    register_auto_classes()
