"""Gato in transformers' ``pipeline()`` (captions) and a few-line control helper (acting in a gymnasium env).

After ``import gato``, both task names return captions from a Gato checkpoint::

    pipeline("image-to-text", model=FOLDER)("scene.png")        # [{"generated_text": "a red circle ..."}]
    pipeline("image-text-to-text", model=FOLDER)(images=image)   # same

transformers 5 has no ``image-to-text`` task: ``pipeline()`` rewrites that name to ``image-text-to-text`` before
it looks the task up, then loads the model through that task's Auto class
(``AutoModelForImageTextToText``) and builds the task's pipeline class. So we register, with transformers' own
registries only (no patched internals):

- ``GatoForCausalLM`` under ``AutoModelForImageTextToText`` for ``GatoConfig``;
- for ``image-text-to-text`` (and ``image-to-text``, so the registry lists it and a transformers without the
  rewrite finds it), ``PIPELINE_REGISTRY.register_pipeline`` with :class:`ImageTextToTextDispatchPipeline`: a
  subclass of transformers' ``ImageTextToTextPipeline`` that builds a :class:`GatoImageToTextPipeline` when the
  model is a Gato and is exactly transformers' pipeline otherwise (same Auto class, default model and type);
- a filter on transformers' pipelines logger that drops its "``image-to-text`` has been removed" warning: gato
  serves that name itself, and transformers 5.24 logs the warning with a stray argument, which printed a
  17-line ``--- Logging error ---`` block on every ``pipeline("image-to-text")``.

The caption pipeline itself, :class:`GatoImageToTextPipeline`, lives in ``gato.modeling_gato.pipeline_gato``: it is
copied into every saved folder and named there for both task names (``config.json``'s ``custom_pipelines``), so that
``pipeline(task, model=FOLDER, trust_remote_code=True)`` captions the same way where gato is not installed (and
never reaches transformers' renaming of ``image-to-text``, nor its logging error).

Control: :func:`load_agent` returns the evaluation agent (:class:`gato.evaluation.GatoAgent`), prompted with an
expert demonstration of the task as at deployment in the paper (GATO_SPEC §4–5), ready for one environment:
``agent(observation)`` maps an environment observation to an environment action.
"""

from __future__ import annotations

import logging as std_logging
import os
from typing import Any

import torch
from transformers import AutoModelForImageTextToText
from transformers.pipelines import PIPELINE_REGISTRY, ImageTextToTextPipeline
from transformers.utils import logging

from gato.modeling_gato import GatoConfig, GatoForCausalLM
from gato.modeling_gato.pipeline_gato import CAPTION_TASKS, GatoImageToTextPipeline


class ImageTextToTextDispatchPipeline(ImageTextToTextPipeline):
    """transformers' ``ImageTextToTextPipeline``, except that a Gato model gets a :class:`GatoImageToTextPipeline`.

    ``pipeline()`` builds the registered class as ``cls(model=..., task=..., processor=..., ...)``; for a Gato
    model ``__new__`` returns the Gato pipeline built from the same arguments (Python then skips ``__init__``,
    the object not being an instance of this class); for any other model nothing changes.
    """

    def __new__(cls, *args: Any, **kwargs: Any) -> Any:
        model = kwargs.get("model", args[0] if args else None)
        # By model type, not class: a folder loaded with trust_remote_code has its own copy of GatoConfig.
        if getattr(getattr(model, "config", None), "model_type", None) == GatoConfig.model_type:
            return GatoImageToTextPipeline(*args, **kwargs)
        return super().__new__(cls)


class _ServedTaskNameFilter(std_logging.Filter):
    """Drops transformers' "``image-to-text`` has been removed" warning: after ``import gato`` that name is served
    (:func:`register_pipelines`), and the warning's stray argument made logging print a traceback instead."""

    def filter(self, record: std_logging.LogRecord) -> bool:
        return not str(record.msg).startswith("The task `image-to-text` has been removed")


_registered = False


def register_pipelines() -> None:
    """Register Gato's caption pipelines and its image-text-to-text Auto mapping (idempotent; ``import gato`` calls it)."""
    global _registered
    if _registered:
        return
    AutoModelForImageTextToText.register(GatoConfig, GatoForCausalLM, exist_ok=True)
    builtin = PIPELINE_REGISTRY.supported_tasks["image-text-to-text"]
    # Replacing a built-in task logs "already registered. Overwriting…" on every `import gato`: expected here.
    registry_logger = logging.get_logger("transformers.pipelines.base")
    level = registry_logger.level
    registry_logger.setLevel(logging.ERROR)
    try:
        for task in CAPTION_TASKS:
            PIPELINE_REGISTRY.register_pipeline(
                task,
                pipeline_class=ImageTextToTextDispatchPipeline,
                pt_model=builtin["pt"],
                default=builtin.get("default"),
                type=builtin.get("type", "multimodal"),
            )
    finally:
        registry_logger.setLevel(level)
    logging.get_logger("transformers.pipelines").addFilter(_ServedTaskNameFilter())
    _registered = True


