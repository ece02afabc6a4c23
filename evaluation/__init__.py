"""Acting and scoring: the agent, rollouts, expert-normalized scores, tables and plots.

- :class:`GatoAgent` (``agent.py``): a model + processor acting in a batch of environments of one task, KV cache
  kept: env observation → episode step → tensors → action tokens → spec action → env action, in one sequence.
- :func:`make_agent` / :func:`evaluate_task` / :func:`run_episodes` (``rollout.py``): the prompted agent, rollouts
  in vector environments.
- ``scores.py``: normalized scores, per-domain summaries, the fraction of tasks ≥ 50% of the expert.
- ``captioning.py``, ``validation_loss.py``: caption attribute accuracy (+ BLEU), text validation loss.
- ``report.py`` / ``run_evaluation.py``: ``eval_results.json``, markdown, PNG; what ``gato eval`` runs.
"""

from .agent import GatoAgent
from .captioning import attribute_accuracy, evaluate_captions, generate_captions
from .rollout import TaskResult, evaluate_task, evaluate_tasks, make_agent, run_episodes
from .run_evaluation import EvaluationConfig, run_evaluation
from .scores import domain_summaries, normalized_scores, score_summary
from .validation_loss import evaluate_text

__all__ = [
    "GatoAgent",
    "TaskResult",
    "make_agent",
    "evaluate_task",
    "evaluate_tasks",
    "run_episodes",
    "normalized_scores",
    "score_summary",
    "domain_summaries",
    "attribute_accuracy",
    "generate_captions",
    "evaluate_captions",
    "evaluate_text",
    "EvaluationConfig",
    "run_evaluation",
]
