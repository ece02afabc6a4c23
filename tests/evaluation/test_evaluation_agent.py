"""GatoAgent on real gymnasium tasks with a tiny random model: full episodes, legal actions, vector envs,
contexts longer than the model's window, cached greedy actions equal to full-recompute ones, and the one acting
sequence (task → processor → model → processor → task) equal to its steps done by hand."""

import numpy as np
import pytest
import torch
from gato.evaluation.agent import GatoAgent, split_batched_observation
from gato.evaluation.rollout import demonstration_prompt, evaluate_task, make_agent, make_vector_env, run_episodes
from gato.modeling_gato import GatoConfig, GatoForCausalLM
from gato.modeling_gato.acting import ActingConfig
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
        env_actions = agent.act(observation)
        taken += list(env_actions)
        observation, _, terminated, truncated, _ = env.step(env_actions)
        lengths += active
        active &= ~(terminated | truncated)
    env.close()
    return lengths, taken, env.single_action_space


def test_discrete_task_full_episodes_in_a_vector_env_with_legal_actions():
    model, processor = tiny()
    task = get_task("cartpole")
    agent = GatoAgent(model, processor, task)
    lengths, taken, space = play(task, agent, num_envs=3, seed=0)
    assert (lengths >= 1).all() and len(taken) >= 3
    assert all(space.contains(np.int64(action)) for action in taken)


def test_continuous_task_runs_past_the_context_window_with_legal_actions():
    model, processor = tiny(context=48)
    task = get_task("pendulum")  # 3 observation values + separator + 1 action = 5 tokens a step; 200 steps
    agent = GatoAgent(model, processor, task)
    lengths, taken, space = play(task, agent, num_envs=2, seed=1)
    assert lengths.tolist() == [task.max_episode_steps] * 2  # pendulum only ends by its time limit
    assert agent.num_reprefills > 0 and agent.context.length() <= 48
    assert all(space.contains(np.asarray(action, dtype=np.float32)) for action in taken)


@pytest.mark.parametrize(
    "cache_implementation,continuous_decoding", [("dynamic", "median"), ("static", "median"), ("dynamic", "argmax")]
)
def test_cached_greedy_actions_equal_full_recompute_greedy_actions_with_a_prompt_and_overflow(
    cache_implementation, continuous_decoding
):
    model, processor = tiny(context=40, seed=3)
    task = get_task("pendulum")
    prompt = demonstration_prompt(task, processor, prompt_tokens=10, seed=0)
    assert prompt is not None and len(prompt["actions"]) == 2  # whole steps of 5 tokens, from the end
    cached = GatoAgent(
        model,
        processor,
        task,
        prompt=prompt,
        acting_config=ActingConfig(cache_implementation=cache_implementation, continuous_decoding=continuous_decoding),
    )
    naive = GatoAgent(
        model,
        processor,
        task,
        prompt=prompt,
        acting_config=ActingConfig(use_cache=False, continuous_decoding=continuous_decoding),
    )
    env = make_vector_env(task, 2, seed=5)
    observation, _ = env.reset(seed=[5, 6])
    cached.reset(num_envs=2)
    naive.reset(num_envs=2)
    for _ in range(12):  # 10 + 12·5 tokens > 40: several re-prefills
        steps = [task.to_episode_step(obs) for obs in cached.split(observation)]
        tokens = cached.act_tokens(cached.observation_inputs(steps))
        reference = naive.act_tokens(naive.observation_inputs(steps))
        assert torch.equal(tokens, reference)
        actions = processor.decode_action(tokens, task.spec)
        observation, *_ = env.step(np.stack([task.to_env_action(a) for a in actions]))
    env.close()
    assert cached.num_reprefills > 0


def test_continuous_actions_default_to_the_median_bin_and_discrete_ones_to_the_argmax():
    model, processor = tiny(seed=2)
    pendulum, cartpole = get_task("pendulum"), get_task("cartpole")
    assert GatoAgent(model, processor, pendulum.spec).greedy_decoding == "median"
    assert (
        GatoAgent(
            model, processor, cartpole.spec, acting_config=ActingConfig(continuous_decoding="median")
        ).greedy_decoding
        == "argmax"
    )
    median = GatoAgent(model, processor, pendulum)
    argmax = GatoAgent(model, processor, pendulum, acting_config=ActingConfig(continuous_decoding="argmax"))
    observation, _ = pendulum.make_env(0).reset(seed=4)
    median.reset(num_envs=1)
    argmax.reset(num_envs=1)
    inputs = median.observation_inputs([pendulum.to_episode_step(observation)])
    # a random model spreads its probability over the bins: the median bin is not the most likely one
    assert not torch.equal(median.act_tokens(inputs), argmax.act_tokens(inputs))