# --- control -------------------------------------------------------------------------------------------------


def load_agent(
    model: str | os.PathLike | torch.nn.Module,
    task: str | Any,
    *,
    processor: Any = None,
    seed: int = 0,
    env: str | None = None,
    env_kwargs: dict[str, Any] | None = None,
    acting_config: Any = None,
    dtype: str | torch.dtype | None = None,
    **acting: Any,
) -> Any:
    """A saved Gato ready to act in a task, in one line: a :class:`gato.evaluation.GatoAgent` prompted as
    ``gato eval`` prompts it (``gato.evaluation.rollout.make_agent``) and reset for one environment.

    Args:
        model: a folder (a path or ``Path``) or Hub id written by ``gato train`` / ``gato run`` (loaded with the
            Auto classes; a checkpoint folder ``checkpoints/checkpoint-<step>`` of a run too), or a
            loaded ``GatoForCausalLM`` (then pass ``processor``).
        task: a suite task name (``gato data list``), the name of a task a model folder was trained on from recorded
            data (its ``task_specs.json`` stores the spec and the gymnasium id), or a ``gato.suite.registry.Task``.
        seed: seeds the prompt demonstration (and the sampler).
        env / env_kwargs: for a task the suite does not know, the gymnasium id (and ``gym.make`` arguments) to play it
            in, when its stored spec has none or another is wanted.
        acting_config: a ``gato.modeling_gato.acting.ActingConfig``; or its fields as keywords instead, e.g.
            ``prompt_tokens`` (prompt demonstration length; default a quarter of the context, as in training; 0:
            none), ``do_sample`` / ``temperature`` (sample actions instead of greedy decoding).
        dtype: the dtype the agent acts in, as ``gato eval --dtype``: ``"float32"``, ``"bfloat16"`` or ``"auto"``
            (bf16 where the CPU or GPU computes it natively; ``gato.training.precision.resolve_dtype``); the action
            logits are computed in float32 either way. Default: as loaded (a folder loads in float32); a loaded
            model is cast in place.

    ``agent(observation)`` returns the environment's action; ``agent.reset()`` starts a new episode (the prompt is
    kept); ``agent.play(episodes)`` plays whole episodes; ``agent.make_env(seed)`` makes the task's environment.

    Example::

        policy = load_agent("runs/gato", "cartpole")
        env = policy.make_env(seed=0)
        observation, _ = env.reset(seed=0)
        policy.reset()
        observation, reward, terminated, truncated, info = env.step(policy(observation))
    """
    from gato.evaluation.rollout import make_agent
    from gato.modeling_gato.acting import ActingConfig
    from gato.suite.registry import get_model_task
    from gato.suite.task_spec import load_task_specs

    if acting_config is not None and acting:
        raise ValueError(
            f"acting_config: pass an ActingConfig or its fields as keywords, not both (got {sorted(acting)})"
        )
    acting_config = acting_config if acting_config is not None else ActingConfig(**acting)
    if dtype is not None:  # refused before the model loads
        from gato.training.precision import resolve_dtype

        resolve_dtype(dtype)
    specs = {}
    if isinstance(model, os.PathLike):  # a pathlib.Path, as from_pretrained takes
        model = os.fspath(model)
    if isinstance(model, str):
        specs = load_task_specs(model) if os.path.isdir(model) else {}
        from gato.evaluation.run_evaluation import load_model_and_processor

        model, loaded = load_model_and_processor(model)
        processor = processor or loaded
    elif processor is None:
        raise ValueError("processor: a loaded model needs its GatoProcessor (or pass the folder instead)")
    if dtype is not None:
        from gato.training.precision import cast_for_acting

        cast_for_acting(model, dtype)
    task = get_model_task(task, specs, env, env_kwargs) if isinstance(task, str) else task
    agent = make_agent(model, processor, task, acting_config, seed=seed)
    agent.reset()
    return agent


def __getattr__(name: str) -> Any:
    # `GatoPolicy` (what `load_agent` returned before the agent took the task's conversions) is the agent now.
    if name == "GatoPolicy":
        from gato.evaluation.agent import GatoAgent

        return GatoAgent
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["GatoImageToTextPipeline", "ImageTextToTextDispatchPipeline", "register_pipelines", "load_agent"]
