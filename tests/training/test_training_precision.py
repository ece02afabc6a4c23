"""Precision: native-bf16 detection, what `auto` resolves to, CPU bf16 autocast engaging, acting dtypes."""

import json
import math

import pytest
import torch
from accelerate import Accelerator
from gato.modeling_gato import GatoConfig, GatoForCausalLM
from gato.suite import token_layout as tl
from gato.training import loop, precision
from gato.training.config import TrainingConfig
from gato.training.run_training import TRAIN_RESULTS_FILE, run_training

SAPPHIRE_RAPIDS = """processor\t: 0
vendor_id\t: GenuineIntel
flags\t\t: fpu sse sse2 avx2 avx512f avx512bw avx512_bf16 amx_bf16 amx_tile amx_int8
bugs\t\t: spectre_v1

processor\t: 1
vendor_id\t: GenuineIntel
flags\t\t: fpu sse sse2 avx2 avx512f avx512bw avx512_bf16 amx_bf16 amx_tile amx_int8
"""
ICE_LAKE = """processor\t: 0
flags\t\t: fpu sse sse2 avx2 avx512f avx512bw avx512vl avx512_vnni
"""


def test_native_bf16_flags_are_read_from_cpuinfo_text():
    assert precision.cpu_bf16_flags(SAPPHIRE_RAPIDS) == ["avx512_bf16", "amx_bf16"]
    # AVX-512 without the bf16 extension only emulates bf16: not native.
    assert precision.cpu_bf16_flags(ICE_LAKE) == []
    assert precision.cpu_bf16_flags("") == []
    # Every processor must have it (a hybrid or mis-reported one is not trusted).
    mixed = SAPPHIRE_RAPIDS.replace("avx512_bf16 amx_bf16 amx_tile", "amx_tile", 1)
    assert precision.cpu_bf16_flags(mixed) == []


@pytest.fixture
def fresh_accelerator_state():
    """Accelerate keeps one process-wide state: a test that fixes the precision must not leak it to the next."""
    from accelerate.state import AcceleratorState

    AcceleratorState._reset_state(reset_partial_state=True)
    yield
    AcceleratorState._reset_state(reset_partial_state=True)


@pytest.fixture
def cpu_only(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)


@pytest.mark.parametrize(
    ("flags", "mixed", "dtype"), [(["amx_bf16"], "bf16", torch.bfloat16), ([], "no", torch.float32)]
)
def test_auto_follows_the_detected_cpu(cpu_only, monkeypatch, flags, mixed, dtype):
    monkeypatch.setattr(precision, "detect_cpu_bf16", lambda: flags)
    assert loop.choose_mixed_precision("auto") == mixed
    assert precision.resolve_dtype("auto") == dtype
    # An explicit choice is never overridden.
    assert loop.choose_mixed_precision("no") == "no" and loop.choose_mixed_precision("bf16") == "bf16"
    assert (
        precision.resolve_dtype("float32") == torch.float32 and precision.resolve_dtype("bfloat16") == torch.bfloat16
    )


def test_detection_reads_proc_cpuinfo(cpu_only, monkeypatch, tmp_path):
    fake = tmp_path / "cpuinfo"
    fake.write_text(ICE_LAKE)
    monkeypatch.setattr(precision, "CPUINFO", fake)
    assert precision.detect_cpu_bf16() == [] and loop.choose_mixed_precision("auto") == "no"
    fake.write_text(SAPPHIRE_RAPIDS)
    assert loop.choose_mixed_precision("auto") == "bf16"


@pytest.mark.parametrize("bad", ["fp16", "bf16", "", torch.float16])
def test_bad_acting_dtype_names_the_field(bad):
    with pytest.raises(ValueError, match="dtype: expected"):
        precision.resolve_dtype(bad)


def _tiny_batch(config: GatoConfig) -> dict[str, torch.Tensor]:
    ids = torch.randint(0, 1000, (2, 24), generator=torch.Generator().manual_seed(0))
    return {"input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": ids}


