"""Tokens → logits and actions: GatoConfig, GatoModel, GatoForCausalLM and the action API.

The names below are imported on first use (as in ``gato/__init__.py``): reading an ``ActingConfig`` (what
``gato eval --help`` builds its flags from) does not import the model and transformers' modeling code.
"""

from importlib import import_module

# Public names → the submodule that defines them.
_LAZY_ATTRIBUTES = {
    "GatoConfig": ".configuration_gato",
    "PRESETS": ".configuration_gato",
    "PAPER_PARAMETER_COUNTS": ".configuration_gato",
    "GatoPreTrainedModel": ".modeling_gato",
    "GatoModel": ".modeling_gato",
    "GatoForCausalLM": ".modeling_gato",
    "ActingConfig": ".acting",
    "GatoActingContext": ".acting",
    "GatoActionOutput": ".acting",
}

__all__ = list(_LAZY_ATTRIBUTES)


def __getattr__(name: str):
    if name in _LAZY_ATTRIBUTES:
        return getattr(import_module(_LAZY_ATTRIBUTES[name], __name__), name)
    raise AttributeError(f"module 'gato.modeling_gato' has no attribute {name!r}")
