"""Pipelines: after `import gato`, both caption task names return strings from a Gato checkpoint; other models keep
transformers' own image-text-to-text pipeline; `load_agent` acts in a suite environment in a few lines."""

import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from gato.modeling_gato import GatoConfig, GatoForCausalLM
from gato.suite import token_layout as tl
from PIL import Image

import gato  # noqa: F401  (registers the Auto classes and the pipelines)
from gato.pipelines import GatoImageToTextPipeline, GatoPolicy, ImageTextToTextDispatchPipeline, load_agent


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory, save_tiny_checkpoint):
    path = tmp_path_factory.mktemp("tiny")
    save_tiny_checkpoint(path, 128)
    return str(path)


@pytest.fixture(scope="module")
def image():
    pixels = np.zeros((64, 64, 3), dtype=np.uint8)
    pixels[8:24, 8:24] = (255, 0, 0)
    return Image.fromarray(pixels)


@pytest.mark.parametrize("task", ["image-to-text", "image-text-to-text"])
def test_both_task_names_caption_with_a_gato_checkpoint(task, checkpoint, image, tmp_path):
    from transformers import pipeline

    captioner = pipeline(task, model=checkpoint)
    assert isinstance(captioner, GatoImageToTextPipeline)
    image.save(tmp_path / "scene.png")
    for output in (
        captioner(image, max_new_tokens=4),
        captioner(str(tmp_path / "scene.png"), max_new_tokens=4),
        captioner(images=np.asarray(image), max_new_tokens=4),
    ):
        assert len(output) == 1 and isinstance(output[0]["generated_text"], str)


@pytest.mark.parametrize("task", ["image-to-text", "image-text-to-text"])
def test_pipelines_are_quiet(task, checkpoint):
    """No `--- Logging error ---` block (transformers' image-to-text rename warning) and no warning at all."""
    script = (
        "import sys, numpy as np, gato\n"
        "from transformers import pipeline\n"
        "captioner = pipeline(sys.argv[1], model=sys.argv[2])\n"
        "print('CAPTION', captioner(np.zeros((64, 64, 3), np.uint8), max_new_tokens=3)[0]['generated_text'])\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script, task, checkpoint],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
    assert result.returncode == 0, result.stderr
    assert "CAPTION " in result.stdout
    noise = [line for line in result.stderr.splitlines() if line.strip() and not line.startswith("Loading weights")]
    assert noise == [], noise


def test_a_black_image_gets_text_not_an_empty_caption(checkpoint):
    """Even a model whose first choice is always eos (or pad, bos, unk, which decode to nothing) captions with words."""
    from transformers import pipeline

    captioner = pipeline("image-to-text", model=checkpoint)
    boost = torch.zeros(captioner.model.config.vocab_size)
    boost[[tl.EOS_TOKEN_ID, tl.PAD_TOKEN_ID, tl.BOS_TOKEN_ID, tl.UNK_TOKEN_ID]] = 1e4
    handle = captioner.model.lm_head.register_forward_hook(lambda module, args, output: output + boost)
    try:
        caption = captioner(np.zeros((64, 64, 3), np.uint8), max_new_tokens=5)[0]["generated_text"]
    finally:
        handle.remove()
    assert caption.strip() != ""


def test_text_prefix_is_continued_and_lists_give_one_result_per_image(checkpoint, image):
    from transformers import pipeline

    captioner = pipeline("image-text-to-text", model=checkpoint, max_new_tokens=3)
    outputs = captioner(images=[image, image], text="a red")
    assert len(outputs) == 2 and all(out[0]["generated_text"].startswith("a red") for out in outputs)
    assert outputs[0] == outputs[1]  # greedy: the same image gives the same caption


def test_greedy_caption_matches_the_evaluation_captioner(checkpoint, image):
    from gato.evaluation.captioning import generate_captions
    from transformers import AutoModelForCausalLM, AutoProcessor, pipeline

    model, processor = AutoModelForCausalLM.from_pretrained(checkpoint), AutoProcessor.from_pretrained(checkpoint)
    expected = generate_captions(model.eval(), processor, [image], max_new_tokens=6)[0]
    assert pipeline("image-to-text", model=checkpoint)(image, max_new_tokens=6)[0]["generated_text"] == expected


def test_registry_keeps_transformers_pipeline_for_other_models():
    from transformers import AutoModelForImageTextToText
    from transformers.pipelines import PIPELINE_REGISTRY, ImageTextToTextPipeline, get_supported_tasks

    entry = PIPELINE_REGISTRY.supported_tasks["image-text-to-text"]
    assert entry["impl"] is ImageTextToTextDispatchPipeline and issubclass(entry["impl"], ImageTextToTextPipeline)
    assert entry["pt"] == (AutoModelForImageTextToText,) and entry["type"] == "multimodal" and "default" in entry
    assert "image-to-text" in get_supported_tasks()
    assert AutoModelForImageTextToText._model_mapping[GatoConfig] is GatoForCausalLM

    class NotGato:  # any other model: __new__ hands back transformers' class, whose __init__ then runs
        config = object()

    assert (
        type(ImageTextToTextDispatchPipeline.__new__(ImageTextToTextDispatchPipeline, model=NotGato()))
        is ImageTextToTextDispatchPipeline
    )


def test_load_agent_acts_in_a_gymnasium_env(checkpoint):
    policy = load_agent(checkpoint, "cartpole")
    assert isinstance(policy, GatoPolicy) and policy.prompt is not None
    env = policy.make_env(seed=0)
    observation, _ = env.reset(seed=0)
    policy.reset()
    for _ in range(3):
        action = policy(observation)
        assert env.action_space.contains(action)
        observation, reward, terminated, truncated, _ = env.step(action)
    env.close()
    returns = policy.play(episodes=2, max_steps=5)
    assert len(returns) == 2 and all(0 < value <= 5 for value in returns)  # CartPole pays 1 per step


def test_load_agent_in_bfloat16_acts(checkpoint):
    policy = load_agent(checkpoint, "cartpole", dtype="bfloat16")
    assert {parameter.dtype for parameter in policy.model.parameters()} == {torch.bfloat16}
    env = policy.make_env(seed=0)
    observation, _ = env.reset(seed=0)
    policy.reset()
    for _ in range(3):
        action = policy(observation)
        assert env.action_space.contains(action)
        observation, *_ = env.step(action)
    env.close()
    with pytest.raises(ValueError, match="dtype: expected one of auto, float32, bfloat16"):
        load_agent(checkpoint, "cartpole", dtype="half")


def test_load_agent_needs_the_processor_with_a_loaded_model(checkpoint):
    from transformers import AutoModelForCausalLM

    with pytest.raises(ValueError, match="processor"):
        load_agent(AutoModelForCausalLM.from_pretrained(checkpoint), "cartpole")
