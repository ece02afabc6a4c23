"""Record episodes of this package's schema from any gymnasium environment and any policy.

A policy is a callable ``observation -> action`` in the environment's own formats. Two adapters turn
those into the spec's formats: ``to_episode_step(observation) -> {field_name: value}`` and
``from_env_action(action) -> array (action_size,)``. Built-in tasks bring their own (``Task``); for a
user's environment the defaults cover the common cases (a dict observation whose keys are the spec's
field names, or an array observation when the spec has exactly one field).

Recording your own task::

    import gymnasium as gym
    from gato.episodes import record_episodes
    from gato.suite.task_spec import ActionSpec, ObservationField, TaskSpec

    spec = TaskSpec("my-cartpole", (ObservationField("state", "continuous", (4,)),),
                    ActionSpec("discrete", size=1, num_values=2))
    env = gym.make("CartPole-v1")
    dataset = record_episodes(env, lambda obs: int(obs[2] + obs[3] > 0), spec,
                              num_episodes=10, seed=0, out="data/my-cartpole")
"""

from __future__ import annotations

import os
import zlib
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from datasets import Dataset
from gato.suite.spaces import SPACES_KEY, env_adapters, with_env
from gato.suite.task_spec import TaskSpec

from .writer import EpisodeWriter, episodes_to_dataset

if TYPE_CHECKING:  # the suite is optional at import time; only its Task type is used
    from gato.suite.registry import Task

Policy = Callable[[Any], Any]
NOISE_STREAM = 0x4E015E  # seeds action-noise generators apart from everything else seeded by an episode seed


def episode_seed(seed: int, task_name: str, index: int) -> int:
    """The ``env.reset`` seed of episode ``index`` of ``task_name`` in a collection generated with ``seed``.

    Derived with :class:`numpy.random.SeedSequence` from (seed, crc32(task name), index): stable across
    processes and Python versions (unlike ``hash``), independent between tasks and episodes.
    """
    entropy = [int(seed), zlib.crc32(task_name.encode("utf-8")), int(index)]
    return int(np.random.SeedSequence(entropy).generate_state(1, dtype=np.uint32)[0])


def default_to_episode_step(spec: TaskSpec) -> Callable[[Any], dict[str, Any]]:
    """Observation → spec fields: as the spec's space layout says (``gato.suite.spaces.spec_from_env``), else dict
    observations by key and a bare observation for a one-field spec."""
    if SPACES_KEY in spec.extra:
        return env_adapters(spec)[0]
    names = [field.name for field in spec.observations]

    def to_episode_step(observation: Any) -> dict[str, Any]:
        if isinstance(observation, Mapping):
            missing = [name for name in names if name not in observation]
            if missing:
                raise ValueError(
                    f"task {spec.name!r}: observation has no key(s) {missing}; keys are {sorted(observation)}. "
                    "Pass to_episode_step= to map the observation to the spec's fields"
                )
            return {name: observation[name] for name in names}
        if len(names) != 1:
            raise ValueError(
                f"task {spec.name!r}: a non-dict observation fits a one-field spec only, the spec has {names}; "
                "pass to_episode_step="
            )
        return {names[0]: observation}

    return to_episode_step


def default_from_env_action(spec: TaskSpec) -> Callable[[Any], np.ndarray]:
    """Environment action → ``(action_size,)`` array (scalars and arrays are flattened; a spec from spaces shifts and
    rescales as its layout says)."""
    if SPACES_KEY in spec.extra:
        return env_adapters(spec)[2]

    def from_env_action(action: Any) -> np.ndarray:
        return np.asarray(action).reshape(spec.action.size)

    return from_env_action


