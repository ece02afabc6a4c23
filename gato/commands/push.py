"""``gato push``: upload a run folder (model, processor, card, plot, eval results) to the Hugging Face Hub.

    gato push RUN_DIR --repo-id ORG/NAME [--private] [--dry-run] [--token TOKEN] [--keep-card]
    gato push RUN_DIR --repo-id ORG/NAME --local-dir DIR

Checkpoints, logs and the generated data are left out. The model card (README.md) is rebuilt with the repo id
in its loading snippets. ``--dry-run`` uses no network and writes nothing: it lists exactly the files that
would be uploaded and validates the folder (what ``from_pretrained`` needs) and the card's metadata.
``--local-dir DIR`` uses no network either: it writes exactly the files (and bytes) the upload would send into
DIR, a Hub-ready folder (e.g. to keep in a repository). DIR must be new, empty, or an earlier export (a folder that
loads with ``from_pretrained`` and holds nothing a push leaves out); its files are then replaced, and files of the
earlier export that this one does not write are kept and listed, never deleted. The run folder is not changed.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field

from gato.flags import add_dataclass_flags, command_parser, config_from_flags
from gato.inputs import existing_folder, refuse


@dataclass
class PushConfig:
    """What ``gato push`` uploads, and where.

    Args:
        run_dir: a folder written by `gato run` or `gato train`.
        repo_id: the Hub model repository, ORG/NAME.
        private: create the repository private.
        dry_run: list what would be uploaded and validate; no network.
        token: Hub token (default: $HF_TOKEN, else the one `hf auth login` stored; prefer HF_TOKEN: a --token value
            stays in your shell history).
        keep_card: upload README.md as it is (default: rebuilt with the repo id in its loading snippets).
        local_dir: write exactly the files the upload would send into this folder instead of uploading (no network);
            it must be new, empty or an earlier export.
    """

    run_dir: str = field(default="", metadata={"positional": True, "argparse": {"metavar": "RUN_DIR"}})
    repo_id: str = field(default="", metadata={"argparse": {"required": True, "metavar": "ORG/NAME"}})
    private: bool = False
    dry_run: bool = False
    token: str | None = None
    keep_card: bool = False
    local_dir: str | None = field(default=None, metadata={"argparse": {"metavar": "DIR"}})


_FLAGS = []


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = command_parser(subparsers, "push", "upload a run folder to the Hugging Face Hub", __doc__)
    _FLAGS[:] = add_dataclass_flags(parser, PushConfig)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from gato.hub_cards.push import push_run

    config = config_from_flags(PushConfig(), args, _FLAGS)
    try:
        existing_folder(config.run_dir, "a folder written by `gato run` or `gato train`")
        plan = push_run(
            config.run_dir,
            config.repo_id,
            private=config.private,
            dry_run=config.dry_run,
            token=config.token,
            update_card=not config.keep_card,
            local_dir=config.local_dir,
        )
    except ValueError as error:
        return refuse("gato push", error)
    if plan.local_dir:
        print(
            f"wrote {len(plan.files)} files ({plan.total_bytes / 1e6:.1f} MB) for {plan.repo_id} to {plan.local_dir}:"
        )
    else:
        verb = "would upload" if config.dry_run else "uploaded"
        print(
            f"{verb} {len(plan.files)} files ({plan.total_bytes / 1e6:.1f} MB) to {plan.repo_id}"
            f"{' (private)' if plan.private else ''}:"
        )
    for name in plan.files:
        print(f"  {name}")
    if plan.kept:
        print(f"kept {len(plan.kept)} files of the earlier export that this one did not write: {', '.join(plan.kept)}")
    print(f"model card metadata valid: {len(plan.eval_results)} model-index results")
    if plan.url:
        print(plan.url)
    return 0
