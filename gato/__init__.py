"""gato: a transformers-native reimplementation of DeepMind's Gato (Reed et al., 2022).

``import gato`` exposes the public surface and registers the Gato classes with transformers' Auto
classes, so ``AutoConfig`` / ``AutoModelForCausalLM`` / ``AutoProcessor`` load gato folders without
``trust_remote_code``.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("gato")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"

from . import processing  # noqa: E402  (after __version__ so submodules may read it)

__all__ = ["__version__", "processing"]
