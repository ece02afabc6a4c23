"""``gato push``: upload a run folder (model, processor, card, plot, eval results) to the Hugging Face Hub.

    gato push RUN_DIR --repo-id ORG/NAME [--private] [--dry-run] [--token TOKEN]

Checkpoints, logs and the generated data are left out. The model card (README.md) is rebuilt with the repo id
in its loading snippets. ``--dry-run`` uses no network and writes nothing: it lists exactly the files that
would be uploaded and validates the folder (what ``from_pretrained`` needs) and the card's metadata.
"""

from __future__ import annotations

import argparse

from gato.flags import command_parser
from gato.inputs import existing_folder, refuse


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = command_parser(subparsers, "push", "upload a run folder to the Hugging Face Hub", __doc__)
    parser.add_argument("run_dir", metavar="RUN_DIR", help="a folder written by `gato run` or `gato train`")
    parser.add_argument("--repo-id", required=True, help="the Hub model repository, ORG/NAME")
    parser.add_argument("--private", action="store_true", help="create the repository private")
    parser.add_argument("--dry-run", action="store_true", help="list what would be uploaded and validate; no network")
    parser.add_argument(
        "--token",
        default=None,
        help="Hub token (default: $HF_TOKEN, else the one `hf auth login` stored; "
        "prefer HF_TOKEN: a --token value stays in your shell history)",
    )
    parser.add_argument("--keep-card", dest="update_card", action="store_false", help="upload README.md as it is")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from gato.hub_cards.push import push_run

    try:
        existing_folder(args.run_dir, "a folder written by `gato run` or `gato train`")
        plan = push_run(
            args.run_dir,
            args.repo_id,
            private=args.private,
            dry_run=args.dry_run,
            token=args.token,
            update_card=args.update_card,
        )
    except ValueError as error:
        return refuse("gato push", error)
    verb = "would upload" if args.dry_run else "uploaded"
    print(
        f"{verb} {len(plan.files)} files ({plan.total_bytes / 1e6:.1f} MB) to {plan.repo_id}"
        f"{' (private)' if plan.private else ''}:"
    )
    for name in plan.files:
        print(f"  {name}")
    print(f"model card metadata valid: {len(plan.eval_results)} model-index results")
    if plan.url:
        print(plan.url)
    return 0
