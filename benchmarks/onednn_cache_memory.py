"""Resident memory of Gato's patch block under a changing patch count, with oneDNN's primitive cache as torch leaves
it (1,024 entries) and bounded as gato's training and evaluation bound it (``ONEDNN_CACHE_CAPACITY``).

Each training batch sends a different number of image patches through the ResNet patch block, and oneDNN compiles
and keeps one primitive per shape. This runs the project's own ``GatoPatchEmbedding`` (forward and backward, bf16
autocast on the CPU, one thread) on ``--steps`` batches of a random 1–200 patches, in a fresh process per setting
(oneDNN reads the capacity once), and prints the peak resident memory and the time of each; the baseline is the
unbounded cache in the same run.

    python benchmarks/onednn_cache_memory.py --steps 300
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time


def measure(steps: int, dtype: str) -> dict[str, float]:
    import random
    import resource

    import torch
    from gato.modeling_gato import GatoConfig
    from gato.modeling_gato.modeling_gato import GatoPatchEmbedding

    torch.set_num_threads(1)
    torch.manual_seed(0)
    config = GatoConfig.from_preset("gato-tiny", hidden_size=128, num_hidden_layers=3, num_attention_heads=4)
    block = GatoPatchEmbedding(config)
    optimizer = torch.optim.AdamW(block.parameters())
    rng = random.Random(0)
    size = config.patch_size
    start = time.perf_counter()
    for _ in range(steps):
        count = rng.randint(1, 200)
        pixels = torch.randn(count, config.num_channels, size, size)
        intervals = torch.zeros(count, 2, dtype=torch.long)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=dtype == "bf16"):
            loss = block(pixels, intervals, intervals).float().square().mean()
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    return {
        "seconds": time.perf_counter() - start,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--dtype", choices=("bf16", "fp32"), default="bf16")
    parser.add_argument("--child", choices=("default", "bounded"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(args.steps, args.dtype)))
        return
    from gato.training.throughput import ONEDNN_CACHE_CAPACITY, ONEDNN_CACHE_VARIABLE

    results = {}
    for setting in ("default", "bounded"):
        env = {key: value for key, value in os.environ.items() if key != ONEDNN_CACHE_VARIABLE}
        if setting == "bounded":
            env[ONEDNN_CACHE_VARIABLE] = str(ONEDNN_CACHE_CAPACITY)
        command = [sys.executable, __file__, "--steps", str(args.steps), "--dtype", args.dtype, "--child", setting]
        output = subprocess.run(command, env=env, check=True, capture_output=True, text=True).stdout
        results[setting] = json.loads(output.strip().splitlines()[-1])
    print(f"| oneDNN primitive cache | peak RSS | time ({args.steps} steps, {args.dtype}) |")
    print("| --- | ---: | ---: |")
    for setting, label in (("default", "torch's default (1,024)"), ("bounded", f"bounded ({ONEDNN_CACHE_CAPACITY})")):
        print(f"| {label} | {results[setting]['peak_rss_mb']:,.0f} MB | {results[setting]['seconds']:.1f} s |")
    ratio = results["default"]["peak_rss_mb"] / results["bounded"]["peak_rss_mb"]
    print(f"peak RSS default / bounded: {ratio:.2f}×")


if __name__ == "__main__":
    main()
