"""DAgger episodes (``gato.episodes.dagger``, ``gato data generate --dagger-model``) with an injected actor — a saved
model's agent (``gato.evaluation.run_evaluation.AgentFactory``) or any picklable factory — and the BabyAI state labeler."""

import json

import numpy as np
import pytest
from datasets import load_from_disk
from gato.episodes.recorder import episode_seed, record_episode, record_task_episode
from gato.evaluation.run_evaluation import AgentFactory
from gato.suite.babyai import DROP, LEFT, PICKUP
from gato.suite.registry import resolve_tasks


def _replay_labels(task, seed, actions):
    """The state labeler's action at each state of an episode replayed with ``actions``."""
    env = task.make_env(seed)
    env.reset(seed=seed)
    labeler, labels = task.make_labeler(env), []
    for action in actions:
        labels.append(labeler(None))
        env.step(int(action))
    env.close()
    return labels


@pytest.mark.parametrize("name", ["babyai_goto_local", "babyai_pickup_loc"])
def test_babyai_labeler_gives_the_bots_actions_along_its_episodes(name):
    (task,) = resolve_tasks(name)
    agree = total = 0
    for index in range(20):
        seed = episode_seed(0, name, index)
        expert = record_task_episode(task, seed)["actions"].ravel()
        labels = _replay_labels(task, seed, expert)
        agree += int(np.sum(np.asarray(labels) == expert))
        total += len(expert)
    # Rebuilt at every step from the mission and the cells seen so far, the labeler plans as the recording bot
    # does; it differs only where the bot carries a blocking object aside (the labeler drops it at once).
    assert agree / total >= (1.0 if name == "babyai_goto_local" else 0.97)


def test_babyai_labeler_drops_a_wrong_object_where_it_can_and_turns_where_it_cannot():
    from minigrid.core.world_object import Ball, Key, Wall

    (task,) = resolve_tasks("babyai_pickup_loc")
    for index in range(50):  # a mission that names a type, so that another type is surely a wrong object
        seed = episode_seed(0, "labeler-test", index)
        env = task.make_env(seed)
        env.reset(seed=seed)
        state = env.unwrapped
        if state.instrs.desc.type is not None:
            break
    wrong = Key("purple") if state.instrs.desc.type != "key" else Ball("purple")
    state.grid.set(*state.front_pos, wrong)
    labeler = task.make_labeler(env)
    assert labeler(None) != PICKUP  # the bot does not pick up what the mission does not name
    _, reward, terminated, _, _ = env.step(PICKUP)
    assert state.carrying is wrong and not terminated and reward == 0
    assert labeler(None) == DROP  # the cell ahead is free: put it down
    state.grid.set(*state.front_pos, Wall())
    assert labeler(None) == LEFT  # blocked: turn to find a free cell
    env.close()


def test_tasks_whose_expert_keeps_a_plan_have_no_labeler():
    from gato.episodes.dagger import check_dagger_task

    (task,) = resolve_tasks("babyai_put_next_local")
    assert task.make_labeler is None
    with pytest.raises(ValueError, match="babyai_put_next_local.*no labeler"):
        check_dagger_task(task)
    for name in (
        "cartpole",
        "pendulum",
        "babyai_pickup_loc",
        "babyai_rgb_pickup_loc",
        "atari_breakout",
        "metaworld_reach",
    ):
        assert resolve_tasks(name)[0].make_labeler is not None


def test_dagger_episodes_record_the_experts_labels_of_the_states_the_model_reaches(
    tmp_path, save_tiny_checkpoint, one_torch_thread
):
    from gato.episodes.dagger import generate_dagger

    (task,) = resolve_tasks("cartpole")
    model = save_tiny_checkpoint(tmp_path / "model", 256)
    written = generate_dagger(AgentFactory(model), "cartpole", 3, tmp_path / "data", expert_mix=0.0, progress=False)
    dataset = written["cartpole_dagger"]
    assert len(dataset) == 3 and "cartpole_dagger" in load_from_disk(str(tmp_path / "data"))
    env = task.make_env(0)
    expert = task.make_labeler(env)
    for row in dataset.with_format("numpy"):
        states = np.asarray(row["observations"]["state"])
        labels = np.asarray(row["actions"]).ravel()
        # Every recorded action is the expert's for the recorded state (CartPole's expert reads the state) …
        assert labels.tolist() == [int(expert(state)) for state in states]
        # … while the untrained model drove: it drops the pole long before the expert's 500 steps.
        assert len(labels) < 100
    generation = json.loads((tmp_path / "data" / "cartpole_dagger" / "generation.json").read_text())
    assert generation["dagger"] == {"model": model, "expert_mix": 0.0, "episodes": 3, "round": 1}


