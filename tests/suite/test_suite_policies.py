"""Policies named on the command line (`gato.suite.policies`): plain callables, factories that take the environment,
and clear errors."""

from __future__ import annotations

import sys

import pytest
from gato.suite.policies import load_policy, policy_factory

MODULE = '''
def constant(observation):
    return 1

class Counter:
    """A factory: built for each episode with the environment, keeps state for that episode."""
    def __init__(self, env):
        self.env, self.calls = env, 0
    def __call__(self, observation):
        self.calls += 1
        return self.calls % 2
'''


@pytest.fixture
def module(tmp_path, monkeypatch):
    (tmp_path / "user_policies.py").write_text(MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    yield "user_policies"
    sys.modules.pop("user_policies", None)


def test_a_plain_callable_is_the_policy_and_a_factory_is_built_per_episode(module):
    assert load_policy(f"{module}:constant")(None) == 1
    make = policy_factory(f"{module}:Counter")
    first, second = make("env-a"), make("env-b")
    assert first is not second and first.env == "env-a"
    assert [first(None), first(None), second(None)] == [1, 0, 1]  # each episode's policy keeps its own count
    assert policy_factory(f"{module}:constant")("env")(None) == 1
    with pytest.raises(ValueError, match="takes the environment; pass env"):
        load_policy(f"{module}:Counter")


def test_a_nested_attribute_and_bad_references_are_named(module):
    assert load_policy(f"{module}:Counter.__call__") is not None
    with pytest.raises(ValueError, match="has no 'Counter.nothing'"):
        load_policy(f"{module}:Counter.nothing")
    with pytest.raises(ValueError, match="expected 'module:callable' or 'sb3:PATH.zip'"):
        load_policy(":constant")
