"""GatoAgent: a trained Gato acting in a batch of environments of one task (GATO_SPEC.md section 5).

One time step of every environment is one visible sequence (:meth:`GatoAgent.env_actions`), the way LeRobot's
``rollout`` reads:

1. task: each environment's observation → an episode step ``{field: value}`` (``task.to_episode_step``);
2. processor: each step → its tokens and the separator (``processor.tokenize_observation``), batched into
   tensors (``processor.collate``);
3. model: tensors in, one action token per action dimension out (``GatoForCausalLM.act``, KV-cached, each token
   inside its legal range ``processor.action_token_ranges``, chosen as the agent's :class:`ActingConfig` says);
4. processor: action tokens → spec actions (``processor.decode_action``);
5. task: each spec action → the environment's action (``task.to_env_action``).

The model keeps the cache between calls and re-prefills on time-step boundaries when the context would pass
``max_position_embeddings``, so episodes of any length work. The agent owns the task's two conversions; the
rollout (``gato.evaluation.rollout``) only steps environments and counts.

Batches of environments share one context: every environment must produce the same number of tokens per
step (true for every field kind but text), and they are reset together. How vector environments whose
episodes end at different times are handled is :func:`gato.evaluation.rollout.run_episodes`' business
(each wave of episodes runs to completion with a mask); see its docstring.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from gato.modeling_gato.acting import ActingConfig, GatoActingContext
from gato.suite.registry import Task
from gato.suite.task_spec import TaskSpec


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
    """Gato acting in ``num_envs`` environments of one task at once, with the model's KV cache kept across steps.

    Args:
        model: a ``GatoForCausalLM`` (put in eval mode here: patch positions are random in training mode).
        processor: the ``GatoProcessor`` it was trained with.
        task: a suite :class:`~gato.suite.registry.Task` (its ``to_episode_step`` / ``to_env_action`` convert the
            environment's observations and actions; :meth:`make_env` and :meth:`play` use its environment), or a bare
            :class:`TaskSpec` (observations are then spec observations ``{field: value}`` and actions spec actions).
        acting_config: how actions are chosen (:class:`~gato.modeling_gato.acting.ActingConfig`; default greedy,
            dynamic cache).
        seed: seed of the sampling generator (sampling only), restarted at every :meth:`reset`.
        prompt: a demonstration of the same task as an episode dict (``task_spec.py``), already cut to the
            prompt's length (``processor.make_prompt(..., mode="end")`` does that, as at deployment in the paper);
            every episode of every environment starts with it. ``None``: no prompt. Settable later (``agent.prompt``).

    Usage::

        agent = make_agent(model, processor, task)        # gato.evaluation.rollout: prompted as `gato eval` does
        agent.reset(num_envs=4)
        env_actions = agent.act(vector_env_observation)   # (4, ...) what the vector env steps with
        agent.reset()                                     # one environment:
        env_action = agent(observation)
    """

    def __init__(
        self,
        model: torch.nn.Module,
        processor: Any,
        task: Task | TaskSpec,
        *,
        acting_config: ActingConfig | None = None,
        seed: int = 0,
        prompt: Mapping[str, Any] | None = None,
    ) -> None:
        acting_config = ActingConfig() if acting_config is None else acting_config
        if not isinstance(acting_config, ActingConfig):
            raise TypeError(f"acting_config: expected an ActingConfig, got {type(acting_config).__name__}")
        if isinstance(task, TaskSpec):
            self.task, self.spec = None, task
        elif isinstance(getattr(task, "spec", None), TaskSpec):
            self.task, self.spec = task, task.spec
        else:
            raise ValueError(f"task: expected a suite Task or a TaskSpec, got {type(task).__name__}")
        self.model = model.eval()
        self.processor = processor
        self.acting_config = acting_config
        self.seed = seed
        # (action_size, 2) legal [lo, hi) token ids per action dimension, shared by every environment.
        self.action_ranges = torch.as_tensor(processor.action_token_ranges(self.spec), dtype=torch.long)
        self.device = next(model.parameters()).device
        self.generator: torch.Generator | None = None
        self.num_envs = 0
        self.context: GatoActingContext | None = None
        self._past_reprefills = 0
        self._prompt: Mapping[str, Any] | None = None
        self.prompt_tokens: dict[str, np.ndarray] | None = None
        self.prompt = prompt

    @property
    def greedy_decoding(self) -> str:
        """The greedy rule of this task's actions: ``continuous_decoding`` for continuous ones, else the argmax."""
        return self.acting_config.greedy_decoding(self.spec.action.kind == "continuous")

    # --- the task's conversions ---------------------------------------------------------------------------------

    def to_episode_step(self, observation: Any) -> dict[str, Any]:
        """One environment observation → the episode step ``{field: value}`` (the task's conversion)."""
        return self.task.to_episode_step(observation) if self.task is not None else observation

    def to_env_action(self, action: np.ndarray) -> Any:
        """One spec action ``(action_size,)`` → the environment's action (the task's conversion)."""
        return self.task.to_env_action(action) if self.task is not None else action

    # --- episode boundaries -------------------------------------------------------------------------------------

    @property
    def prompt(self) -> Mapping[str, Any] | None:
        """The demonstration episodes start with (an episode dict), or ``None``."""
        return self._prompt

    @prompt.setter
    def prompt(self, prompt: Mapping[str, Any] | None) -> None:
        self.prompt_tokens = None
        if prompt is not None:
            sequences = self.processor.tokenize_episode(prompt, self.spec)
            if len(sequences) != 1:
                raise ValueError(
                    f"prompt: the demonstration needs {len(sequences)} sequences of max_length="
                    f"{self.processor.max_length}; cut it with processor.make_prompt first"
                )
            self.prompt_tokens = sequences[0]
        self._prompt = prompt

    def reset(self, num_envs: int = 1) -> None:
        """Start new episodes, each with the prompt, in ``num_envs`` environments: forget the context."""
        if num_envs < 1:
            raise ValueError(f"num_envs: expected ≥ 1, got {num_envs}")
        self.num_envs = num_envs
        self._past_reprefills += self.num_reprefills
        self.context = None
        if self.acting_config.do_sample:
            self.generator = torch.Generator(device=self.device).manual_seed(self.seed)

    # --- one time step -----------------------------------------------------------------------------------------

    def env_actions(self, observations: Any) -> list[Any]:
        """One time step of every environment: env observations → env actions, the whole acting sequence.

        ``observations`` is a vector env's batched observation (array ``(B, ...)`` or dict of them) or a list of
        per-environment observations.
        """
        steps = [self.to_episode_step(observation) for observation in self.split(observations)]  # 1. task
        inputs = self.observation_inputs(steps)  # 2. processor: tokens → tensors
        tokens = self.act_tokens(inputs)  # 3. model: tensors in, action tokens out
        actions = self.decode_actions(tokens)  # 4. processor: tokens → spec actions
        return [self.to_env_action(action) for action in actions]  # 5. task

    def act(self, observations: Any) -> np.ndarray:
        """:meth:`env_actions` stacked as a vector environment steps them: ``(num_envs, ...)``."""
        return np.stack([np.asarray(action) for action in self.env_actions(observations)])

    def __call__(self, observation: Any) -> Any:
        """One environment (``reset(num_envs=1)``): one env observation → one env action."""
        if self.num_envs > 1:
            raise ValueError(
                f"agent(observation) acts in one environment; the agent was reset for {self.num_envs}: use act()"
            )
        return self.env_actions([observation])[0]

    def split(self, observations: Any) -> list[Any]:
        """A vector env's batched observation (or a list of them) → one observation per environment."""
        if self.num_envs == 0:
            raise ValueError("reset(num_envs=...) must be called before acting")
        per_env = (
            observations if isinstance(observations, list) else split_batched_observation(observations, self.num_envs)
        )
        if len(per_env) != self.num_envs:
            raise ValueError(f"observations: expected {self.num_envs} environments, got {len(per_env)}")
        return per_env

    def observation_inputs(self, steps: list[Mapping[str, Any]]) -> Any:
        """Episode steps (one per environment) → the model's batched input tensors (observation + separator)."""
        return self.processor.collate([self.processor.tokenize_observation(step, self.spec) for step in steps])

    def act_tokens(self, inputs: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """Batched observation tensors → ``(num_envs, action_size)`` action token ids, via the model's cache."""
        prompt = None
        if self.context is None and self.prompt_tokens is not None:
            prompt = self.processor.collate([self.prompt_tokens] * self.num_envs)
        output = self.model.act(
            inputs,
            self.action_ranges,
            context=self.context,
            prompt=prompt,
            acting_config=self.acting_config,
            generator=self.generator,
            continuous_actions=self.spec.action.kind == "continuous",
        )
        self.context = output.context
        return output.action_tokens

    def decode_actions(self, tokens: torch.Tensor) -> np.ndarray:
        """Action tokens → ``(num_envs, action_size)`` spec actions (``int64`` indices for discrete actions,
        ``float32`` values inside ``[spec.action.low, spec.action.high]`` for continuous ones)."""
        actions = self.processor.decode_action(tokens, self.spec)
        return actions.astype(np.float32) if self.spec.action.kind == "continuous" else actions

    # --- the task's environment -----------------------------------------------------------------------------

    def make_env(self, seed: int = 0) -> Any:
        """A fresh gymnasium environment of the task (horizon applied)."""
        return self._suite_task("make_env").make_env(seed)

    def play(self, episodes: int = 1, seed: int = 0, max_steps: int | None = None) -> list[float]:
        """Play ``episodes`` episodes one at a time (the evaluation's reset seeds); returns their undiscounted
        returns and leaves the agent reset for one environment."""
        from .rollout import run_episodes

        returns, _, _, _ = run_episodes(
            self, self._suite_task("play"), episodes, num_envs=1, seed=seed, max_steps=max_steps, progress=False
        )
        self.reset()
        return [float(value) for value in returns]

    def _suite_task(self, what: str) -> Task:
        if self.task is None:
            raise ValueError(
                f"{what}: the agent was built from a bare TaskSpec; build it from a suite Task to have environments"
            )
        return self.task

    @property
    def num_reprefills(self) -> int:
        """How many times the current context overflowed ``max_position_embeddings`` and was re-run (see ``acting.py``)."""
        return self.context.num_reprefills if self.context is not None else 0

    @property
    def total_reprefills(self) -> int:
        """Re-prefills since the agent was built, over every :meth:`reset`."""
        return self._past_reprefills + self.num_reprefills


__all__ = ["GatoAgent", "split_batched_observation"]
