"""A task the package does not know, carried by its data and its model: README's "Recording your own task" end to
end — record → `gato train` on the recorder's folder as it is → `gato eval` / `load_agent` by name."""

from __future__ import annotations

import json

import gymnasium as gym
import numpy as np
import pytest
from gato.episodes import record_episodes
from gato.suite.registry import get_model_task, task_from_env_id
from gato.suite.spaces import spec_from_env
from gato.suite.task_spec import ActionSpec, ObservationField, TaskSpec, load_task_specs

from gato.cli import main

SPEC = TaskSpec(
    "my-cartpole", (ObservationField("state", "continuous", (4,)),), ActionSpec("discrete", size=1, num_values=2)
)


def _balance(observation):
    return int(observation[2] + observation[3] > 0)


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    """The README's flow: a hand-written spec recorded with a lambda, trained by `gato train` on the folder as it is."""
    root = tmp_path_factory.mktemp("own")
    record_episodes(gym.make("CartPole-v1"), _balance, SPEC, num_episodes=3, seed=0, out=root / "data" / "my-cartpole")
    run = root / "run"
    assert (
        main(
            [
                "train",
                "--preset",
                "gato-tiny",
                "--data",
                str(root / "data" / "my-cartpole"),
                "--max-steps",
                "2",
                "--output-dir",
                str(run),
                "--batch-size",
                "2",
                "--max-length",
                "64",
                "--report-to",
                "none",
                "--save-steps",
                "2",
            ]
        )
        == 0
    )
    return root, run


def test_the_trained_model_stores_the_spec_with_its_environment(trained_run):
    _, run = trained_run
    stored = load_task_specs(run)["my-cartpole"]
    assert stored == SPEC
    assert stored.extra["env_id"] == "CartPole-v1" and stored.extra["env_kwargs"] == {}
    assert stored.extra["max_episode_steps"] == 500
    # The run's results file names its seed and the episodes each task trained on (3 recorded, validation held out).
    summary = json.loads((run / "train_results.json").read_text())
    assert summary["seed"] == 0 and 1 <= summary["train_episodes"]["my-cartpole"] <= 3


def test_gato_eval_plays_the_recorded_task_by_name(trained_run, capsys):
    root, run = trained_run
    out = root / "eval"
    assert (
        main(
            [
                "eval",
                "--model",
                str(run),
                "--tasks",
                "my-cartpole",
                "--episodes",
                "2",
                "--num-envs",
                "2",
                "--max-steps",
                "8",
                "--output-dir",
                str(out),
                "--threads",
                "1",
                "--no-progress",
                "--no-text",
            ]
        )
        == 0
    )
    results = json.loads((out / "eval_results.json").read_text())
    task = results["tasks"][0]
    assert task["task"] == "my-cartpole" and task["domain"] == "my-cartpole" and task["episodes"] == 2
    assert all(1 <= length <= 8 for length in task["lengths"]) and task["returns"] == [
        float(n) for n in task["lengths"]
    ]
    assert task["prompt_tokens"] == 0  # recorded with a lambda: no expert to demonstrate, played unprompted
    assert task["normalized_score"] is None  # no reference returns were measured


def test_gato_eval_env_alone_evaluates_the_tasks_recorded_in_that_environment(trained_run):
    root, run = trained_run
    out = root / "by_env"
    assert (
        main(
            [
                "eval",
                "--model",
                str(run),
                "--env",
                "CartPole-v1",
                "--episodes",
                "1",
                "--max-steps",
                "3",
                "--output-dir",
                str(out),
                "--threads",
                "1",
                "--no-progress",
                "--no-text",
            ]
        )
        == 0
    )
    results = json.loads((out / "eval_results.json").read_text())
    assert [task["task"] for task in results["tasks"]] == ["my-cartpole"]


def _eval_refusal(run, out, capsys, *flags) -> str:
    """``gato eval`` of ``run`` with ``flags``: refused with status 2 and one line, nothing written."""
    assert (
        main(["eval", "--model", str(run), "--episodes", "1", "--output-dir", str(out), "--no-progress", *flags]) == 2
    )
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1, error  # one line, no traceback
    assert not out.exists()
    return error


