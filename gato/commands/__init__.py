"""One module per ``gato`` subcommand; see ``gato/cli.py``."""
