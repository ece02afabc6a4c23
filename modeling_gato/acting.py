"""The action API: Gato acting in a batch of environments, one time step per call, with a KV cache.

GATO_SPEC.md section 5: the prompt demonstration and the episode so far are the context; each new
observation (its tokens and the separator, from ``processor.tokenize_observation``) is appended, then one
token per action dimension is chosen — restricted to that dimension's legal ``[lo, hi)`` token range
(``processor.action_token_ranges(spec)``) — and fed back with the shared action local position. The model
returns token ids; ``processor.decode_action`` turns them into environment actions.

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
(data-dependent shapes, which CUDA graphs cannot hold). The default (``"dynamic"``) path is unchanged.

This module holds no model code: :class:`GatoActingMixin` is mixed into ``GatoForCausalLM`` and uses its
``model``, ``lm_head`` and ``config``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from transformers.cache_utils import Cache, DynamicCache, StaticCache
from transformers.generation.configuration_utils import CompileConfig
from transformers.utils import ModelOutput

from gato.suite.token_layout import LOCAL_POSITION_ACTION, LOCAL_POSITION_NONE

# On overflow, the window (prompt + kept steps + new step) is cut down to this fraction of the context.
DEFAULT_WINDOW_KEEP_FRACTION = 0.5
# The keys of one context segment (all batch-first; ``n`` tokens, ``p`` patches).
SEGMENT_KEYS = ("input_ids", "local_positions", "patch_mask", "patch_pixels", "patch_rows", "patch_cols")
# The KV caches `act` can keep (transformers' `cache_implementation` names).
CACHE_IMPLEMENTATIONS = ("dynamic", "static")
# Deterministic choices of an action token from its distribution (`act(greedy_decoding=...)`).
GREEDY_DECODINGS = ("argmax", "median")


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
            ``max_position_embeddings`` slots with ``cache_implementation="static"``).
        num_reprefills: how many times the window overflowed and was re-run from scratch.
        cache_implementation: ``"dynamic"`` or ``"static"``, fixed for the context's life.
    """

    batch_size: int
    prompt: dict[str, torch.Tensor] | None = None
    steps: list[dict[str, torch.Tensor]] = field(default_factory=list)
    uncached: dict[str, torch.Tensor] | None = None
    cache: Cache | None = None
    num_reprefills: int = 0
    cache_implementation: str = "dynamic"

    def length(self) -> int:
        """Tokens in the window (prompt + kept steps), cached or not."""
        segments = ([self.prompt] if self.prompt is not None else []) + self.steps
        return sum(segment["input_ids"].shape[1] for segment in segments)

    def window(self) -> dict[str, torch.Tensor] | None:
        """The whole window as one segment (prompt + kept steps), or ``None`` if empty."""
        segments = ([self.prompt] if self.prompt is not None else []) + self.steps
        return concat_segments(segments) if segments else None


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


