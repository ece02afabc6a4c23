"""A user's policy named on the command line: ``module:callable`` or a stable-baselines3 model file ``sb3:PATH.zip``.

``module:callable`` is imported (``importlib``; the current directory is searched first, as ``python -m`` does) and
called as ``callable(observation) -> action`` in the environment's own formats. A class or a factory that takes the
environment is supported too: when the callable accepts exactly one parameter named ``env`` it is called once per
episode with the environment, and what it returns is the policy.

``sb3:PATH.zip`` (or ``sb3:ALGO:PATH.zip``, ALGO one of stable-baselines3's algorithm names such as ``PPO``) loads a
saved stable-baselines3 model (the optional ``sb3`` extra) and acts deterministically with ``model.predict``.
Without ALGO the algorithms are tried in turn until one loads the file.
"""

from __future__ import annotations

import importlib
import inspect
import os
import sys
from collections.abc import Callable
from typing import Any

SB3_PREFIX = "sb3:"
SB3_ALGORITHMS = ("PPO", "A2C", "DQN", "SAC", "TD3", "DDPG")
SB3_EXTRA_HINT = "pip install 'gato[sb3]'"

Policy = Callable[[Any], Any]


def _import_callable(reference: str) -> Callable[..., Any]:
    module_name, _, attribute = reference.partition(":")
    if not module_name or not attribute:
        raise ValueError(f"policy: expected 'module:callable' or 'sb3:PATH.zip', got {reference!r}")
    if os.getcwd() not in sys.path:  # a module beside the user, as `python -m` finds it
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as error:
        raise ValueError(f"policy: cannot import module {module_name!r} of {reference!r} ({error})") from error
    target: Any = module
    for part in attribute.split("."):
        if not hasattr(target, part):
            raise ValueError(f"policy: module {module_name!r} has no {attribute!r}")
        target = getattr(target, part)
    if not callable(target):
        raise ValueError(f"policy: {reference!r} is not callable")
    return target


def _takes_env(function: Callable[..., Any]) -> bool:
    try:
        parameters = list(inspect.signature(function).parameters.values())
    except (TypeError, ValueError):
        return False
    return len(parameters) == 1 and parameters[0].name == "env"


def _load_sb3(reference: str) -> Policy:
    try:
        import stable_baselines3
    except ModuleNotFoundError as error:
        raise ValueError(f"policy {reference!r}: stable-baselines3 is not installed; {SB3_EXTRA_HINT}") from error
    rest = reference[len(SB3_PREFIX) :]
    algorithm, _, path = rest.partition(":") if rest.split(":", 1)[0].upper() in SB3_ALGORITHMS else ("", "", rest)
    if not os.path.exists(path):
        raise ValueError(f"policy {reference!r}: no file {path}")
    names = (algorithm.upper(),) if algorithm else SB3_ALGORITHMS
    errors = []
    for name in names:
        try:
            model = getattr(stable_baselines3, name).load(path, device="cpu")
            break
        except Exception as error:  # noqa: BLE001 - each algorithm refuses another's file in its own way
            errors.append(f"{name}: {type(error).__name__}")
    else:
        raise ValueError(
            f"policy {reference!r}: no stable-baselines3 algorithm loads {path} ({'; '.join(errors)}); "
            "name it: sb3:ALGO:PATH.zip"
        )

    def act(observation: Any) -> Any:
        action, _ = model.predict(observation, deterministic=True)
        return action

    return act


def load_policy(reference: str, env: Any = None) -> Policy:
    """The policy ``reference`` names (module docstring), ready for one episode in ``env``."""
    if reference.startswith(SB3_PREFIX):
        return _load_sb3(reference)
    target = _import_callable(reference)
    if _takes_env(target):
        if env is None:
            raise ValueError(f"policy {reference!r}: takes the environment; pass env")
        return target(env)
    return target


def policy_factory(reference: str) -> Callable[[Any], Policy]:
    """``make_policy(env) -> policy`` for :func:`gato.episodes.record_episodes`: loads ``reference`` once (an sb3 file
    or a plain callable) or, for a factory that takes ``env``, builds it for every episode."""
    if not reference.startswith(SB3_PREFIX):
        target = _import_callable(reference)
        if _takes_env(target):
            return target
        return lambda env: target
    policy = _load_sb3(reference)
    return lambda env: policy


__all__ = ["load_policy", "policy_factory", "SB3_PREFIX"]
