"""The registry: suites, domains, names, unknown names, normalized scores, missing env packages."""

from __future__ import annotations

import math
import sys

import numpy as np
import pytest
from gato.suite import registry
from gato.suite.registry import (
    DEFAULT_SUITE,
    HELD_OUT_TASKS,
    MissingEnvPackageError,
    get_task,
    list_suites,
    list_tasks,
    normalized_score,
    resolve_tasks,
)
from gato.suite.task_spec import TaskSpec


def test_full_suite_has_every_task_in_at_least_four_domains():
    tasks = list_tasks()
    assert len(tasks) >= 20
    assert {task.domain for task in tasks} >= {"classic_control", "babyai", "metaworld", "atari"}
    assert [task.name for task in resolve_tasks("full")] == sorted(task.name for task in tasks)


def test_default_suite_is_small_and_spans_the_domains():
    tasks = resolve_tasks("default")
    assert [task.name for task in tasks] == list(DEFAULT_SUITE)
    assert len(tasks) <= 10
    assert {task.domain for task in tasks} == {"classic_control", "babyai", "metaworld", "atari"}
    assert set(list_suites()) >= {"default", "full"}


def test_domain_name_resolves_to_all_of_its_tasks():
    babyai = resolve_tasks("babyai")
    assert len(babyai) >= 2
    assert all(task.domain == "babyai" for task in babyai)
    assert {task.name for task in babyai} == {task.name for task in list_tasks() if task.domain == "babyai"}


def test_comma_separated_mix_keeps_order_and_drops_duplicates():
    tasks = resolve_tasks(" metaworld_reach, cartpole ,atari,cartpole")
    names = [task.name for task in tasks]
    assert names[:2] == ["metaworld_reach", "cartpole"]
    assert set(names[2:]) == {task.name for task in resolve_tasks("atari")}
    assert len(names) == len(set(names))


def test_unknown_name_lists_the_known_ones():
    with pytest.raises(KeyError) as error:
        resolve_tasks("cartpole,no_such_task")
    message = str(error.value)
    assert "no_such_task" in message and "cartpole" in message and "default" in message and "babyai" in message
    with pytest.raises(KeyError, match="metaworld_reach"):
        get_task("no_such_task")


def test_registering_a_name_twice_is_refused():
    with pytest.raises(ValueError, match="already registered"):
        registry.register_task(get_task("cartpole"))


def test_specs_survive_a_json_round_trip():
    for task in list_tasks():
        assert TaskSpec.from_json(task.spec.to_json()) == task.spec, task.name


@pytest.mark.parametrize(
    ("episode_return", "expected"), [(100.0, 1.0), (-50.0, 0.0), (25.0, 0.5), (175.0, 1.5), (-125.0, -0.5)]
)
def test_normalized_score_arithmetic(episode_return, expected):
    assert normalized_score(episode_return, expert_return=100.0, random_return=-50.0) == pytest.approx(expected)


def test_normalized_score_is_elementwise_on_arrays_and_matches_the_task_method():
    task = get_task("cartpole")
    returns = np.array([task.random_return, task.expert_return, (task.random_return + task.expert_return) / 2])
    np.testing.assert_allclose(task.normalized_score(returns), [0.0, 1.0, 0.5])


@pytest.mark.parametrize(("expert", "random"), [(math.nan, 0.0), (1.0, math.nan), (3.0, 3.0)])
def test_normalized_score_refuses_missing_or_equal_references(expert, random):
    with pytest.raises(ValueError, match="expert_return"):
        normalized_score(1.0, expert, random, task="t")


def test_every_task_has_measured_references_with_the_expert_clearly_ahead():
    """The stored table (scripts/measure_returns.py): expert beats random on every task, by a margin."""
    stored = registry.load_reference_returns()
    for task in list_tasks():
        assert task.name in stored, f"{task.name}: not measured"
        assert math.isfinite(task.expert_return) and math.isfinite(task.random_return), task.name
        entry = stored[task.name]
        gap = task.expert_return - task.random_return
        # "clearly": the difference of the means is over 3 standard errors
        standard_error = math.sqrt(
            (entry["expert_return_std"] ** 2 + entry["random_return_std"] ** 2) / entry["episodes"]
        )
        assert gap > 3 * standard_error, task.name
        if task.extra.get("has_success"):
            assert entry["expert_success_rate"] >= 0.9, task.name


def test_missing_env_package_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "minigrid", None)  # makes `import minigrid` fail like an absent package
    with pytest.raises(MissingEnvPackageError, match=r"minigrid.*gato\[envs\]"):
        get_task("babyai_goto_red_ball").make_env(0)
    with pytest.raises(MissingEnvPackageError, match="babyai_goto_red_ball"):
        registry.require("minigrid", task="babyai_goto_red_ball")


