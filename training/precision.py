"""Which floating-point precision a run computes in: bfloat16 where the hardware computes it natively, else float32.

Training uses Accelerate's mixed precision (float32 weights, bf16 autocast); acting and evaluation cast a
trained model's weights to the chosen dtype. ``auto`` means the same thing for both:

- a CUDA device that supports bf16 → bf16;
- a CPU with native bf16 instructions — AVX512-BF16 or AMX (Intel Cooper Lake, Sapphire Rapids and later;
  AMD Zen 4 and later) → bf16. A CPU without them only emulates bf16 (conversions around float32
  arithmetic), so ``auto`` stays in float32 there (not measured on this project's machine, which has them);
- anything else → float32.

Detection reads the instruction-set flags the kernel reports in ``/proc/cpuinfo`` (on Linux it also says
whether the kernel enabled AMX's tile state); where that file does not exist (macOS, Windows) it asks torch's
own CPU feature probe (``torch.cpu._is_avx512_bf16_supported`` / ``_is_amx_tile_supported``).
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterator
from pathlib import Path

import torch

# The /proc/cpuinfo flags of instructions that compute bf16 products natively.
CPU_BF16_FLAGS = ("avx512_bf16", "amx_bf16")
CPUINFO = Path("/proc/cpuinfo")
ACTING_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}
_FLAGS_LINE = re.compile(r"^flags\s*:(.*)$", flags=re.MULTILINE)


def cpu_bf16_flags(cpuinfo: str) -> list[str]:
    """The native-bf16 flags (:data:`CPU_BF16_FLAGS`) that every processor listed in ``cpuinfo`` (the text of
    ``/proc/cpuinfo``) reports, in that order; ``[]`` if none, or if the text has no ``flags`` line."""
    per_cpu = [set(line.split()) for line in _FLAGS_LINE.findall(cpuinfo)]
    if not per_cpu:
        return []
    return [flag for flag in CPU_BF16_FLAGS if all(flag in flags for flags in per_cpu)]


def detect_cpu_bf16() -> list[str]:
    """The native-bf16 features of this machine's CPU (empty: none, bf16 would be emulated)."""
    if CPUINFO.exists():
        return cpu_bf16_flags(CPUINFO.read_text(encoding="utf-8", errors="replace"))
    probes = {"avx512_bf16": "_is_avx512_bf16_supported", "amx_bf16": "_is_amx_tile_supported"}
    return [flag for flag, probe in probes.items() if getattr(torch.cpu, probe, lambda: False)()]


def auto_mixed_precision(use_cpu: bool | None = None) -> tuple[str, str]:
    """What ``mixed_precision: auto`` means on this machine: ``("bf16" | "no", why)``.

    ``use_cpu``: the run is forced onto the CPU although a GPU may exist (Accelerate's ``cpu=True``); by
    default read from ``ACCELERATE_USE_CPU``, as Accelerate does.
    """
    if use_cpu is None:
        use_cpu = os.environ.get("ACCELERATE_USE_CPU", "").lower() in ("1", "true", "yes")
    if not use_cpu and torch.cuda.is_available():
        if torch.cuda.is_bf16_supported():
            return "bf16", f"{torch.cuda.get_device_name()} supports bf16"
        return "no", f"{torch.cuda.get_device_name()} has no bf16"
    flags = detect_cpu_bf16()
    if flags:
        return "bf16", f"this CPU has {', '.join(flags)}"
    return "no", f"this CPU has none of {', '.join(CPU_BF16_FLAGS)} (bf16 would only be emulated)"


