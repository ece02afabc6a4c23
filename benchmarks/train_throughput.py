"""Training throughput of GatoForCausalLM beside transformers' LlamaForCausalLM of the same shape, same run.

One training step = forward + backward + AdamW step. Both models get the same width, depth, heads, context
and vocabulary (Gato's); Llama's SwiGLU MLP gets ``2/3 × intermediate_size`` so that both MLPs have the same
parameters and FLOPs (``--llama-intermediate same`` gives it Gato's size instead). Batches:

- ``tokens``: text-like token-only batches, every position a target (the same for both models);
- ``images``: control-like, image-heavy batches — each time step is a 64×64 image (16 patches), 4 values, the
  separator and 1 action token, so 73% of positions are patches and the loss is on action tokens only. Gato
  embeds the patches through its ResNet block and runs the output layer at the action targets only; Llama
  sees the same number of plain tokens with a full-vocabulary LM loss (the same-shape baseline);
- ``mixture`` (``--data DIR``): real batches — consecutive batches of ``gato train``'s weighted mixture over a
  ``gato data generate`` folder (the ``--recipe``'s task weights), collated by the processor; Llama gets their ids.
  One batch of 8 sequences is one draw of a mixture of many tasks (its patches and targets vary several-fold from
  draw to draw): ``--mixture-batches N`` times every round over N consecutive batches, tokens/s = their positions
  over their summed step times; ``--mixture-seed`` picks the sampler's seed.

MFU = model FLOPs per second / peak. Model FLOPs per step (PaLM appendix B / nanoGPT): ``6 × tokens ×
N_blocks + 6 × targets × hidden × vocab + 12 × layers × hidden × seq_len × tokens`` (+ the patch encoder's
``6 × patches × its matmul/conv parameters × positions`` for Gato), where ``N_blocks`` counts the matmul
weights of the decoder blocks. Peak: ``--peak-tflops``; by default the dense bf16 peak on an H100/H200
(989 TFLOP/s) and, on a CPU, the fp32 matmul rate measured in the same run (so CPU MFU is relative to what
this machine's BLAS reaches, not a datasheet).

Precision: ``--dtype float32 bfloat16`` measures each dtype (autocast, float32 weights) on the same models in the
same interleaved rounds, each model against the other in the same dtype, and prints bf16's speed-up over
float32. Gato's loss in training mode is the chunked output layer + cross-entropy (``modeling_gato/loss_gato.py``);
``--plain-loss`` adds Gato with the plain (full logits) loss as a third model, to see what the chunking buys.

Usage (CPU, the CPU recipe's shape — 3 layers × 128, context 384, batch 8 — float32 and bf16 side by side):
    python benchmarks/train_throughput.py --recipe training/recipes/cpu_multitask.yaml --dtype float32 bfloat16
Usage (CPU, the gato-79m shape at a reduced context):
    python benchmarks/train_throughput.py --presets gato-79m --seq-len 256 --batch-size 2
    python benchmarks/train_throughput.py --presets gato-79m --seq-len 256 --batch-size 2 --modes compile
On a GPU (full size):
    python benchmarks/train_throughput.py --presets gato-79m gato-364m gato-1.18b --seq-len 1024 --batch-size 8 \
        --dtype bfloat16 --modes eager compile
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import platform
import statistics
import time
from collections.abc import Callable

import gato.modeling_gato.modeling_gato as modeling_gato
import torch
import transformers
from gato.modeling_gato import GatoConfig, GatoForCausalLM
from gato.suite import token_layout as tl
from gato.training.config import TrainingConfig
from transformers import LlamaConfig, LlamaForCausalLM

GPU_PEAK_TFLOPS = {"H100": 989.0, "H200": 989.0, "A100": 312.0}  # dense bf16
PATCHES_PER_IMAGE = 16  # a 64×64 image in 16×16 patches
VALUES_PER_STEP = 4
ACTIONS_PER_STEP = 1


def gato_config(preset: str, seq_len: int, dropout: float = 0.0, overrides: dict | None = None) -> GatoConfig:
    return GatoConfig.from_preset(
        preset,
        **{**(overrides or {}), "max_position_embeddings": seq_len, "hidden_dropout": dropout, "use_cache": False},
    )


def parse_overrides(items: list[str]) -> dict:
    """``["hidden_size=128", "num_hidden_layers=3"]`` → ``{"hidden_size": 128, "num_hidden_layers": 3}`` (ints,
    floats, else strings)."""
    overrides = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise SystemExit(f"--model-overrides: expected KEY=VALUE, got {item!r}")
        for cast in (int, float):
            try:
                overrides[key] = cast(value)
                break
            except ValueError:
                continue
        else:
            overrides[key] = value
    return overrides


def apply_recipe(args: argparse.Namespace) -> None:
    """``--recipe FILE``: the training config's preset, model overrides, context and batch size (flags given
    explicitly on the command line after it still win for the overrides)."""
    recipe = TrainingConfig.from_yaml(args.recipe)
    args.presets = [recipe.preset]
    args.seq_len = recipe.max_length
    args.batch_size = recipe.batch_size
    args.model_overrides = {**recipe.model_overrides, **args.model_overrides}
    args.task_weights = dict(recipe.task_weights)


@contextlib.contextmanager
def plain_loss():
    """Gato's loss through the full-logits path (``lm_head`` then ``F.cross_entropy``) while inside."""
    chosen = modeling_gato.fused_loss_applies
    modeling_gato.fused_loss_applies = lambda training, weight: False
    try:
        yield
    finally:
        modeling_gato.fused_loss_applies = chosen


