"""Processor throughput: tokens per second on ONE CPU core, GatoProcessor against a naive Python loop.

Three episode kinds, each tokenized by

- ``naive``: a per-value / per-patch pure-Python implementation of the same layout (μ-law and the bin
  computed with ``math`` per float; one numpy slice per 16×16 patch), measured in the same run and
  checked to give the same tokens;
- the vectorized pieces alone (``tokenize_continuous`` / ``GatoImageProcessor``) where that is
  informative;
- ``GatoProcessor.tokenize_episode`` (layout + chunking into 1024-token sequences, unpadded);
- ``GatoProcessor(episodes=..., specs=...)``: the same, collated into one padded torch batch.

Cases (sizes via flags):

(a) continuous, like Meta-World: 39-dim μ-law observation + 4-dim action in [-1, 1], 500 steps;
(b) images, 64×64 RGB frames + one discrete action (18 values, like Atari), 100 steps;
(c) as (b) but 210×160 frames (Atari's native size) resized to 64×64 with PIL.

A "token" is one position of the sequence: an observation value, an image patch, the separator or an
action value. Timing: ``torch.set_num_threads(1)`` and ``OMP/MKL/OPENBLAS_NUM_THREADS=1`` (set before
numpy and torch are imported) pin the work to one core; each measurement is repeated and the table
shows the best repeat (the least-disturbed one on a shared machine) and the median.

    python benchmarks/processor_throughput.py            # full run, ~30 s
    python benchmarks/processor_throughput.py --quick    # fewer repeats
    python benchmarks/processor_throughput.py --profile  # also cProfile tokenize_episode on case (a)
"""

from __future__ import annotations

import os

for _variable in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import argparse  # noqa: E402
import cProfile  # noqa: E402
import datetime  # noqa: E402
import math  # noqa: E402
import platform  # noqa: E402
import pstats  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from dataclasses import dataclass  # noqa: E402

import numpy as np  # noqa: E402
import PIL.Image  # noqa: E402
import torch  # noqa: E402
import transformers  # noqa: E402
from gato.processing.image_processing_gato import GatoImageProcessor  # noqa: E402
from gato.processing.processing_gato import GatoProcessor  # noqa: E402
from gato.processing.tokenize_values import tokenize_continuous  # noqa: E402
from gato.suite import token_layout as tl  # noqa: E402
from gato.suite.task_spec import ActionSpec, ObservationField, TaskSpec  # noqa: E402


def load_tokenizer():
    """The shipped SentencePiece tokenizer, or a tiny in-memory stand-in while it is not available.

    None of the benchmarked episodes has a text field, so the tokenizer is never called.
    """
    try:
        from gato.processing.tokenization_gato import load_default_tokenizer

        return load_default_tokenizer()
    except (ImportError, OSError, ValueError):
        from tokenizers import Tokenizer, models
        from transformers import PreTrainedTokenizerFast

        vocab = {"<pad>": tl.PAD_TOKEN_ID, "<unk>": tl.UNK_TOKEN_ID, "<s>": tl.BOS_TOKEN_ID, "</s>": tl.EOS_TOKEN_ID}
        backend = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
        return PreTrainedTokenizerFast(
            tokenizer_object=backend, pad_token="<pad>", unk_token="<unk>", bos_token="<s>", eos_token="</s>"
        )


# --- the episodes -------------------------------------------------------------------------------------------


def continuous_case(steps: int, rng: np.random.Generator) -> tuple[dict, TaskSpec]:
    spec = TaskSpec(
        name="bench-continuous",
        observations=(ObservationField("state", "continuous", (39,), mu_law=True),),
        action=ActionSpec("continuous", size=4),
    )
    episode = {
        "task": spec.name,
        "observations": {"state": rng.normal(0.0, 2.0, (steps, 39))},
        "actions": rng.uniform(-1.0, 1.0, (steps, 4)),
    }
    return episode, spec


def image_case(steps: int, height: int, width: int, rng: np.random.Generator) -> tuple[dict, TaskSpec]:
    spec = TaskSpec(
        name=f"bench-image-{height}x{width}",
        observations=(ObservationField("frame", "image", (height, width, 3)),),
        action=ActionSpec("discrete", size=1, num_values=18),
    )
    episode = {
        "task": spec.name,
        "observations": {"frame": rng.integers(0, 256, (steps, height, width, 3), dtype=np.uint8)},
        "actions": rng.integers(0, 18, (steps, 1)),
    }
    return episode, spec


# --- the naive baseline: the same layout, one Python step per value / per patch -----------------------------

_MU_LAW_LOG = math.log(tl.MU_LAW_M * tl.MU_LAW_MU + 1.0)
_HALF_BINS = tl.CONTINUOUS_BINS / 2.0


