"""The package: one `gato` namespace, no generic top-level names installed, the CLI skeleton."""

import subprocess
import sys

import pytest

import gato
from gato.cli import COMMANDS, main


def _run_outside_repo(code: str, tmp_path) -> subprocess.CompletedProcess:
    # From the repo root the bare folders are on sys.path; run elsewhere to see what is installed.
    return subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True)


@pytest.mark.parametrize(
    "name", ["processing", "modeling_gato", "training", "hub_cards", "suite", "episodes", "evaluation"]
)
def test_generic_top_level_names_are_not_installed(name, tmp_path):
    result = _run_outside_repo(f"import {name}", tmp_path)
    assert result.returncode != 0
    assert "ModuleNotFoundError" in result.stderr


def test_folders_are_reachable_under_the_gato_namespace(tmp_path):
    result = _run_outside_repo(
        "import gato.processing, gato.modeling_gato, gato.training, gato.hub_cards;"
        "print(gato.processing.tokenize_continuous(0.0))",
        tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "32512"


def test_version_flag_prints_the_package_version(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.strip() == f"gato {gato.__version__}"


def test_console_script_is_installed(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "gato.cli", "--version"], cwd=tmp_path, capture_output=True, text=True
    )
    assert result.returncode == 0
    assert result.stdout.startswith("gato ")


def test_help_lists_every_subcommand(capsys):
    assert main([]) == 0
    out = capsys.readouterr().out
    for name in COMMANDS:
        assert name in out


def test_agent_is_public_but_loaded_lazily(tmp_path):
    result = _run_outside_repo(
        "import sys, gato; before = 'gato.evaluation.agent' in sys.modules; agent = gato.GatoAgent;"
        "print(before, agent.__module__)",
        tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["False", "gato.evaluation.agent"]