def as_segment(tokens: Any, config, device: torch.device) -> dict[str, torch.Tensor]:
    """The processor's token dict(s) → one batched segment on ``device``.

    ``tokens`` is a mapping with unbatched arrays (``input_ids`` ``(n,)`` → batch of 1) or batched ones
    (``(B, n)``), or a sequence of unbatched mappings (one per environment; equal lengths required). Missing
    ``local_positions`` means ``LOCAL_POSITION_NONE``; missing patch keys mean no patches.
    """
    if isinstance(tokens, Sequence) and not isinstance(tokens, (str, bytes)):
        if not tokens:
            raise ValueError("observation/prompt: got an empty sequence of token dicts")
        per_env = [as_segment(item, config, device) for item in tokens]
        shapes = {tuple(segment["input_ids"].shape) for segment in per_env}
        if len(shapes) != 1:
            raise ValueError(f"observation/prompt: every environment needs the same number of tokens, got {sorted(shapes)}")
        return {key: torch.cat([segment[key] for segment in per_env], dim=0) for key in SEGMENT_KEYS}
    if not isinstance(tokens, Mapping) or "input_ids" not in tokens:
        raise ValueError("observation/prompt must be a token dict with 'input_ids' (or a list of them)")

    def tensor(name: str, dtype: torch.dtype) -> torch.Tensor | None:
        value = tokens.get(name)
        if value is None:
            return None
        value = torch.as_tensor(np.asarray(value) if not torch.is_tensor(value) else value)
        return value.to(device=device, dtype=dtype)

    input_ids = tensor("input_ids", torch.long)
    batched = input_ids.ndim == 2
    if not batched:
        if input_ids.ndim != 1:
            raise ValueError(f"input_ids must be (n,) or (batch, n), got {tuple(input_ids.shape)}")
        input_ids = input_ids[None]
    batch, length = input_ids.shape

    def with_batch(value: torch.Tensor | None, name: str, tail: tuple[int, ...]) -> torch.Tensor | None:
        if value is None:
            return None
        value = value if batched else value[None]
        if value.shape[0] != batch or tuple(value.shape[2:]) != tail:
            raise ValueError(f"{name} must be (batch, n{''.join(', ' + str(d) for d in tail)}), got {tuple(value.shape)}")
        return value

    patch_shape = (config.num_channels, config.patch_size, config.patch_size)
    local_positions = with_batch(tensor("local_positions", torch.long), "local_positions", ())
    patch_mask = with_batch(tensor("patch_mask", torch.bool), "patch_mask", ())
    patch_pixels = with_batch(tensor("patch_pixels", torch.float32), "patch_pixels", patch_shape)
    patch_rows = with_batch(tensor("patch_rows", torch.long), "patch_rows", (2,))
    patch_cols = with_batch(tensor("patch_cols", torch.long), "patch_cols", (2,))
    if local_positions is None:
        local_positions = torch.full_like(input_ids, LOCAL_POSITION_NONE)
    if patch_mask is None:
        patch_mask = torch.zeros_like(input_ids, dtype=torch.bool)
    if patch_pixels is None:
        patch_pixels = torch.zeros((batch, 0, *patch_shape), device=device)
        patch_rows = torch.zeros((batch, 0, 2), dtype=torch.long, device=device)
        patch_cols = torch.zeros((batch, 0, 2), dtype=torch.long, device=device)
    for name, value in (("local_positions", local_positions), ("patch_mask", patch_mask)):
        if value.shape != (batch, length):
            raise ValueError(f"{name} must have the shape of input_ids {(batch, length)}, got {tuple(value.shape)}")
    return {
        "input_ids": input_ids,
        "local_positions": local_positions,
        "patch_mask": patch_mask,
        "patch_pixels": patch_pixels,
        "patch_rows": patch_rows,
        "patch_cols": patch_cols,
    }