def describe_mixed_precision(setting: str, accelerator) -> str:
    """One line for the log: what ``accelerator`` (an ``accelerate.Accelerator``) computes in, and why."""
    chosen = str(accelerator.mixed_precision)
    name = {"no": "float32", "bf16": "bf16 autocast (float32 weights)", "fp16": "fp16 autocast (float32 weights)"}
    if getattr(accelerator.state, "deepspeed_plugin", None) is not None:
        # DeepSpeed's bf16/fp16 modes keep the weights themselves in 16 bits and a float32 master copy.
        name = {
            "no": "float32",
            "bf16": "bf16 weights (DeepSpeed, float32 master copy)",
            "fp16": "fp16 weights (DeepSpeed)",
        }
    if setting == "auto":
        use_cpu = accelerator.device.type == "cpu"
        why = f"mixed_precision auto: {auto_mixed_precision(use_cpu)[1]}"
    else:
        why = f"mixed_precision {setting} as configured"
    return f"precision: {name.get(chosen, chosen)} ({why})"


def resolve_dtype(setting: str | torch.dtype, use_cpu: bool | None = None) -> torch.dtype:
    """``"auto" | "float32" | "bfloat16"`` (or a torch dtype of those two) → the dtype acting computes in.

    ``"auto"`` is bf16 exactly where ``mixed_precision: auto`` trains in bf16 (:func:`auto_mixed_precision`).
    """
    if isinstance(setting, torch.dtype):
        if setting not in ACTING_DTYPES.values():
            raise ValueError(f"dtype: expected torch.float32 or torch.bfloat16, got {setting}")
        return setting
    if setting == "auto":
        return torch.bfloat16 if auto_mixed_precision(use_cpu)[0] == "bf16" else torch.float32
    if setting not in ACTING_DTYPES:
        raise ValueError(f"dtype: expected one of auto, {', '.join(ACTING_DTYPES)}; got {setting!r}")
    return ACTING_DTYPES[setting]


def cast_for_acting(model: torch.nn.Module, dtype: str | torch.dtype = "auto") -> torch.nn.Module:
    """``model`` (in place) with its floating-point weights in ``dtype`` (:func:`resolve_dtype`), in eval mode.

    The model casts image patches to its own dtype; the action API computes its restricted output-layer
    logits in float32 whatever the weights' dtype, so bf16 rounding does not tie close actions.
    """
    target = resolve_dtype(dtype, use_cpu=next(model.parameters()).device.type == "cpu")
    return model.to(dtype=target).eval()


@contextlib.contextmanager
def float32_output_layer(model: torch.nn.Module) -> Iterator[torch.nn.Module]:
    """Within this block ``model``'s output layer (``get_output_embeddings()``) computes its logits in float32
    from float32 copies of its input and weight, whatever the weights' dtype: the text logits of ``generate``, the
    loss and the teacher-forced action logits of an evaluation in bf16 are then not rounded to bf16's 8 significant
    bits, which ties close tokens (argmax then silently takes the lowest id), as :meth:`act` does for actions.

    A float32 output layer (a float32 model, or float32 weights under autocast) is left exactly as it is. The
    layer's ``forward`` is replaced on the instance for the block and restored after it (as Accelerate's module
    hooks replace it); the weight is shared, not copied into the model.
    """
    head = model.get_output_embeddings()
    if head.weight.dtype == torch.float32:
        yield model
        return
    own_forward = head.__dict__.get("forward")  # an instance forward set by someone else (e.g. Accelerate's hooks)

    def forward(hidden: torch.Tensor) -> torch.Tensor:
        bias = None if head.bias is None else head.bias.float()
        return torch.nn.functional.linear(hidden.float(), head.weight.float(), bias)

    head.forward = forward
    try:
        yield model
    finally:
        if own_forward is None:
            del head.forward
        else:
            head.forward = own_forward


def load_for_acting(
    path: str, dtype: str | torch.dtype = "auto", device: str | torch.device = "cpu"
) -> torch.nn.Module:
    """A trained folder (``gato train``'s output) → ``GatoForCausalLM`` on ``device`` in ``dtype``
    (:func:`resolve_dtype`), in eval mode."""
    from gato.modeling_gato import GatoForCausalLM

    return cast_for_acting(GatoForCausalLM.from_pretrained(path).to(device), dtype)
