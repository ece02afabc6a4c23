"""Recorder: any gymnasium env + any policy → schema episodes; deterministic seeds; round trip through
the processor (action tokens decode back to the recorded actions)."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from cartpole_task import CARTPOLE_SPEC, cartpole_heuristic
from gato.episodes.recorder import episode_seed, record_episode, record_episodes, record_task_episode
from gato.episodes.schema import episode_from_row, spec_from_dataset
from gato.suite.task_spec import ActionSpec, ObservationField, TaskSpec
from gato.suite.token_layout import CONTINUOUS_BINS, LOCAL_POSITION_ACTION


def test_task_episode_pairs_each_action_with_the_observation_it_was_chosen_from(cartpole_task):
    episode = record_task_episode(cartpole_task, seed=5)
    state, actions = episode["observations"]["state"], episode["actions"]
    assert state.shape == (30, 4) and actions.shape == (30, 1)  # the heuristic survives the 30-step horizon
    np.testing.assert_array_equal(actions[:, 0], (state[:, 2] + 0.5 * state[:, 3] > 0).astype(int))
    assert episode["rewards"].sum() == 30 and episode["terminated"] is False
    reset_state, _ = gym.make("CartPole-v1").reset(seed=5)
    np.testing.assert_array_equal(state[0], reset_state)


class GoalEnv(gym.Env):
    """A user's own env: dict observation with a mission string and a position; reach x = goal."""

    observation_space = gym.spaces.Dict({"pos": gym.spaces.Box(-10, 10, (2,)), "mission": gym.spaces.Text(32)})
    action_space = gym.spaces.Box(-1.0, 1.0, (2,))

    def reset(self, seed=None, options=None):
        super().reset(seed=seed)
        self.pos = self.np_random.uniform(-1, 1, 2)
        return {"pos": self.pos.copy(), "mission": "go to the origin"}, {}

    def step(self, action):
        self.pos = self.pos + 0.5 * np.asarray(action)
        distance = float(np.linalg.norm(self.pos))
        return {"pos": self.pos.copy(), "mission": "go to the origin"}, -distance, distance < 0.05, False, {}


GOAL_SPEC = TaskSpec(
    "goal",
    (ObservationField("mission", "text"), ObservationField("pos", "continuous", (2,))),
    ActionSpec("continuous", size=2),
)


def goal_policy(observation):
    return np.clip(-observation["pos"], -1, 1)


def test_user_env_records_with_default_adapters_and_is_deterministic(tmp_path):
    dataset = record_episodes(GoalEnv(), goal_policy, GOAL_SPEC, 3, seed=1, out=tmp_path / "goal", max_steps=10)
    assert spec_from_dataset(dataset) == GOAL_SPEC and len(dataset) == 3
    assert list(dataset["seed"]) == [episode_seed(1, "goal", i) for i in range(3)]
    row = episode_from_row(dataset.with_format("numpy")[0], GOAL_SPEC)
    assert row["observations"]["mission"][0] == "go to the origin"
    np.testing.assert_allclose(row["actions"], np.clip(-row["observations"]["pos"], -1, 1), rtol=1e-6)
    again = record_episodes(GoalEnv(), goal_policy, GOAL_SPEC, 3, seed=1, max_steps=10)
    other = record_episodes(GoalEnv(), goal_policy, GOAL_SPEC, 3, seed=2, max_steps=10)
    assert again["actions"] == dataset["actions"] and other["actions"] != dataset["actions"]


def test_bare_observation_needs_a_one_field_spec():
    with pytest.raises(ValueError, match="one-field spec"):
        record_episode(gym.make("CartPole-v1"), cartpole_heuristic, GOAL_SPEC, seed=0)


@pytest.fixture(scope="module")
def processor():
    from gato.processing import GatoProcessor
    from gato.processing.image_processing_gato import GatoImageProcessor
    from gato.processing.tokenization_gato import load_default_tokenizer

    try:
        tokenizer = load_default_tokenizer()
    except ValueError:  # the shipped SentencePiece model is not built yet: these episodes need no text ids
        from tokenizers import Tokenizer, models, pre_tokenizers
        from transformers import PreTrainedTokenizerFast

        words = Tokenizer(models.WordLevel({"<unk>": 1, "go": 4, "to": 5, "the": 6, "origin": 7}, unk_token="<unk>"))
        words.pre_tokenizer = pre_tokenizers.Whitespace()
        tokenizer = PreTrainedTokenizerFast(tokenizer_object=words, unk_token="<unk>")
    return GatoProcessor(tokenizer, GatoImageProcessor(), max_length=1024)


def _decoded_actions(processor, episode, spec) -> np.ndarray:
    sequences = processor.tokenize_episode(episode, spec)
    ids = np.concatenate([s["input_ids"][s["local_positions"] == LOCAL_POSITION_ACTION] for s in sequences])
    return processor.decode_action(ids.reshape(-1, spec.action.size), spec)


def test_discrete_actions_survive_dataset_and_processor(processor, cartpole_task, tmp_path):
    dataset = record_episodes(
        gym.make("CartPole-v1"), cartpole_heuristic, CARTPOLE_SPEC, 2, seed=0, out=tmp_path / "cartpole", max_steps=40
    )
    for row in dataset.with_format("numpy"):
        episode = episode_from_row(row, CARTPOLE_SPEC)
        np.testing.assert_array_equal(_decoded_actions(processor, episode, CARTPOLE_SPEC), episode["actions"])


def test_continuous_actions_survive_within_half_a_bin(processor, tmp_path):
    dataset = record_episodes(GoalEnv(), goal_policy, GOAL_SPEC, 2, seed=0, out=tmp_path / "goal", max_steps=12)
    for row in dataset.with_format("numpy"):
        episode = episode_from_row(row, GOAL_SPEC)
        decoded = _decoded_actions(processor, episode, GOAL_SPEC)
        assert decoded.shape == episode["actions"].shape
        np.testing.assert_allclose(decoded, episode["actions"], atol=1.0 / CONTINUOUS_BINS + 1e-6)
