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

from transformers import AutoConfig, AutoImageProcessor, AutoModel, AutoModelForCausalLM, AutoProcessor  # noqa: E402

from . import processing  # noqa: E402
from .modeling_gato import GatoConfig, GatoForCausalLM, GatoModel  # noqa: E402
from .processing import GatoProcessor  # noqa: E402
from .processing.image_processing_gato import GatoImageProcessor  # noqa: E402

# --- Auto-class registration (per process; transformers forgets it on exit) -----------------------------
AutoConfig.register(GatoConfig.model_type, GatoConfig, exist_ok=True)
AutoModel.register(GatoConfig, GatoModel, exist_ok=True)
AutoModelForCausalLM.register(GatoConfig, GatoForCausalLM, exist_ok=True)
AutoImageProcessor.register(GatoConfig, image_processor_classes={"pil": GatoImageProcessor}, exist_ok=True)
AutoProcessor.register(GatoConfig, GatoProcessor, exist_ok=True)

# --- pipelines: captions through pipeline("image-to-text" / "image-text-to-text", model=FOLDER) ------------------
from .pipelines import register_pipelines  # noqa: E402

register_pipelines()

__all__ = ["__version__", "processing", "GatoConfig", "GatoModel", "GatoForCausalLM", "GatoProcessor", "GatoAgent"]


def __getattr__(name: str):
    # The agent pulls in the suite, gymnasium and datasets: loaded on first use, not on `import gato`.
    if name == "GatoAgent":
        from .evaluation.agent import GatoAgent

        return GatoAgent
    raise AttributeError(f"module 'gato' has no attribute {name!r}")
