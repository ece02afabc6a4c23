"""What the Hub shows: model cards built from a run folder's results, and pushing a run folder.

Dataset cards are written by :mod:`gato.episodes.cards` while ``gato data generate`` records the data.
"""

from .model_card import CARD_FILE, build_model_card, eval_results_from_json, write_model_card
from .push import IGNORE_PATTERNS, PushPlan, check_run_folder, push_run, upload_plan, validate_model_card

__all__ = [
    "CARD_FILE",
    "build_model_card",
    "eval_results_from_json",
    "write_model_card",
    "IGNORE_PATTERNS",
    "PushPlan",
    "check_run_folder",
    "push_run",
    "upload_plan",
    "validate_model_card",
]
