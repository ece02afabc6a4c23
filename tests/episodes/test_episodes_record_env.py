"""`gato data record`: any gymnasium id, a user's policy or a stable-baselines3 model, a spec from the spaces, reference
returns — then `gato train` on the folder and `gato eval` of the task by name, with normalized scores and a prompt."""

from __future__ import annotations

import json
import sys

import pytest
from datasets import load_from_disk
from gato.episodes import spec_from_dataset

from gato.cli import main

POLICY_MODULE = """
def balance(observation):
    return int(observation[2] + observation[3] > 0)

def right(observation):
    return 2

def not_callable_yet():
    pass

VALUE = 3
"""


@pytest.fixture
def user_dir(tmp_path, monkeypatch):
    """A folder holding the user's policy module, as the working directory."""
    (tmp_path / "my_policies.py").write_text(POLICY_MODULE)
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    yield tmp_path
    sys.modules.pop("my_policies", None)


def test_record_a_policy_with_references_then_train_and_evaluate_by_name(user_dir, capsys):
    assert (
        main(
            [
                "data",
                "record",
                "--env",
                "CartPole-v1",
                "--policy",
                "my_policies:balance",
                "--episodes",
                "3",
                "--out",
                "data/cp",
                "--max-steps",
                "60",
                "--measure-references",
                "--reference-episodes",
                "2",
            ]
        )
        == 0
    )
    assert "task 'cartpole_v1', 3 episodes" in capsys.readouterr().out
    dataset = load_from_disk("data/cp")
    spec = spec_from_dataset(dataset)
    assert spec.name == "cartpole_v1" and spec.domain == "cartpole_v1"
    assert spec.extra["env_id"] == "CartPole-v1" and spec.extra["policy"] == "my_policies:balance"
    assert spec.extra["max_episode_steps"] == 60 and spec.extra["expert_return"] == 60.0  # balances to the cut
    assert 5 < spec.extra["random_return"] < 60
    assert list(dataset["episode_return"]) == [60.0] * 3
    assert (
        "gato data record --env CartPole-v1 --policy my_policies:balance --episodes 3"
        in (user_dir / "data/cp/README.md").read_text()
    )

    assert (
        main(
            [
                "train",
                "--preset",
                "gato-tiny",
                "--data",
                "data/cp",
                "--max-steps",
                "2",
                "--output-dir",
                "run",
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
    assert (
        main(
            [
                "eval",
                "--model",
                "run",
                "--tasks",
                "cartpole_v1",
                "--episodes",
                "2",
                "--max-steps",
                "6",
                "--output-dir",
                "eval",
                "--threads",
                "1",
                "--no-progress",
                "--no-text",
            ]
        )
        == 0
    )
    task = json.loads((user_dir / "eval/eval_results.json").read_text())["tasks"][0]
    assert task["expert_return"] == 60.0 and task["normalized_score"] is not None
    assert task["prompt_tokens"] > 0  # prompted with a demonstration by the recording policy
    assert json.loads((user_dir / "eval/eval_results.json").read_text())["statistics"]["all"]["episodes"] == 2


def test_recording_into_a_generated_folder_adds_the_task_beside_the_suite(user_dir):
    from gato.episodes.generate import generate

    generate("cartpole", episodes_per_task=1, out=user_dir / "data", seed=0, progress=False)
    assert (
        main(
            [
                "data",
                "record",
                "--env",
                "FrozenLake-v1",
                "--env-kwargs",
                '{"is_slippery": false}',
                "--policy",
                "my_policies:right",
                "--episodes",
                "2",
                "--out",
                "data",
                "--name",
                "lake",
                "--max-steps",
                "5",
            ]
        )
        == 0
    )
    data = load_from_disk(str(user_dir / "data"))
    assert set(data) == {"cartpole", "lake"}
    spec = spec_from_dataset(data["lake"])
    assert spec.extra["env_kwargs"] == {"is_slippery": False}
    assert list(data["lake"][0]["observations"]["observation"]) == [0, 1, 2, 3, 3]  # right along the top row


def test_a_stable_baselines3_model_records_as_the_expert(user_dir, capsys):
    sb3 = pytest.importorskip("stable_baselines3")
    import gymnasium as gym

    model = sb3.PPO("MlpPolicy", gym.make("CartPole-v1"), n_steps=32, batch_size=32, n_epochs=1, seed=0, device="cpu")
    model.save(user_dir / "ppo_cartpole.zip")
    assert (
        main(
            [
                "data",
                "record",
                "--env",
                "CartPole-v1",
                "--expert",
                "sb3:ppo_cartpole.zip",
                "--episodes",
                "2",
                "--out",
                "sb3data",
                "--max-steps",
                "20",
            ]
        )
        == 0
    )
    spec = spec_from_dataset(load_from_disk("sb3data"))
    assert spec.extra["policy"] == "sb3:ppo_cartpole.zip"
    assert (
        main(
            [
                "data",
                "record",
                "--env",
                "CartPole-v1",
                "--expert",
                "sb3:DQN:ppo_cartpole.zip",
                "--episodes",
                "1",
                "--out",
                "refused",
            ]
        )
        == 2
    )
    assert "no stable-baselines3 algorithm loads" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--env", "NoSuchEnv-v0", "--policy", "my_policies:balance"], "NoSuchEnv-v0"),
        (
            ["--env", "CartPole-v1", "--env-kwargs", "[1]", "--policy", "my_policies:balance"],
            "env_kwargs: expected a JSON object",
        ),
        (
            ["--env", "CartPole-v1", "--env-kwargs", '{"nope": 1}', "--policy", "my_policies:balance"],
            "env_kwargs: constructing 'CartPole-v1' with {'nope': 1} failed: CartPoleEnv.__init__() got an "
            "unexpected keyword argument 'nope'",
        ),
        (["--env", "CartPole-v1", "--policy", "my_policies:nothing"], "has no 'nothing'"),
        (["--env", "CartPole-v1", "--policy", "my_policies:VALUE"], "is not callable"),
        (
            ["--env", "CartPole-v1", "--policy", "my_policies:right"],
            "the environment refused the action 2 at step 0 (2 (<class 'int'>) invalid); expected an action of "
            "Discrete(2)",
        ),
        (["--env", "CartPole-v1", "--policy", "no_module_here:act"], "cannot import module 'no_module_here'"),
        (["--env", "CartPole-v1", "--policy", "my_policies"], "expected 'module:callable'"),
        (["--env", "CartPole-v1", "--policy", "my_policies:balance", "--name", "my task"], "name: expected letters"),
        (["--env", "CartPole-v1", "--expert", "sb3:missing.zip"], "no file missing.zip"),
    ],
)
def test_bad_input_is_refused_naming_what_was_expected(user_dir, capsys, flags, message):
    assert main(["data", "record", *flags, "--episodes", "1", "--out", "never"]) == 2
    assert message in capsys.readouterr().err
    assert not (user_dir / "never").exists()


def test_the_readme_python_recording_runs_as_written(tmp_path, monkeypatch):
    import re
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = readme[readme.index("### Recording your own task") :]
    code = re.search(r"The same from Python.*?```python\n(.*?)```", section, re.S).group(1)
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    exec(compile(code.replace("num_episodes=100", "num_episodes=2"), "README recording", "exec"), namespace)
    spec = spec_from_dataset(load_from_disk("data/my-cartpole"))
    assert spec.name == "my-cartpole" and spec.extra["env_id"] == "CartPole-v1" and len(namespace["dataset"]) == 2


def test_record_a_dict_environment_with_image_text_and_discrete_fields(user_dir):
    pytest.importorskip("minigrid")
    (user_dir / "grid_policies.py").write_text("def forward(observation):\n    return 2\n")
    assert (
        main(
            [
                "data",
                "record",
                "--env",
                "BabyAI-GoToRedBall-v0",
                "--policy",
                "grid_policies:forward",
                "--episodes",
                "2",
                "--out",
                "grid",
                "--max-steps",
                "3",
            ]
        )
        == 0
    )
    dataset = load_from_disk("grid")
    spec = spec_from_dataset(dataset)
    assert [(f.name, f.kind) for f in spec.observations] == [
        ("direction", "discrete"),
        ("image", "image"),
        ("mission", "text"),
    ]
    episode = dataset[0]
    assert episode["num_steps"] == 3 and episode["observations"]["mission"][0].startswith("go to the red ball")
    assert list(episode["actions"]) == [[2], [2], [2]]
    sys.modules.pop("grid_policies", None)