def test_cpu_bf16_autocast_engages_in_a_training_step(one_torch_thread, fresh_accelerator_state):
    config = GatoConfig.from_preset("gato-tiny", max_position_embeddings=32)
    torch.manual_seed(0)
    model = GatoForCausalLM(config)
    accelerator = Accelerator(mixed_precision="bf16", cpu=True)
    assert accelerator.mixed_precision == "bf16"
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    model, optimizer = accelerator.prepare(model, optimizer)
    seen = []
    hook = (
        accelerator.unwrap_model(model)
        .model.layers[0]
        .mlp.fc_out.register_forward_hook(lambda module, inputs, output: seen.append(output.dtype))
    )
    loss = model(**_tiny_batch(config), use_cache=False).loss
    hook.remove()
    assert seen == [torch.bfloat16]  # the matmuls inside the forward ran in bf16
    assert loss.dtype == torch.float32 and math.isfinite(loss.item())
    accelerator.backward(loss)
    optimizer.step()
    weights = accelerator.unwrap_model(model).lm_head.weight
    assert weights.dtype == torch.float32 and torch.isfinite(weights).all()


def test_train_prints_and_records_its_precision(
    cpu_only, monkeypatch, tiny_data_dir, tmp_path, capsys, one_torch_thread, fresh_accelerator_state
):
    monkeypatch.setattr(precision, "detect_cpu_bf16", lambda: ["avx512_bf16"])
    config = TrainingConfig(
        preset="gato-tiny",
        data=tiny_data_dir,
        output_dir=str(tmp_path / "run"),
        max_steps=2,
        batch_size=2,
        max_length=64,
        logging_steps=1,
        eval_steps=2,
        save_steps=2,
        eval_batches=1,
        report_to="none",
        mixed_precision="auto",
    )
    result = run_training(config)
    assert (
        "precision: bf16 autocast (float32 weights) (mixed_precision auto: this CPU has avx512_bf16)"
        in capsys.readouterr().out
    )
    recorded = json.loads((tmp_path / "run" / TRAIN_RESULTS_FILE).read_text())
    assert recorded["mixed_precision"] == "bf16" and math.isfinite(recorded["final_loss"])
    assert all(math.isfinite(loss) for loss in result.losses)


def test_cast_for_acting_casts_weights_and_acts(one_torch_thread):
    config = GatoConfig.from_preset("gato-tiny", max_position_embeddings=32)
    torch.manual_seed(0)
    model = precision.cast_for_acting(GatoForCausalLM(config).train(), "bfloat16")
    assert not model.training
    assert {p.dtype for p in model.parameters()} == {torch.bfloat16}
    observation = {"input_ids": torch.tensor([[32010, 32020, tl.SEPARATOR_TOKEN_ID]])}  # (batch, n), as collate gives
    ranges = torch.tensor([[32000, 32100]])
    tokens = model.act(observation, ranges).action_tokens
    assert tokens.shape == (1, 1) and 32000 <= int(tokens[0, 0]) < 32100


def test_bf16_acting_does_not_tie_close_actions(one_torch_thread):
    """Two actions whose logits differ by less than bf16's resolution: a bf16 product would round both to the
    same value and argmax would silently take the lower id; the action API's float32 product keeps them apart."""
    config = GatoConfig.from_preset("gato-tiny", max_position_embeddings=32)
    model = precision.cast_for_acting(GatoForCausalLM(config), "bfloat16")
    lo = tl.CONTINUOUS_OFFSET
    with torch.no_grad():
        model.lm_head.weight[lo : lo + 2] = 1.0
        model.lm_head.weight[lo + 1, 0] = 1.0 + 2**-7  # exactly representable in bf16
    hidden = torch.ones(1, config.hidden_size, dtype=torch.bfloat16)
    rows = model.lm_head.weight[lo : lo + 2]
    assert (hidden @ rows.T)[0, 0] == (hidden @ rows.T)[0, 1]  # the bf16 product ties: 64 and 64.0078 → 64
    logits, offset = model.action_logits(hidden, torch.tensor([[lo, lo + 2]]))
    assert offset == lo and logits[0, 1] > logits[0, 0]
    assert int(logits.argmax(-1)) == 1


