"""GatoAgent on real gymnasium tasks with a tiny random model: full episodes, legal actions, vector envs,
contexts longer than the model's window, and cached greedy actions equal to full-recompute ones."""

import numpy as np
import pytest
import torch

from gato.evaluation.agent import GatoAgent, RecomputeGatoAgent, split_batched_observation
from gato.evaluation.rollout import demonstration_prompt, evaluate_task, make_vector_env, run_episodes
from gato.modeling_gato import GatoConfig, GatoForCausalLM
from gato.suite.registry import get_task
from gato.training.run_training import build_processor


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # see tests/conftest.py


def tiny(context: int = 64, seed: int = 0):
    config = GatoConfig.from_preset("gato-tiny", max_position_embeddings=context)
    torch.manual_seed(seed)
    return GatoForCausalLM(config).eval(), build_processor(config, context)


def play(task, agent, num_envs: int, seed: int, max_steps: int = 10_000):
    """Run one wave of episodes by hand; return (lengths, every env action taken)."""
    env = make_vector_env(task, num_envs, seed)
    observation, _ = env.reset(seed=[seed + i for i in range(num_envs)])
    agent.reset(num_envs=num_envs)
    active, lengths, taken = np.ones(num_envs, bool), np.zeros(num_envs, int), []
    while active.any() and lengths.max() < max_steps:
        env_actions = [task.to_env_action(action) for action in agent.act(observation)]
        taken += env_actions
        observation, _, terminated, truncated, _ = env.step(np.stack([np.asarray(a) for a in env_actions]))
        lengths += active
        active &= ~(terminated | truncated)
    env.close()
    return lengths, taken, env.single_action_space


def test_discrete_task_full_episodes_in_a_vector_env_with_legal_actions():
    model, processor = tiny()
    task = get_task("cartpole")
    agent = GatoAgent(model, processor, task.spec, to_episode_step=task.to_episode_step)
    lengths, taken, space = play(task, agent, num_envs=3, seed=0)
    assert (lengths >= 1).all() and len(taken) >= 3
    assert all(space.contains(np.int64(action)) for action in taken)


def test_continuous_task_runs_past_the_context_window_with_legal_actions():
    model, processor = tiny(context=48)
    task = get_task("pendulum")  # 3 observation values + separator + 1 action = 5 tokens a step; 200 steps
    agent = GatoAgent(model, processor, task.spec, to_episode_step=task.to_episode_step)
    lengths, taken, space = play(task, agent, num_envs=2, seed=1)
    assert lengths.tolist() == [task.max_episode_steps] * 2  # pendulum only ends by its time limit
    assert agent.num_reprefills > 0 and agent.context.length() <= 48
    assert all(space.contains(np.asarray(action, dtype=np.float32)) for action in taken)


@pytest.mark.parametrize("cache_implementation,continuous_decoding", [("dynamic", "median"), ("static", "median"), ("dynamic", "argmax")])
def test_cached_greedy_actions_equal_full_recompute_greedy_actions_with_a_prompt_and_overflow(cache_implementation, continuous_decoding):
    model, processor = tiny(context=40, seed=3)
    task = get_task("pendulum")
    prompt = demonstration_prompt(task, processor, prompt_tokens=10, seed=0)
    assert prompt is not None and len(prompt["actions"]) == 2  # whole steps of 5 tokens, from the end
    cached = GatoAgent(model, processor, task.spec, to_episode_step=task.to_episode_step, cache_implementation=cache_implementation,
                       continuous_decoding=continuous_decoding)
    naive = RecomputeGatoAgent(model, processor, task.spec, to_episode_step=task.to_episode_step,
                               continuous_decoding=continuous_decoding)
    env = make_vector_env(task, 2, seed=5)
    observation, _ = env.reset(seed=[5, 6])
    cached.reset(prompt=prompt, num_envs=2)
    naive.reset(prompt=prompt, num_envs=2)
    for _ in range(12):  # 10 + 12·5 tokens > 40: several re-prefills
        tokens = cached.act_tokens(cached.observation_tokens(observation))
        reference = naive.act_tokens(naive.observation_tokens(observation))
        assert torch.equal(tokens, reference)
        actions = processor.decode_action(tokens, task.spec)
        observation, *_ = env.step(np.stack([task.to_env_action(a) for a in actions]))
    env.close()
    assert cached.num_reprefills > 0


