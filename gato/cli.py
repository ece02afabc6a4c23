"""The ``gato`` command: thin — parse arguments, check inputs, call library functions, print results.

Each subcommand lives in ``gato/commands/<name>.py`` and exposes ``register(subparsers)``, which adds its
parser and sets ``handler`` (a function ``args -> exit status``). Only the subcommand being run is imported
and built, and the Gato classes are registered with transformers only once it is about to run, so
``gato --help`` and usage errors answer without importing torch (``gato/__init__.py``).
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

import gato
from gato.flags import HelpFormatter
from gato.quiet import quiet_libraries

COMMANDS = {
    "data": "list and generate episode datasets",
    "train": "train a Gato model on a task mixture",
    "finetune": "fine-tune a trained model on one task with K demonstrations",
    "eval": "evaluate a model on tasks: returns, normalized scores, plots",
    "compare": "compare two evaluations: differences with intervals",
    "run": "the main job: generate → train → evaluate → Hub-ready folder",
    "push": "upload a run folder to the Hugging Face Hub",
}


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The ``gato`` parser; with ``command``, only that subcommand's flags are built (the others are listed)."""
    parser = argparse.ArgumentParser(
        prog="gato", description="Gato, a generalist agent, on transformers.", formatter_class=HelpFormatter
    )
    parser.add_argument("--version", action="version", version=f"gato {gato.__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, help_text in COMMANDS.items():
        if name == command:
            importlib.import_module(f"gato.commands.{name}").register(subparsers)
        else:
            subparsers.add_parser(name, help=help_text)
    return parser


def _command_of(argv: Sequence[str]) -> str | None:
    return next((arg for arg in argv if not arg.startswith("-")), None)


# What a shell reports for a program killed by SIGPIPE (128 + 13), as `ls | head` leaves it.
BROKEN_PIPE_STATUS = 141


def main(argv: Sequence[str] | None = None) -> int:
    """Run one ``gato`` command; its exit status. Output piped into a reader that stops early (``gato data list |
    head``) ends the command quietly, as it ends a Unix tool, instead of with a traceback."""
    try:
        return _run(argv)
    except BrokenPipeError:
        # Python would try again to flush stdout at exit and print "Exception ignored"; point it at nothing.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return BROKEN_PIPE_STATUS


def _run(argv: Sequence[str] | None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    command = _command_of(argv)
    parser = build_parser(command if command in COMMANDS else None)
    args, unknown = parser.parse_known_args(argv)
    if unknown:  # say it with the usage of the (sub)command that was given them
        getattr(args, "parser", parser).error(f"unrecognized arguments: {' '.join(unknown)}")
    if args.command is None:
        parser.print_help()
        return 0
    quiet_libraries(verbose=getattr(args, "verbose", False))
    gato.register_auto_classes()
    return int(args.handler(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