def test_dagger_with_only_expert_actions_is_the_labelers_own_episode_and_workers_do_not_change_it(
    tmp_path, save_tiny_checkpoint, one_torch_thread, monkeypatch
):
    from gato.episodes import dagger
    from gato.episodes.dagger import dagger_stream, generate_dagger

    monkeypatch.setattr(dagger, "SHARD_EPISODES", 1)  # two shards: one process records both with one agent and env
    (task,) = resolve_tasks("babyai_pickup_loc")
    model = save_tiny_checkpoint(tmp_path / "model", 256)
    alone = generate_dagger(AgentFactory(model), task.name, 2, tmp_path / "one", expert_mix=1.0, progress=False)[
        "babyai_pickup_loc_dagger"
    ]
    pooled = generate_dagger(
        AgentFactory(model), task.name, 2, tmp_path / "two", expert_mix=1.0, workers=2, progress=False
    )["babyai_pickup_loc_dagger"]
    env = task.make_env(0)
    for index in range(2):
        seed = episode_seed(0, dagger_stream(task.name), index)
        own = record_episode(
            env,
            None,
            task.spec,
            seed=seed,
            make_policy=task.make_labeler,
            to_episode_step=task.to_episode_step,
            from_env_action=task.from_env_action,
            max_steps=task.max_episode_steps,
        )
        for dataset in (alone, pooled):
            row = dataset.with_format("numpy")[index]
            assert row["seed"] == seed
            assert np.asarray(row["actions"]).ravel().tolist() == own["actions"].ravel().tolist()
            assert list(row["observations"]["mission"]) == own["observations"]["mission"]
            assert row["episode_return"] > 0  # the labeler's own episode solves the level


def test_a_later_round_writes_a_split_of_its_own_from_rooms_of_its_own(
    tmp_path, save_tiny_checkpoint, one_torch_thread
):
    from gato.episodes.dagger import dagger_split, dagger_stream, generate_dagger

    assert dagger_stream("cartpole") == "dagger/cartpole" and dagger_stream("cartpole", 3) == "dagger3/cartpole"
    model = save_tiny_checkpoint(tmp_path / "model", 256)
    out = tmp_path / "data"
    first = generate_dagger(AgentFactory(model), "cartpole", 2, out, expert_mix=1.0, progress=False)["cartpole_dagger"]
    second = generate_dagger(AgentFactory(model), "cartpole", 2, out, expert_mix=1.0, dagger_round=2, progress=False)[
        dagger_split("cartpole", 2)
    ]
    # Both rounds stay in the folder and its index; round 1 is untouched by round 2.
    assert set(load_from_disk(str(out))) == {"cartpole_dagger", "cartpole_dagger2"}
    assert load_from_disk(str(out / "cartpole_dagger"))["seed"] == first["seed"]
    assert second["seed"] == [episode_seed(0, "dagger2/cartpole", index) for index in range(2)]
    assert not set(second["seed"]) & set(first["seed"])
    generation = json.loads((out / "cartpole_dagger2" / "generation.json").read_text())
    assert (
        generation["dagger"]["round"] == 2
        and "--dagger-round 2" in (out / "cartpole_dagger2" / "README.md").read_text()
    )
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match=r"dagger_round \(--dagger-round\): expected an integer ≥ 1"):
            generate_dagger(AgentFactory(model), "cartpole", 1, out, dagger_round=bad, progress=False)