def test_listing_tasks_imports_no_environment_package(monkeypatch):
    """Listing tasks (``gato data list``) works without the envs extra: the domain modules are imported
    afresh into an empty registry while every environment package is unimportable."""
    for package in ("gymnasium", "minigrid", "metaworld", "ale_py", "Box2D"):
        monkeypatch.setitem(sys.modules, package, None)
    for module in registry._DOMAIN_MODULES:
        monkeypatch.delitem(sys.modules, module, raising=False)
    monkeypatch.setattr(registry, "_TASKS", {})
    monkeypatch.setattr(registry, "_SUITES", {})
    tasks = list_tasks()
    assert len(tasks) >= 20
    with pytest.raises(MissingEnvPackageError, match="gymnasium"):
        tasks[0].make_env(0)


def test_generalist_and_held_out_split_the_full_suite_one_held_out_task_per_domain():
    suites = list_suites()
    full, held_out, generalist = set(suites["full"]), suites["held_out"], suites["generalist"]
    assert list(held_out) == list(HELD_OUT_TASKS)
    assert set(generalist) | set(held_out) == full
    assert not set(generalist) & set(held_out)
    assert generalist == sorted(generalist)
    domains = [get_task(name).domain for name in held_out]
    assert sorted(domains) == sorted({task.domain for task in list_tasks()})  # each domain once, none missed
    assert [task.name for task in resolve_tasks("held_out")] == list(HELD_OUT_TASKS)


@pytest.mark.parametrize(
    ("env_id", "hint"),
    [
        ("CartPol-v1", "Did you mean: `CartPole`?"),
        ("CartPole-v9", "`v9`"),
        ("NoSuchNamespace/Thing-v0", "NoSuchNamespace"),
    ],
)
def test_an_id_gymnasium_does_not_register_is_refused_naming_env(env_id, hint):
    with pytest.raises(ValueError, match=rf"^env: '{env_id}' is not a registered gymnasium environment") as error:
        registry.check_env_id(env_id)
    assert hint in str(error.value) and len(str(error.value).splitlines()) == 1  # gymnasium's own hint, on one line


def test_ids_that_gym_make_takes_pass_the_check():
    for env_id in ("CartPole-v1", "CartPole", "gymnasium.envs.classic_control:CartPole-v1"):
        assert registry.check_env_id(env_id) == env_id
    with pytest.raises(ValueError, match=r"^env: 'no_module_here:Thing-v0': cannot import 'no_module_here'"):
        registry.check_env_id("no_module_here:Thing-v0")


def test_a_keyword_the_environment_does_not_take_is_refused_naming_env_kwargs():
    with pytest.raises(ValueError) as error:
        registry.make_gym_env("CartPole-v1", {"nope": 1})
    message = str(error.value)
    assert message.startswith("env_kwargs: constructing 'CartPole-v1' with {'nope': 1} failed: ")
    assert "got an unexpected keyword argument 'nope'" in message and len(message.splitlines()) == 1


def _broken_env(**kwargs):
    raise TypeError("unsupported operand type(s) for +: 'int' and 'str'")


def test_a_type_error_that_is_not_about_the_arguments_is_not_blamed_on_them():
    import gymnasium as gym

    gym.register(id="GatoTestBrokenEnv-v0", entry_point=_broken_env)
    try:
        with pytest.raises(TypeError, match="unsupported operand"):
            registry.make_gym_env("GatoTestBrokenEnv-v0", {"size": 3})
    finally:
        del gym.registry["GatoTestBrokenEnv-v0"]


def test_an_environment_the_model_has_no_task_in_is_refused_naming_env_and_the_way_out():
    own = TaskSpec("my-cartpole", get_task("cartpole").spec.observations, get_task("cartpole").spec.action)
    own = TaskSpec(own.name, own.observations, own.action, extra={"env_id": "CartPole-v1"})
    suite_only = {"cartpole": get_task("cartpole").spec, "acrobot": get_task("acrobot").spec}
    with pytest.raises(KeyError) as error:
        registry.tasks_for_env(suite_only, "CartPole-v1")
    message = error.value.args[0]
    assert message.startswith("env: the model has no task recorded in 'CartPole-v1'")
    assert "--tasks cartpole" in message and "acrobot" not in message
    with pytest.raises(KeyError, match=r"'Acrobot-v1'.*my-cartpole \(CartPole-v1\)"):
        registry.tasks_for_env({**suite_only, "my-cartpole": own}, "Acrobot-v1")
    assert registry.tasks_for_env({**suite_only, "my-cartpole": own}, "CartPole-v1") == ["my-cartpole"]
