"""Command-line flags from config dataclasses: the one helper every ``gato`` command builds its flags with.

A field ``max_steps`` becomes ``--max-steps``; its help is the field's ``metadata["help"]`` or, failing that, its
entry in the class docstring's ``Args:`` section (so the docstring stays the one description of a setting), and
the help ends with the default. A field that is itself a dataclass (``MainJobConfig.eval``, an ``acting``
sub-config) is flattened: its fields become flags of their own, prefixed by the field's
``metadata["flag_prefix"]`` (none by default, so ``acting.temperature`` stays ``--temperature``); a field's
``metadata["flag"]`` names its flag outright, and ``metadata["positional"]`` makes it a (required) positional
argument instead (``gato push RUN_DIR``). Fields with ``init=False`` are derived state and get no flag. Two
fields that would make the same flag are refused when the parser is built.

transformers' ``HfArgumentParser`` does the flat part of this, but it neither nests nor prefixes, and importing
it imports torch (over a second), which ``gato --help`` cannot afford.

Types follow the annotations: ``bool`` → ``--x / --no-x``; ``dict`` → ``KEY=VALUE,...`` (values read as YAML
scalars); ``Literal[...]`` → choices; ``int | None`` → int. Every numeric setting of gato is a count, a size,
a rate or a seed, so numeric flags refuse negative, infinite and NaN values at the flag, naming it; the
config's own ``validate`` then checks the ranges that need more than a sign. A flag left out keeps the
config's value (its default, or a YAML file's): unset flags parse to ``None``.
"""

from __future__ import annotations

import argparse
import dataclasses
import inspect
import math
import re
import types
import typing
from collections.abc import Iterable, Mapping
from typing import Any

import yaml


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Keeps a command's description as written; a flag whose help does not state its default gets it appended."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if (
            "(default:" in text
            or action.default in (None, argparse.SUPPRESS)
            or action.required
            or not action.option_strings
        ):
            return text
        return f"{text} (default: %(default)s)"


# torch CPU threads for every command that computes. One: on a 2-core machine under heavy load, torch's default
# (one per core) made a training step 2–5× slower, as OpenMP threads spin-wait for a busy core, while under light
# load two threads were at most 1.46× faster, and on free cores can be at most 2× (BENCHMARKS.md, "Threads").
# 0 = torch's own choice.
DEFAULT_THREADS = 1
THREADS_HELP = (
    "torch CPU threads; 0 = torch's default, one per core (1 was 2–5× faster than that on a busy 2-core "
    "machine and at most 1.5× slower on a lightly loaded one: BENCHMARKS.md 'Threads')"
)


def command_parser(
    subparsers: argparse._SubParsersAction,
    name: str,
    help_text: str,
    description: str | None,
) -> argparse.ArgumentParser:
    """A subcommand's parser: its docstring as description, defaults in the help, ``--verbose``, and itself as
    ``args.parser`` (so ``gato.cli`` reports an unknown flag with this subcommand's usage)."""
    if description:
        description = description.replace("``", "`").replace(":class:`", "`").replace(":func:`", "`")
    parser = subparsers.add_parser(name, help=help_text, description=description, formatter_class=HelpFormatter)
    parser.add_argument(
        "--verbose",
        action="store_true",
        help="also show the libraries' banners and notices that are hidden by default (gato/quiet.py)",
    )
    parser.set_defaults(parser=parser)
    return parser


def add_threads_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--threads", type=non_negative_int, default=DEFAULT_THREADS, help=THREADS_HELP)


def set_threads(threads: int) -> None:
    """``torch.set_num_threads`` unless ``threads`` is 0 (torch's default)."""
    if threads:
        import torch

        torch.set_num_threads(threads)


def parse_mapping(text: str) -> dict[str, Any]:
    """``a=1,b=x`` → ``{"a": 1, "b": "x"}`` (values parsed as YAML scalars); ``''`` → ``{}``."""
    result = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise argparse.ArgumentTypeError(f"expected KEY=VALUE pairs separated by commas, got {item!r}")
        result[key.strip()] = yaml.safe_load(value)
    return result


def _non_negative(kind: type, least: int = 0) -> typing.Callable[[str], Any]:
    def convert(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"expected {'an integer' if kind is int else 'a number'}, got {text!r}"
            ) from None
        if not math.isfinite(value) or value < least:
            raise argparse.ArgumentTypeError(f"expected a finite number ≥ {least}, got {text!r}")
        return value

    convert.__name__ = kind.__name__  # argparse names the type in its "invalid <type> value" messages
    return convert


non_negative_int = _non_negative(int)
positive_int = _non_negative(int, least=1)  # for a count whose 0 means nothing (a step limit)
non_negative_float = _non_negative(float)


def field_docs(cls: type) -> dict[str, str]:
    """Each field's description from the class docstring's ``Args:`` section (``a / b: text`` documents both)."""
    docs: dict[str, str] = {}
    current: list[str] = []
    in_args = False
    for line in (inspect.getdoc(cls) or "").splitlines():
        if line.strip() == "Args:":
            in_args = True
            continue
        if not in_args:
            continue
        if line and not line.startswith(" "):  # the next section
            break
        entry = re.match(r"^ {4}(\w+(?:\s*[/,]\s*\w+)*):\s*(.*)$", line)
        if entry:
            current = [entry.group(2)]
            for name in re.split(r"\s*[/,]\s*", entry.group(1)):
                docs[name] = current  # shared list: continuation lines reach every name of the entry
        elif line.startswith("        ") and current is not None:
            current.append(line.strip())
    return {name: " ".join(parts).replace("``", "`").strip() for name, parts in docs.items()}