def record_episode(
    env: Any,
    policy: Policy | None,
    spec: TaskSpec,
    *,
    seed: int | None = None,
    make_policy: Callable[[Any], Policy] | None = None,
    to_episode_step: Callable[[Any], dict[str, Any]] | None = None,
    from_env_action: Callable[[Any], Any] | None = None,
    max_steps: int | None = None,
    execute: Callable[[Any, Any], Any] | None = None,
) -> dict[str, Any]:
    """Run one episode and return it as an episode dict (unvalidated; the writer validates).

    Args:
        env: a gymnasium environment (``reset(seed=)`` / ``step``).
        policy: ``observation -> action``; or None with ``make_policy(env) -> policy``, built after
            ``reset`` (experts that read the environment's state, such as BabyAI's bot, need that).
            A policy with a ``reset()`` method has it called before the episode; one with an
            ``executed(action)`` method is told, after each step, the action the environment executed
            (differs from its own under ``execute``: experts that keep a plan, such as BabyAI's bot, replan
            from what really happened).
        seed: the ``env.reset`` seed (also seeds ``env.action_space`` for random policies).
        max_steps: cut the episode after this many actions (``terminated`` is then False).
        execute: ``(policy action, observation) -> executed action`` (environment formats). The environment
            steps with the executed action while the episode records the policy's: noise injection in the style
            of DART (Laskey et al. 2017, :func:`action_noise`), or a learner acting while the expert labels
            (DAgger, ``gato.episodes.dagger``), so that the data shows the expert recovering from states it
            would not reach by itself. Default: execute the policy's action.

    Returns:
        ``{"task", "seed", "observations": {name: (T, *shape)}, "actions": (T, size), "rewards": (T,),
        "terminated": bool}``: observation ``t`` is the one action ``t`` was chosen from, and
        ``rewards[t]`` is what the environment returned for it.
    """
    to_episode_step = to_episode_step or default_to_episode_step(spec)
    from_env_action = from_env_action or default_from_env_action(spec)
    observation, _ = env.reset(seed=seed)
    if seed is not None and hasattr(env, "action_space"):
        env.action_space.seed(seed)
    if policy is None:
        if make_policy is None:
            raise ValueError("record_episode: pass a policy or make_policy")
        policy = make_policy(env)
    elif callable(getattr(policy, "reset", None)):
        policy.reset()
    steps: list[dict[str, Any]] = []
    actions, rewards = [], []
    terminated = False
    while max_steps is None or len(actions) < max_steps:
        steps.append(to_episode_step(observation))
        env_action = policy(observation)
        actions.append(np.asarray(from_env_action(env_action)).reshape(spec.action.size))
        executed = execute(env_action, observation) if execute else env_action
        try:
            observation, reward, terminated, truncated, _ = env.step(executed)
        except AssertionError as error:  # gymnasium's environments assert that an action is in their action space
            raise ValueError(
                f"{spec.name}: the environment refused the action {executed!r} at step {len(actions) - 1} "
                f"({error}); expected an action of {getattr(env, 'action_space', 'its action space')}"
            ) from error
        if callable(getattr(policy, "executed", None)):
            policy.executed(executed)
        rewards.append(float(reward))
        if terminated or truncated:
            break
    observations = {}
    for field in spec.observations:
        values = [step[field.name] for step in steps]
        observations[field.name] = (
            [str(value) for value in values] if field.kind == "text" else np.stack([np.asarray(v) for v in values])
        )
    return {
        "task": spec.name,
        "seed": -1 if seed is None else int(seed),
        "observations": observations,
        "actions": np.stack(actions),
        "rewards": np.asarray(rewards, dtype=np.float64),
        "terminated": bool(terminated),
    }


def check_action_noise(spec: TaskSpec, noise: float) -> None:
    """``noise`` must be a standard deviation ≥ 0 (continuous actions) or a probability in [0, 1] (discrete)."""
    if not noise >= 0 or (spec.action.kind == "discrete" and noise > 1):
        expected = "a probability in [0, 1]" if spec.action.kind == "discrete" else "a standard deviation ≥ 0"
        raise ValueError(f"action_noise: expected {expected} for {spec.action.kind} actions, got {noise}")