def test_vector_env_waves_give_the_same_episodes_as_one_env_at_a_time():
    # Masked waves must not leak one environment's steps into another's episode, nor count autoreset steps.
    model, processor = tiny(seed=1)
    task = get_task("cartpole")
    agent = GatoAgent(model, processor, task)
    seen: dict[int, list[int]] = {}

    def before_step(env, env_actions, episodes):  # which episode each environment steps, with which action
        assert env.num_envs == len(env_actions) == len(episodes) == 3
        for slot, index in enumerate(episodes):
            if index is not None:
                seen.setdefault(index, []).append(int(env_actions[slot]))

    batched = run_episodes(agent, task, episodes=5, num_envs=3, seed=7, progress=False, before_step=before_step)
    single = run_episodes(agent, task, episodes=5, num_envs=1, seed=7, progress=False)
    with pytest.raises(ValueError, match="task: the agent acts in 'cartpole', got episodes of 'acrobot'"):
        run_episodes(agent, get_task("acrobot"), episodes=1, progress=False)
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
        agent = GatoAgent(model, processor, task, acting_config=ActingConfig(do_sample=True, temperature=2.0), seed=4)
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
            model,
            processor,
            task,
            seed=4,
            acting_config=ActingConfig(do_sample=True, temperature=2.0, cache_implementation=cache_implementation),
        )
        runs.append(play(task, agent, num_envs=2, seed=0, max_steps=25)[1])
        reprefills.append(agent.num_reprefills)
    assert runs[0] == runs[1] and len(set(runs[0])) > 1
    assert reprefills[0] == reprefills[1] >= 2


def test_the_agent_refuses_what_it_cannot_act_with():
    model, processor = tiny()
    task = get_task("cartpole")
    with pytest.raises(TypeError, match="acting_config: expected an ActingConfig, got dict"):
        GatoAgent(model, processor, task, acting_config={"cache_implementation": "static"})
    with pytest.raises(ValueError, match="task: expected a suite Task or a TaskSpec, got str"):
        GatoAgent(model, processor, "cartpole")
    bare = GatoAgent(model, processor, task.spec)
    with pytest.raises(ValueError, match="reset"):
        bare.act(np.zeros((1, 4), dtype=np.float32))
    with pytest.raises(ValueError, match="make_env: the agent was built from a bare TaskSpec"):
        bare.make_env(0)
    agent = GatoAgent(model, processor, task)
    agent.reset(num_envs=2)
    with pytest.raises(ValueError, match="acts in one environment"):
        agent(np.zeros(4, dtype=np.float32))


def test_one_acting_sequence_equals_its_steps_by_hand():
    """``agent.act``: env observation → task.to_episode_step → processor (tokenize + collate) → model.act →
    processor.decode_action → task.to_env_action, with the prompt at the start of the episode — the same actions
    as those five steps written out against the model's API."""
    model, processor = tiny(context=40, seed=3)
    task = get_task("pendulum")
    prompt = demonstration_prompt(task, processor, prompt_tokens=10, seed=0)
    agent = GatoAgent(model, processor, task, prompt=prompt)
    env = make_vector_env(task, 2, seed=5)
    observation, _ = env.reset(seed=[5, 6])
    agent.reset(num_envs=2)
    ranges = torch.as_tensor(processor.action_token_ranges(task.spec))
    context = None
    for _ in range(12):  # through re-prefills
        steps = [task.to_episode_step(state) for state in observation]  # the vector env's rows
        inputs = processor.collate([processor.tokenize_observation(step, task.spec) for step in steps])
        first = processor.collate([processor.tokenize_episode(prompt, task.spec)[0]] * 2) if context is None else None
        out = model.act(inputs, ranges, context=context, prompt=first, continuous_actions=True)
        context = out.context
        by_hand = np.stack(
            [task.to_env_action(action) for action in processor.decode_action(out.action_tokens, task.spec)]
        )
        env_actions = agent.act(observation)
        np.testing.assert_array_equal(env_actions, by_hand)
        observation, *_ = env.step(env_actions)
    env.close()
    assert agent.num_reprefills == context.num_reprefills > 0


def test_make_agent_prompts_as_gato_eval_and_a_single_env_agent_returns_the_tasks_own_action():
    model, processor = tiny(seed=2)
    task = get_task("cartpole")
    agent = make_agent(model, processor, task, ActingConfig(prompt_tokens=12), seed=3)
    assert agent.prompt is not None and processor.episode_step_lengths(agent.prompt, task.spec).sum() <= 12
    assert make_agent(model, processor, task, ActingConfig(prompt_tokens=0)).prompt is None
    # default: the training default's fraction (a quarter) of the context, in whole 6-token steps
    assert processor.episode_step_lengths(make_agent(model, processor, task).prompt, task.spec).sum() == 12
    env = task.make_env(0)
    observation, _ = env.reset(seed=0)
    agent.reset()
    action = agent(observation)
    assert isinstance(action, type(task.to_env_action(np.zeros(1, dtype=np.int64)))) and env.action_space.contains(
        action
    )
    env.close()


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
