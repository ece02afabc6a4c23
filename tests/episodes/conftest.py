"""Fixtures for the episode tests."""

from __future__ import annotations

import pytest
from cartpole_task import make_cartpole_task
from gato.suite.registry import Task


@pytest.fixture
def cartpole_task() -> Task:
    return make_cartpole_task()