def test_dagger_refuses_an_existing_split_and_a_bad_mix(tmp_path, save_tiny_checkpoint, one_torch_thread):
    from gato.episodes.dagger import generate_dagger

    model = save_tiny_checkpoint(tmp_path / "model", 256)
    with pytest.raises(ValueError, match=r"expert_mix: expected a probability in \[0, 1\], got 1.5"):
        generate_dagger(AgentFactory(model), "cartpole", 1, tmp_path / "data", expert_mix=1.5, progress=False)
    stale = tmp_path / "data" / ".cartpole_dagger.shards-999999" / "worker-000000"
    stale.mkdir(parents=True)  # what a killed run leaves
    generate_dagger(AgentFactory(model), "cartpole", 1, tmp_path / "data", expert_mix=1.0, progress=False)
    assert not stale.parent.exists() and sorted(p.name for p in (tmp_path / "data").iterdir()) == [
        "cartpole_dagger",
        "dataset_dict.json",
        "manifest.json",
    ]
    with pytest.raises(ValueError, match="cartpole_dagger exists"):
        generate_dagger(AgentFactory(model), "cartpole", 1, tmp_path / "data", progress=False)
    assert (
        len(
            generate_dagger(AgentFactory(model), "cartpole", 2, tmp_path / "data", overwrite=True, progress=False)[
                "cartpole_dagger"
            ]
        )
        == 2
    )


def test_gato_data_generate_dagger_model_flag(tmp_path, save_tiny_checkpoint, one_torch_thread, capsys):
    from gato.cli import main

    model = save_tiny_checkpoint(tmp_path / "model", 256)
    out = tmp_path / "data"
    assert (
        main(
            [
                "data",
                "generate",
                "--tasks",
                "cartpole",
                "--episodes-per-task",
                "2",
                "--out",
                str(out),
                "--dagger-model",
                model,
                "--expert-mix",
                "0.25",
                "--no-progress",
            ]
        )
        == 0
    )
    assert "cartpole_dagger: 2 episodes" in capsys.readouterr().out
    assert json.loads((out / "cartpole_dagger" / "generation.json").read_text())["dagger"]["expert_mix"] == 0.25
    assert "--dagger-model" in (out / "cartpole_dagger" / "README.md").read_text()
    assert (
        main(
            [
                "data",
                "generate",
                "--tasks",
                "cartpole",
                "--episodes-per-task",
                "1",
                "--out",
                str(out),
                "--dagger-model",
                model,
                "--captions",
                "4",
            ]
        )
        == 2
    )
    assert "--captions cannot go with --dagger-model" in capsys.readouterr().err
    assert (
        main(
            [
                "data",
                "generate",
                "--tasks",
                "cartpole",
                "--episodes-per-task",
                "1",
                "--out",
                str(out),
                "--expert-mix",
                "0.5",
            ]
        )
        == 2
    )
    assert "--expert-mix needs --dagger-model" in capsys.readouterr().err
    assert (
        main(
            [
                "data",
                "generate",
                "--tasks",
                "cartpole",
                "--episodes-per-task",
                "1",
                "--out",
                str(out),
                "--dagger-round",
                "2",
            ]
        )
        == 2
    )
    assert "--dagger-round needs --dagger-model" in capsys.readouterr().err
    assert (
        main(
            [
                "data",
                "generate",
                "--tasks",
                "cartpole",
                "--episodes-per-task",
                "1",
                "--out",
                str(out),
                "--dagger-model",
                model,
                "--dagger-round",
                "2",
                "--no-progress",
            ]
        )
        == 0
    )
    assert "cartpole_dagger2: 1 episodes" in capsys.readouterr().out
    assert (
        main(
            [
                "data",
                "generate",
                "--tasks",
                "babyai_put_next_local",
                "--episodes-per-task",
                "1",
                "--out",
                str(out),
                "--dagger-model",
                model,
            ]
        )
        == 2
    )
    assert "babyai_put_next_local" in capsys.readouterr().err