def segment_model_inputs(segment: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A segment → keyword inputs of ``GatoModel.forward`` (patch inputs only when there are patches)."""
    inputs = {"input_ids": segment["input_ids"], "local_positions": segment["local_positions"]}
    if segment["patch_pixels"].shape[1] > 0:
        inputs.update({key: segment[key] for key in ("patch_mask", "patch_pixels", "patch_rows", "patch_cols")})
    return inputs


def action_segment(action_tokens: torch.Tensor, config) -> dict[str, torch.Tensor]:
    """Action token ids ``(B, k)`` → a segment (action local position, no patches)."""
    batch = action_tokens.shape[0]
    device = action_tokens.device
    return {
        "input_ids": action_tokens,
        "local_positions": torch.full_like(action_tokens, LOCAL_POSITION_ACTION),
        "patch_mask": torch.zeros_like(action_tokens, dtype=torch.bool),
        "patch_pixels": torch.zeros((batch, 0, config.num_channels, config.patch_size, config.patch_size), device=device),
        "patch_rows": torch.zeros((batch, 0, 2), dtype=torch.long, device=device),
        "patch_cols": torch.zeros((batch, 0, 2), dtype=torch.long, device=device),
    }


def overflow_drops(
    prompt_length: int,
    step_lengths: Sequence[int],
    new_step_length: int,
    max_length: int,
    window_keep_fraction: float = DEFAULT_WINDOW_KEEP_FRACTION,
) -> tuple[int, bool]:
    """The context-window rule shared by the cached action API and the full-recompute reference.

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
    """``act``'s ``compile`` argument → the ``CompileConfig`` of its decode steps (``None``: eager).

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


def check_cache_implementation(cache_implementation: str, compile: bool | CompileConfig = False) -> None:
    """Raise a ``ValueError`` for an unknown ``cache_implementation`` or ``compile`` without the static cache."""
    if cache_implementation not in CACHE_IMPLEMENTATIONS:
        raise ValueError(f"cache_implementation: expected one of {CACHE_IMPLEMENTATIONS}, got {cache_implementation!r}")
    if not isinstance(compile, (bool, CompileConfig)) and compile is not None:
        raise ValueError(f"compile: expected a bool or a transformers CompileConfig, got {compile!r}")
    if compile and cache_implementation != "static":
        # A DynamicCache grows by one token per step: every step would be a new shape (a recompile).
        raise ValueError(f'compile needs cache_implementation="static", got cache_implementation={cache_implementation!r}')


def embed_segment(model: torch.nn.Module, segment: Mapping[str, torch.Tensor]) -> torch.Tensor:
    """A segment → its input embeddings ``(B, n, hidden_size)`` (``GatoModel.embed_inputs``: tokens, image
    patches, local positions); the static path runs them eagerly so that the (compiled) decoder trunk only sees
    fixed shapes. ``model`` is a ``GatoModel``."""
    return model.embed_inputs(**segment_model_inputs(segment))


def check_greedy_decoding(greedy_decoding: str) -> None:
    if greedy_decoding not in GREEDY_DECODINGS:
        raise ValueError(f"greedy_decoding must be one of {GREEDY_DECODINGS}, got {greedy_decoding!r}")


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


def as_action_ranges(action_ranges: Any, batch_size: int, vocab_size: int) -> torch.Tensor:
    """``(A, 2)`` or ``(B, A, 2)`` legal ``[lo, hi)`` token ranges → ``(B, A, 2)`` long on the CPU, validated."""
    ranges = torch.as_tensor(np.asarray(action_ranges) if not torch.is_tensor(action_ranges) else action_ranges)
    ranges = ranges.to(device="cpu", dtype=torch.long)
    if ranges.ndim == 2:
        ranges = ranges[None].expand(batch_size, -1, -1)
    if ranges.ndim != 3 or ranges.shape[0] != batch_size or ranges.shape[2] != 2 or ranges.shape[1] < 1:
        raise ValueError(f"action_ranges must be (action_size, 2) or ({batch_size}, action_size, 2), got {tuple(ranges.shape)}")
    lo, hi = ranges[..., 0], ranges[..., 1]
    if bool((lo < 0).any() or (hi > vocab_size).any() or (lo >= hi).any()):
        raise ValueError(f"action_ranges must hold non-empty [lo, hi) ranges inside [0, {vocab_size}), got {ranges.tolist()}")
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
        ids = torch.arange(lo_min, hi_max, device=logits.device)
        ranges = ranges.to(logits.device)
        legal = (ids[None] >= ranges[:, :1]) & (ids[None] < ranges[:, 1:])
        return logits.masked_fill(~legal, float("-inf")), lo_min

    def static_cache_forward(self, inputs_embeds: torch.Tensor, cache: StaticCache) -> torch.Tensor:
        """The decoder trunk on a ``StaticCache``: ``inputs_embeds`` ``(B, n, hidden_size)`` → the last
        position's final hidden state ``(B, hidden_size)``; the keys/values are written into ``cache``.

        Position ids are explicit — the cache's length (a device tensor for a static cache, so no host sync
        and no recompile as it grows) + ``arange(n)``.
        """
        length = inputs_embeds.shape[1]
        position_ids = (cache.get_seq_length() + torch.arange(length, device=inputs_embeds.device))[None]
        output = self.model(inputs_embeds=inputs_embeds, position_ids=position_ids, cache=cache, use_cache=True)
        return output.last_hidden_state[:, -1]

    def static_decode_forward(self, compile: bool | CompileConfig, device: torch.device):
        """:meth:`static_cache_forward`, eager or ``torch.compile``d (one compiled function per model and
        compile config, kept on the model like transformers' ``get_compiled_call``)."""
        compile_config = acting_compile_config(compile, device)
        if compile_config is None:
            return self.static_cache_forward
        compiled = self.__dict__.setdefault("_acting_compiled_forwards", {})
        key = (torch.device(device).type, repr(sorted(compile_config.to_dict().items())))
        if key not in compiled:
            compiled_forward = torch.compile(self.static_cache_forward, **compile_config.to_dict())
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

    @torch.no_grad()
    def act(
        self,
        observation: Any,
        action_ranges: Any,
        context: GatoActingContext | None = None,
        prompt: Any = None,
        do_sample: bool = False,
        temperature: float = 1.0,
        generator: torch.Generator | None = None,
        window_keep_fraction: float = DEFAULT_WINDOW_KEEP_FRACTION,
        cache_implementation: str = "dynamic",
        compile: bool | CompileConfig = False,
        greedy_decoding: str = "argmax",
    ) -> GatoActionOutput:
        """Append one time step's observation to the context and choose its action tokens.

        Call ``model.eval()`` first (patch positions are sampled at random in training mode).

        Args:
            observation: the new observation's tokens followed by the separator, as
                ``processor.tokenize_observation`` returns them: one dict per environment (a list), or one
                dict with batched ``(B, n)`` arrays. All environments must have the same number of tokens.
            action_ranges: legal ``[lo, hi)`` token ids per action dimension, ``(A, 2)`` shared by the batch
                or ``(B, A, 2)`` per environment (``processor.action_token_ranges(spec)``).
            context: the context returned by the previous call; ``None`` starts an episode.
            prompt: first call only — the prompt demonstration's tokens (same formats as ``observation``,
                equal lengths across the batch), put before the episode.
            do_sample: sample from the softmax of the restricted logits / ``temperature``; else greedy.
            temperature: softmax temperature when sampling (> 0).
            generator: a ``torch.Generator`` on the model's device, for reproducible sampling.
            window_keep_fraction: when the context overflows, how much of it the re-prefilled window keeps
                (:func:`overflow_drops`).
            cache_implementation: ``"dynamic"`` (default, a ``DynamicCache``) or ``"static"`` (a
                ``StaticCache`` of ``max_position_embeddings`` slots, see the module docstring); fixed by the
                first call of an episode, later calls must pass the same value.
            compile: static cache only — ``True`` runs the two fixed-shape steady-state forwards through
                ``torch.compile`` (:func:`acting_compile_config`), or a transformers ``CompileConfig`` to
                choose the mode/backend. The first calls of each shape compile (seconds) and, on CUDA, record
                the CUDA graphs.
            greedy_decoding: without sampling, ``"argmax"`` (the most likely token) or ``"median"`` (the median
                token of the predicted distribution over the legal range, :func:`choose_tokens`) — for actions
                whose tokens are ordered bins of continuous values; categorical actions want ``"argmax"``.

        Returns:
            :class:`GatoActionOutput` with ``action_tokens`` ``(B, A)`` and the updated ``context``.
        """
        if do_sample and not temperature > 0:
            raise ValueError(f"temperature must be > 0 when sampling, got {temperature}")
        check_greedy_decoding(greedy_decoding)
        check_cache_implementation(cache_implementation, compile)
        config = self.config
        device = self.lm_head.weight.device
        obs = as_segment(observation, config, device)
        batch_size, obs_length = obs["input_ids"].shape
        ranges = as_action_ranges(action_ranges, batch_size, config.vocab_size)
        action_size = ranges.shape[1]

        if context is None:
            prompt_segment = as_segment(prompt, config, device) if prompt is not None else None
            if prompt_segment is not None and prompt_segment["input_ids"].shape[0] != batch_size:
                raise ValueError(f"prompt has batch {prompt_segment['input_ids'].shape[0]}, observation has {batch_size}")
            context = GatoActingContext(
                batch_size=batch_size, prompt=prompt_segment, uncached=prompt_segment, cache_implementation=cache_implementation
            )
        elif prompt is not None:
            raise ValueError("prompt is only taken on the first call (context=None)")
        if context.batch_size != batch_size:
            raise ValueError(f"observation has batch {batch_size}, the context was started with {context.batch_size}")
        if context.cache_implementation != cache_implementation:
            raise ValueError(
                f"cache_implementation: the context was started with {context.cache_implementation!r}, got {cache_implementation!r}"
            )
        static = cache_implementation == "static"
        # A prefill (first call, re-prefill) has a variable length: it stays eager.
        prefill = context.cache is None

        step_length = obs_length + action_size
        max_length = config.max_position_embeddings
        if step_length > max_length:
            raise ValueError(
                f"one time step ({obs_length} observation + {action_size} action tokens) exceeds "
                f"max_position_embeddings ({max_length})"
            )
        prompt_length = context.prompt["input_ids"].shape[1] if context.prompt is not None else 0
        step_lengths = [step["input_ids"].shape[1] for step in context.steps]
        drop_steps, drop_prompt = overflow_drops(prompt_length, step_lengths, step_length, max_length, window_keep_fraction)
        if drop_steps or drop_prompt:
            # Re-prefill from a shorter time-step-aligned window (see the module docstring).
            del context.steps[:drop_steps]
            if drop_prompt:
                context.prompt = None
            context.uncached = context.window()
            if static and context.cache is not None:
                context.cache.reset()  # in place: the static tensors keep their addresses (CUDA graphs)
            else:
                context.cache = None
            context.num_reprefills += 1
            prefill = True

        feed = concat_segments([context.uncached, obs]) if context.uncached is not None else obs
        if context.cache is None:
            context.cache = StaticCache(config=config, max_cache_len=max_length) if static else DynamicCache(config=config)
        if static:
            steady_forward = self.static_decode_forward(compile, device)
            forward = self.static_decode_forward(False, device) if prefill else steady_forward
            hidden = forward(embed_segment(self.model, feed), context.cache)
        else:
            hidden = self.model(**segment_model_inputs(feed), cache=context.cache, use_cache=True).last_hidden_state[:, -1]

        tokens: list[torch.Tensor] = []
        for dim in range(action_size):  # autoregressive over action dimensions: each token conditions the next
            if dim > 0:
                previous = action_segment(tokens[-1][:, None], config)
                if static:
                    hidden = steady_forward(embed_segment(self.model, previous), context.cache)
                else:
                    hidden = self.model(**segment_model_inputs(previous), cache=context.cache, use_cache=True)
                    hidden = hidden.last_hidden_state[:, -1]
            logits, offset = self.action_logits(hidden, ranges[:, dim])
            choice = choose_tokens(logits, do_sample, temperature, generator, greedy_decoding)
            tokens.append(choice + offset)
        action_tokens = torch.stack(tokens, dim=1)

        context.steps.append(concat_segments([obs, action_segment(action_tokens, config)]))
        # The last action token has not been run yet: it goes in with the next observation.
        context.uncached = action_segment(action_tokens[:, -1:], config)
        return GatoActionOutput(action_tokens=action_tokens, context=context)


__all__ = [
    "CACHE_IMPLEMENTATIONS",
    "DEFAULT_WINDOW_KEEP_FRACTION",
    "GREEDY_DECODINGS",
    "GatoActingMixin",
    "GatoActingContext",
    "GatoActionOutput",
    "acting_compile_config",
    "as_segment",
    "check_cache_implementation",
    "check_greedy_decoding",
    "choose_tokens",
    "concat_segments",
    "embed_segment",
    "overflow_drops",
]
