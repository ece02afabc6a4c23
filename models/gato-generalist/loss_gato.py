"""The output layer and the cross-entropy in one step, chunk by chunk: the training loss without the logits.

Gato's loss runs the vocabulary-wide output layer only at the targets (text and action tokens), but on a
text batch nearly every position is a target: ``targets × vocab`` logits (33k wide) in the compute dtype,
their float32 copy and the softmax of the backward pass dominate the step's memory traffic. Here the targets
are processed ``chunk_size`` rows at a time; for each chunk the forward pass computes its logits, its
log-sum-exp and the loss, and — since the loss is a sum and its gradient with respect to the logits is
``softmax − one_hot`` — the gradients of the chunk's hidden states and of the output weight right away, so
no chunk's logits outlive its iteration. The backward pass only scales the stored gradients by the incoming
one. Three matrix products per chunk, as in the plain path (forward, and the two of the backward).

Numerics follow the plain path ``F.cross_entropy(linear(hidden, weight).float(), targets)``: the products run
in the autocast dtype when autocast is on (else in the inputs' dtype), the logits are then taken to float32,
and the gradient of the logits goes back to the product dtype before its two products — so under bf16
autocast the results match the plain path to bf16 rounding, and in float32 to float32 rounding.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

# Rows of the (targets × vocab) logits computed at once: 256 × 33k float32 ≈ 34 MB, small beside a full batch's
# logits (3,000 targets × 33k ≈ 400 MB) and large enough for the products to run at full speed.
DEFAULT_CHUNK_SIZE = 256


def _product_dtype(hidden: torch.Tensor) -> torch.dtype:
    device = hidden.device.type
    return torch.get_autocast_dtype(device) if torch.is_autocast_enabled(device) else hidden.dtype


class _LinearCrossEntropy(torch.autograd.Function):
    @staticmethod
    def forward(
        ctx, hidden: torch.Tensor, weight: torch.Tensor, targets: torch.Tensor, chunk_size: int, dtype: torch.dtype
    ):
        needs_grad = ctx.needs_input_grad[0] or ctx.needs_input_grad[1]
        with torch.autocast(hidden.device.type, enabled=False):
            weight_c = weight.to(dtype)
            total = torch.zeros((), dtype=torch.float32, device=hidden.device)
            grad_hidden = torch.empty_like(hidden) if ctx.needs_input_grad[0] else None
            grad_weight = None  # float32, summed over the chunks (the first chunk's product starts it)
            # One float32 work buffer (logits → softmax → its gradient, in place) and, under a lower product dtype,
            # one for the logits in that dtype, reused by every chunk: a fresh 256 × 33k float32 tensor per
            # operation is above glibc's mmap threshold (32 MB), so each one page-faulted in anew — the element-wise
            # work ran 2× slower than on warm memory (BENCHMARKS.md, "The chunked loss on warm buffers").
            rows_max = min(chunk_size, hidden.shape[0])
            work = torch.empty((rows_max, weight.shape[0]), dtype=torch.float32, device=hidden.device)
            low = None if dtype == torch.float32 else torch.empty_like(work, dtype=dtype)
            rows_index = torch.arange(rows_max, device=hidden.device)
            for start in range(0, hidden.shape[0], chunk_size):
                rows = hidden[start : start + chunk_size].to(dtype)
                target = targets[start : start + chunk_size]
                count = rows.shape[0]
                probs = work[:count]
                if low is None:
                    torch.matmul(rows, weight_c.T, out=probs)
                else:
                    probs.copy_(torch.matmul(rows, weight_c.T, out=low[:count]))
                # log-sum-exp as torch.logsumexp computes it (max, then the sum of shifted exponentials), keeping
                # the exponentials: divided by their sum they are the softmax the gradient needs.
                target_logit = probs.gather(1, target[:, None]).squeeze(1)
                shift = probs.amax(dim=-1, keepdim=True)
                sum_exp = probs.sub_(shift).exp_().sum(dim=-1, keepdim=True)
                log_norm = (shift + sum_exp.log()).squeeze(1)
                total += (log_norm - target_logit).sum()
                if not needs_grad:
                    continue
                # d(sum of losses)/d(logits) = softmax − one_hot(target), in place over the exponentials.
                grad_logits = probs.div_(sum_exp)
                grad_logits[rows_index[:count], target] -= 1.0
                if low is not None:
                    grad_logits = low[:count].copy_(grad_logits)
                if grad_hidden is not None:
                    grad_hidden[start : start + chunk_size] = grad_logits @ weight_c
                if ctx.needs_input_grad[1]:
                    chunk_grad = (grad_logits.T @ rows).float()
                    grad_weight = chunk_grad if grad_weight is None else grad_weight.add_(chunk_grad)
        ctx.save_for_backward(grad_hidden, grad_weight.to(weight.dtype) if grad_weight is not None else None)
        return total

    @staticmethod
    def backward(ctx, grad_output: torch.Tensor):
        grad_hidden, grad_weight = ctx.saved_tensors
        grad_hidden = grad_hidden * grad_output.to(grad_hidden.dtype) if grad_hidden is not None else None
        grad_weight = grad_weight * grad_output.to(grad_weight.dtype) if grad_weight is not None else None
        return grad_hidden, grad_weight, None, None, None


def fused_loss_applies(training: bool, weight: torch.Tensor) -> bool:
    """Whether the model's loss takes :func:`linear_cross_entropy`: in training with gradients on (evaluation
    and teacher-forced accuracy read the logits), outside ``torch.compile`` (the chunk loop has a data-dependent
    length), and on a whole weight (a DeepSpeed ZeRO-3 partition is gathered only inside ``lm_head``'s call)."""
    return training and torch.is_grad_enabled() and not torch.compiler.is_compiling() and not hasattr(weight, "ds_id")


def linear_cross_entropy(
    hidden: torch.Tensor, weight: torch.Tensor, targets: torch.Tensor, chunk_size: int = DEFAULT_CHUNK_SIZE
) -> torch.Tensor:
    """``sum_i CE(hidden[i] @ weight.T, targets[i])`` without materialising the ``(N, vocab)`` logits.

    Args:
        hidden: ``(N, hidden_size)`` final hidden states at the predicting positions.
        weight: ``(vocab, hidden_size)`` the output layer's weight (no bias).
        targets: ``(N,)`` long target ids in ``[0, vocab)``.
        chunk_size: rows of logits computed at once.

    Returns:
        The summed cross-entropy, a float32 scalar; differentiable with respect to ``hidden`` and ``weight``.
    """
    if hidden.ndim != 2 or weight.ndim != 2 or hidden.shape[1] != weight.shape[1]:
        raise ValueError(
            f"hidden must be (N, hidden_size) and weight (vocab, hidden_size), got {tuple(hidden.shape)} and {tuple(weight.shape)}"
        )
    if targets.shape != hidden.shape[:1]:
        raise ValueError(f"targets must be (N,) = ({hidden.shape[0]},), got {tuple(targets.shape)}")
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be ≥ 1, got {chunk_size}")
    if hidden.shape[0] == 0:
        return F.linear(hidden, weight).float().sum()  # keeps the graph connected for an empty batch
    return _LinearCrossEntropy.apply(hidden, weight, targets, chunk_size, _product_dtype(hidden))


__all__ = ["DEFAULT_CHUNK_SIZE", "fused_loss_applies", "linear_cross_entropy"]