def test_gato_eval_env_that_gymnasium_does_not_know_or_the_model_has_no_task_in_is_refused(trained_run, capsys):
    root, run = trained_run
    error = _eval_refusal(run, root / "typo", capsys, "--env", "CartPol-v1")
    assert error.startswith("gato eval: env: 'CartPol-v1' is not a registered gymnasium environment")
    assert "Did you mean: `CartPole`?" in error
    error = _eval_refusal(run, root / "elsewhere", capsys, "--env", "Acrobot-v1")
    assert error == (
        "gato eval: env: the model has no task recorded in 'Acrobot-v1' (its own tasks: my-cartpole (CartPole-v1))"
    )


def test_gato_eval_env_kwargs_the_environment_does_not_take_are_refused(trained_run, capsys):
    root, run = trained_run
    error = _eval_refusal(run, root / "nope", capsys, "--env", "CartPole-v1", "--env-kwargs", '{"nope": 1}')
    assert error.startswith("gato eval: env_kwargs: constructing 'CartPole-v1' with {'nope': 1} failed: ")
    assert "got an unexpected keyword argument 'nope'" in error


def test_load_agent_plays_the_recorded_task_by_name(trained_run):
    from gato.pipelines import load_agent

    _, run = trained_run
    policy = load_agent(str(run), "my-cartpole")
    env = policy.make_env(seed=0)
    observation, _ = env.reset(seed=0)
    policy.reset()
    action = policy(observation)
    assert action in (0, 1)
    assert len(policy.play(episodes=1, max_steps=5)) == 1


def test_an_unknown_name_or_a_spec_without_environment_is_refused_clearly(trained_run, capsys):
    root, run = trained_run
    assert (
        main(
            [
                "eval",
                "--model",
                str(run),
                "--tasks",
                "my-acrobot",
                "--episodes",
                "1",
                "--output-dir",
                str(root / "none"),
                "--no-progress",
            ]
        )
        == 2
    )
    error = capsys.readouterr().err
    assert "my-acrobot" in error and "my-cartpole" in error  # names the model's own tasks
    no_env = {"my-task": TaskSpec("my-task", SPEC.observations, SPEC.action)}
    with pytest.raises(KeyError, match="--env ID"):
        get_model_task("my-task", no_env)
    assert get_model_task("my-task", no_env, env_id="CartPole-v1").max_episode_steps == 500
    assert (
        main(
            [
                "eval",
                "--model",
                str(run),
                "--tasks",
                "my-cartpole",
                "--env-kwargs",
                "[1]",
                "--episodes",
                "1",
                "--output-dir",
                str(root / "none"),
                "--no-progress",
            ]
        )
        == 2
    )
    assert "env_kwargs: expected a JSON object" in capsys.readouterr().err


def test_a_task_rebuilt_from_a_spec_of_spaces_plays_its_environment_with_the_stored_arguments():
    spec = spec_from_env(gym.make("FrozenLake-v1", is_slippery=False), "my-lake")
    stored = TaskSpec.from_json(spec.to_json())  # as task_specs.json gives it back
    task = task_from_env_id("my-lake", stored.extra["env_id"], stored)
    env = task.make_env(0)
    assert env.unwrapped.spec.kwargs["is_slippery"] is False and task.max_episode_steps == 100
    observation, _ = env.reset(seed=0)
    assert task.to_episode_step(observation) == {"observation": 0}
    observation, *_ = env.step(task.to_env_action(np.array([2])))  # right, on a lake that does not slip
    assert task.to_episode_step(observation) == {"observation": 1}
    assert task.make_expert is None and np.isnan(task.expert_return)


def test_a_recording_policy_that_cannot_be_loaded_is_named_with_the_way_out():
    spec = spec_from_env(gym.make("CartPole-v1"), "my-cartpole")
    stored = TaskSpec(
        spec.name, spec.observations, spec.action, spec.domain, {**spec.extra, "policy": "gone_module:act"}
    )
    task = task_from_env_id("my-cartpole", "CartPole-v1", stored)
    with pytest.raises(ValueError, match=r"recording policy 'gone_module:act'.*--prompt-tokens 0"):
        task.make_expert(task.make_env(0))
