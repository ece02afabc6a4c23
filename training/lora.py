"""LoRA fine-tuning in ``gato train`` (``TrainingConfig.lora_rank``): adapters on, train, merge back into the weights.

``peft`` wraps the model before the loop sees it, so checkpoints, resume and validation work unchanged on the
wrapped model (checkpoints hold its base weights and adapters); when the run ends the adapters are merged, and the
output folder is a plain ``GatoForCausalLM`` that ``AutoModelForCausalLM``, ``load_agent`` and ``gato eval`` load
with no ``peft`` installed. Only the adapted projections change in the merged model: the token embeddings, norms
and the patch embedding stay the base model's.
"""

from __future__ import annotations

import torch

# Every linear projection inside the decoder blocks: attention (GatoAttention) and MLP (GatoMLP), as
# examples/finetune_with_trainer.py adapts them.
LORA_TARGET_MODULES = ("q_proj", "k_proj", "v_proj", "o_proj", "fc_in", "fc_out")


def add_lora_adapters(model: torch.nn.Module, rank: int, seed: int = 0) -> torch.nn.Module:
    """``model`` frozen, with rank-``rank`` adapters (alpha = 2 × rank, no dropout) on :data:`LORA_TARGET_MODULES`,
    their initialisation seeded by ``seed`` (a resume rebuilds them identically before loading its checkpoint)."""
    try:
        from peft import LoraConfig, get_peft_model
    except ImportError:
        raise ValueError(
            "lora_rank: LoRA needs peft (pip install peft, or the dev extra: pip install 'gato[dev]')"
        ) from None
    config = LoraConfig(
        r=rank,
        lora_alpha=2 * rank,
        lora_dropout=0.0,
        target_modules=list(LORA_TARGET_MODULES),
        task_type="CAUSAL_LM",
    )
    torch.manual_seed(seed)
    return get_peft_model(model, config)


def merge_lora_adapters(model: torch.nn.Module) -> torch.nn.Module:
    """The base model with the adapters added into its weights (``peft``'s ``merge_and_unload``)."""
    return model.merge_and_unload()