def _naive_bin(value: float, mu_law: bool) -> int:
    if mu_law:
        value = math.copysign(math.log1p(abs(value) * tl.MU_LAW_MU) / _MU_LAW_LOG, value)
    value = min(max(value, -1.0), 1.0)
    return tl.CONTINUOUS_OFFSET + min(int(math.floor((value + 1.0) * _HALF_BINS)), tl.CONTINUOUS_BINS - 1)


def naive_continuous_episode(episode: dict, spec: TaskSpec) -> dict[str, np.ndarray]:
    """Per-value loop: μ-law, clip and bin of every float with ``math``; ids, loss mask, local positions."""
    field = spec.observations[0]
    ids, loss, local = [], [], []
    for observation, action in zip(episode["observations"][field.name].tolist(), episode["actions"].tolist()):
        for index, value in enumerate(observation):
            ids.append(_naive_bin(value, field.mu_law))
            loss.append(0)
            local.append(index)
        ids.append(tl.SEPARATOR_TOKEN_ID)
        loss.append(0)
        local.append(tl.LOCAL_POSITION_NONE)
        for value in action:
            ids.append(_naive_bin(value, spec.action.mu_law))
            loss.append(1)
            local.append(tl.LOCAL_POSITION_ACTION)
    return {"input_ids": np.array(ids), "loss_mask": np.array(loss), "local_positions": np.array(local)}


def naive_image_episode(episode: dict, spec: TaskSpec, size: tuple[int, int]) -> dict[str, np.ndarray]:
    """Per-patch loop: resize each frame with PIL if needed, then slice, scale and place every patch."""
    height, width = size
    grid_rows, grid_cols = height // tl.PATCH_SIZE, width // tl.PATCH_SIZE
    offset = tl.discrete_offset("paper")
    ids, loss, local, pixels, rows, cols = [], [], [], [], [], []
    for frame, action in zip(episode["observations"][spec.observations[0].name], episode["actions"].tolist()):
        if frame.shape[:2] != size:
            frame = np.asarray(PIL.Image.fromarray(frame).resize((width, height), PIL.Image.BILINEAR))
        for r in range(grid_rows):
            for c in range(grid_cols):
                patch = frame[r * tl.PATCH_SIZE : (r + 1) * tl.PATCH_SIZE, c * tl.PATCH_SIZE : (c + 1) * tl.PATCH_SIZE]
                pixels.append((patch.transpose(2, 0, 1).astype(np.float32) / 127.5 - 1.0) / tl.PATCH_PIXEL_DIVISOR)
                rows.append(
                    (
                        math.floor(r / grid_rows * tl.POSITION_BINS + 0.5),
                        math.floor((r + 1) / grid_rows * tl.POSITION_BINS + 0.5),
                    )
                )
                cols.append(
                    (
                        math.floor(c / grid_cols * tl.POSITION_BINS + 0.5),
                        math.floor((c + 1) / grid_cols * tl.POSITION_BINS + 0.5),
                    )
                )
                ids.append(tl.PATCH_PLACEHOLDER_ID)
                loss.append(0)
                local.append(r * grid_cols + c)
        ids.append(tl.SEPARATOR_TOKEN_ID)
        loss.append(0)
        local.append(tl.LOCAL_POSITION_NONE)
        for value in action:
            ids.append(offset + value)
            loss.append(1)
            local.append(tl.LOCAL_POSITION_ACTION)
    return {
        "input_ids": np.array(ids),
        "loss_mask": np.array(loss),
        "local_positions": np.array(local),
        "patch_pixels": np.stack(pixels),
        "patch_rows": np.array(rows),
        "patch_cols": np.array(cols),
    }


