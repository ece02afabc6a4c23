"""Tokens → logits and actions: GatoConfig and GatoForCausalLM."""

from .configuration_gato import PRESETS, GatoConfig

__all__ = ["GatoConfig", "PRESETS"]