def action_noise(
    spec: TaskSpec,
    noise: float,
    rng: np.random.Generator,
    to_env_action: Callable[[Any], Any],
    from_env_action: Callable[[Any], Any],
    choices: Sequence[int] | None = None,
) -> Callable[[Any], Any]:
    """An ``execute`` perturbation for :func:`record_episode`: the expert's action with noise.

    Continuous actions: Gaussian noise of standard deviation ``noise`` added in the spec's units (the
    ``[low, high]`` range the spec bins, ``[-1, 1]`` for the suite), then clipped to that range. Discrete
    actions: with probability ``noise`` every dimension is replaced by a value drawn uniformly from
    ``choices`` (default: all ``num_values``; a task narrows it where a random action would leave a state
    its expert cannot go on from, e.g. BabyAI's toggle opening a box).
    """
    check_action_noise(spec, noise)
    size = spec.action.size
    values = np.arange(spec.action.num_values) if choices is None else np.asarray(choices, dtype=np.int64)
    if spec.action.kind == "discrete" and (
        values.size == 0 or values.min() < 0 or values.max() >= spec.action.num_values
    ):
        raise ValueError(
            f"action_noise: choices must be non-empty values in [0, {spec.action.num_values}), got {list(values)}"
        )

    def execute(env_action: Any, observation: Any = None) -> Any:  # noise ignores the observation
        if spec.action.kind == "continuous":
            value = np.asarray(from_env_action(env_action), dtype=np.float64).reshape(size)
            noisy = np.clip(value + rng.normal(0.0, noise, size), spec.action.low, spec.action.high)
            return to_env_action(noisy.astype(np.float32))
        if rng.random() < noise:
            return to_env_action(values[rng.integers(0, values.size, size)])
        return env_action

    return execute


def record_task_episode(task: "Task", seed: int, env: Any | None = None, noise: float = 0.0) -> dict[str, Any]:
    """One expert episode of a built-in :class:`~gato.suite.registry.Task` (builds ``env`` if not given).

    ``noise`` > 0 executes the expert's actions with :func:`action_noise` (drawn from a generator seeded by
    ``seed``, so the episode is still a function of its seed); the recorded actions stay the expert's.
    """
    own_env = env is None
    env = task.make_env(seed) if own_env else env
    execute = None
    if noise:
        rng = np.random.default_rng([seed, NOISE_STREAM])
        execute = action_noise(
            task.spec, noise, rng, task.to_env_action, task.from_env_action, choices=task.extra.get("noise_actions")
        )
    try:
        return record_episode(
            env,
            None,
            task.spec,
            seed=seed,
            make_policy=task.make_expert,
            to_episode_step=task.to_episode_step,
            from_env_action=task.from_env_action,
            max_steps=task.max_episode_steps,
            execute=execute,
        )
    finally:
        if own_env:
            env.close()


def record_episodes(
    env: Any,
    policy: Policy | None,
    spec: TaskSpec,
    num_episodes: int,
    *,
    seed: int = 0,
    out: str | os.PathLike | None = None,
    make_policy: Callable[[Any], Policy] | None = None,
    to_episode_step: Callable[[Any], dict[str, Any]] | None = None,
    from_env_action: Callable[[Any], Any] | None = None,
    max_steps: int | None = None,
    overwrite: bool = False,
) -> Dataset:
    """Record ``num_episodes`` episodes into a :class:`Dataset` of the schema.

    Episode ``i`` is reset with :func:`episode_seed` ``(seed, spec.name, i)``. With ``out`` the
    episodes go through :class:`~gato.episodes.writer.EpisodeWriter` (validated, sharded, resumable)
    and the returned dataset is memory-mapped from ``out``; without it, the dataset is in memory. The stored spec
    carries the environment's id and arguments (``spec.extra``, from ``env.spec`` when the spec has none), so that
    ``gato train`` / ``gato eval`` can rebuild the task from the data and the model alone.
    """
    spec = with_env(spec, env)

    def episode(index: int) -> dict[str, Any]:
        return record_episode(
            env,
            policy,
            spec,
            seed=episode_seed(seed, spec.name, index),
            make_policy=make_policy,
            to_episode_step=to_episode_step,
            from_env_action=from_env_action,
            max_steps=max_steps,
        )

    if out is None:
        return episodes_to_dataset((episode(index) for index in range(num_episodes)), spec)
    with EpisodeWriter(out, spec, overwrite=overwrite) as writer:
        for index in range(writer.num_episodes, num_episodes):  # resumes after episodes already in shards
            writer.add(episode(index))
    return writer.dataset
