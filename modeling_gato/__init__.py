"""Tokens → logits and actions: GatoConfig and GatoForCausalLM."""
