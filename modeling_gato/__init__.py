"""Tokens → logits and actions: GatoConfig, GatoModel, GatoForCausalLM and the action API."""

from .acting import ActingConfig, GatoActingContext, GatoActionOutput
from .configuration_gato import PAPER_PARAMETER_COUNTS, PRESETS, GatoConfig
from .modeling_gato import GatoForCausalLM, GatoModel, GatoPreTrainedModel

__all__ = [
    "GatoConfig",
    "PRESETS",
    "PAPER_PARAMETER_COUNTS",
    "GatoPreTrainedModel",
    "GatoModel",
    "GatoForCausalLM",
    "ActingConfig",
    "GatoActingContext",
    "GatoActionOutput",
]
