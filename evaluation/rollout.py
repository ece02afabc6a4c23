"""Rollouts: the agent plays a suite task's episodes in a gymnasium vector environment.

Deployment follows GATO_SPEC.md sections 4–5: before acting, the agent is given a prompt — a
demonstration of the task recorded with the task's expert (its own seed, never one of the evaluation
episodes' seeds), cut from the **end** of the episode to ``prompt_tokens`` tokens (goal conditioning) —
then observation → action tokens → environment step, the context being the last
``max_position_embeddings`` tokens.

**Vector environments and episode ends.** The agent's environments share one context (one KV cache,
equal lengths), which cannot restart one environment's episode alone. Episodes therefore run in *waves*:
``num_envs`` episodes start together (``reset(seed=[...])``); an environment whose episode ends is masked —
its return stops accumulating, and whatever gymnasium's next-step autoreset gives it afterwards is still
stepped (the batch must stay whole) but never counted — until every episode of the wave has ended
(or reached the task's ``max_episode_steps``, which ``make_env``'s ``TimeLimit`` enforces anyway). Then the
vector env and the agent are reset for the next wave. Every counted episode therefore starts from a
fresh context with the prompt, exactly as a single-environment rollout would.

Tasks with a text observation field (BabyAI missions) make observations of different lengths in
different environments; they run one environment at a time (``num_envs`` is set to 1 for them).
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from gato.episodes.recorder import episode_seed, record_task_episode
from gato.modeling_gato.acting import ActingConfig
from gato.suite.registry import Task
from tqdm.auto import tqdm

from .agent import GatoAgent


def default_prompt_tokens(processor: Any, model_dir: str | os.PathLike | None = None) -> int:
    """The prompt length the model was trained with (:func:`~gato.training.config.prompt_token_budget` of the
    processor's ``max_length``), the fraction from ``model_dir``'s ``training_config.yaml`` when it has one, else
    the training default."""
    from gato.training.config import TrainingConfig, prompt_token_budget
    from gato.training.run_training import TRAINING_CONFIG_FILE

    path = Path(model_dir) / TRAINING_CONFIG_FILE if model_dir is not None else None
    fraction = (
        TrainingConfig.from_yaml(path) if path is not None and path.exists() else TrainingConfig()
    ).prompt_fraction
    return prompt_token_budget(processor.max_length, fraction)


# Evaluation episodes and prompt demonstrations draw reset seeds from streams of their own
# (``episode_seed(seed, prefix + task name, i)``), disjoint from each other and from the episodes that
# ``gato data generate`` records (``episode_seed(seed, task name, i)``): evaluating with the training data's
# seed never replays a training episode.
EVALUATION_STREAM = "eval/"
PROMPT_STREAM = "prompt/"


@dataclass
class TaskResult:
    """The outcome of evaluating one task; ``to_dict`` is its entry in ``eval_results.json`` (docs/EVALUATION.md)."""

    task: str
    domain: str
    episodes: int
    num_envs: int
    returns: list[float]
    lengths: list[int]
    mean_return: float
    std_return: float
    mean_length: float
    expert_return: float | None
    random_return: float | None
    normalized_score: float | None
    success_rate: float | None
    prompt_tokens: int
    seconds: float
    actions_per_second: float
    reprefills: int
    seeds: list[int] = field(default_factory=list)
    # Teacher-forced accuracy on the task's held-out expert episodes (``imitation.py``); set by ``run_evaluation``
    # when ``--data`` holds the task, else ``None``.
    imitation: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def finite_or_none(value: float) -> float | None:
    """JSON has no NaN: missing reference returns and undefined scores are ``null``."""
    return float(value) if value is not None and math.isfinite(value) else None


def make_vector_env(task: Task, num_envs: int, seed: int) -> Any:
    """A gymnasium ``SyncVectorEnv`` of ``num_envs`` copies of the task's environment (next-step autoreset).

    Synchronous: on a CPU the model's forward pass dominates, and the environments' steps are cheap
    next to it.
    """
    import gymnasium as gym

    return gym.vector.SyncVectorEnv([lambda index=index: task.make_env(seed + index) for index in range(num_envs)])


def demonstration_prompt(task: Task, processor: Any, prompt_tokens: int, seed: int) -> dict[str, Any] | None:
    """An expert episode of ``task`` (reset seed from the :data:`PROMPT_STREAM` stream), cut from its end to at most
    ``prompt_tokens`` tokens of whole time steps; ``None`` when ``prompt_tokens`` is 0, one step does not fit, or the task
    has no expert (a task rebuilt from a model's stored spec, ``registry.task_from_env_id``)."""
    if prompt_tokens <= 0 or task.make_expert is None:
        return None
    episode = record_task_episode(task, episode_seed(seed, PROMPT_STREAM + task.name, 0))
    try:
        return processor.make_prompt(episode, task.spec, prompt_tokens, mode="end")
    except ValueError:  # a single time step is longer than the budget (e.g. large image observations)
        return None


def make_agent(
    model: torch.nn.Module,
    processor: Any,
    task: Task,
    acting_config: ActingConfig | None = None,
    *,
    seed: int = 0,
    model_dir: str | os.PathLike | None = None,
) -> GatoAgent:
    """The agent as ``gato eval`` deploys it on ``task``: prompted with an expert demonstration
    (:func:`demonstration_prompt`, seeded by ``seed``) of ``acting_config.prompt_tokens`` tokens — when that is
    ``None``, as many as the model was trained with (:func:`default_prompt_tokens` of ``model_dir``)."""
    acting_config = ActingConfig() if acting_config is None else acting_config
    prompt_tokens = acting_config.prompt_tokens
    if prompt_tokens is None:
        prompt_tokens = default_prompt_tokens(processor, model_dir)
    prompt = demonstration_prompt(task, processor, prompt_tokens, seed)
    return GatoAgent(model, processor, task, acting_config=acting_config, seed=seed, prompt=prompt)


def run_episodes(
    agent: GatoAgent,
    task: Task,
    episodes: int,
    *,
    num_envs: int = 1,
    seed: int = 0,
    max_steps: int | None = None,
    progress: bool = True,
    before_step: Callable[[Any, np.ndarray, list[int | None]], None] | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[int]]:
    """Play ``episodes`` episodes of ``task`` with ``agent`` in waves of ``num_envs`` (see the module docstring); every
    episode starts with the agent's prompt. The agent turns observations into environment actions (``agent.reset``,
    ``agent.act``); this loop only steps the environments and counts.

    Args:
        max_steps: cut every episode after this many steps (default: the task's ``max_episode_steps``).
        before_step: called before every step of the vector env as ``before_step(env, env_actions, episodes)``:
            the ``SyncVectorEnv`` (``env.envs[i].unwrapped`` is environment ``i``'s state), the actions about
            to be executed and, per environment, the index of the episode it is playing (``None`` once that
            episode has ended). For analyses that read the environment's state (``scripts/babyai_failures.py``).

    Returns:
        ``(returns (episodes,) float64, lengths (episodes,) int64, successes (episodes,) float64 — NaN where
        the task reports no ``info["success"]``, reset seeds)``. Episode ``i`` is reset with
        ``episode_seed(seed, EVALUATION_STREAM + task.name, i)``.
    """
    own_task = getattr(agent, "task", None)
    if own_task is not None and own_task.name != task.name:
        raise ValueError(f"task: the agent acts in {own_task.name!r}, got episodes of {task.name!r}")
    if episodes < 1:
        raise ValueError(f"episodes: expected ≥ 1, got {episodes}")
    num_envs = max(1, min(num_envs, episodes))
    max_steps = max_steps or task.max_episode_steps
    seeds = [episode_seed(seed, EVALUATION_STREAM + task.name, index) for index in range(episodes)]
    returns = np.zeros(episodes, dtype=np.float64)
    lengths = np.zeros(episodes, dtype=np.int64)
    successes = np.full(episodes, np.nan)
    env = make_vector_env(task, num_envs, seed)
    bar = tqdm(total=episodes, desc=task.name, unit="ep", disable=not progress, leave=False)
    try:
        for start in range(0, episodes, num_envs):
            count = min(num_envs, episodes - start)
            # The last wave may have fewer episodes than environments: the spare ones run masked from the start.
            wave_seeds = seeds[start : start + count] + [seeds[start]] * (num_envs - count)
            observation, _ = env.reset(seed=wave_seeds)
            agent.reset(num_envs=num_envs)
            active = np.arange(num_envs) < count
            wave_returns = np.zeros(num_envs)
            wave_lengths = np.zeros(num_envs, dtype=np.int64)
            wave_success = np.full(num_envs, np.nan)
            while active.any():
                env_actions = agent.act(observation)
                if before_step is not None:
                    before_step(env, env_actions, [start + slot if active[slot] else None for slot in range(num_envs)])
                observation, reward, terminated, truncated, info = env.step(env_actions)
                wave_returns += np.where(active, np.asarray(reward, dtype=np.float64), 0.0)
                wave_lengths += active
                if "success" in info:
                    success = np.asarray(info["success"], dtype=np.float64)
                    seen = np.asarray(info.get("_success", np.ones(num_envs, dtype=bool)), dtype=bool)
                    # Meta-World never terminates on success: an episode succeeded if it was ever successful.
                    update = active & seen
                    wave_success[update] = np.fmax(np.nan_to_num(wave_success[update], nan=0.0), success[update])
                ended = active & (np.asarray(terminated) | np.asarray(truncated) | (wave_lengths >= max_steps))
                active &= ~ended
                bar.update(int(ended[:count].sum()))
            returns[start : start + count] = wave_returns[:count]
            lengths[start : start + count] = wave_lengths[:count]
            successes[start : start + count] = wave_success[:count]
    finally:
        bar.close()
        env.close()
    return returns, lengths, successes, seeds


def evaluate_task(
    model: torch.nn.Module,
    processor: Any,
    task: Task,
    episodes: int = 10,
    *,
    acting_config: ActingConfig | None = None,
    num_envs: int = 4,
    seed: int = 0,
    max_steps: int | None = None,
    progress: bool = True,
) -> TaskResult:
    """Evaluate ``model`` on one suite task: mean return ± std, expert-normalized score, success rate.

    Args:
        episodes: evaluation episodes (reset seeds ``episode_seed(seed, EVALUATION_STREAM + task.name, i)``).
        acting_config: how the agent acts and how long its prompt is (:func:`make_agent`; ``prompt_tokens=None``:
            the training default's fraction of the processor's ``max_length``).
        num_envs: environments stepped together (1 for tasks with text observations, see the module docstring).
        seed: seeds the episodes, the prompt demonstration and the sampler.
        max_steps: cut episodes after this many steps (default: the task's horizon).
    """
    if any(field.kind == "text" for field in task.spec.observations):
        num_envs = 1
    agent = make_agent(model, processor, task, acting_config, seed=seed)
    prompt = agent.prompt
    used_prompt_tokens = int(processor.episode_step_lengths(prompt, task.spec).sum()) if prompt is not None else 0
    started = time.perf_counter()
    returns, lengths, successes, seeds = run_episodes(
        agent, task, episodes, num_envs=num_envs, seed=seed, max_steps=max_steps, progress=progress
    )
    seconds = time.perf_counter() - started
    mean_return = float(returns.mean())
    try:
        score = float(task.normalized_score(mean_return))
    except ValueError:  # no measured expert/random returns for this task
        score = math.nan
    actual_envs = max(1, min(num_envs, episodes))
    waves_steps = sum(int(lengths[start : start + actual_envs].max()) for start in range(0, episodes, actual_envs))
    return TaskResult(
        task=task.name,
        domain=task.domain,
        episodes=episodes,
        num_envs=actual_envs,
        returns=[float(value) for value in returns],
        lengths=[int(value) for value in lengths],
        mean_return=mean_return,
        std_return=float(returns.std()),
        mean_length=float(lengths.mean()),
        expert_return=finite_or_none(task.expert_return),
        random_return=finite_or_none(task.random_return),
        normalized_score=finite_or_none(score),
        success_rate=finite_or_none(float(np.nanmean(successes))) if not np.isnan(successes).all() else None,
        prompt_tokens=used_prompt_tokens,
        seconds=seconds,
        actions_per_second=float(waves_steps * actual_envs / seconds) if seconds > 0 else 0.0,
        reprefills=agent.total_reprefills,
        seeds=seeds,
    )


def evaluate_tasks(
    model: torch.nn.Module, processor: Any, tasks: Sequence[Task], episodes: int = 10, **kwargs: Any
) -> list[TaskResult]:
    """:func:`evaluate_task` for each task, in order (keywords as there)."""
    return [evaluate_task(model, processor, task, episodes, **kwargs) for task in tasks]


__all__ = [
    "TaskResult",
    "default_prompt_tokens",
    "demonstration_prompt",
    "evaluate_task",
    "evaluate_tasks",
    "make_agent",
    "make_vector_env",
    "run_episodes",
]
