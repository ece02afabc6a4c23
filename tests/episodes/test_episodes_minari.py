"""Minari ↔ gato collections (`episodes/minari_io.py`), on datasets made here with Minari's own DataCollector
(nothing is downloaded): imports train like recorded tasks, and round trips lose nothing."""

from __future__ import annotations

import warnings

import gymnasium as gym
import numpy as np
import pytest

minari = pytest.importorskip("minari")

from gato.episodes import episodes_to_dataset, iter_episodes, spec_from_dataset  # noqa: E402
from gato.episodes.minari_io import export_minari, import_minari  # noqa: E402
from gato.suite.task_spec import ActionSpec, ObservationField, TaskSpec  # noqa: E402


@pytest.fixture(autouse=True)
def local_minari(tmp_path, monkeypatch):
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path / "minari"))
    warnings.filterwarnings("ignore", category=UserWarning)


def _collect(env_id: str, dataset_id: str, episodes: int = 3, **kwargs):
    """A Minari dataset recorded by Minari's DataCollector with a seeded random policy."""
    env = minari.DataCollector(gym.make(env_id, **kwargs), data_format="arrow")
    env.action_space.seed(0)
    for index in range(episodes):
        env.reset(seed=index)
        done = False
        while not done:
            _, _, terminated, truncated, _ = env.step(env.action_space.sample())
            done = terminated or truncated
    return env.create_dataset(dataset_id=dataset_id, algorithm_name="random")


def _leaves(value):
    if isinstance(value, dict):
        return [leaf for key in value for leaf in _leaves(value[key])]
    if isinstance(value, tuple):
        return [leaf for child in value for leaf in _leaves(child)]
    return [np.asarray(value)]


@pytest.mark.parametrize("env_id", ["CartPole-v1", "Pendulum-v1", "Blackjack-v1"])
def test_minari_to_gato_to_minari_keeps_every_episode(env_id, tmp_path):
    source = _collect(env_id, f"local/{env_id.lower()}-v0")
    collection = import_minari(f"local/{env_id.lower()}-v0", out=tmp_path / "gato")  # by id: local only
    spec = spec_from_dataset(collection)
    assert len(collection) == source.total_episodes == 3
    assert spec.extra["env_id"] == env_id and spec.extra["minari"]["dataset_id"] == f"local/{env_id.lower()}-v0"
    # Each gato episode holds the T observations actions were chosen from, the T actions and rewards.
    first = next(source.iterate_episodes())
    assert collection[0]["num_steps"] == len(first.actions) and collection[0]["terminated"] == bool(
        first.terminations[-1]
    )

    back = export_minari(collection, f"local/{env_id.lower()}-back-v0")
    assert back.total_episodes == 3 and back.observation_space == source.observation_space
    assert back.action_space == source.action_space and back.spec.env_spec.id == env_id
    for original, copy in zip(source.iterate_episodes(), back.iterate_episodes()):
        for a, b in zip(_leaves(original.observations), _leaves(copy.observations)):
            np.testing.assert_array_equal(a[:-1], b[:-1])  # the final observation is not a gato step: repeated
        np.testing.assert_allclose(
            np.asarray(copy.actions, dtype=np.float64),
            np.asarray(original.actions, dtype=np.float64),
            rtol=1e-6,
            atol=1e-6,
        )
        np.testing.assert_array_equal(copy.rewards, np.asarray(original.rewards).astype(np.float32))  # gato: float32
        assert bool(copy.terminations[-1]) == bool(original.terminations[-1])


def test_an_imported_dataset_carries_its_environment_to_training_and_evaluation():
    _collect("Pendulum-v1", "local/pendulum-v0", episodes=1)
    collection = import_minari("local/pendulum-v0", name="pendulum_offline")
    spec = spec_from_dataset(collection)
    assert spec.name == "pendulum_offline" and collection[0]["task"] == "pendulum_offline"
    # Torques in [-2, 2] are stored rescaled to [-1, 1], as the suite's continuous actions are binned.
    actions = np.asarray(collection[0]["actions"])
    assert actions.min() >= -1 and actions.max() <= 1 and spec.action.kind == "continuous"
    from gato.suite.registry import task_from_env_id

    task = task_from_env_id(spec.name, spec.extra["env_id"], spec)
    assert task.max_episode_steps == 200 and task.to_env_action(np.array([1.0], dtype=np.float32)) == pytest.approx(
        [2.0]
    )


def test_gato_to_minari_to_gato_is_exact_for_images_text_discrete_and_continuous_fields():
    spec = TaskSpec(
        "synthetic",
        (
            ObservationField("mission", "text"),
            ObservationField("frame", "image", (16, 16, 3)),
            ObservationField("cell", "discrete", (2,), num_values=7),
            ObservationField("state", "continuous", (3,)),
        ),
        ActionSpec("discrete", size=2, num_values=5),
        domain="toy",
    )
    rng = np.random.default_rng(0)
    episodes = [
        {
            "observations": {
                "mission": [f"go to the {c} ball" for c in ("red", "blue", "green")[:steps]],
                "frame": rng.integers(0, 256, (steps, 16, 16, 3), dtype=np.uint8),
                "cell": rng.integers(0, 7, (steps, 2)),
                "state": rng.normal(size=(steps, 3)),
            },
            "actions": rng.integers(0, 5, (steps, 2)),
            "rewards": rng.normal(size=steps),
            "terminated": steps == 2,
        }
        for steps in (2, 3)
    ]
    collection = episodes_to_dataset(episodes, spec)
    exported = export_minari(collection, "local/synthetic-v0")
    assert exported.total_episodes == 2 and set(exported.observation_space.spaces) == {
        "mission",
        "frame",
        "cell",
        "state",
    }
    back = import_minari("local/synthetic-v0")
    assert spec_from_dataset(back) == spec and spec_from_dataset(back).domain == "toy"
    for original, copy in zip(iter_episodes(collection), iter_episodes(back)):
        assert original["observations"]["mission"] == copy["observations"]["mission"]
        for name in ("frame", "cell", "state"):
            np.testing.assert_array_equal(original["observations"][name], copy["observations"][name])
            assert original["observations"][name].dtype == copy["observations"][name].dtype
        np.testing.assert_array_equal(original["actions"], copy["actions"])
        np.testing.assert_array_equal(original["rewards"], copy["rewards"])
    assert list(back["terminated"]) == [True, False]


def test_a_suite_collection_exports_in_its_spec_terms_and_a_taken_id_is_refused():
    from gato.episodes import record_task_episode
    from gato.suite.registry import get_task

    task = get_task("cartpole")
    collection = episodes_to_dataset([record_task_episode(task, seed) for seed in (1, 2)], task.spec)
    export_minari(collection, "local/cartpole-suite-v0")
    back = import_minari("local/cartpole-suite-v0")
    assert spec_from_dataset(back) == task.spec and list(back["episode_return"]) == list(collection["episode_return"])
    with pytest.raises(ValueError, match="dataset_id"):
        export_minari(collection, "local/cartpole-suite-v0")
    with pytest.raises(ValueError, match="no local Minari dataset 'local/nothing-v0'"):
        import_minari("local/nothing-v0")
