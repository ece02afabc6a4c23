"""Acting and scoring: the agent, rollouts, expert-normalized scores, tables and plots.

- :class:`GatoAgent` (``agent.py``): a model + processor acting in a batch of environments of one task, KV cache
  kept: env observation → episode step → tensors → action tokens → spec action → env action, in one sequence.
- :func:`make_agent` / :func:`evaluate_task` / :func:`run_episodes` (``rollout.py``): the prompted agent, rollouts
  in vector environments.
- ``scores.py``: normalized scores, per-domain summaries, the fraction of tasks ≥ 50% of the expert.
- ``captioning.py``, ``validation_loss.py``: caption attribute accuracy (+ BLEU), text validation loss.
- ``report.py`` / ``run_evaluation.py``: ``eval_results.json``, markdown, PNG; what ``gato eval`` runs.
- ``transfer_report.py``: the transfer study's ``transfer.json`` → table, plot, the command (script and card).
"""

from importlib import import_module

# Imported here, not on first use: the function `run_evaluation` must shadow its submodule's name in this package.
from .run_evaluation import EvaluationConfig, run_evaluation

# The other public names → the submodule that defines them, imported on first use (as in ``gato/__init__.py``):
# reading an ``EvaluationConfig`` (``gato eval --help``) imports neither the agent nor the rollouts.
_LAZY_ATTRIBUTES = {
    "GatoAgent": ".agent",
    "TaskResult": ".rollout",
    "make_agent": ".rollout",
    "evaluate_task": ".rollout",
    "evaluate_tasks": ".rollout",
    "run_episodes": ".rollout",
    "normalized_scores": ".scores",
    "score_summary": ".scores",
    "domain_summaries": ".scores",
    "attribute_accuracy": ".captioning",
    "generate_captions": ".captioning",
    "evaluate_captions": ".captioning",
    "evaluate_text": ".validation_loss",
}

__all__ = ["EvaluationConfig", "run_evaluation", *_LAZY_ATTRIBUTES]


def __getattr__(name: str):
    if name in _LAZY_ATTRIBUTES:
        return getattr(import_module(_LAZY_ATTRIBUTES[name], __name__), name)
    raise AttributeError(f"module 'gato.evaluation' has no attribute {name!r}")