def joined(sequences: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    return {key: np.concatenate([s[key] for s in sequences]) for key in sequences[0]}


def check_same_tokens(
    naive: dict[str, np.ndarray], processed: dict[str, np.ndarray], case: str, pixel_levels: int = 0
) -> None:
    """The baseline must produce what the processor produces, or the comparison means nothing.

    ``pixel_levels``: grey levels of disagreement allowed in the patch pixels (the processor's batched
    bilinear resize is within one level of PIL's, which the naive loop calls).
    """
    one_level = 2.0 / 255.0 / tl.PATCH_PIXEL_DIVISOR
    for key, expected in naive.items():
        if key == "patch_pixels":
            ok = np.allclose(processed[key], expected, rtol=0.0, atol=pixel_levels * one_level + 1e-6)
        else:
            ok = np.array_equal(processed[key], expected)
        if not ok:
            raise AssertionError(f"{case}: naive and GatoProcessor disagree on {key}")


# --- timing ------------------------------------------------------------------------------------------------


@dataclass
class Timing:
    best: float  # seconds per call, best repeat
    median: float  # seconds per call, median repeat


def measure(fn: Callable[[], object], repeats: int, min_seconds: float) -> Timing:
    """Seconds per call: each repeat runs ``fn`` enough times to last ``min_seconds``."""
    fn()  # warm-up (imports, caches, first-touch allocations)
    start = time.perf_counter()
    fn()
    once = max(time.perf_counter() - start, 1e-6)
    calls = max(1, math.ceil(min_seconds / once))
    per_call = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(calls):
            fn()
        per_call.append((time.perf_counter() - start) / calls)
    return Timing(best=min(per_call), median=statistics.median(per_call))


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=500, help="time steps of the continuous episode")
    parser.add_argument("--image-steps", type=int, default=100, help="time steps of the image episodes")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--min-seconds", type=float, default=0.3, help="minimum duration of one repeat")
    parser.add_argument("--quick", action="store_true", help="3 repeats of ≥ 0.1 s")
    parser.add_argument("--profile", action="store_true", help="cProfile tokenize_episode on the continuous case")
    args = parser.parse_args()
    if args.quick:
        args.repeats, args.min_seconds = 3, 0.1
    torch.set_num_threads(1)

    rng = np.random.default_rng(0)
    image_processor = GatoImageProcessor()
    size = (image_processor.size.height, image_processor.size.width)
    processor = GatoProcessor(tokenizer=load_tokenizer(), image_processor=image_processor)

    rows: list[tuple[str, str, int, Timing]] = []  # (case, implementation, tokens per call, timing)

    def run(case: str, name: str, tokens: int, fn: Callable[[], object]) -> None:
        rows.append((case, name, tokens, measure(fn, args.repeats, args.min_seconds)))

    # (a) continuous
    episode, spec = continuous_case(args.steps, rng)
    case = f"(a) continuous 39+4, T={args.steps}"
    sequences = processor.tokenize_episode(episode, spec)
    tokens = sum(len(s["input_ids"]) for s in sequences)
    check_same_tokens(naive_continuous_episode(episode, spec), joined(sequences), case)
    state, actions = episode["observations"]["state"], episode["actions"]
    run(case, "naive per-value Python", tokens, lambda: naive_continuous_episode(episode, spec))
    run(
        case,
        "tokenize_continuous only",
        tokens,
        lambda: (tokenize_continuous(state), tokenize_continuous(actions, mu_law=False)),
    )
    run(case, "GatoProcessor.tokenize_episode", tokens, lambda: processor.tokenize_episode(episode, spec))
    run(
        case,
        "… + collate to padded torch batch",
        tokens,
        lambda: processor(episodes=episode, specs=spec, return_tensors="pt"),
    )
    if args.profile:
        profiler = cProfile.Profile()
        profiler.enable()
        for _ in range(50):
            processor.tokenize_episode(episode, spec)
        profiler.disable()
        print("cProfile of 50 × tokenize_episode, case (a), by own time:")
        pstats.Stats(profiler).sort_stats("tottime").print_stats(15)

    # (b) and (c) images
    for height, width, label in ((64, 64, "(b)"), (210, 160, "(c)")):
        episode, spec = image_case(args.image_steps, height, width, rng)
        case = f"{label} image {height}×{width}→{size[0]}×{size[1]} + 1 discrete, T={args.image_steps}"
        sequences = processor.tokenize_episode(episode, spec)
        tokens = sum(len(s["input_ids"]) for s in sequences)
        resized = (height, width) != size
        check_same_tokens(naive_image_episode(episode, spec, size), joined(sequences), case, pixel_levels=int(resized))
        frames = episode["observations"]["frame"]
        run(case, "naive per-patch Python", tokens, lambda: naive_image_episode(episode, spec, size))
        run(case, "GatoImageProcessor only", tokens, lambda: image_processor(frames, return_tensors="np"))
        run(case, "GatoProcessor.tokenize_episode", tokens, lambda: processor.tokenize_episode(episode, spec))
        run(
            case,
            "… + collate to padded torch batch",
            tokens,
            lambda: processor(episodes=episode, specs=spec, return_tensors="pt"),
        )

    print(
        f"\nProcessor throughput, one core ({cpu_name()}, {os.cpu_count()} logical CPUs, shared); "
        f"{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC; Python {platform.python_version()}, "
        f"numpy {np.__version__}, torch {torch.__version__}, transformers {transformers.__version__}; "
        f"best / median of {args.repeats} repeats ≥ {args.min_seconds} s\n"
    )
    print("| case | implementation | tokens/call | ms/call (best) | tokens/s (best) | tokens/s (median) | × naive |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: |")
    baseline: dict[str, float] = {}
    for case, name, tokens, timing in rows:
        baseline.setdefault(case, timing.best)  # the naive row comes first in each case
        print(
            f"| {case} | {name} | {tokens:,} | {timing.best * 1e3:.2f} | {tokens / timing.best:,.0f} | "
            f"{tokens / timing.median:,.0f} | {baseline[case] / timing.best:.1f} |"
        )


if __name__ == "__main__":
    main()
