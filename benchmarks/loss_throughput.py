"""The training loss's output layer alone: chunked (``modeling_gato/loss_gato.py``) vs plain, same run.

Forward + backward of ``sum CE(hidden @ weight.T, targets)`` for ``N`` targets, Gato's vocabulary and a given
width: the plain path (``F.linear`` then ``F.cross_entropy`` on the float32 logits, which holds the whole
``(N, vocab)`` logits) beside :func:`linear_cross_entropy` (chunks of ``--chunk-size`` rows), in float32 and
under bf16 autocast, rounds interleaved; the best round counts.

    python benchmarks/loss_throughput.py --targets 280 3064 --hidden 128
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F
import transformers
from gato.modeling_gato import GatoConfig
from gato.modeling_gato.loss_gato import DEFAULT_CHUNK_SIZE, linear_cross_entropy


def time_loss(loss_fn, hidden: torch.Tensor, weight: torch.Tensor, targets: torch.Tensor, dtype: torch.dtype) -> float:
    hidden, weight = hidden.clone().requires_grad_(), weight.clone().requires_grad_()
    start = time.perf_counter()
    with torch.autocast("cpu", dtype=dtype, enabled=dtype != torch.float32):
        loss = loss_fn(hidden, weight, targets)
    (loss / len(targets)).backward()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--targets", type=int, nargs="+", default=[280, 3064], help="loss targets per batch")
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--chunk-size", type=int, default=DEFAULT_CHUNK_SIZE)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    vocab = GatoConfig.from_preset("gato-tiny").vocab_size
    print(
        f"torch {torch.__version__}, transformers {transformers.__version__}, {torch.get_num_threads()} threads; "
        f"vocab {vocab}, hidden {args.hidden}, chunk {args.chunk_size} rows"
    )
    losses = {
        "plain": lambda h, w, t: F.cross_entropy(F.linear(h, w).float(), t, reduction="sum"),
        "chunked": lambda h, w, t: linear_cross_entropy(h, w, t, chunk_size=args.chunk_size),
    }
    print(f"{'targets':>8} {'dtype':<9} {'plain ms':>9} {'chunked ms':>11} {'plain / chunked':>16}")
    generator = torch.Generator().manual_seed(0)
    for count in args.targets:
        hidden = torch.randn(count, args.hidden, generator=generator)
        weight = torch.randn(vocab, args.hidden, generator=generator) * 0.02
        targets = torch.randint(0, vocab, (count,), generator=generator)
        for dtype in (torch.float32, torch.bfloat16):
            seconds = {name: [] for name in losses}
            for _ in range(args.rounds):
                for name, loss_fn in losses.items():
                    seconds[name].append(time_loss(loss_fn, hidden, weight, targets, dtype))
            plain, chunked = min(seconds["plain"]), min(seconds["chunked"])
            print(
                f"{count:>8} {str(dtype).removeprefix('torch.'):<9} {1000 * plain:>9.0f} {1000 * chunked:>11.0f} "
                f"{plain / chunked:>15.2f}×",
                flush=True,
            )


if __name__ == "__main__":
    main()
