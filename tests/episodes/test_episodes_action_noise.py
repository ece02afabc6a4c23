"""DART-style action noise: the environment executes a perturbed action, the episode records the expert's."""

from __future__ import annotations

import numpy as np
import pytest
from cartpole_task import make_cartpole_task
from gato.episodes.generate import generate
from gato.episodes.recorder import action_noise, record_episode, record_task_episode
from gato.suite.registry import get_task
from gato.suite.task_spec import ActionSpec, ObservationField, TaskSpec

CONTINUOUS = TaskSpec("c", (ObservationField("x", "continuous", (1,)),), ActionSpec("continuous", size=2))
DISCRETE = TaskSpec("d", (ObservationField("x", "continuous", (1,)),), ActionSpec("discrete", size=1, num_values=5))
identity = lambda action: np.asarray(action)  # noqa: E731


def test_continuous_noise_is_gaussian_in_spec_units_and_clipped():
    execute = action_noise(CONTINUOUS, 0.2, np.random.default_rng(0), identity, identity)
    executed = np.stack([execute(np.array([0.0, 0.95], np.float32)) for _ in range(4000)])
    assert abs(executed[:, 0].mean()) < 0.02 and abs(executed[:, 0].std() - 0.2) < 0.02
    assert executed.max() <= 1.0 and executed.min() >= -1.0  # the second dimension is clipped at the bound
    assert (executed[:, 1] == 1.0).mean() > 0.3


def test_discrete_noise_replaces_the_action_with_the_given_probability():
    execute = action_noise(DISCRETE, 0.25, np.random.default_rng(0), identity, identity)
    executed = np.array([int(np.asarray(execute(np.array([2]))).ravel()[0]) for _ in range(4000)])
    changed = (executed != 2).mean()
    assert abs(changed - 0.25 * 4 / 5) < 0.03  # a random replacement is the same value 1 time in 5
    assert set(np.unique(executed)) == set(range(5))


@pytest.mark.parametrize("spec,noise", [(CONTINUOUS, -0.1), (DISCRETE, 1.5), (CONTINUOUS, float("nan"))])
def test_bad_noise_is_refused_with_the_field_name(spec, noise):
    with pytest.raises(ValueError, match="action_noise"):
        action_noise(spec, noise, np.random.default_rng(0), identity, identity)


def test_noisy_episode_records_expert_labels_of_the_states_the_noise_led_to():
    task = get_task("pendulum")
    clean = record_task_episode(task, seed=3)
    noisy = record_task_episode(task, seed=3, noise=0.5)
    again = record_task_episode(task, seed=3, noise=0.5)
    np.testing.assert_array_equal(noisy["actions"], again["actions"])  # still a function of the seed
    assert not np.allclose(noisy["observations"]["state"], clean["observations"]["state"])
    # every recorded action is the expert's choice in the state it was recorded with
    env = task.make_env(0)
    env.reset(seed=3)
    expert = task.make_expert(env)
    for state, action in zip(noisy["observations"]["state"][:50], noisy["actions"][:50]):
        np.testing.assert_allclose(task.from_env_action(expert(state)), action, atol=1e-6)


def test_generate_records_the_noise_and_refuses_to_mix_generations(tmp_path):
    tasks = [make_cartpole_task("test_cart_noise", max_episode_steps=20)]
    noisy, _ = generate(tasks, 2, tmp_path, seed=0, progress=False, action_noise=0.3)
    assert "uniformly random action with probability 0.3" in (tmp_path / "test_cart_noise" / "README.md").read_text()
    with pytest.raises(ValueError, match="another generation"):
        generate(tasks, 2, tmp_path, seed=0, progress=False)  # same seeds, clean: not the data on disk
    clean, _ = generate(tasks, 2, tmp_path / "clean", seed=0, progress=False)
    assert list(clean["test_cart_noise"]["seed"]) == list(noisy["test_cart_noise"]["seed"])
    with pytest.raises(ValueError, match="probability"):
        generate(tasks, 2, tmp_path / "bad", seed=0, progress=False, action_noise=2.0)


def test_discrete_noise_draws_only_from_the_given_choices():
    execute = action_noise(DISCRETE, 1.0, np.random.default_rng(0), identity, identity, choices=(0, 3))
    executed = {int(np.asarray(execute(np.array([2]))).ravel()[0]) for _ in range(400)}
    assert executed == {0, 3}
    with pytest.raises(ValueError, match=r"choices must be non-empty values in \[0, 5\)"):
        action_noise(DISCRETE, 0.5, np.random.default_rng(0), identity, identity, choices=(1, 5))


class _CountingEnv:
    """A one-number environment: the state is the sum of the executed actions; 6 steps an episode."""

    def reset(self, seed=None):
        self.state, self.t = 0, 0
        return np.array([0.0]), {}

    def step(self, action):
        self.state, self.t = self.state + int(action), self.t + 1
        return np.array([float(self.state)]), 0.0, self.t >= 6, False, {}


class _ToldPolicy:
    """Always suggests 1; records what it is told was executed."""

    def __init__(self):
        self.told = []

    def __call__(self, observation):
        return 1

    def executed(self, action):
        self.told.append(int(action))


def test_a_policy_is_told_the_action_the_environment_executed():
    policy = _ToldPolicy()
    always_four = lambda action, observation: 4  # noqa: E731
    episode = record_episode(_CountingEnv(), policy, DISCRETE, seed=0, execute=always_four)
    assert policy.told == [4] * 6  # the executed action, not the policy's own
    assert episode["actions"].ravel().tolist() == [1] * 6  # the record keeps the policy's
    assert episode["observations"]["x"].ravel().tolist() == [0, 4, 8, 12, 16, 20]


def test_babyai_bot_replans_around_noisy_moves_and_still_succeeds():
    task = get_task("babyai_pickup_loc")
    assert task.extra["noise_actions"] == (0, 1, 2)  # turn/forward only: a random toggle can destroy a box
    detours = 0
    for seed in range(12):
        clean = record_task_episode(task, seed=seed)
        noisy = record_task_episode(task, seed=seed, noise=0.5)
        assert noisy["terminated"] and noisy["rewards"][-1] > 0  # the bot still completes the mission
        assert noisy["actions"][-1].item() == 3  # ends with the pickup the bot planned after the detours
        detours += len(noisy["actions"]) > len(clean["actions"])
    assert detours >= 6  # the noise did move the agent off the bot's path


def test_the_card_of_noisy_babyai_data_names_the_actions_the_noise_draws_from(tmp_path):
    generate([get_task("babyai_goto_red_ball")], 2, tmp_path, seed=0, progress=False, action_noise=0.3)
    card = (tmp_path / "babyai_goto_red_ball" / "README.md").read_text()
    assert "a uniformly random action (drawn from actions 0, 1, 2) with probability 0.3" in card
