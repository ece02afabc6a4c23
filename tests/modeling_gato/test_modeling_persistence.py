"""Saving and loading: safetensors only, Auto-class round trips, and trust_remote_code without gato installed."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import gato.suite.token_layout
import numpy as np
import pytest
import torch
from gato.modeling_gato import (
    GatoConfig,
    GatoForCausalLM,
    GatoModel,
    acting,
    configuration_gato,
    modeling_gato,
    pipeline_gato,
)
from PIL import Image
from test_modeling_gato import control_batch, random_image, tiny_model, tiny_processor
from transformers import AutoConfig, AutoModel, AutoModelForCausalLM, pipeline

import gato  # noqa: F401  (registers the Auto classes)


def inputs():
    return {k: v for k, v in control_batch().items() if k not in ("labels", "loss_mask")}


def test_save_writes_safetensors_config_and_remote_code(tmp_path):
    tiny_model().save_pretrained(tmp_path)
    names = sorted(os.listdir(tmp_path))
    assert "model.safetensors" in names
    assert not [n for n in names if n.endswith((".bin", ".pt", ".pth"))]
    sources = {"token_layout.py": Path(gato.suite.token_layout.__file__)}
    sources.update(
        {
            Path(module.__file__).name: Path(module.__file__)
            for module in (configuration_gato, modeling_gato, acting, pipeline_gato)
        }
    )
    for code, source in sources.items():
        assert code in names
        # Copied unchanged: gato is imported only inside `try: ... except ImportError:` (indented), never at top level.
        assert (tmp_path / code).read_text() == source.read_text(), code
        assert not re.search(r"^(from|import)\s+gato\b", (tmp_path / code).read_text(), flags=re.MULTILINE), code
    saved = json.loads((tmp_path / "config.json").read_text())
    assert saved["auto_map"]["AutoModelForCausalLM"] == "modeling_gato.GatoForCausalLM"
    for task in ("image-to-text", "image-text-to-text"):  # the folder's own caption pipeline, for remote code
        assert saved["custom_pipelines"][task]["impl"] == "pipeline_gato.GatoImageToTextPipeline"
        assert saved["custom_pipelines"][task]["pt"] == ["AutoModelForImageTextToText"]
    # With gato installed its registered pipelines serve both names: a loaded config does not carry the custom ones
    # (transformers would ask for trust_remote_code).
    assert getattr(AutoConfig.from_pretrained(tmp_path), "custom_pipelines", None) is None


def test_auto_round_trip_gives_identical_outputs(tmp_path):
    model = tiny_model()
    model.save_pretrained(tmp_path)
    expected = model(**inputs())
    assert isinstance(AutoConfig.from_pretrained(tmp_path), GatoConfig)
    loaded = AutoModelForCausalLM.from_pretrained(tmp_path).eval()
    assert type(loaded) is GatoForCausalLM  # the installed class, no trust_remote_code
    assert torch.equal(loaded(**inputs()).logits, expected.logits)
    base = AutoModel.from_pretrained(tmp_path).eval()
    assert type(base) is GatoModel
    assert torch.equal(base(**inputs()).last_hidden_state, model.model(**inputs()).last_hidden_state)


def test_remote_code_loads_where_gato_is_not_importable(tmp_path):
    model = tiny_model()
    model.save_pretrained(tmp_path / "model")
    processor = tiny_processor()
    processor.save_pretrained(tmp_path / "model")
    batch = inputs()
    image = random_image(np.random.default_rng(0))
    prompt = processor(images=image, text="a cat", return_tensors="pt")
    captions = {}
    for task in ("image-to-text", "image-text-to-text"):  # gato's registered pipelines, gato installed
        captioner = pipeline(task, model=str(tmp_path / "model"))
        scene = Image.fromarray(image)
        captions[task] = [captioner(images=scene, text="a cat", max_new_tokens=3), captioner(scene, max_new_tokens=3)]
        assert captions[task][0][0]["generated_text"].startswith("a cat")
    torch.save(
        {
            "captions": captions,
            "inputs": batch,
            "logits": model(**batch).logits,
            "image": torch.from_numpy(image),
            "prompt": dict(prompt),
            "generated": model.generate(
                **prompt, max_new_tokens=3, do_sample=False, eos_token_id=None, pad_token_id=0
            ),
        },
        tmp_path / "expected.pt",
    )
    script = textwrap.dedent(
        """
        import importlib.abc, os, sys

        class NoGato(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path=None, target=None):
                if name == "gato" or name.startswith("gato."):
                    raise ModuleNotFoundError(f"No module named {name!r} (blocked by the test)")
                return None

        sys.meta_path.insert(0, NoGato())
        # Drop the source checkout from the path, but keep the environment's own site-packages,
        # which may live inside the checkout (CI's .venv does).
        repo = os.path.realpath(sys.argv[3])
        def from_checkout(entry):
            real = os.path.realpath(entry or ".")
            return real.startswith(repo) and not real.startswith(os.path.realpath(sys.prefix))
        sys.path = [p for p in sys.path if not from_checkout(p)]
        try:
            import gato  # noqa: F401
        except ModuleNotFoundError:
            pass
        else:
            raise SystemExit("gato is still importable")
        import torch
        from transformers import AutoModelForCausalLM

        folder, expected_file = sys.argv[1], sys.argv[2]
        model = AutoModelForCausalLM.from_pretrained(folder, trust_remote_code=True).eval()
        assert "gato" not in type(model).__module__.split(".")[0], type(model).__module__
        expected = torch.load(expected_file)
        logits = model(**expected["inputs"]).logits
        # Another process may run other kernels/thread counts: equal to float32 rounding, not bitwise.
        torch.testing.assert_close(logits, expected["logits"], rtol=1e-5, atol=1e-5)
        model.save_pretrained(folder + "-again")  # a remote-code model saves a folder that loads the same way
        again = AutoModelForCausalLM.from_pretrained(folder + "-again", trust_remote_code=True).eval()
        assert torch.equal(again(**expected["inputs"]).logits, logits)

        # The processor and its image processor load from the folder's code too (not a bare tokenizer).
        from transformers import AutoImageProcessor, AutoProcessor

        processor = AutoProcessor.from_pretrained(folder, trust_remote_code=True)
        assert type(processor).__name__ == "GatoProcessor", type(processor)
        assert type(processor.image_processor).__name__ == "GatoImageProcessor", type(processor.image_processor)
        assert type(AutoImageProcessor.from_pretrained(folder, trust_remote_code=True)).__name__ == "GatoImageProcessor"
        prompt = processor(images=expected["image"].numpy(), text="a cat", return_tensors="pt")
        assert prompt.keys() == expected["prompt"].keys()
        for key in prompt:
            torch.testing.assert_close(prompt[key], expected["prompt"][key], rtol=0, atol=0)
        generated = model.generate(**prompt, max_new_tokens=3, do_sample=False, eos_token_id=None, pad_token_id=0)
        assert torch.equal(generated, expected["generated"])
        processor.save_pretrained(folder + "-again")
        assert type(AutoProcessor.from_pretrained(folder + "-again", trust_remote_code=True)).__name__ == "GatoProcessor"

        # Both caption task names build the folder's own pipeline (config.json's custom_pipelines) and give the
        # captions the installed gato's pipelines gave, quietly (the test reads stderr between the markers).
        from PIL import Image
        from transformers import pipeline

        image = Image.fromarray(expected["image"].numpy())
        print("PIPELINES-START", file=sys.stderr, flush=True)
        for task in ("image-to-text", "image-text-to-text"):
            captioner = pipeline(task, model=folder, trust_remote_code=True)
            assert type(captioner).__name__ == "GatoImageToTextPipeline", type(captioner)
            captions = [captioner(images=image, text="a cat", max_new_tokens=3), captioner(image, max_new_tokens=3)]
            assert captions == expected["captions"][task], (task, captions, expected["captions"][task])
        print("PIPELINES-END", file=sys.stderr, flush=True)
        assert not any(name == "gato" or name.startswith("gato.") for name in sys.modules)
        print("REMOTE-OK", type(model).__module__)
        """
    )
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_MODULES_CACHE": str(tmp_path / "modules"), "PYTHONPATH": ""}
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            script,
            str(tmp_path / "model"),
            str(tmp_path / "expected.pt"),
            str(Path(__file__).resolve().parents[2]),
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "REMOTE-OK" in result.stdout
    # Quiet pipelines: no `--- Logging error ---` block (transformers' image-to-text renaming), no warning.
    during = result.stderr.split("PIPELINES-START", 1)[1].split("PIPELINES-END", 1)[0]
    noise = [line for line in during.splitlines() if line.strip() and not line.startswith("Loading weights")]
    assert noise == [], noise


def test_source_that_imports_gato_at_top_level_is_not_written_as_remote_code(tmp_path, monkeypatch):
    broken = tmp_path / "acting.py"
    broken.write_text(Path(acting.__file__).read_text() + "\nfrom gato.suite import registry\n")
    monkeypatch.setattr(acting, "__file__", str(broken))
    (tmp_path / "out").mkdir()
    with pytest.raises(RuntimeError, match="acting.py: imports gato outside"):
        modeling_gato.write_remote_code(tmp_path / "out")


def test_config_of_an_older_version_still_loads(tmp_path):
    """Older configs carry text_vocab_size / continuous_offset / continuous_bins, which nothing read."""
    tiny_model().save_pretrained(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    assert not {"text_vocab_size", "continuous_offset", "continuous_bins"} & set(config)
    config.update(text_vocab_size=32000, continuous_offset=32000, continuous_bins=1024)
    (tmp_path / "config.json").write_text(json.dumps(config))
    loaded = AutoModelForCausalLM.from_pretrained(tmp_path).eval()
    assert not hasattr(loaded.config, "continuous_offset") and "continuous_bins" not in loaded.config.to_dict()
    assert torch.equal(loaded(**inputs()).logits, tiny_model()(**inputs()).logits)