def test_continuous_actions_default_to_the_median_bin_and_discrete_ones_to_the_argmax():
    model, processor = tiny(seed=2)
    pendulum, cartpole = get_task("pendulum"), get_task("cartpole")
    assert GatoAgent(model, processor, pendulum.spec).greedy_decoding == "median"
    assert GatoAgent(model, processor, cartpole.spec, continuous_decoding="median").greedy_decoding == "argmax"
    median = GatoAgent(model, processor, pendulum.spec, to_episode_step=pendulum.to_episode_step)
    argmax = GatoAgent(model, processor, pendulum.spec, to_episode_step=pendulum.to_episode_step, continuous_decoding="argmax")
    observation, _ = pendulum.make_env(0).reset(seed=4)
    median.reset(num_envs=1)
    argmax.reset(num_envs=1)
    tokens = median.observation_tokens([observation])
    # a random model spreads its probability over the bins: the median bin is not the most likely one
    assert not torch.equal(median.act_tokens(tokens), argmax.act_tokens(tokens))
    with pytest.raises(ValueError, match="greedy_decoding"):
        GatoAgent(model, processor, pendulum.spec, continuous_decoding="mean")


def test_vector_env_waves_give_the_same_episodes_as_one_env_at_a_time():
    # Masked waves must not leak one environment's steps into another's episode, nor count autoreset steps.
    model, processor = tiny(seed=1)
    task = get_task("cartpole")
    agent = GatoAgent(model, processor, task.spec, to_episode_step=task.to_episode_step)
    seen: dict[int, list[int]] = {}

    def before_step(env, env_actions, episodes):  # which episode each environment steps, with which action
        assert env.num_envs == len(env_actions) == len(episodes) == 3
        for slot, index in enumerate(episodes):
            if index is not None:
                seen.setdefault(index, []).append(int(env_actions[slot]))

    batched = run_episodes(agent, task, episodes=5, num_envs=3, seed=7, progress=False, before_step=before_step)
    single = run_episodes(agent, task, episodes=5, num_envs=1, seed=7, progress=False)
    np.testing.assert_array_equal(batched[0], single[0])
    np.testing.assert_array_equal(batched[1], single[1])
    assert batched[3] == single[3] and len(set(batched[3])) == 5
    # The hook sees each counted step of each episode once, and none of the masked (ended or spare) ones.
    assert sorted(seen) == list(range(5)) and [len(seen[i]) for i in range(5)] == batched[1].tolist()


def test_sampling_is_seeded_and_legal():
    model, processor = tiny()
    task = get_task("acrobot")
    runs = []
    for _ in range(2):
        agent = GatoAgent(model, processor, task.spec, to_episode_step=task.to_episode_step, do_sample=True, temperature=2.0, seed=4)
        lengths, taken, space = play(task, agent, num_envs=2, seed=0, max_steps=15)
        assert all(space.contains(np.int64(a)) for a in taken)
        runs.append(taken)
    assert runs[0] == runs[1] and len(set(runs[0])) > 1


def test_static_cache_agent_samples_the_same_actions_as_the_dynamic_one():
    model, processor = tiny(context=48)
    task = get_task("acrobot")  # 6 values + separator + 1 action: 8 tokens a step, 25 steps overflow 48 tokens
    runs, reprefills = [], []
    for cache_implementation in ("dynamic", "static"):
        agent = GatoAgent(
            model, processor, task.spec, to_episode_step=task.to_episode_step, do_sample=True, temperature=2.0, seed=4,
            cache_implementation=cache_implementation,
        )
        runs.append(play(task, agent, num_envs=2, seed=0, max_steps=25)[1])
        reprefills.append(agent.num_reprefills)
    assert runs[0] == runs[1] and len(set(runs[0])) > 1
    assert reprefills[0] == reprefills[1] >= 2


def test_unknown_cache_implementation_and_compile_without_a_static_cache_are_value_errors():
    model, processor = tiny()
    spec = get_task("cartpole").spec
    with pytest.raises(ValueError, match="cache_implementation"):
        GatoAgent(model, processor, spec, cache_implementation="offloaded")
    with pytest.raises(ValueError, match="compile"):
        GatoAgent(model, processor, spec, compile=True)
    with pytest.raises(ValueError, match="cache_implementation"):
        RecomputeGatoAgent(model, processor, spec, cache_implementation="static")


def test_evaluate_task_reports_returns_and_a_normalized_score():
    model, processor = tiny()
    task = get_task("cartpole")
    result = evaluate_task(model, processor, task, episodes=3, num_envs=2, seed=0, progress=False)
    assert len(result.returns) == 3 and result.num_envs == 2 and result.prompt_tokens > 0
    assert result.mean_return == pytest.approx(np.mean(result.returns))
    expected = (result.mean_return - task.random_return) / (task.expert_return - task.random_return)
    assert result.normalized_score == pytest.approx(expected)


def test_split_batched_observation_splits_dicts_arrays_and_text_tuples():
    batched = {"image": np.arange(12).reshape(2, 2, 3), "mission": ("go left", "go right")}
    split = split_batched_observation(batched, 2)
    assert split[1]["mission"] == "go right" and split[1]["image"].tolist() == [[6, 7, 8], [9, 10, 11]]
    with pytest.raises(ValueError, match="batch of 3"):
        split_batched_observation(np.zeros((2, 4)), 3)
