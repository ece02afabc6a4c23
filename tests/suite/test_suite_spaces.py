"""Task specs built from gymnasium spaces (`gato.suite.spaces`): real environments of several space kinds, every
supported space, the stable field order, the adapters, and clear errors for spaces with no tokenization."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from gato.episodes import record_episodes, spec_from_dataset
from gato.suite.spaces import SPACES_KEY, UnsupportedSpaceError, env_adapters, spec_from_env, spec_from_spaces
from gato.suite.task_spec import TaskSpec
from gymnasium import spaces


def _fields(spec: TaskSpec) -> list[tuple]:
    return [(f.name, f.kind, f.shape, f.num_values if f.kind == "discrete" else None) for f in spec.observations]


def test_cartpole_is_one_continuous_field_and_a_discrete_action_with_its_env_stored():
    env = gym.make("CartPole-v1")
    spec = spec_from_env(env)
    assert spec.name == "CartPole-v1"
    assert _fields(spec) == [("observation", "continuous", (4,), None)]
    assert spec.observations[0].mu_law  # CartPole's bounds are wider than [-1, 1]
    assert (spec.action.kind, spec.action.size, spec.action.num_values) == ("discrete", 1, 2)
    assert (
        spec.extra["env_id"] == "CartPole-v1"
        and spec.extra["env_kwargs"] == {}
        and spec.extra["max_episode_steps"] == 500
    )
    to_step, to_env, from_env = env_adapters(spec)
    observation, _ = env.reset(seed=0)
    np.testing.assert_array_equal(to_step(observation)["observation"], observation)
    assert to_env(from_env(1)) == 1 and isinstance(to_env(np.array([1])), int)


def test_babyai_dict_gives_discrete_image_and_text_fields_in_key_order():
    pytest.importorskip("minigrid")
    import minigrid  # noqa: F401  (registers the BabyAI ids)

    env = gym.make("BabyAI-GoToRedBall-v0")
    spec = spec_from_env(env, "my-babyai", domain="grid")
    assert spec.name == "my-babyai" and spec.domain == "grid"
    assert _fields(spec) == [
        ("direction", "discrete", (), 4),
        ("image", "image", (7, 7, 3), None),
        ("mission", "text", (), None),
    ]
    assert (spec.action.kind, spec.action.num_values) == ("discrete", 7)
    observation, _ = env.reset(seed=1)
    step = env_adapters(spec)[0](observation)
    assert step["mission"] == observation["mission"] and isinstance(step["mission"], str)
    assert step["image"].dtype == np.uint8 and step["image"].shape == (7, 7, 3)


def test_blackjack_tuple_fields_are_named_by_index():
    spec = spec_from_env(gym.make("Blackjack-v1", natural=True, render_mode="rgb_array"))
    assert _fields(spec) == [("0", "discrete", (), 32), ("1", "discrete", (), 11), ("2", "discrete", (), 2)]
    # The arguments gym.make recorded (the registered ones and the caller's), without how the env is displayed.
    assert spec.extra["env_kwargs"] == {"natural": True, "sab": True}


def test_pendulum_action_is_rescaled_to_the_unit_range_and_back():
    spec = spec_from_env(gym.make("Pendulum-v1"))
    assert (spec.action.kind, spec.action.size, spec.action.low, spec.action.high) == ("continuous", 1, -1.0, 1.0)
    _, to_env, from_env = env_adapters(spec)
    np.testing.assert_allclose(from_env(np.array([2.0], dtype=np.float32)), [1.0])
    np.testing.assert_allclose(from_env(np.array([-1.0], dtype=np.float32)), [-0.5])
    np.testing.assert_allclose(to_env(np.array([-1.0])), [-2.0])
    assert to_env(np.array([0.5])).shape == (1,)


def test_every_supported_space_nested_in_a_stable_order():
    observation_space = spaces.Dict(
        {
            "robot": spaces.Dict({"pos": spaces.Box(-1.0, 1.0, (3,)), "grip": spaces.Discrete(3, start=-1)}),
            "camera": spaces.Box(0, 255, (32, 24, 1), dtype=np.uint8),
            "pair": spaces.Tuple((spaces.MultiDiscrete([4, 6], start=[1, 0]), spaces.MultiBinary(5))),
            "level": spaces.Box(10, 20, (2,), dtype=np.int64),
            "goal": spaces.Text(20),
        }
    )
    spec = spec_from_spaces(observation_space, spaces.MultiDiscrete([3, 5]), "synthetic")
    # gymnasium sorts a plain dict's keys; children follow depth first, Tuple items by index.
    assert _fields(spec) == [
        ("camera", "image", (32, 24), None),
        ("goal", "text", (), None),
        ("level", "discrete", (2,), 11),
        ("pair.0", "discrete", (2,), 6),
        ("pair.1", "discrete", (5,), 2),
        ("robot.grip", "discrete", (), 3),
        ("robot.pos", "continuous", (3,), None),
    ]
    assert not spec.observations[-1].mu_law  # bounded in [-1, 1]: binned directly
    assert spec_from_spaces(observation_space, spaces.MultiDiscrete([3, 5]), "synthetic") == spec
    # Insertion order does not matter: the same space built the other way round gives the same spec.
    reordered = spaces.Dict(dict(reversed(list(observation_space.spaces.items()))))
    assert _fields(spec_from_spaces(reordered, spaces.Discrete(2), "x")) == _fields(spec)

    observation_space.seed(0)
    observation = observation_space.sample()
    step = env_adapters(spec)[0](observation)
    assert step["camera"].shape == (32, 24)  # (H, W, 1) frames become greyscale images
    np.testing.assert_array_equal(step["level"], observation["level"] - 10)  # shifted to start at 0
    np.testing.assert_array_equal(step["pair.0"], observation["pair"][0] - np.array([1, 0]))
    assert step["robot.grip"] == observation["robot"]["grip"] + 1
    assert step["goal"] == observation["goal"]
    # Each step is a valid episode step of the spec: the writer accepts an episode of two of them.
    from gato.episodes import validate_episode

    episode = {
        "observations": {
            name: [value, value] if isinstance(value, str) else np.stack([value, value])
            for name, value in step.items()
        },
        "actions": np.array([[2, 4], [0, 0]]),
        "rewards": [0.0, 1.0],
    }
    assert validate_episode(episode, spec)["num_steps"] == 2


def test_multi_discrete_actions_are_flattened_and_clipped_per_dimension():
    space = spaces.MultiDiscrete(np.array([[2, 5], [3, 4]]), start=np.array([[0, 10], [0, 0]]))
    spec = spec_from_spaces(spaces.Box(-1, 1, (2,)), space, "md")
    assert (spec.action.kind, spec.action.size, spec.action.num_values) == ("discrete", 4, 5)
    _, to_env, from_env = env_adapters(spec)
    env_action = np.array([[1, 14], [2, 3]])
    np.testing.assert_array_equal(from_env(env_action), [1, 4, 2, 3])
    np.testing.assert_array_equal(to_env(from_env(env_action)), env_action)
    # A token of the shared vocabulary beyond a dimension's own range is clipped to it.
    np.testing.assert_array_equal(to_env(np.array([4, 4, 4, 4])), [[1, 14], [2, 3]])


@pytest.mark.parametrize(
    ("observation_space", "action_space", "named"),
    [
        (spaces.Dict({"scene": spaces.Graph(spaces.Box(0, 1, (2,)), None)}), spaces.Discrete(2), ["'scene'", "Graph"]),
        (
            spaces.Dict({"a": spaces.Tuple((spaces.Discrete(2), spaces.Sequence(spaces.Discrete(3))))}),
            spaces.Discrete(2),
            ["'a.1'", "Sequence"],
        ),
        (
            spaces.Box(np.iinfo(np.int64).min, np.iinfo(np.int64).max, (2,), dtype=np.int64),
            spaces.Discrete(2),
            ["'observation'", "without bounds"],
        ),
        (spaces.Discrete(5000), spaces.Discrete(2), ["'observation'", "5000"]),
        (spaces.Box(0, 255, (8, 8, 4), dtype=np.uint8), spaces.Discrete(2), ["'observation'", "4 channels"]),
        (spaces.Box(-1, 1, (2,)), spaces.Dict({"a": spaces.Discrete(2)}), ["action", "Dict"]),
        (spaces.Box(-1, 1, (2,)), spaces.Box(-np.inf, np.inf, (2,)), ["action", "infinite bounds"]),
    ],
)
def test_unsupported_spaces_are_refused_naming_the_field_and_the_space(observation_space, action_space, named):
    with pytest.raises(UnsupportedSpaceError) as error:
        spec_from_spaces(observation_space, action_space, "bad")
    for text in named:
        assert text in str(error.value)


def test_a_recorded_collection_carries_the_layout_and_rebuilds_the_same_steps(tmp_path):
    env = gym.make("FrozenLake-v1", map_name="4x4", is_slippery=False)
    spec = spec_from_env(env, "my-lake", env_kwargs={"map_name": "4x4", "is_slippery": False})
    dataset = record_episodes(env, lambda observation: 2, spec, num_episodes=2, seed=0, out=tmp_path / "lake")
    stored = spec_from_dataset(dataset)
    assert stored == spec and stored.extra[SPACES_KEY] == spec.extra[SPACES_KEY]
    assert stored.extra["env_kwargs"] == {"map_name": "4x4", "is_slippery": False}
    assert _fields(stored) == [("observation", "discrete", (), 16)]
    # Moving right along the top row of the 4x4 lake: states 0, 1, 2, 3 and on.
    assert list(dataset[0]["observations"]["observation"][:3]) == [0, 1, 2]
    assert dataset[0]["actions"][0] == [2]
