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

Control: :func:`load_agent` returns the evaluation agent (:class:`gato.evaluation.GatoAgent`), prompted with an
expert demonstration of the task as at deployment in the paper (GATO_SPEC §4–5), ready for one environment:
``agent(observation)`` maps an environment observation to an environment action.
"""

from __future__ import annotations

import logging as std_logging
import os
from typing import Any

import numpy as np
import torch
from transformers import AutoModelForImageTextToText, Pipeline
from transformers.pipelines import PIPELINE_REGISTRY, ImageTextToTextPipeline
from transformers.utils import logging

from gato.modeling_gato import GatoConfig, GatoForCausalLM
from gato.suite.token_layout import BOS_TOKEN_ID, EOS_TOKEN_ID, PAD_TOKEN_ID, UNK_TOKEN_ID

CAPTION_TASKS = ("image-text-to-text", "image-to-text")
DEFAULT_MAX_NEW_TOKENS = 48  # the caption evaluation's budget (gato.evaluation.captioning)
# Special ids a caption never contains (they decode to nothing): a caption is text, so it is never empty.
NEVER_IN_A_CAPTION = [PAD_TOKEN_ID, UNK_TOKEN_ID, BOS_TOKEN_ID]


class GatoImageToTextPipeline(Pipeline):
    """Captions from a Gato checkpoint: the image's patches, ``bos`` (and an optional text prefix) → greedy text.

    The prompt is the processor's caption prompt (``processor(images=image, text=prefix)``: ``[patches][bos prefix]``,
    the layout the model was trained on, before its ``eos``); only text ids may be generated, up to
    ``max_new_tokens``, stopping at ``eos``. A caption holds at least one word: ``eos`` cannot come first and the
    special ids that decode to nothing (pad, unk, bos) never come (a black image gets a caption too, not ``''``).

    Call with an image (a path, URL, ``PIL.Image`` or ``(H, W, 3)`` uint8 array) or a list of them, optionally
    ``text=`` a caption prefix to continue; returns ``[{"generated_text": caption}]`` per image (the prefix
    included), like transformers' captioning pipelines. ``max_new_tokens`` is a call or construction argument.
    """

    _load_processor = True
    _load_tokenizer = False
    _load_image_processor = False
    _load_feature_extractor = False

    def _sanitize_parameters(self, max_new_tokens: int | None = None, timeout: float | None = None, **kwargs: Any):
        if kwargs:
            raise ValueError(
                f"unexpected arguments {sorted(kwargs)}; the Gato caption pipeline takes max_new_tokens and timeout"
            )
        forward = {} if max_new_tokens is None else {"max_new_tokens": max_new_tokens}
        return ({} if timeout is None else {"timeout": timeout}), forward, {}

    def __call__(self, images: Any = None, text: str | list[str] | None = None, **kwargs: Any) -> Any:
        """Caption ``images`` (one or a list), each optionally continuing a ``text`` prefix."""
        if images is None:
            images = kwargs.pop("inputs", None)
        if images is None:
            raise ValueError("images: expected an image (path, URL, PIL image or (H, W, 3) array) or a list of them")
        if isinstance(images, (list, tuple)):
            prefixes = text if isinstance(text, (list, tuple)) else [text] * len(images)
            if len(prefixes) != len(images):
                raise ValueError(f"text: got {len(prefixes)} prefixes for {len(images)} images")
            return super().__call__(
                [{"image": image, "text": prefix} for image, prefix in zip(images, prefixes)], **kwargs
            )
        return super().__call__({"image": images, "text": text}, **kwargs)

    def preprocess(self, inputs: dict[str, Any], timeout: float | None = None) -> dict[str, Any]:
        from transformers.image_utils import load_image

        image = inputs["image"]
        if isinstance(image, str) or not isinstance(image, np.ndarray) and not torch.is_tensor(image):
            image = load_image(image, timeout=timeout).convert("RGB")
        prefix = inputs.get("text") or None
        model_inputs = dict(self.processor(images=image, text=prefix, return_tensors="pt"))  # [patches][bos prefix]
        # The prefix's own ids (after bos) are decoded with the new ones, so the spacing comes out right.
        after_bos = int(model_inputs["patch_mask"][0].sum()) + 1
        model_inputs["prefix_ids"] = model_inputs["input_ids"][0, after_bos:]
        return model_inputs

    def _forward(self, model_inputs: dict[str, Any], max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS) -> dict[str, Any]:
        from transformers import LogitsProcessorList

        from gato.evaluation.captioning import TextOnlyLogitsProcessor

        prefix_ids = model_inputs.pop("prefix_ids")
        output = self.model.generate(
            **model_inputs,
            max_new_tokens=max_new_tokens,
            min_new_tokens=1,
            suppress_tokens=NEVER_IN_A_CAPTION,
            do_sample=False,
            eos_token_id=EOS_TOKEN_ID,
            pad_token_id=PAD_TOKEN_ID,
            logits_processor=LogitsProcessorList([TextOnlyLogitsProcessor()]),
        )
        return {"new_ids": output[0, model_inputs["input_ids"].shape[1] :], "prefix_ids": prefix_ids}

    def postprocess(self, model_outputs: dict[str, Any]) -> list[dict[str, str]]:
        new_ids = model_outputs["new_ids"].cpu().numpy()
        ends = np.flatnonzero(new_ids == EOS_TOKEN_ID)
        ids = np.concatenate([model_outputs["prefix_ids"].cpu().numpy(), new_ids[: ends[0]] if ends.size else new_ids])
        return [{"generated_text": self.processor.tokenizer.decode(ids.tolist(), skip_special_tokens=True).strip()}]


class ImageTextToTextDispatchPipeline(ImageTextToTextPipeline):
    """transformers' ``ImageTextToTextPipeline``, except that a Gato model gets a :class:`GatoImageToTextPipeline`.

    ``pipeline()`` builds the registered class as ``cls(model=..., task=..., processor=..., ...)``; for a Gato
    model ``__new__`` returns the Gato pipeline built from the same arguments (Python then skips ``__init__``,
    the object not being an instance of this class); for any other model nothing changes.
    """

    def __new__(cls, *args: Any, **kwargs: Any) -> Any:
        model = kwargs.get("model", args[0] if args else None)
        if isinstance(getattr(model, "config", None), GatoConfig):
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
    model: str | torch.nn.Module,
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
        model: a folder or Hub id written by ``gato train`` / ``gato run`` (loaded with the Auto classes), or a
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
