"""The code style is checked by the test suite itself, so the README's one test command covers it: ruff's linter
and formatter (the version pinned in pyproject's `dev` extra; settings in `[tool.ruff]`, 119 columns as transformers)."""

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
RUFF = shutil.which("ruff")


@pytest.mark.skipif(RUFF is None, reason="ruff is not installed (pip install -e '.[dev]')")
@pytest.mark.parametrize("command", [["check", "."], ["format", "--check", "."]], ids=["lint", "format"])
def test_the_tree_passes_ruff(command):
    result = subprocess.run([RUFF, *command], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, (
        f"ruff {' '.join(command)} (fix with `ruff check --fix . && ruff format .`):\n{result.stdout[-3000:]}"
    )