def test_agreement_script_compares_both_bf16_output_layers(
    tmp_path, monkeypatch, capsys, one_torch_thread, fresh_accelerator_state
):
    """scripts/bf16_action_agreement.py end to end on a tiny budget: every held-out action token is compared."""
    import runpy
    import sys
    from pathlib import Path

    script = Path(__file__).resolve().parents[2] / "scripts" / "bf16_action_agreement.py"
    monkeypatch.setattr(
        sys,
        "argv",
        [
            script.name,
            "--work",
            str(tmp_path),
            "--tasks",
            "cartpole,pendulum",
            "--episodes-per-task",
            "2",
            "--max-steps",
            "2",
            "--max-episodes",
            "1",
        ],
    )
    runpy.run_path(str(script), run_name="__main__")
    results = json.loads((tmp_path / "agreement.json").read_text())
    assert set(results) == {
        f"{task} ({decoding}), bf16 {way} output layer"
        for task, decodings in (("cartpole", ["argmax"]), ("pendulum", ["argmax", "median"]))
        for decoding in decodings
        for way in ("float32", "native")
    }
    # One held-out episode each: cartpole's expert runs 500 steps (1 action token), pendulum 200 (1 token).
    assert results["cartpole (argmax), bf16 float32 output layer"]["tokens"] == 500
    assert results["pendulum (median), bf16 native output layer"]["tokens"] == 200
    assert all(0 <= row["agree"] <= row["tokens"] for row in results.values())
    assert "of the agent's greedy action tokens agree with float32" in capsys.readouterr().out


def test_a_second_single_process_run_may_change_precision(one_torch_thread):
    """Accelerate keeps one precision per process; a later run in the same process (a notebook, `gato run` after
    a bf16 training) with another precision starts the shared state afresh instead of refusing."""
    from gato.training.distributed import build_accelerator

    first = build_accelerator("bf16", 1, None, "unused")
    assert first.mixed_precision == "bf16"
    second = build_accelerator("no", 1, None, "unused")
    assert second.mixed_precision == "no"


def test_float32_output_layer_computes_bf16_logits_in_float32_for_the_block_only(one_torch_thread):
    """Inside the block a bf16 model's logits (generate, the loss, teacher forcing) are the float32 product of
    its hidden states and weights; outside it, and for a float32 model, the output layer is untouched."""
    config = GatoConfig.from_preset("gato-tiny", max_position_embeddings=32)
    torch.manual_seed(0)
    model = precision.cast_for_acting(GatoForCausalLM(config), "bfloat16")
    input_ids = torch.randint(0, 1000, (2, 9))
    with torch.no_grad():
        hidden = model.model(input_ids=input_ids).last_hidden_state
        with precision.float32_output_layer(model):
            logits = model(input_ids=input_ids).logits
            loss = model(input_ids=input_ids, labels=input_ids).loss
        outside = model(input_ids=input_ids).logits
    reference = hidden.float() @ model.lm_head.weight.float().T
    assert logits.dtype == torch.float32 and torch.equal(logits, reference)
    expected = torch.nn.functional.cross_entropy(
        reference[:, :-1].reshape(-1, reference.shape[-1]), input_ids[:, 1:].reshape(-1)
    )
    assert float(loss) == pytest.approx(float(expected), rel=1e-6)
    assert outside.dtype == torch.bfloat16 and "forward" not in vars(model.lm_head)
    float_model = GatoForCausalLM(config)
    with precision.float32_output_layer(float_model):
        assert "forward" not in vars(float_model.lm_head)