def llama_config(gato: GatoConfig, intermediate: str) -> LlamaConfig:
    size = gato.intermediate_size if intermediate == "same" else (2 * gato.intermediate_size) // 3
    return LlamaConfig(
        hidden_size=gato.hidden_size,
        num_hidden_layers=gato.num_hidden_layers,
        num_attention_heads=gato.num_attention_heads,
        num_key_value_heads=gato.num_attention_heads,
        intermediate_size=size,
        vocab_size=gato.vocab_size,
        max_position_embeddings=gato.max_position_embeddings,
        tie_word_embeddings=True,
        use_cache=False,
    )


def token_batch(config: GatoConfig, batch_size: int, seq_len: int, device: str) -> dict[str, torch.Tensor]:
    """Text-like: random token ids, every position a target."""
    ids = torch.randint(0, config.vocab_size, (batch_size, seq_len), device=device)
    return {"input_ids": ids, "labels": ids}


def image_batch(config: GatoConfig, batch_size: int, seq_len: int, device: str) -> dict[str, torch.Tensor]:
    """Control-like: time steps of ``[16 patches, 4 values, |, 1 action]``; loss on action tokens only."""
    step = PATCHES_PER_IMAGE + VALUES_PER_STEP + 1 + ACTIONS_PER_STEP
    layout = torch.zeros(step, dtype=torch.long)  # 0 patch, 1 value, 2 separator, 3 action
    layout[PATCHES_PER_IMAGE:] = 1
    layout[PATCHES_PER_IMAGE + VALUES_PER_STEP] = 2
    layout[PATCHES_PER_IMAGE + VALUES_PER_STEP + 1 :] = 3
    kind = layout.repeat(seq_len // step + 1)[:seq_len].to(device)
    is_patch, is_action = kind == 0, kind == 3
    ids = torch.randint(
        tl.CONTINUOUS_OFFSET, tl.CONTINUOUS_OFFSET + tl.CONTINUOUS_BINS, (batch_size, seq_len), device=device
    )
    ids = torch.where(is_patch, tl.PATCH_PLACEHOLDER_ID, torch.where(kind == 2, tl.SEPARATOR_TOKEN_ID, ids))
    local_in_step = torch.arange(seq_len, device=device) % step
    local = torch.where(
        is_action, tl.LOCAL_POSITION_ACTION, torch.where(kind == 2, tl.LOCAL_POSITION_NONE, local_in_step)
    )
    num_patches = int(is_patch.sum())
    grid = torch.arange(PATCHES_PER_IMAGE, device=device).repeat(num_patches // PATCHES_PER_IMAGE + 1)[:num_patches]
    side = int(PATCHES_PER_IMAGE**0.5)
    bins = config.position_bins // side
    rows = torch.stack([grid // side * bins, (grid // side + 1) * bins], -1)
    cols = torch.stack([grid % side * bins, (grid % side + 1) * bins], -1)
    return {
        "input_ids": ids,
        "loss_mask": is_action.long().expand(batch_size, -1),
        "labels": torch.where(is_action, ids, tl.IGNORE_INDEX),
        "local_positions": local.expand(batch_size, -1),
        "patch_mask": is_patch.expand(batch_size, -1),
        "patch_pixels": torch.rand(batch_size, num_patches, 3, config.patch_size, config.patch_size, device=device) / 2
        - 0.25,
        "patch_rows": rows.expand(batch_size, -1, -1),
        "patch_cols": cols.expand(batch_size, -1, -1),
    }


def mixture_batches(
    config: GatoConfig,
    batch_size: int,
    seq_len: int,
    device: str,
    data: str,
    task_weights: dict,
    count: int = 1,
    seed: int = 0,
) -> list[dict[str, torch.Tensor]]:
    """Real training batches: ``count`` consecutive batches of ``batch_size`` sequences of ``gato train``'s weighted
    mixture over the ``gato data generate`` folder ``data`` (prompts included, as in training), collated by the
    processor."""
    from gato.training.mixture import MixtureDataset, mixture_weights, split_sources
    from gato.training.run_training import build_processor, load_data

    processor = build_processor(config, seq_len)
    sources, _ = split_sources(load_data(data), validation_fraction=0.05)
    weights = mixture_weights(sources, {k: v for k, v in task_weights.items() if k in {s.name for s in sources}}, 1.0)
    mixture = MixtureDataset(sources, processor, length=batch_size * count, weights=weights, seed=seed)
    batches = []
    for start in range(0, batch_size * count, batch_size):
        batch = processor.collate([mixture[i] for i in range(start, start + batch_size)])
        batches.append({key: value.to(device) for key, value in batch.items()})
    return batches


def _total(batches: list[dict[str, torch.Tensor]], key: str) -> int:
    return sum(int(batch[key].sum()) for batch in batches if key in batch)  # a batch without images: no patches


def llama_view(batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """What Llama gets: the same ids with a full LM loss (it has no image path and no loss mask)."""
    return {"input_ids": batch["input_ids"], "labels": batch["input_ids"]}


def block_matmul_params(model: torch.nn.Module, gato: bool) -> int:
    layers = model.model.layers
    return sum(p.numel() for layer in layers for n, p in layer.named_parameters() if p.ndim == 2)


def step_flops(model, config: GatoConfig, batch: dict[str, torch.Tensor], gato: bool) -> float:
    """Model FLOPs of one training step (forward + backward = 3× forward), see the module docstring."""
    tokens = batch["input_ids"].numel()
    seq_len = batch["input_ids"].shape[1]
    hidden, layers, vocab = config.hidden_size, config.num_hidden_layers, config.vocab_size
    if gato and "loss_mask" in batch:
        targets = int(batch["loss_mask"][:, 1:].sum())
    elif gato:
        targets = batch["input_ids"].shape[0] * (seq_len - 1)
    else:
        targets = tokens  # Llama projects every position
    flops = (
        6 * tokens * block_matmul_params(model, gato)
        + 6 * targets * hidden * vocab
        + 12 * layers * hidden * seq_len * tokens
    )
    if gato and "patch_pixels" in batch:
        embed = model.model.embed_patches
        pixels = config.patch_size**2
        conv = embed.residual_block.conv1.weight.numel() + embed.residual_block.conv2.weight.numel()
        flops += (
            6
            * batch["patch_pixels"].shape[0]
            * batch["patch_pixels"].shape[1]
            * (conv * pixels + embed.projection.weight.numel())
        )
    return float(flops)


def make_optimizer(model: torch.nn.Module) -> torch.optim.Optimizer:
    """The paper's AdamW (β 0.9/0.95, weight decay 0.1), fused where this torch supports it (same for both models)."""
    try:
        return torch.optim.AdamW(model.parameters(), lr=1e-4, betas=(0.9, 0.95), weight_decay=0.1, fused=True)
    except (RuntimeError, TypeError):
        return torch.optim.AdamW(model.parameters(), lr=1e-4, betas=(0.9, 0.95), weight_decay=0.1)


def measured_cpu_peak_tflops(size: int = 2048, repeats: int = 5) -> float:
    a, b = torch.randn(size, size), torch.randn(size, size)
    a @ b
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - start)
    return 2 * size**3 / best / 1e12


def synchronize(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def time_steps(
    model, batch, optimizer, steps: int, device: str, dtype: torch.dtype, context: Callable = contextlib.nullcontext
) -> float:
    """Seconds per training step (mean over ``steps``), the forward under ``dtype`` autocast and ``context()``."""
    synchronize(device)
    start = time.perf_counter()
    with context():
        for _ in range(steps):
            with torch.autocast(device_type=device.split(":")[0], dtype=dtype, enabled=dtype != torch.float32):
                loss = model(**batch).loss
            loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
    synchronize(device)
    return (time.perf_counter() - start) / steps


def run(args: argparse.Namespace) -> list[dict]:
    device = args.device
    dtypes = [getattr(torch, name) for name in args.dtype]
    if device.startswith("cuda"):
        name = torch.cuda.get_device_name()
        peak = args.peak_tflops or next((v for k, v in GPU_PEAK_TFLOPS.items() if k in name), None)
        peak_note = f"{peak} TFLOP/s (datasheet, dense bf16)"
    else:
        name = platform.processor() or platform.machine()
        peak = args.peak_tflops or measured_cpu_peak_tflops()
        peak_note = f"{peak:.3f} TFLOP/s (best fp32 2048³ matmul measured so far in this run, {torch.get_num_threads()} threads)"
    print(f"device: {name}; torch {torch.__version__}, transformers {transformers.__version__}; peak {peak_note}")
    if args.model_overrides:
        print(f"model overrides: {args.model_overrides}; context {args.seq_len}, batch {args.batch_size}")
    rows = []
    for preset in args.presets:
        config = gato_config(preset, args.seq_len, overrides=args.model_overrides)
        for batch_kind in args.batches:
            for compiled in [mode == "compile" for mode in args.modes]:
                torch.manual_seed(0)
                if batch_kind == "mixture":
                    batches = mixture_batches(
                        config,
                        args.batch_size,
                        args.seq_len,
                        device,
                        args.data,
                        args.task_weights,
                        args.mixture_batches,
                        args.mixture_seed,
                    )
                    print(
                        f"mixture: {len(batches)} batch(es), sampler seed {args.mixture_seed}: "
                        f"{sum(batch['input_ids'].numel() for batch in batches):,} positions, "
                        f"{_total(batches, 'attention_mask'):,} real, {_total(batches, 'patch_mask'):,} image patches, "
                        f"{_total(batches, 'loss_mask'):,} loss targets"
                    )
                else:
                    make = token_batch if batch_kind == "tokens" else image_batch
                    batches = [make(config, args.batch_size, args.seq_len, device)]
                models = {
                    "gato": GatoForCausalLM(config).to(device).train(),
                    "llama": LlamaForCausalLM(llama_config(config, args.llama_intermediate)).to(device).train(),
                }
                contexts = {"gato": contextlib.nullcontext, "llama": contextlib.nullcontext}
                inputs = {"gato": batches, "llama": [llama_view(batch) for batch in batches]}
                if args.plain_loss:
                    torch.manual_seed(0)
                    models["gato_plain"] = GatoForCausalLM(config).to(device).train()
                    contexts["gato_plain"], inputs["gato_plain"] = plain_loss, batches
                flops = {  # of one step over every batch, one after the other
                    name: sum(step_flops(model, config, batch, name != "llama") for batch in inputs[name])
                    for name, model in models.items()
                }
                runners, optimizers = {}, {}
                for name, model in models.items():
                    optimizers[name] = make_optimizer(model)
                    runners[name] = torch.compile(model) if compiled else model
                if compiled and args.dynamic_output_shapes:
                    # Gato gathers the patch and loss positions with boolean masks (data-dependent shapes): let
                    # dynamo trace them instead of breaking the graph there.
                    torch._dynamo.config.capture_dynamic_output_shape_ops = True
                    torch._dynamo.config.capture_scalar_outputs = True
                # Autocast leaves the float32 weights alone: one model serves every dtype.
                runs = [(name, dtype) for dtype in dtypes for name in models]
                compile_seconds = {}
                for name, dtype in runs:  # warm-up (and compilation), on every batch
                    start = time.perf_counter()
                    for batch in inputs[name]:
                        time_steps(runners[name], batch, optimizers[name], args.warmup, device, dtype, contexts[name])
                    compile_seconds[name, dtype] = time.perf_counter() - start
                # Interleave the models and dtypes round by round so that machine load hits all alike.
                seconds = {run_key: [] for run_key in runs}
                for _ in range(args.rounds):
                    for name, dtype in runs:
                        seconds[name, dtype].append(
                            sum(
                                time_steps(
                                    runners[name], batch, optimizers[name], args.steps, device, dtype, contexts[name]
                                )
                                for batch in inputs[name]
                            )
                        )
                tokens = sum(batch["input_ids"].numel() for batch in batches)  # per round: a step on each batch
                for dtype in dtypes:
                    result = {
                        "preset": preset,
                        "batch": batch_kind,
                        "compiled": compiled,
                        "dtype": str(dtype).removeprefix("torch."),
                    }
                    for name in models:
                        per_step = statistics.median(seconds[name, dtype])
                        result[f"{name}_tokens_per_s"] = tokens / per_step
                        result[f"{name}_tflops"] = flops[name] / per_step / 1e12
                        result[f"{name}_warmup_s"] = compile_seconds[name, dtype]
                    rows.append(result)
                    print_row(result, peak)
                del models, runners, optimizers
                gc.collect()
                if device.startswith("cuda"):
                    torch.cuda.empty_cache()
                elif args.peak_tflops is None:
                    # A shared CPU's matmul rate moves with the load: the best one seen is the fairest peak.
                    peak = max(peak, measured_cpu_peak_tflops())
    if len(rows) > 1 or not device.startswith("cuda"):
        print(f"\nfinal table, MFU against peak {peak:.3f} TFLOP/s:")
        print_row.header_done = False
        for row in rows:
            print_row(row, peak)
        print_speedups(rows)
    return rows


def print_speedups(rows: list[dict]) -> None:
    """bf16 (or any second dtype) tokens/s over float32's, per model, for each batch kind and mode."""
    baseline = {(r["preset"], r["batch"], r["compiled"]): r for r in rows if r["dtype"] == "float32"}
    others = [r for r in rows if r["dtype"] != "float32" and (r["preset"], r["batch"], r["compiled"]) in baseline]
    if not others:
        return
    print("\nspeed-up over float32 (tokens/s ratio, same models, same rounds):")
    for row in others:
        base = baseline[row["preset"], row["batch"], row["compiled"]]
        ratios = "  ".join(
            f"{key.removesuffix('_tokens_per_s')} {row[key] / base[key]:.2f}×"
            for key in row
            if key.endswith("_tokens_per_s")
        )
        mode = "compile" if row["compiled"] else "eager"
        print(f"{row['preset']:<11} {row['batch']:<7} {mode:<8} {row['dtype']}: {ratios}")


HEADER = (
    f"{'preset':<11} {'batch':<7} {'mode':<8} {'dtype':<9} {'gato tok/s':>11} {'llama tok/s':>12} {'ratio':>6} "
    f"{'gato MFU':>9} {'llama MFU':>10} {'warm-up s (g/l)':>16} {'gato plain-loss tok/s':>22}"
)


def print_row(row: dict, peak_tflops: float) -> None:
    if not getattr(print_row, "header_done", False):
        print(HEADER)
        print_row.header_done = True
    mode = "compile" if row["compiled"] else "eager"
    ratio = row["gato_tokens_per_s"] / row["llama_tokens_per_s"]
    plain = f"{row['gato_plain_tokens_per_s']:>22.0f}" if "gato_plain_tokens_per_s" in row else f"{'—':>22}"
    print(
        f"{row['preset']:<11} {row['batch']:<7} {mode:<8} {row['dtype']:<9} {row['gato_tokens_per_s']:>11.0f} "
        f"{row['llama_tokens_per_s']:>12.0f} {ratio:>6.2f} {100 * row['gato_tflops'] / peak_tflops:>8.1f}% "
        f"{100 * row['llama_tflops'] / peak_tflops:>9.1f}% {row['gato_warmup_s']:>7.0f}/{row['llama_warmup_s']:<8.0f} {plain}",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--presets", nargs="+", default=["gato-79m"])
    parser.add_argument("--seq-len", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=2)
    parser.add_argument(
        "--batches",
        nargs="+",
        default=["tokens", "images"],
        choices=["tokens", "images", "mixture"],
        help="mixture: a real batch of the training mixture over --data (the recipe's task weights)",
    )
    parser.add_argument("--data", default=None, help="a `gato data generate` folder, for --batches mixture")
    parser.add_argument(
        "--mixture-batches", type=int, default=1, help="--batches mixture: time each round over this many batches"
    )
    parser.add_argument("--mixture-seed", type=int, default=0, help="--batches mixture: the sampler's seed")
    parser.add_argument("--steps", type=int, default=1, help="timed steps per round")
    parser.add_argument(
        "--rounds", type=int, default=6, help="interleaved rounds (gato, llama, gato, ...); the median round counts"
    )
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument(
        "--modes",
        nargs="+",
        default=["eager"],
        choices=["eager", "compile"],
        help="eager and/or torch.compile'd models (compiling takes minutes on a small CPU)",
    )
    parser.add_argument(
        "--no-dynamic-output-shapes",
        dest="dynamic_output_shapes",
        action="store_false",
        help="compile without dynamo's capture_dynamic_output_shape_ops (graph breaks at the gathers)",
    )
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument(
        "--dtype",
        nargs="+",
        default=["float32"],
        choices=["float32", "bfloat16"],
        help="autocast dtype(s); several are measured side by side on the same models",
    )
    parser.add_argument(
        "--recipe",
        default=None,
        help="a training config (e.g. training/recipes/cpu_multitask.yaml): its preset, model overrides, "
        "max_length and batch_size replace --presets, --seq-len and --batch-size",
    )
    parser.add_argument(
        "--model-overrides",
        nargs="*",
        default=[],
        metavar="KEY=VALUE",
        help="GatoConfig fields over the preset, e.g. hidden_size=128 num_hidden_layers=3",
    )
    parser.add_argument(
        "--plain-loss",
        action="store_true",
        help="also time Gato with the plain full-logits loss (a third model, interleaved)",
    )
    parser.add_argument("--llama-intermediate", default="matched", choices=["matched", "same"])
    parser.add_argument("--peak-tflops", type=float, default=None)
    args = parser.parse_args()
    args.model_overrides = parse_overrides(args.model_overrides)
    args.task_weights = {}
    if args.recipe:
        apply_recipe(args)
    if "mixture" in args.batches and not args.data:
        parser.error("--batches mixture needs --data (a `gato data generate` folder)")
    run(args)


if __name__ == "__main__":
    main()
