"""GatoAgent: a trained Gato acting in a batch of environments (GATO_SPEC.md section 5).

The agent is a thin stateful wrapper over the model's KV-cached action API (``GatoForCausalLM.act``,
``modeling_gato/acting.py``) and the processor's acting helpers: each call to :meth:`GatoAgent.act`
tokenizes one observation per environment (``processor.tokenize_observation``, which appends the
separator), lets the model choose one token per action dimension inside that dimension's legal range
(``processor.action_token_ranges``) and decodes them into spec actions (``processor.decode_action``).
The model keeps the cache between calls and re-prefills on time-step boundaries when the context would
pass ``max_position_embeddings``, so episodes of any length work.

Batches of environments share one context: every environment must produce the same number of tokens per
step (true for every field kind but text), and they are reset together. How vector environments whose
episodes end at different times are handled is :func:`gato.evaluation.rollout.run_episodes`' business
(each wave of episodes runs to completion with a mask); see its docstring.

:class:`RecomputeGatoAgent` is the same agent without a cache — every action token is chosen after a full
forward pass over the whole window — and is the reference that cached greedy actions are tested against
and the naive baseline of ``benchmarks/control_latency.py``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from transformers.generation.configuration_utils import CompileConfig

from gato.modeling_gato.acting import (
    DEFAULT_WINDOW_KEEP_FRACTION,
    GatoActingContext,
    action_segment,
    as_segment,
    check_cache_implementation,
    check_greedy_decoding,
    choose_tokens,
    concat_segments,
    overflow_drops,
    segment_model_inputs,
)
from gato.suite.task_spec import TaskSpec

Observation = Mapping[str, Any]


def split_batched_observation(observation: Any, num_envs: int) -> list[Any]:
    """A vector environment's batched observation → one observation per environment.

    Arrays are split on their first axis; dicts (gymnasium ``Dict`` spaces) field by field; tuples (a
    vector env's ``Text`` spaces give a tuple of strings) item by item.
    """
    if isinstance(observation, Mapping):
        fields = {name: split_batched_observation(value, num_envs) for name, value in observation.items()}
        return [{name: values[index] for name, values in fields.items()} for index in range(num_envs)]
    if isinstance(observation, (tuple, list)) or isinstance(observation, np.ndarray) or torch.is_tensor(observation):
        if len(observation) != num_envs:
            raise ValueError(f"observation: expected a batch of {num_envs} on the first axis, got {len(observation)}")
        return [observation[index] for index in range(num_envs)]
    raise ValueError(f"observation: cannot split a {type(observation).__name__} into {num_envs} environments")


class GatoAgent:
    """Gato acting in ``num_envs`` environments at once, with the model's KV cache kept across steps.

    Args:
        model: a ``GatoForCausalLM`` (put in eval mode here: patch positions are random in training mode).
        processor: the ``GatoProcessor`` it was trained with.
        spec: the task's :class:`TaskSpec`.
        to_episode_step: optional ``env observation -> {field: value}`` (a suite task's
            ``to_episode_step``); without it observations must already be spec observations.
        do_sample: sample from the softmax of the legal logits instead of taking the argmax (greedy).
        temperature: softmax temperature when sampling.
        seed: seed of the sampling generator (sampling only).
        window_keep_fraction: when the context overflows ``max_position_embeddings``, the re-prefilled window
            keeps at most this fraction of it (``gato.modeling_gato.acting.overflow_drops``).
        cache_implementation: ``"dynamic"`` (default) or ``"static"``: the fast decode path, a
            ``StaticCache`` of ``max_position_embeddings`` slots (``modeling_gato/acting.py``).
        compile: with the static cache, ``torch.compile`` the fixed-shape decode steps (``True``: CUDA graphs
            via ``mode="reduce-overhead"`` on CUDA, ``mode="default"`` elsewhere; or a transformers
            ``CompileConfig``). The first steps of the first episode pay for compiling.
        continuous_decoding: greedy choice of a continuous action's bin: ``"median"`` (default) of the
            predicted distribution or its ``"argmax"`` (``GatoForCausalLM.act``'s ``greedy_decoding``).
            Discrete actions always take the argmax; sampling ignores it.

    Usage::

        agent = GatoAgent(model, processor, task.spec, to_episode_step=task.to_episode_step)
        agent.reset(prompt=demonstration, num_envs=4)       # an episode dict of the same task, or None
        actions = agent.act(vector_env_observation)        # (4, action_size) spec actions
    """

    def __init__(
        self,
        model: torch.nn.Module,
        processor: Any,
        spec: TaskSpec,
        *,
        to_episode_step: Callable[[Any], dict[str, Any]] | None = None,
        do_sample: bool = False,
        temperature: float = 1.0,
        seed: int = 0,
        window_keep_fraction: float = DEFAULT_WINDOW_KEEP_FRACTION,
        cache_implementation: str = "dynamic",
        compile: bool | CompileConfig = False,
        continuous_decoding: str = "median",
    ) -> None:
        if do_sample and not temperature > 0:
            raise ValueError(f"temperature must be > 0 when sampling, got {temperature}")
        check_cache_implementation(cache_implementation, compile)
        check_greedy_decoding(continuous_decoding)
        self.continuous_decoding = continuous_decoding
        # Bins of a continuous action are ordered; a discrete action's ids are categories.
        self.greedy_decoding = continuous_decoding if spec.action.kind == "continuous" else "argmax"
        self.cache_implementation = cache_implementation
        self.compile = compile
        self.model = model.eval()
        self.processor = processor
        self.spec = spec
        self.to_episode_step = to_episode_step
        self.do_sample = do_sample
        self.temperature = temperature
        self.seed = seed
        overflow_drops(0, [], 1, 1, window_keep_fraction)  # validates the fraction now, not at the first overflow
        self.window_keep_fraction = window_keep_fraction
        # (action_size, 2) legal [lo, hi) token ids per action dimension, shared by every environment.
        self.action_ranges = np.asarray(processor.action_token_ranges(spec))
        self.device = next(model.parameters()).device
        self.generator: torch.Generator | None = None
        self.num_envs = 0
        self.prompt_tokens: dict[str, np.ndarray] | None = None
        self.context: GatoActingContext | None = None
        self.steps_taken = 0
        self._past_reprefills = 0

    # --- episode boundaries -------------------------------------------------------------------------------------

    def reset(self, prompt: Mapping[str, Any] | None = None, num_envs: int = 1) -> None:
        """Start new episodes in ``num_envs`` environments: forget the context, set the prompt.

        Args:
            prompt: a demonstration of the same task as an episode dict (``task_spec.py``), already cut to
                the prompt's length (``processor.make_prompt(..., mode="end")`` does that, as at deployment in
                the paper); every environment gets the same prompt. ``None``: no prompt.
            num_envs: how many environments the next :meth:`act` calls carry.
        """
        if num_envs < 1:
            raise ValueError(f"num_envs: expected ≥ 1, got {num_envs}")
        self.num_envs = num_envs
        self._past_reprefills += self.num_reprefills
        self.context = None
        self.steps_taken = 0
        self.prompt_tokens = None
        if prompt is not None:
            sequences = self.processor.tokenize_episode(prompt, self.spec)
            if len(sequences) != 1:
                raise ValueError(
                    f"prompt: the demonstration needs {len(sequences)} sequences of max_length="
                    f"{self.processor.max_length}; cut it with processor.make_prompt first"
                )
            self.prompt_tokens = sequences[0]
        if self.do_sample:
            self.generator = torch.Generator(device=self.device).manual_seed(self.seed)

    # --- one time step -----------------------------------------------------------------------------------------

    def observation_tokens(self, observations: Any) -> list[dict[str, np.ndarray]]:
        """Observations of the ``num_envs`` environments → one token dict each (observation + separator).

        ``observations`` is a vector env's batched observation (array ``(B, ...)`` or dict of them) or a
        list of per-environment observations, in the environment's format when ``to_episode_step`` was
        given, else as ``{field: value}`` spec observations.
        """
        if self.num_envs == 0:
            raise ValueError("reset(num_envs=...) must be called before act()")
        per_env = observations if isinstance(observations, list) else split_batched_observation(observations, self.num_envs)
        if len(per_env) != self.num_envs:
            raise ValueError(f"observations: expected {self.num_envs} environments, got {len(per_env)}")
        steps = [self.to_episode_step(obs) for obs in per_env] if self.to_episode_step else per_env
        return [self.processor.tokenize_observation(step, self.spec) for step in steps]

    def act_tokens(self, observation_tokens: Sequence[Mapping[str, np.ndarray]]) -> torch.Tensor:
        """Token dicts (one per environment) → ``(num_envs, action_size)`` action token ids, via the cache."""
        prompt = None
        if self.context is None and self.prompt_tokens is not None:
            prompt = [self.prompt_tokens] * self.num_envs
        output = self.model.act(
            list(observation_tokens),
            self.action_ranges,
            context=self.context,
            prompt=prompt,
            do_sample=self.do_sample,
            temperature=self.temperature,
            generator=self.generator,
            window_keep_fraction=self.window_keep_fraction,
            cache_implementation=self.cache_implementation,
            compile=self.compile,
            greedy_decoding=self.greedy_decoding,
        )
        self.context = output.context
        return output.action_tokens

    def act(self, observations: Any) -> np.ndarray:
        """Choose the next action of every environment.

        Returns:
            ``(num_envs, action_size)`` spec actions (``int64`` indices for discrete actions, ``float32``
            values inside ``[spec.action.low, spec.action.high]`` for continuous ones); a suite task's
            ``to_env_action`` turns one row into the environment's action.
        """
        tokens = self.act_tokens(self.observation_tokens(observations))
        self.steps_taken += 1
        actions = self.processor.decode_action(tokens, self.spec)
        return actions.astype(np.float32) if self.spec.action.kind == "continuous" else actions

    @property
    def num_reprefills(self) -> int:
        """How many times the current context overflowed ``max_position_embeddings`` and was re-run (see ``acting.py``)."""
        return self.context.num_reprefills if self.context is not None else 0

    @property
    def total_reprefills(self) -> int:
        """Re-prefills since the agent was built, over every :meth:`reset`."""
        return self._past_reprefills + self.num_reprefills


class RecomputeGatoAgent(GatoAgent):
    """:class:`GatoAgent` without a KV cache: a full forward pass over the window for every action token.

    The window is kept by the cached path's rule (``overflow_drops``: the prompt, then whole time steps; on
    overflow the oldest steps are dropped, the prompt last), so greedy actions must equal the cached agent's. Quadratically slower; a test reference and a benchmark baseline.
    Greedy only.
    """

    def __init__(self, model: torch.nn.Module, processor: Any, spec: TaskSpec, **kwargs: Any) -> None:
        if kwargs.get("do_sample"):
            raise ValueError("RecomputeGatoAgent is greedy only (do_sample=False)")
        if kwargs.get("cache_implementation", "dynamic") != "dynamic" or kwargs.get("compile"):
            raise ValueError("RecomputeGatoAgent keeps no cache: cache_implementation and compile do not apply")
        super().__init__(model, processor, spec, **kwargs)
        self.prompt_segment: dict[str, torch.Tensor] | None = None
        self.step_segments: list[dict[str, torch.Tensor]] = []

    def reset(self, prompt: Mapping[str, Any] | None = None, num_envs: int = 1) -> None:
        super().reset(prompt=prompt, num_envs=num_envs)
        config = self.model.config
        self.prompt_segment = (
            as_segment([self.prompt_tokens] * num_envs, config, self.device) if self.prompt_tokens is not None else None
        )
        self.step_segments = []

    @torch.no_grad()
    def act_tokens(self, observation_tokens: Sequence[Mapping[str, np.ndarray]]) -> torch.Tensor:
        config = self.model.config
        observation = as_segment(list(observation_tokens), config, self.device)
        ranges = torch.as_tensor(self.action_ranges, dtype=torch.long)[None].expand(self.num_envs, -1, -1)
        action_size = ranges.shape[1]
        step_length = observation["input_ids"].shape[1] + action_size
        max_length = config.max_position_embeddings

        prompt_length = self.prompt_segment["input_ids"].shape[1] if self.prompt_segment is not None else 0
        step_lengths = [step["input_ids"].shape[1] for step in self.step_segments]
        drop_steps, drop_prompt = overflow_drops(prompt_length, step_lengths, step_length, max_length, self.window_keep_fraction)
        del self.step_segments[:drop_steps]
        if drop_prompt:
            self.prompt_segment = None
        past = ([self.prompt_segment] if self.prompt_segment is not None else []) + self.step_segments + [observation]
        tokens: list[torch.Tensor] = []
        for dim in range(action_size):
            chosen = [action_segment(torch.stack(tokens, dim=1), config)] if tokens else []
            window = concat_segments(past + chosen)
            hidden = self.model.model(**segment_model_inputs(window), use_cache=False).last_hidden_state[:, -1]
            logits, offset = self.model.action_logits(hidden, ranges[:, dim])
            tokens.append(choose_tokens(logits, greedy_decoding=self.greedy_decoding) + offset)
        action_tokens = torch.stack(tokens, dim=1)
        self.step_segments.append(concat_segments([observation, action_segment(action_tokens, config)]))
        return action_tokens


__all__ = ["GatoAgent", "RecomputeGatoAgent", "split_batched_observation"]
