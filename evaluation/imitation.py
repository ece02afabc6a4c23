"""Held-out imitation accuracy: how well the model predicts the expert's actions on episodes it never trained on.

A rollout's return mixes two failures: the model did not learn the expert's policy, or it did but small errors
compound once its own actions take the environment off the expert's states. Teacher forcing separates them:
each held-out expert episode is fed as in training (the expert's actions in the context) and every action token
is predicted greedily inside its legal range, as the agent would choose it. High accuracy with a low return
points at compounding errors or missing context; low accuracy at data, model size or tokenization.

The held-out episodes are the ones ``gato train`` kept for validation: the last ``validation_fraction`` of each
task's dataset (``gato.training.mixture.split_sources``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from gato.episodes.schema import read_episode
from gato.modeling_gato.acting import restrict_to_ranges
from gato.modeling_gato.modeling_gato import target_mask
from gato.suite.task_spec import TaskSpec
from gato.training.precision import float32_output_layer


@torch.no_grad()
def held_out_action_accuracy(
    model: torch.nn.Module,
    processor: Any,
    dataset: Any,
    spec: TaskSpec,
    max_episodes: int = 20,
    batch_size: int = 8,
) -> dict[str, Any]:
    """Teacher-forced greedy action prediction on expert episodes.

    Args:
        model: a ``GatoForCausalLM`` (put in eval mode here), float32 or bf16 (its action logits are computed in
            float32 either way, as the agent's are).
        processor: its ``GatoProcessor``.
        dataset: an episode dataset of the task (``datasets.Dataset`` in the episode schema), e.g. the held-out split.
        spec: the task's :class:`TaskSpec`.
        max_episodes: use at most this many episodes (the first ones of ``dataset``).
        batch_size: sequences per forward pass.

    Returns:
        ``{"episodes", "steps", "token_accuracy", "action_accuracy", "action_mae"}``: the fraction of action tokens
        predicted exactly, the fraction of time steps whose whole action is exact, and (continuous actions only,
        else ``None``) the mean absolute error of the decoded actions in action units.
    """
    if max_episodes < 1 or batch_size < 1:
        raise ValueError(f"max_episodes and batch_size: expected ≥ 1, got {max_episodes} and {batch_size}")
    model.eval()
    device = next(model.parameters()).device
    ranges = torch.as_tensor(np.asarray(processor.action_token_ranges(spec)), dtype=torch.long, device=device)
    action_size = ranges.shape[0]
    episodes = min(max_episodes, len(dataset))
    sequences = [
        sequence
        for index in range(episodes)
        for sequence in processor.tokenize_episode(read_episode(dataset, index, spec), spec)
    ]
    predicted, expected = [], []
    for start in range(0, len(sequences), batch_size):
        batch = processor.collate(sequences[start : start + batch_size]).to(device)
        with float32_output_layer(model):  # a bf16 model's logits in bf16 would tie close actions
            output = model(**batch)
        targets = batch["labels"][:, 1:]
        is_target = target_mask(batch["labels"], batch["loss_mask"], batch["attention_mask"])
        # Episode targets are the action tokens, whole steps in order: target i is action dimension i % A.
        logits = output.logits.float()
        dims = torch.arange(logits.shape[0], device=device) % action_size
        predicted.append(restrict_to_ranges(logits, ranges[dims]).argmax(-1).cpu())
        expected.append(targets[is_target].cpu())
    if not predicted or sum(len(p) for p in predicted) % action_size:
        raise ValueError(
            f"dataset: expected whole time steps of {action_size} action targets in the episodes of {spec.name!r}"
        )
    predicted_tokens = torch.cat(predicted).view(-1, action_size)
    expected_tokens = torch.cat(expected).view(-1, action_size)
    exact = predicted_tokens == expected_tokens
    mae = None
    if spec.action.kind == "continuous":
        decoded = processor.decode_action(predicted_tokens.numpy(), spec)
        truth = processor.decode_action(expected_tokens.numpy(), spec)
        mae = float(np.abs(decoded - truth).mean())
    return {
        "episodes": episodes,
        "steps": int(expected_tokens.shape[0]),
        "token_accuracy": float(exact.float().mean()),
        "action_accuracy": float(exact.all(dim=1).float().mean()),
        "action_mae": mae,
    }


__all__ = ["held_out_action_accuracy"]
