"""`gato/flags.py`: the one helper that turns (nested) config dataclasses into command-line flags."""

import argparse
from dataclasses import dataclass, field

import pytest

from gato.flags import HelpFormatter, add_dataclass_flags, config_from_flags, field_docs, parse_mapping


@dataclass
class Acting:
    """How actions are chosen.

    Args:
        temperature: sampling temperature; 0 = greedy.
        cache_implementation / compile: the KV cache and whether its
            decode steps are compiled.
    """

    temperature: float = 0.0
    cache_implementation: str = "dynamic"
    compile: bool = False


@dataclass
class Evaluation:
    """An evaluation.

    Args:
        episodes: episodes per task.
        max_steps: cut episodes after this many steps (default: the task's horizon).
        num_envs: environments stepped together.
    """

    episodes: int = 4
    max_steps: int | None = None
    num_envs: int = field(default=4, metadata={"flag": "num-envs"})


@dataclass
class Job:
    """A job.

    Args:
        output_dir: where results go.
        overrides: model fields.
    """

    output_dir: str = "runs/x"
    overrides: dict = field(default_factory=lambda: {"hidden_size": 64})
    acting: Acting = field(default_factory=Acting)
    eval: Evaluation = field(default_factory=Evaluation, metadata={"flag_prefix": "eval-"})


def _parser(cls=Job, **kwargs):
    parser = argparse.ArgumentParser(prog="job", formatter_class=HelpFormatter)
    return parser, add_dataclass_flags(parser, cls, **kwargs)


def test_nested_fields_become_flat_flags_with_prefixes_and_overrides():
    parser, flags = _parser()
    names = [option for action in parser._actions for option in action.option_strings]
    # `acting` has no prefix: its fields keep today's names; `eval` adds `eval-`, except a field naming its own flag
    assert {
        "--temperature",
        "--cache-implementation",
        "--compile",
        "--no-compile",
        "--eval-episodes",
        "--eval-max-steps",
        "--num-envs",
        "--output-dir",
        "--overrides",
    } <= set(names)
    assert "--episodes" not in names and "--eval-num-envs" not in names
    assert {flag.path for flag in flags} >= {("acting", "temperature"), ("eval", "num_envs"), ("output_dir",)}


def test_config_from_flags_replaces_only_the_given_fields_and_rebuilds_nested_configs():
    parser, flags = _parser()
    base = Job()
    config = config_from_flags(
        base, parser.parse_args(["--temperature", "0.5", "--num-envs", "2", "--overrides", ""]), flags
    )
    assert config.acting == Acting(temperature=0.5) and config.eval == Evaluation(num_envs=2)
    assert config.overrides == {} and config.output_dir == "runs/x"
    assert base.acting.temperature == 0.0  # the base is not modified
    assert config_from_flags(base, parser.parse_args(["--compile"]), flags).acting.compile is True


def test_help_comes_from_the_docstring_and_shows_every_default():
    parser, _ = _parser()
    text = " ".join(parser.format_help().split())
    assert "sampling temperature; 0 = greedy. (default: 0.0)" in text
    # an entry naming two fields, with a continuation line, documents both
    assert "the KV cache and whether its decode steps are compiled. (default: dynamic)" in text
    assert "decode steps are compiled. (default: False)" in text
    assert "model fields. (default: hidden_size=64)" in text
    assert "(default: the task's horizon)" in text and "(default: None)" not in text


def test_field_docs_reads_names_joined_by_slashes():
    assert field_docs(Acting) == {
        "temperature": "sampling temperature; 0 = greedy.",
        "cache_implementation": "the KV cache and whether its decode steps are compiled.",
        "compile": "the KV cache and whether its decode steps are compiled.",
    }


def test_a_flag_that_two_fields_would_make_is_refused_when_the_parser_is_built():
    @dataclass
    class Clash:
        """Two fields, one flag.

        Args:
            episodes: top-level.
            eval: nested.
        """

        episodes: int = 1
        eval: Evaluation = field(default_factory=Evaluation)  # no prefix: eval.episodes → --episodes again

    with pytest.raises(ValueError, match=r"Clash.eval.episodes: flag --episodes is already taken"):
        _parser(Clash)


def test_an_undocumented_field_is_refused_naming_it():
    @dataclass
    class Undocumented:
        """No Args section."""

        steps: int = 1

    with pytest.raises(ValueError, match="Undocumented.steps: no help"):
        _parser(Undocumented)


@pytest.mark.parametrize("value", ["-1", "nan", "inf", "ten"])
def test_numeric_flags_refuse_negative_and_non_finite_values_naming_the_flag(value, capsys):
    parser, _ = _parser()
    with pytest.raises(SystemExit) as exit_info:
        parser.parse_args(["--eval-episodes" if value in ("-1", "ten") else "--temperature", value])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "argument --eval-episodes" in err or "argument --temperature" in err
    assert repr(value) in err


def test_mapping_values_are_yaml_scalars_and_malformed_pairs_are_refused():
    assert parse_mapping("a=1,b=x, c=0.5") == {"a": 1, "b": "x", "c": 0.5}
    assert parse_mapping("") == {}
    with pytest.raises(argparse.ArgumentTypeError, match="KEY=VALUE"):
        parse_mapping("hidden_size")


@dataclass
class Upload:
    """An upload.

    Args:
        folder: the folder to upload.
        repo_id: where to.
        dry_run: only list the files.
    """

    folder: str = field(default="", metadata={"positional": True, "argparse": {"metavar": "FOLDER"}})
    repo_id: str = "a/b"
    dry_run: bool = False
    files: list = field(default_factory=list, init=False)  # derived state: no flag


def test_a_positional_field_is_a_required_argument_without_a_default_in_its_help(capsys):
    parser, flags = _parser(Upload)
    config = config_from_flags(Upload(), parser.parse_args(["runs/x", "--dry-run"]), flags)
    assert (config.folder, config.repo_id, config.dry_run) == ("runs/x", "a/b", True)
    help_lines = " ".join(parser.format_help().split())
    assert "FOLDER the folder to upload. options:" in help_lines  # no "(default: )" after a positional
    with pytest.raises(SystemExit):
        parser.parse_args(["--dry-run"])
    assert "the following arguments are required: FOLDER" in capsys.readouterr().err


def test_a_field_outside_init_gets_no_flag():
    parser, flags = _parser(Upload)
    assert [flag.path for flag in flags] == [("folder",), ("repo_id",), ("dry_run",)]
    assert "--files" not in parser.format_help()
