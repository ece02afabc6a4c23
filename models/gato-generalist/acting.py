"""The action API: Gato acting in a batch of environments, one time step per call, with a KV cache.

GATO_SPEC.md section 5: the prompt demonstration and the episode so far are the context; each new
observation (its tokens and the separator, from ``processor.tokenize_observation``, batched into tensors by
``processor.collate``) is appended, then one token per action dimension is chosen — restricted to that
dimension's legal ``[lo, hi)`` token range (``processor.action_token_ranges(spec)``) — and fed back with the
shared action local position. Like ``generate``, :meth:`GatoActingMixin.act` takes tensors and returns token
ids; ``processor.decode_action`` turns them into actions. How tokens are chosen (sampling, temperature, the
cache, ``torch.compile``, the overflow rule, the prompt's length) is one validated :class:`ActingConfig`, the
acting counterpart of transformers' ``GenerationConfig``.

Context beyond ``max_position_embeddings``: **re-prefill** on time-step boundaries (:func:`overflow_drops`).
When the prompt, the kept past steps and the new step (observation + action tokens) no longer fit, the
oldest past steps are dropped (the prompt last, only when the new step does not fit beside it), the cache is
discarded and the remaining window is run through the model again from position 0. Every window the model
sees is therefore ``[prompt] + whole time steps``, the shape of its training sequences, and the cached
result equals a full recompute over that window. (A sliding window over the cache would keep keys computed
from tokens that left the window.) A re-prefill costs a forward pass over the whole window, so it drops
steps until the window is down to ``window_keep_fraction`` of ``max_position_embeddings`` (half by
default): the next re-prefill is then many steps away instead of one, at the price of a shorter history
right after it. ``window_keep_fraction=1`` drops only what the new step needs (a re-prefill every step
once the window is full).

Fast decode path (``cache_implementation="static"``, optionally ``compile=True``): the keys/values live in
a transformers ``StaticCache`` of ``max_position_embeddings`` slots (allocated once per context, written in
place; a re-prefill ``reset()``s it instead of replacing it, so tensor addresses never change), and every
forward gets explicit position ids (the cache's length + ``arange``). In the steady state each call has
exactly two input shapes — the last action token + the new observation ``(B, n_obs + 1)``, then single
tokens ``(B, 1)`` (observations of a fixed token count, i.e. no free text) — so with ``compile`` those two forwards go through ``torch.compile`` (``dynamic=False``:
one graph per shape; mode ``"reduce-overhead"``, i.e. CUDA graphs, on CUDA, ``"default"`` elsewhere).
Prefills (the first call, re-prefills) have variable lengths and stay eager. The compiled region is the
decoder trunk over input embeddings: the token / image-patch / local-position embeddings are computed
eagerly first (:func:`embed_segment`), because the patch scatter selects with boolean masks
(data-dependent shapes, which CUDA graphs cannot hold). Both caches go through the same forward
(:meth:`GatoActingMixin.cached_forward`: input embeddings and explicit position ids); only the static one may
be compiled.

Without a cache (``ActingConfig(use_cache=False)``) every action token is chosen after a full forward pass over
the window, kept by the same overflow rule: quadratically slower, the reference that cached actions are tested
against and the naive baseline of ``benchmarks/control_latency.py``.

This module holds no model code: :class:`GatoActingMixin` is mixed into ``GatoForCausalLM`` and uses its
``model``, ``lm_head`` and ``config``.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from transformers.cache_utils import Cache, DynamicCache, StaticCache
from transformers.generation.configuration_utils import CompileConfig
from transformers.utils import ModelOutput

try:
    from gato.suite.token_layout import LOCAL_POSITION_ACTION, LOCAL_POSITION_NONE
except ImportError:  # a remote-code folder, loaded where gato is not installed (modeling_gato.write_remote_code)
    from .token_layout import LOCAL_POSITION_ACTION, LOCAL_POSITION_NONE

# On overflow, the window (prompt + kept steps + new step) is cut down to this fraction of the context.
DEFAULT_WINDOW_KEEP_FRACTION = 0.5
# The keys of one context segment (all batch-first; ``n`` tokens, ``p`` patches).
SEGMENT_KEYS = ("input_ids", "local_positions", "patch_mask", "patch_pixels", "patch_rows", "patch_cols")
PATCH_KEYS = ("patch_mask", "patch_pixels", "patch_rows", "patch_cols")
# Keys of ``processor.collate``'s batch that acting reads only to check them (no padding) or ignores (targets).
PADDING_KEYS = ("attention_mask", "patch_valid")
TARGET_KEYS = ("labels", "loss_mask")
# The KV caches `act` can keep (transformers' `cache_implementation` names).
CACHE_IMPLEMENTATIONS = ("dynamic", "static")
# Deterministic choices of a continuous action's bin from its distribution (`ActingConfig.continuous_decoding`).
GREEDY_DECODINGS = ("argmax", "median")


@dataclass
class ActingConfig:
    """How Gato chooses its actions: the settings of :meth:`GatoActingMixin.act` and of the agent that prompts it,
    validated once, here (the acting counterpart of transformers' ``GenerationConfig``).

    Args:
        do_sample: sample every action token from the softmax of its legal logits / ``temperature``; else greedy.
        temperature: softmax temperature when sampling, a finite number ≥ 0. ``0`` means greedy decoding (the limit
            of sampling as the temperature goes to 0): ``do_sample`` is then set to ``False``.
        continuous_decoding: greedy choice of a continuous action's bin: ``"median"`` of the predicted distribution
            over the legal bins (default) or its ``"argmax"`` (:func:`choose_tokens`). Applies only to actions that
            ``act`` is told are continuous (``continuous_actions=True``; the agent says so from the task's spec):
            a discrete action's ids are categories and always take the argmax. Sampling ignores it.
        use_cache: keep a KV cache across calls (default). ``False``: a full forward pass over the window for every
            action token — the slow reference of tests and benchmarks (same actions when greedy).
        cache_implementation: ``"dynamic"`` (a ``DynamicCache``) or ``"static"`` (a ``StaticCache`` of
            ``max_position_embeddings`` slots: the fast decode path, see the module docstring). Same actions.
        compile: static cache only — ``True`` runs the two fixed-shape steady-state forwards through
            ``torch.compile`` (:func:`acting_compile_config`), or a transformers ``CompileConfig`` to choose the
            mode/backend.
        window_keep_fraction: when the context would pass ``max_position_embeddings``, the re-prefilled window keeps
            at most this fraction of it, in ``(0, 1]`` (:func:`overflow_drops`).
        prompt_tokens: the prompt demonstration's length in tokens, used by whoever builds the prompt (the agent's
            factory ``gato.evaluation.rollout.make_agent``); ``None`` = as the model was trained
            (``prompt_fraction × max_length``), ``0`` = no prompt.
    """

    do_sample: bool = False
    temperature: float = 1.0
    continuous_decoding: str = "median"
    use_cache: bool = True
    cache_implementation: str = "dynamic"
    compile: bool | CompileConfig = False
    window_keep_fraction: float = DEFAULT_WINDOW_KEEP_FRACTION
    prompt_tokens: int | None = None

    def __post_init__(self) -> None:
        for name in ("do_sample", "use_cache"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name}: expected True or False, got {getattr(self, name)!r}")
        temperature = self.temperature
        if (
            isinstance(temperature, bool)
            or not isinstance(temperature, (int, float))
            or not math.isfinite(temperature)
            or temperature < 0
        ):
            raise ValueError(f"temperature: expected a finite number ≥ 0 (0 = greedy), got {temperature!r}")
        self.temperature = float(temperature)
        if self.temperature == 0:
            self.do_sample = False  # the limit of sampling as the temperature goes to 0 is the argmax
        if self.continuous_decoding not in GREEDY_DECODINGS:
            raise ValueError(
                f"continuous_decoding: expected one of {GREEDY_DECODINGS}, got {self.continuous_decoding!r}"
            )
        if self.cache_implementation not in CACHE_IMPLEMENTATIONS:
            raise ValueError(
                f"cache_implementation: expected one of {CACHE_IMPLEMENTATIONS}, got {self.cache_implementation!r}"
            )
        if not isinstance(self.compile, (bool, CompileConfig)):
            raise ValueError(f"compile: expected a bool or a transformers CompileConfig, got {self.compile!r}")
        if self.compile and (self.cache_implementation != "static" or not self.use_cache):
            # A DynamicCache grows by one token per step: every step would be a new shape (a recompile).
            raise ValueError(
                f'compile needs use_cache=True and cache_implementation="static", got use_cache={self.use_cache} and '
                f"cache_implementation={self.cache_implementation!r}"
            )
        if not self.use_cache and self.cache_implementation != "dynamic":
            raise ValueError(
                f"cache_implementation: use_cache=False keeps no cache, got cache_implementation={self.cache_implementation!r}"
            )
        fraction = self.window_keep_fraction
        if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) or not 0 < fraction <= 1:
            raise ValueError(f"window_keep_fraction: expected a fraction in (0, 1], got {fraction!r}")
        prompt_tokens = self.prompt_tokens
        if prompt_tokens is not None and (
            isinstance(prompt_tokens, bool) or not isinstance(prompt_tokens, int) or prompt_tokens < 0
        ):
            raise ValueError(
                f"prompt_tokens: expected None (as in training) or an integer ≥ 0 (0 = no prompt), got {prompt_tokens!r}"
            )

    def greedy_decoding(self, continuous_actions: bool) -> str:
        """The greedy rule for an action: ``continuous_decoding`` for bins of continuous values, else ``"argmax"``."""
        return self.continuous_decoding if continuous_actions else "argmax"

    def to_dict(self) -> dict[str, Any]:
        """The settings as JSON values (a ``CompileConfig`` as its dict)."""
        values = dataclasses.asdict(self)
        if isinstance(self.compile, CompileConfig):
            values["compile"] = self.compile.to_dict()
        return values


@dataclass
class GatoActingContext:
    """The running context of a batch of environments between calls to :meth:`GatoActingMixin.act`.

    Each segment is a dict of batched tensors: ``input_ids``/``local_positions`` ``(B, n)`` long,
    ``patch_mask`` ``(B, n)`` bool, ``patch_pixels`` ``(B, p, C, ps, ps)``, ``patch_rows``/``patch_cols``
    ``(B, p, 2)`` (``p`` may be 0).

    Attributes:
        batch_size: number of environments.
        prompt: the prompt demonstration segment, or ``None``.
        steps: one segment per past time step still in the window (observation, separator, action tokens).
        uncached: the tail of the window not yet run through the model (the last action token, or the whole
            window after a re-prefill); it is fed together with the next observation.
        cache: the key/value cache over the window minus ``uncached`` (a ``StaticCache`` of
            ``max_position_embeddings`` slots with ``cache_implementation="static"``; ``None`` without a cache).
        num_reprefills: how many times the window overflowed and was cut (and, with a cache, re-run from scratch).
        cache_implementation: ``"dynamic"``, ``"static"``, or ``None`` (``use_cache=False``), fixed for the context's life.
    """

    batch_size: int
    prompt: dict[str, torch.Tensor] | None = None
    steps: list[dict[str, torch.Tensor]] = field(default_factory=list)
    uncached: dict[str, torch.Tensor] | None = None
    cache: Cache | None = None
    num_reprefills: int = 0
    cache_implementation: str | None = "dynamic"

    def length(self) -> int:
        """Tokens in the window (prompt + kept steps), cached or not."""
        return sum(segment["input_ids"].shape[1] for segment in self.segments())

    def segments(self) -> list[dict[str, torch.Tensor]]:
        """The window's segments: the prompt (if any) and the kept steps, oldest first."""
        return ([self.prompt] if self.prompt is not None else []) + self.steps

    def window(self) -> dict[str, torch.Tensor] | None:
        """The whole window as one segment (prompt + kept steps), or ``None`` if empty."""
        segments = self.segments()
        return concat_segments(segments) if segments else None

    def make_room(self, step_length: int, max_length: int, window_keep_fraction: float) -> bool:
        """Make room for a new time step of ``step_length`` tokens in a context of ``max_length``.

        While everything fits nothing changes and ``False`` is returned. Otherwise the oldest steps (the prompt
        last) are dropped by :func:`overflow_drops`, the cache is emptied (a static cache in place: its tensors
        keep their addresses, which CUDA graphs replay) and the remaining window becomes ``uncached``, to be
        re-prefilled with the new observation; returns ``True``.
        """
        prompt_length = self.prompt["input_ids"].shape[1] if self.prompt is not None else 0
        step_lengths = [step["input_ids"].shape[1] for step in self.steps]
        drop_steps, drop_prompt = overflow_drops(
            prompt_length, step_lengths, step_length, max_length, window_keep_fraction
        )
        if not (drop_steps or drop_prompt):
            return False
        del self.steps[:drop_steps]
        if drop_prompt:
            self.prompt = None
        self.uncached = self.window()
        if isinstance(self.cache, StaticCache):
            self.cache.reset()
        else:
            self.cache = None
        self.num_reprefills += 1
        return True


@dataclass
class GatoActionOutput(ModelOutput):
    """What :meth:`GatoActingMixin.act` returns.

    Attributes:
        action_tokens: ``(batch, action_size)`` long — the chosen token ids, each inside its legal range.
        context: the updated :class:`GatoActingContext`; pass it to the next call.
    """

    action_tokens: torch.LongTensor | None = None
    context: GatoActingContext | None = None


def concat_segments(segments: Sequence[Mapping[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """Concatenate segments along the token (and patch) axis."""
    return {key: torch.cat([segment[key] for segment in segments], dim=1) for key in SEGMENT_KEYS}


def no_patches(batch: int, config, device: torch.device) -> dict[str, torch.Tensor]:
    """The patch tensors of a segment without images: ``(batch, 0, C, ps, ps)`` pixels, ``(batch, 0, 2)`` rows/cols."""
    return {
        "patch_pixels": torch.zeros(
            (batch, 0, config.num_channels, config.patch_size, config.patch_size), device=device
        ),
        "patch_rows": torch.zeros((batch, 0, 2), dtype=torch.long, device=device),
        "patch_cols": torch.zeros((batch, 0, 2), dtype=torch.long, device=device),
    }


def tensor_segment(inputs: Any, name: str, config, device: torch.device) -> dict[str, torch.Tensor]:
    """A batch of token tensors (``processor.collate``'s output, ``return_tensors="pt"``) → one segment on ``device``.

    ``inputs`` maps ``input_ids`` ``(B, n)`` and optionally ``local_positions`` (missing: ``LOCAL_POSITION_NONE``),
    the patch tensors (all four or none) and ``attention_mask`` / ``patch_valid``, which must mark no padding:
    every environment of the batch has the same number of tokens and patches. ``labels`` / ``loss_mask`` are
    ignored. Values must be torch tensors; ``name`` names the argument in errors.
    """
    if not isinstance(inputs, Mapping) or "input_ids" not in inputs:
        raise ValueError(
            f"{name}: expected a mapping of batched token tensors with 'input_ids' (processor.collate's output), "
            f"got {type(inputs).__name__}"
        )
    unknown = sorted(set(inputs) - set(SEGMENT_KEYS) - set(PADDING_KEYS) - set(TARGET_KEYS))
    if unknown:
        raise ValueError(f"{name}: unexpected keys {unknown}; expected {list(SEGMENT_KEYS + PADDING_KEYS)}")
    for key, value in inputs.items():
        if value is not None and not torch.is_tensor(value):
            raise TypeError(
                f"{name}[{key!r}]: expected a torch.Tensor, got {type(value).__name__}; batch the processor's "
                "token dicts with processor.collate(..., return_tensors='pt')"
            )
    input_ids = inputs["input_ids"]
    if input_ids.ndim != 2:
        raise ValueError(f"{name}['input_ids']: expected (batch, n), got {tuple(input_ids.shape)}")
    batch, length = input_ids.shape
    for key in PADDING_KEYS:
        if inputs.get(key) is not None and not bool(inputs[key].bool().all()):
            raise ValueError(
                f"{name}[{key!r}]: every environment needs the same number of tokens and patches, got padding"
            )
    present = [key for key in PATCH_KEYS if inputs.get(key) is not None]
    if present and len(present) != len(PATCH_KEYS):
        raise ValueError(f"{name}: image inputs need all of {list(PATCH_KEYS)}, got only {present}")
    segment = {"input_ids": input_ids.to(device=device, dtype=torch.long)}
    local_positions = inputs.get("local_positions")
    segment["local_positions"] = (
        torch.full_like(segment["input_ids"], LOCAL_POSITION_NONE)
        if local_positions is None
        else local_positions.to(device=device, dtype=torch.long)
    )
    if present:
        segment["patch_mask"] = inputs["patch_mask"].to(device=device, dtype=torch.bool)
        segment["patch_pixels"] = inputs["patch_pixels"].to(device=device, dtype=torch.float32)
        segment["patch_rows"] = inputs["patch_rows"].to(device=device, dtype=torch.long)
        segment["patch_cols"] = inputs["patch_cols"].to(device=device, dtype=torch.long)
    else:
        segment["patch_mask"] = torch.zeros_like(segment["input_ids"], dtype=torch.bool)
        segment.update(no_patches(batch, config, device))
    for key in ("local_positions", "patch_mask"):
        if segment[key].shape != (batch, length):
            raise ValueError(
                f"{name}[{key!r}]: expected the shape of input_ids {(batch, length)}, got {tuple(segment[key].shape)}"
            )
    patch_shape = (config.num_channels, config.patch_size, config.patch_size)
    for key, tail in (("patch_pixels", patch_shape), ("patch_rows", (2,)), ("patch_cols", (2,))):
        value = segment[key]
        if value.ndim != 2 + len(tail) or value.shape[0] != batch or tuple(value.shape[2:]) != tail:
            raise ValueError(
                f"{name}[{key!r}]: expected (batch={batch}, patches, {', '.join(map(str, tail))}), got {tuple(value.shape)}"
            )
    return segment


def segment_model_inputs(segment: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A segment → keyword inputs of ``GatoModel.forward`` (patch inputs only when there are patches)."""
    inputs = {"input_ids": segment["input_ids"], "local_positions": segment["local_positions"]}
    if segment["patch_pixels"].shape[1] > 0:
        inputs.update({key: segment[key] for key in PATCH_KEYS})
    return inputs


def action_segment(action_tokens: torch.Tensor, config) -> dict[str, torch.Tensor]:
    """Action token ids ``(B, k)`` → a segment (action local position, no patches)."""
    return {
        "input_ids": action_tokens,
        "local_positions": torch.full_like(action_tokens, LOCAL_POSITION_ACTION),
        "patch_mask": torch.zeros_like(action_tokens, dtype=torch.bool),
        **no_patches(action_tokens.shape[0], config, action_tokens.device),
    }


def overflow_drops(
    prompt_length: int,
    step_lengths: Sequence[int],
    new_step_length: int,
    max_length: int,
    window_keep_fraction: float = DEFAULT_WINDOW_KEEP_FRACTION,
) -> tuple[int, bool]:
    """The context-window rule of the action API (cached or not).

    Args:
        prompt_length: tokens of the prompt demonstration in the window (0: none).
        step_lengths: tokens of each past time step in the window, oldest first.
        new_step_length: tokens of the new step (observation + separator + action tokens).
        max_length: the model's context (``max_position_embeddings``).
        window_keep_fraction: on overflow, drop the oldest steps until prompt + kept steps + new step take at
            most this fraction of ``max_length`` (or no past step is left), in ``(0, 1]``.

    Returns:
        ``(steps_to_drop, drop_prompt)``: ``(0, False)`` while everything fits; the prompt is dropped only
        when the new step does not fit beside it.
    """
    if not 0 < window_keep_fraction <= 1:
        raise ValueError(f"window_keep_fraction: expected a fraction in (0, 1], got {window_keep_fraction}")
    if new_step_length > max_length:
        raise ValueError(f"one time step ({new_step_length} tokens) exceeds max_position_embeddings ({max_length})")
    total = prompt_length + sum(step_lengths) + new_step_length
    if total <= max_length:
        return 0, False
    target = min(max_length, int(window_keep_fraction * max_length))
    drop = 0
    while drop < len(step_lengths) and total > target:
        total -= step_lengths[drop]
        drop += 1
    return drop, prompt_length > 0 and total > max_length


def acting_compile_config(compile: bool | CompileConfig, device: torch.device) -> CompileConfig | None:
    """``ActingConfig.compile`` → the ``CompileConfig`` of the decode steps (``None``: eager).

    ``True`` gives transformers' defaults (inductor, ``mode="reduce-overhead"``: CUDA graphs) on CUDA and
    ``mode="default"`` elsewhere (CUDA graphs need CUDA), both with ``dynamic=False``: the two decode shapes
    each get their own static graph instead of one dynamic-shape graph.
    """
    if isinstance(compile, CompileConfig):
        return compile
    if compile is False or compile is None:
        return None
    if compile is not True:
        raise ValueError(f"compile: expected a bool or a transformers CompileConfig, got {compile!r}")
    return CompileConfig(dynamic=False, mode="reduce-overhead" if torch.device(device).type == "cuda" else "default")


def embed_segment(model: torch.nn.Module, segment: Mapping[str, torch.Tensor]) -> torch.Tensor:
    """A segment → its input embeddings ``(B, n, hidden_size)`` (``GatoModel.embed_inputs``: tokens, image
    patches, local positions), computed eagerly so that a compiled decoder trunk only sees fixed shapes.
    ``model`` is a ``GatoModel``."""
    return model.embed_inputs(**segment_model_inputs(segment))


def choose_tokens(
    logits: torch.Tensor,
    do_sample: bool = False,
    temperature: float = 1.0,
    generator: torch.Generator | None = None,
    greedy_decoding: str = "argmax",
) -> torch.Tensor:
    """One token per row of ``(B, n)`` restricted logits (illegal ids at ``-inf``) → ``(B,)`` indices into ``n``.

    Sampling draws from ``softmax(logits / temperature)``. Greedy ``"argmax"`` takes the most likely token;
    ``"median"`` the first token where the cumulative probability reaches one half. For the ordered bins of a
    continuous value the median is the better point estimate: a model unsure between torques spread over
    many bins and a clipped extreme (one bin holding all the saturated values) has its argmax at the
    extreme even when most of its probability — and its median — sits elsewhere.
    """
    if do_sample:
        probs = torch.softmax(logits / temperature, dim=-1)
        return torch.multinomial(probs, 1, generator=generator).squeeze(-1)
    if greedy_decoding == "median":
        cumulative = torch.softmax(logits.float(), dim=-1).cumsum(dim=-1)
        return (cumulative < 0.5).sum(dim=-1).clamp(max=logits.shape[-1] - 1)
    return logits.argmax(dim=-1)


def restrict_to_ranges(logits: torch.Tensor, ranges: torch.Tensor, first_id: int = 0) -> torch.Tensor:
    """Logits ``(N, n)`` over the token ids ``first_id … first_id + n - 1`` with every id outside its row's legal
    ``[lo, hi)`` range (``ranges`` ``(N, 2)``) set to ``-inf`` — the legal-range mask of action tokens."""
    ids = torch.arange(first_id, first_id + logits.shape[-1], device=logits.device)
    ranges = ranges.to(logits.device)
    legal = (ids[None] >= ranges[:, :1]) & (ids[None] < ranges[:, 1:])
    return logits.masked_fill(~legal, float("-inf"))


def as_action_ranges(action_ranges: Any, batch_size: int, vocab_size: int) -> torch.Tensor:
    """``(A, 2)`` or ``(B, A, 2)`` legal ``[lo, hi)`` token ranges (a tensor) → ``(B, A, 2)`` long on the CPU, validated."""
    if not torch.is_tensor(action_ranges):
        raise TypeError(
            f"action_ranges: expected a torch.Tensor, got {type(action_ranges).__name__}; "
            "e.g. torch.as_tensor(processor.action_token_ranges(spec))"
        )
    ranges = action_ranges.to(device="cpu", dtype=torch.long)
    if ranges.ndim == 2:
        ranges = ranges[None].expand(batch_size, -1, -1)
    if ranges.ndim != 3 or ranges.shape[0] != batch_size or ranges.shape[2] != 2 or ranges.shape[1] < 1:
        raise ValueError(
            f"action_ranges must be (action_size, 2) or ({batch_size}, action_size, 2), got {tuple(ranges.shape)}"
        )
    lo, hi = ranges[..., 0], ranges[..., 1]
    if bool((lo < 0).any() or (hi > vocab_size).any() or (lo >= hi).any()):
        raise ValueError(
            f"action_ranges must hold non-empty [lo, hi) ranges inside [0, {vocab_size}), got {ranges.tolist()}"
        )
    return ranges


class GatoActingMixin:
    """Adds :meth:`act` to ``GatoForCausalLM`` (uses ``self.model``, ``self.lm_head``, ``self.config``)."""

    def action_logits(self, hidden: torch.Tensor, ranges: torch.Tensor) -> tuple[torch.Tensor, int]:
        """Output-layer logits for one action dimension, restricted to each environment's legal range.

        Args:
            hidden: ``(B, hidden_size)`` final hidden states at the position that predicts the action token.
            ranges: ``(B, 2)`` long ``[lo, hi)`` per environment (CPU).

        Returns:
            ``(logits (B, hi_max - lo_min), lo_min)``: only the rows ``[lo_min, hi_max)`` of the output layer
            are computed; ids outside an environment's own range get ``-inf``.
        """
        lo_min, hi_max = int(ranges[:, 0].min()), int(ranges[:, 1].max())
        weight = self.lm_head.weight[lo_min:hi_max]
        # In float32 whatever the weights' dtype: a bf16 product rounds the logits to 8 significant bits, which ties
        # close actions (argmax then silently takes the lowest id); the legal rows are few, so this costs nothing.
        logits = hidden.float() @ weight.float().T
        return restrict_to_ranges(logits, ranges, first_id=lo_min), lo_min

    def cached_forward(self, inputs_embeds: torch.Tensor, cache: Cache | None) -> torch.Tensor:
        """The decoder trunk: ``inputs_embeds`` ``(B, n, hidden_size)`` → the last position's final hidden state
        ``(B, hidden_size)``; the keys/values are appended to ``cache`` (``None``: no cache, a full forward).

        Position ids are explicit — the cache's length (a device tensor for a static cache, so no host sync
        and no recompile as it grows) + ``arange(n)``. The one forward of every acting path: dynamic and static
        caches, eager or compiled (:meth:`decode_forward`), and the cache-free recompute.
        """
        length = inputs_embeds.shape[1]
        past = cache.get_seq_length() if cache is not None else 0
        position_ids = (past + torch.arange(length, device=inputs_embeds.device))[None]
        output = self.model(
            inputs_embeds=inputs_embeds, position_ids=position_ids, cache=cache, use_cache=cache is not None
        )
        return output.last_hidden_state[:, -1]

    def decode_forward(self, compile: bool | CompileConfig, device: torch.device):
        """:meth:`cached_forward`, eager or ``torch.compile``d (one compiled function per model and compile
        config, kept on the model like transformers' ``get_compiled_call``)."""
        compile_config = acting_compile_config(compile, device)
        if compile_config is None:
            return self.cached_forward
        compiled = self.__dict__.setdefault("_acting_compiled_forwards", {})
        key = (torch.device(device).type, repr(sorted(compile_config.to_dict().items())))
        if key not in compiled:
            compiled_forward = torch.compile(self.cached_forward, **compile_config.to_dict())
            use_cuda_graphs = compile_config.mode == "reduce-overhead" and torch.device(device).type == "cuda"

            def forward(inputs_embeds: torch.Tensor, cache: StaticCache) -> torch.Tensor:
                if use_cuda_graphs:
                    # Each call starts a new CUDA-graph step; its output is copied out before the next replay
                    # overwrites the graph's output buffer.
                    torch.compiler.cudagraph_mark_step_begin()
                    return compiled_forward(inputs_embeds, cache).clone()
                return compiled_forward(inputs_embeds, cache)

            compiled[key] = forward
        return compiled[key]

    def start_context(self, batch_size: int, prompt: Any, acting_config: ActingConfig) -> GatoActingContext:
        """A new :class:`GatoActingContext` for ``batch_size`` environments, with the prompt's tokens (tensors, as
        the observation's) at the start of the window, not yet run through the model."""
        prompt_segment = (
            tensor_segment(prompt, "prompt", self.config, self.lm_head.weight.device) if prompt is not None else None
        )
        if prompt_segment is not None and prompt_segment["input_ids"].shape[0] != batch_size:
            raise ValueError(f"prompt has batch {prompt_segment['input_ids'].shape[0]}, observation has {batch_size}")
        return GatoActingContext(
            batch_size=batch_size,
            prompt=prompt_segment,
            uncached=prompt_segment,
            cache_implementation=acting_config.cache_implementation if acting_config.use_cache else None,
        )

    @torch.no_grad()
    def act(
        self,
        observation: Mapping[str, torch.Tensor],
        action_ranges: torch.Tensor,
        context: GatoActingContext | None = None,
        prompt: Mapping[str, torch.Tensor] | None = None,
        acting_config: ActingConfig | None = None,
        generator: torch.Generator | None = None,
        continuous_actions: bool = False,
    ) -> GatoActionOutput:
        """Append one time step's observation to the context and choose its action tokens.

        Call ``model.eval()`` first (patch positions are sampled at random in training mode).

        Args:
            observation: the new observation's tokens followed by the separator, batched into tensors:
                ``processor.collate([processor.tokenize_observation(step, spec) for step in steps])``
                (``input_ids`` ``(B, n)``, ``local_positions``, the patch tensors). All environments must have the
                same number of tokens (no padding). Tensors only: numpy arrays are refused with a ``TypeError``.
            action_ranges: legal ``[lo, hi)`` token ids per action dimension, a long tensor ``(A, 2)`` shared by
                the batch or ``(B, A, 2)`` per environment (``processor.action_token_ranges(spec)``).
            context: the context returned by the previous call; ``None`` starts an episode.
            prompt: first call only — the prompt demonstration's tokens (same format as ``observation``, equal
                lengths across the batch), put before the episode.
            acting_config: how to choose (:class:`ActingConfig`; default ``ActingConfig()``: greedy, dynamic cache).
                The cache it names is fixed by the first call of an episode; later calls must name the same.
            generator: a ``torch.Generator`` on the model's device, for reproducible sampling.
            continuous_actions: the action tokens are ordered bins of continuous values, so a greedy choice uses
                ``acting_config.continuous_decoding``; otherwise (categories) the argmax.

        Returns:
            :class:`GatoActionOutput` with ``action_tokens`` ``(B, A)`` and the updated ``context``.
        """
        acting_config = ActingConfig() if acting_config is None else acting_config
        if not isinstance(acting_config, ActingConfig):
            raise TypeError(f"acting_config: expected an ActingConfig, got {type(acting_config).__name__}")
        config = self.config
        device = self.lm_head.weight.device
        obs = tensor_segment(observation, "observation", config, device)
        batch_size, obs_length = obs["input_ids"].shape
        ranges = as_action_ranges(action_ranges, batch_size, config.vocab_size)
        action_size = ranges.shape[1]

        if context is None:
            context = self.start_context(batch_size, prompt, acting_config)
        elif prompt is not None:
            raise ValueError("prompt is only taken on the first call (context=None)")
        if context.batch_size != batch_size:
            raise ValueError(f"observation has batch {batch_size}, the context was started with {context.batch_size}")
        cache_implementation = acting_config.cache_implementation if acting_config.use_cache else None
        if context.cache_implementation != cache_implementation:
            raise ValueError(
                f"cache_implementation: the context was started with {context.cache_implementation!r}, got "
                f"{cache_implementation!r} (None: use_cache=False)"
            )
        step_length = obs_length + action_size
        max_length = config.max_position_embeddings
        if step_length > max_length:
            raise ValueError(
                f"one time step ({obs_length} observation + {action_size} action tokens) exceeds "
                f"max_position_embeddings ({max_length})"
            )
        # A prefill (first call, re-prefill) has a variable length: it stays eager.
        prefill = context.cache is None
        prefill |= context.make_room(step_length, max_length, acting_config.window_keep_fraction)

        def choose(hidden: torch.Tensor, dim: int) -> torch.Tensor:
            logits, offset = self.action_logits(hidden, ranges[:, dim])
            greedy_decoding = acting_config.greedy_decoding(continuous_actions)
            return (
                choose_tokens(logits, acting_config.do_sample, acting_config.temperature, generator, greedy_decoding)
                + offset
            )

        tokens: list[torch.Tensor] = []
        if not acting_config.use_cache:
            # The reference: a full forward pass over the window (+ the tokens chosen so far) for every action token.
            for dim in range(action_size):
                chosen = [action_segment(torch.stack(tokens, dim=1), config)] if tokens else []
                window = concat_segments(context.segments() + [obs] + chosen)
                tokens.append(choose(self.cached_forward(embed_segment(self.model, window), None), dim))
        else:
            if context.cache is None:
                static = acting_config.cache_implementation == "static"
                context.cache = (
                    StaticCache(config=config, max_cache_len=max_length) if static else DynamicCache(config=config)
                )
            steady_forward = self.decode_forward(acting_config.compile, device)
            forward = self.decode_forward(False, device) if prefill else steady_forward
            feed = concat_segments([context.uncached, obs]) if context.uncached is not None else obs
            hidden = forward(embed_segment(self.model, feed), context.cache)
            for dim in range(action_size):  # autoregressive over action dimensions: each token conditions the next
                if dim > 0:
                    hidden = steady_forward(
                        embed_segment(self.model, action_segment(tokens[-1][:, None], config)), context.cache
                    )
                tokens.append(choose(hidden, dim))
        action_tokens = torch.stack(tokens, dim=1)

        context.steps.append(concat_segments([obs, action_segment(action_tokens, config)]))
        # The last action token has not been run yet: it goes in with the next observation.
        context.uncached = action_segment(action_tokens[:, -1:], config)
        return GatoActionOutput(action_tokens=action_tokens, context=context)


__all__ = [
    "ActingConfig",
    "CACHE_IMPLEMENTATIONS",
    "DEFAULT_WINDOW_KEEP_FRACTION",
    "GREEDY_DECODINGS",
    "GatoActingMixin",
    "GatoActingContext",
    "GatoActionOutput",
    "acting_compile_config",
    "action_segment",
    "choose_tokens",
    "concat_segments",
    "embed_segment",
    "overflow_drops",
    "restrict_to_ranges",
    "segment_model_inputs",
    "tensor_segment",
]