class AlwaysLeft:
    """A model-free actor factory: CartPole's left push at every step (frozen: equal by value, as the protocol asks)."""

    name = "always-left"
    built = 0

    def __eq__(self, other):
        return isinstance(other, AlwaysLeft)

    def __hash__(self):
        return hash(AlwaysLeft)

    def check(self, tasks):
        if any(task.name != "cartpole" for task in tasks):
            raise ValueError("tasks: always-left only pushes CartPole")

    def __call__(self, task, seed):
        AlwaysLeft.built += 1

        class Actor:
            def reset(self):
                pass

            def __call__(self, observation):
                return 0

        return Actor()


def test_any_injected_actor_drives_while_the_labeler_labels(tmp_path):
    from gato.episodes.dagger import generate_dagger

    (task,) = resolve_tasks("cartpole")
    AlwaysLeft.built = 0
    dataset = generate_dagger(AlwaysLeft(), "cartpole", 3, tmp_path / "data", expert_mix=0.0, progress=False)[
        "cartpole_dagger"
    ]
    assert AlwaysLeft.built == 1  # one actor per process, task and seed, kept across episodes
    expert = task.make_labeler(task.make_env(0))
    for row in dataset.with_format("numpy"):
        states, labels = np.asarray(row["observations"]["state"]), np.asarray(row["actions"]).ravel()
        assert labels.tolist() == [int(expert(state)) for state in states]
        assert len(labels) < 20 and (np.diff(states[:, 1]) < 0).all()  # always pushed left: the cart speeds leftwards
    generation = json.loads((tmp_path / "data" / "cartpole_dagger" / "generation.json").read_text())
    assert generation["dagger"]["model"] == "always-left"
    with pytest.raises(ValueError, match="always-left only pushes CartPole"):
        generate_dagger(AlwaysLeft(), "acrobot", 1, tmp_path / "other", progress=False)


def test_a_saved_models_agent_factory_is_picklable_and_equal_by_value(
    tmp_path, save_tiny_checkpoint, one_torch_thread
):
    import pickle

    model = save_tiny_checkpoint(tmp_path / "model", 256)
    factory = AgentFactory(model)
    copy = pickle.loads(pickle.dumps(factory))
    assert copy == factory and hash(copy) == hash(factory) and factory.name == model
    (task,) = resolve_tasks("cartpole")
    agent = factory(task, seed=0)
    observation, _ = task.make_env(0).reset(seed=0)
    assert agent.prompt is not None and agent(observation) in (0, 1)


def test_a_split_of_the_same_generation_is_skipped_and_another_generation_refused(tmp_path):
    """Run again after an interruption, the same call records nothing; another model, mix, count or round is not
    silently kept."""
    from gato.episodes.dagger import generate_dagger

    out = tmp_path / "data"
    first = generate_dagger(AlwaysLeft(), "cartpole", 2, out, expert_mix=0.5, progress=False)
    arrows = {path: path.stat().st_mtime_ns for path in out.glob("cartpole_dagger/*.arrow")}
    assert set(first) == {"cartpole_dagger"} and arrows
    assert generate_dagger(AlwaysLeft(), "cartpole", 2, out, expert_mix=0.5, progress=False) == {}
    assert {path: path.stat().st_mtime_ns for path in arrows} == arrows
    for changed in ({"expert_mix": 0.25}, {"episodes_per_task": 3}, {"seed": 1}):
        arguments = {"episodes_per_task": 2, "expert_mix": 0.5, **changed}
        with pytest.raises(
            ValueError,
            match=r"cartpole_dagger exists and holds other DAgger episodes \(model 'always-left', expert_mix 0.5, episodes 2, round 1, seed 0; asked:",
        ):
            generate_dagger(AlwaysLeft(), "cartpole", out=out, progress=False, **arguments)
    (out / "cartpole_dagger" / "generation.json").unlink()  # a split whose writing was cut short
    with pytest.raises(
        ValueError, match=r"cartpole_dagger exists and holds other DAgger episodes \(no readable generation.json"
    ):
        generate_dagger(AlwaysLeft(), "cartpole", 2, out, expert_mix=0.5, progress=False)
    assert (
        len(
            generate_dagger(AlwaysLeft(), "cartpole", 2, out, expert_mix=0.5, overwrite=True, progress=False)[
                "cartpole_dagger"
            ]
        )
        == 2
    )