@dataclasses.dataclass(frozen=True)
class _Flag:
    path: tuple[str, ...]  # field names from the root dataclass down to the leaf
    dest: str


def _unwrap(annotation: Any) -> Any:
    """``X | None`` → ``X``."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        args = [arg for arg in typing.get_args(annotation) if arg is not type(None)]
        if len(args) == 1:
            return args[0]
    return annotation


def _leaf_flags(
    cls: type, prefix: str = "", path: tuple[str, ...] = ()
) -> Iterable[tuple[_Flag, dataclasses.Field, Any, str]]:
    hints = typing.get_type_hints(cls)
    docs = field_docs(cls)
    for field in dataclasses.fields(cls):
        if not field.init:  # derived state (``RecordConfig.parsed_kwargs``), not a setting
            continue
        annotation = _unwrap(hints[field.name])
        if dataclasses.is_dataclass(annotation):
            yield from _leaf_flags(annotation, prefix + field.metadata.get("flag_prefix", ""), (*path, field.name))
            continue
        name = field.metadata.get("flag") or prefix + field.name.replace("_", "-")
        yield _Flag((*path, field.name), name.replace("-", "_")), field, annotation, docs.get(field.name, "")


def _shown(value: Any) -> str:
    if isinstance(value, dict):
        return ",".join(f"{key}={item}" for key, item in value.items()) or "''"
    if isinstance(value, str):
        return value or "''"
    return str(value)


def _default_of(defaults: Any, path: tuple[str, ...]) -> Any:
    for name in path:
        defaults = getattr(defaults, name)
    return defaults


def add_dataclass_flags(
    parser: argparse.ArgumentParser,
    cls: type,
    *,
    defaults: Any = None,
    exclude: Iterable[str] = (),
    flag_kwargs: Mapping[str, Mapping[str, Any]] | None = None,
) -> list[_Flag]:
    """Add one flag per (flattened) field of the dataclass ``cls`` to ``parser``; returns them for
    :func:`config_from_flags`.

    Args:
        defaults: an instance whose values the help shows as defaults (default: ``cls()``).
        exclude: field names (leaf names) that get no flag — the command handles them itself.
        flag_kwargs: extra ``add_argument`` keywords per field name (``choices``, ``metavar``, ``type``).
    """
    defaults = cls() if defaults is None else defaults
    exclude, flag_kwargs = set(exclude), dict(flag_kwargs or {})
    taken = {action.dest for action in parser._actions}
    flags = []
    for flag, field, annotation, doc in _leaf_flags(cls):
        if flag.path[-1] in exclude:
            continue
        if flag.dest in taken:
            raise ValueError(
                f"{cls.__name__}.{'.'.join(flag.path)}: flag --{flag.dest.replace('_', '-')} is already taken"
            )
        taken.add(flag.dest)
        extra = {**field.metadata.get("argparse", {}), **flag_kwargs.get(flag.path[-1], {})}
        help_text = extra.pop("help", None) or field.metadata.get("help") or doc
        if not help_text:
            raise ValueError(
                f"{cls.__name__}.{'.'.join(flag.path)}: no help (document it in the class docstring's Args)"
            )
        positional = field.metadata.get("positional", False)
        if "(default:" not in help_text and not extra.get("required") and not positional:
            default = extra["default"] if "default" in extra else _default_of(defaults, flag.path)
            help_text = f"{help_text} (default: {_shown(default)})"
        kwargs: dict[str, Any] = {"dest": flag.dest, "default": None, "help": help_text.replace("%", "%%")}
        origin = typing.get_origin(annotation) or annotation
        if origin is bool:
            kwargs["action"] = argparse.BooleanOptionalAction
        elif origin is dict:
            kwargs.update(type=parse_mapping, metavar="KEY=VALUE,...")
        elif origin is typing.Literal:
            choices = typing.get_args(annotation)
            kwargs.update(type=type(choices[0]), choices=choices)
        elif origin is int:
            kwargs["type"] = non_negative_int
        elif origin is float:
            kwargs["type"] = non_negative_float
        else:
            kwargs["type"] = origin
        kwargs.update(extra)
        if positional:  # argparse names a positional by its dest, and a positional is required: no default
            del kwargs["dest"], kwargs["default"]
            parser.add_argument(flag.dest, **kwargs)
        else:
            parser.add_argument("--" + flag.dest.replace("_", "-"), **kwargs)
        flags.append(flag)
    return flags


def config_from_flags(base: Any, args: argparse.Namespace, flags: Iterable[_Flag]) -> Any:
    """``base`` (a config instance) with every flag that was given replacing its field; nested configs are
    rebuilt, so their ``__post_init__`` checks run again."""
    changes: dict[tuple[str, ...], Any] = {}
    for flag in flags:
        value = getattr(args, flag.dest, None)
        if value is not None:
            changes[flag.path] = value
    return _replace(base, changes)


def _replace(config: Any, changes: Mapping[tuple[str, ...], Any]) -> Any:
    if not changes:
        return config
    direct, nested = {}, {}
    for path, value in changes.items():
        if len(path) == 1:
            direct[path[0]] = value
        else:
            nested.setdefault(path[0], {})[path[1:]] = value
    for name, sub_changes in nested.items():
        direct[name] = _replace(getattr(config, name), sub_changes)
    return dataclasses.replace(config, **direct)


__all__ = [
    "DEFAULT_THREADS",
    "HelpFormatter",
    "add_dataclass_flags",
    "add_threads_flag",
    "command_parser",
    "set_threads",
    "config_from_flags",
    "field_docs",
    "non_negative_float",
    "non_negative_int",
    "parse_mapping",
    "positive_int",
]
