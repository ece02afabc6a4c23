"""Control latency: time per action of the agent's KV-cached path beside a naive full recompute, same run.

One action = one call of :meth:`gato.evaluation.GatoAgent.act`: tokenize the new observation (39 continuous
values, Meta-World's size, + the separator), choose 4 continuous action tokens autoregressively (each
restricted to its legal range), decode them. The context before the call is a prompt demonstration plus one
time step, so that the call brings it to ``--context`` tokens or just under (whole 44-token time steps).

Paths, all greedy, with identical actions checked:

- ``cached``: ``GatoAgent`` (the model's action API): the new observation's 40 tokens run against the KV
  cache of the context, then 3 more single-token steps. The context is rolled back after each timed call
  (cache cropped, step dropped, not timed) so every repeat sees the same length.
- ``cached, past the window``: once the window is full the action API re-prefills: it drops the oldest time
  steps (the prompt last) until the window is down to ``window_keep_fraction`` of the context and re-runs it
  (``modeling_gato/acting.py``). Reported as the mean time per action over one cycle (re-prefill + the steps
  that then fit), for the default fraction (0.5) and for 1.0 (drop only what the new step needs, so a
  re-prefill at every step); the prompt is a quarter of the context here, as in training.
- ``naive``: ``GatoAgent`` with ``ActingConfig(use_cache=False)``: one full forward pass over the whole window for
  every action token (4 per action), no cache.
- ``--static`` adds the same rows (``cached``, and past the window for both fractions) for
  ``ActingConfig(cache_implementation="static")``: a transformers ``StaticCache`` of ``--context`` slots, reset
  in place on re-prefills. ``--compile`` adds them for the static cache with the two steady-state forward
  shapes ``torch.compile``d (``compile=True``: ``mode="reduce-overhead"``, i.e. CUDA graphs, on CUDA;
  inductor's default mode on CPU); compiling and graph recording happen in untimed warm-up calls. Every
  path's greedy tokens are checked against the naive ones.

Usage (CPU, the paper's 79M shape; the figures in BENCHMARKS.md):
    python benchmarks/control_latency.py --preset gato-79m --context 1024 --batch-sizes 1 16
On a GPU add ``--device cuda --dtype bfloat16`` (and run the three presets). The GPU runs that decide the
fast path (dynamic vs static vs static + CUDA graphs), one per preset:
    python benchmarks/control_latency.py --device cuda --dtype bfloat16 --static --compile --preset gato-79m --context 1024 --batch-sizes 1 16
    python benchmarks/control_latency.py --device cuda --dtype bfloat16 --static --compile --preset gato-364m --context 1024 --batch-sizes 1 16
    python benchmarks/control_latency.py --device cuda --dtype bfloat16 --static --compile --preset gato-1.18b --context 1024 --batch-sizes 1 16
and once in float32 for the 79M shape (bfloat16 may flip near-tied greedy tokens between paths; the token
check prints a WARNING then rather than failing):
    python benchmarks/control_latency.py --device cuda --static --compile --preset gato-79m --context 1024 --batch-sizes 1 16
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time

import numpy as np
import torch
import transformers
from gato.evaluation.agent import GatoAgent
from gato.modeling_gato import GatoConfig, GatoForCausalLM
from gato.modeling_gato.acting import DEFAULT_WINDOW_KEEP_FRACTION, ActingConfig
from gato.suite.task_spec import ActionSpec, ObservationField, TaskSpec
from gato.training.config import prompt_token_budget
from gato.training.run_training import build_processor

OBSERVATION_SIZE = 39  # Meta-World's proprioceptive state
ACTION_SIZE = 4  # Meta-World's action: the "4-dim continuous action"


def bench_spec() -> TaskSpec:
    return TaskSpec(
        "control-latency",
        (ObservationField("state", "continuous", (OBSERVATION_SIZE,)),),
        ActionSpec("continuous", size=ACTION_SIZE),
    )


def demonstration(spec: TaskSpec, steps: int, rng: np.random.Generator) -> dict:
    return {
        "task": spec.name,
        "observations": {"state": rng.normal(size=(steps, OBSERVATION_SIZE)).astype(np.float32)},
        "actions": rng.uniform(-1, 1, size=(steps, ACTION_SIZE)).astype(np.float32),
    }


def observations(batch: int, rng: np.random.Generator) -> list[dict]:
    return [{"state": rng.normal(size=OBSERVATION_SIZE).astype(np.float32)} for _ in range(batch)]


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def time_calls(fn, repeats: int, device: torch.device, after=None) -> list[float]:
    """Seconds per call of ``fn`` (``after`` runs untimed between calls)."""
    times = []
    for _ in range(repeats):
        synchronize(device)
        start = time.perf_counter()
        fn()
        synchronize(device)
        times.append(time.perf_counter() - start)
        if after is not None:
            after()
    return times


def past_window_row(
    model, processor, spec, context: int, batch: int, fraction: float, rng, device, name="cached", acting=None
) -> dict:
    """Mean time per action over at least one re-prefill cycle once the window is full (re-prefills included).

    The agent starts with a prompt of a quarter of the context (the training recipe's prompt budget) and acts
    until its first overflow (untimed; this also warms up a compiled path on its new cache); then every step is
    timed up to and including the next re-prefill (at least 3 steps).
    """
    step_length = OBSERVATION_SIZE + 1 + ACTION_SIZE
    agent = GatoAgent(
        model,
        processor,
        spec,
        acting_config=ActingConfig(window_keep_fraction=fraction, **(acting or {})),
        prompt=demonstration(spec, max(1, prompt_token_budget(context) // step_length), rng),
    )
    agent.reset(num_envs=batch)
    while agent.num_reprefills == 0:
        agent.act(observations(batch, rng))
    times: list[float] = []
    while agent.num_reprefills < 2 or len(times) < 3:
        obs = observations(batch, rng)
        times += time_calls(lambda obs=obs: agent.act(obs), 1, device)
    mean = statistics.fmean(times)
    label = f"{name}, past the window, keep {fraction:g} (mean of {len(times)} steps, {agent.num_reprefills - 1} re-prefills)"
    return dict(path=label, batch=batch, context=context, times=[mean])


def cached_paths(static: bool, compile: bool) -> list[tuple[str, dict]]:
    """(row label, ``ActingConfig`` fields) of every KV-cached path to time."""
    paths = [("cached", {})]
    if static:
        paths.append(("cached, static cache", {"cache_implementation": "static"}))
    if compile:
        paths.append(("cached, static cache + torch.compile", {"cache_implementation": "static", "compile": True}))
    return paths


def run_case(
    model,
    processor,
    spec,
    context: int,
    batch: int,
    repeats: int,
    naive_repeats: int,
    device,
    static: bool = False,
    compile: bool = False,
) -> list[dict]:
    rng = np.random.default_rng(batch)
    step_length = OBSERVATION_SIZE + 1 + ACTION_SIZE
    # Prompt + one step already in the window; the timed step brings it to ≤ context tokens.
    prompt_steps = context // step_length - 2
    prompt = demonstration(spec, prompt_steps, rng)
    first, timed_obs = observations(batch, rng), observations(batch, rng)
    rows = []
    tokens = {}
    after_length = 0
    prefills = {}

    for name, acting in cached_paths(static, compile):
        cached = GatoAgent(model, processor, spec, acting_config=ActingConfig(**acting), prompt=prompt)
        cached.reset(num_envs=batch)
        start = time.perf_counter()
        cached.act(first)  # prefill: prompt + first step
        synchronize(device)
        prefills[name] = time.perf_counter() - start
        before = cached.context.length()
        cache_length = int(cached.context.cache.get_seq_length())  # a device tensor for a static cache
        uncached = cached.context.uncached

        def cached_act(cached=cached, name=name):
            tokens[name] = cached.act_tokens(cached.observation_inputs(timed_obs))

        def roll_back(cached=cached, cache_length=cache_length, uncached=uncached):
            context = cached.context
            context.cache.crop(-(int(context.cache.get_seq_length()) - cache_length))
            context.steps.pop()
            context.uncached = uncached

        # Warm-up (allocator, kernels; compiling, then CUDA graph warm-up and recording for the compiled path).
        for _ in range(3 if acting.get("compile") else 1):
            cached_act()
            roll_back()
        times = time_calls(cached_act, repeats, device, after=roll_back)
        after_length = before + step_length
        rows.append(dict(path=name, batch=batch, context=after_length, times=times))
        assert cached.context.num_reprefills == 0, "the timed step must fit in the window"

        for fraction in (DEFAULT_WINDOW_KEEP_FRACTION, 1.0):
            rows.append(past_window_row(model, processor, spec, context, batch, fraction, rng, device, name, acting))

    naive = GatoAgent(model, processor, spec, acting_config=ActingConfig(use_cache=False), prompt=prompt)
    naive.reset(num_envs=batch)
    naive.act_tokens(
        naive.observation_inputs(first)
    )  # the same first step (cheap to replay: recompute keeps no cache)
    first_step = naive.context.steps[-1]

    def naive_act():
        tokens["naive"] = naive.act_tokens(naive.observation_inputs(timed_obs))

    def naive_roll_back():
        naive.context.steps = [first_step]

    times = time_calls(naive_act, naive_repeats, device, after=naive_roll_back)
    rows.append(dict(path="naive full recompute", batch=batch, context=after_length, times=times))
    for name, acting in cached_paths(static, compile):
        if not torch.equal(tokens[name].cpu(), tokens["naive"].cpu()):
            print(
                f"WARNING batch {batch}: {name} and naive greedy actions differ: {tokens[name].tolist()} vs {tokens['naive'].tolist()}"
            )
        else:
            # The compiled path's first call also compiles its single-token step (the observation step compiles
            # in the warm-up).
            compiling = " (and compiling)" if acting.get("compile") else ""
            print(
                f"batch {batch}: {name} and naive greedy action tokens identical; "
                f"prefill of {before} tokens{compiling} took {prefills[name]:.2f} s"
            )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="gato-79m")
    parser.add_argument("--context", type=int, default=1024)
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 16])
    parser.add_argument("--repeats", type=int, default=10, help="timed cached actions per case")
    parser.add_argument("--naive-repeats", type=int, default=2, help="timed naive actions per case")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "float16"])
    parser.add_argument(
        "--static", action="store_true", help="add rows for ActingConfig(cache_implementation='static')"
    )
    parser.add_argument(
        "--compile", action="store_true", help="add rows for the static cache + torch.compile (CUDA graphs on CUDA)"
    )
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    config = GatoConfig.from_preset(args.preset, max_position_embeddings=args.context)
    torch.manual_seed(0)
    model = GatoForCausalLM(config).to(device=device, dtype=getattr(torch, args.dtype)).eval()
    processor = build_processor(config, args.context)
    spec = bench_spec()
    parameters = sum(p.numel() for p in model.parameters())
    print(
        f"# {args.preset} ({parameters / 1e6:.1f}M parameters), {args.dtype}, device {device}, "
        f"{torch.get_num_threads()} threads; {platform.processor() or platform.machine()}; "
        f"torch {torch.__version__}, transformers {transformers.__version__}; "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}"
    )
    rows = []
    for batch in args.batch_sizes:
        rows += run_case(
            model,
            processor,
            spec,
            args.context,
            batch,
            args.repeats,
            args.naive_repeats,
            device,
            static=args.static,
            compile=args.compile,
        )
    print()
    print(
        "| batch | path | context tokens | ms/action (best) | ms/action (median) | actions/s per env (median) | actions/s all envs | naive / this |"
    )
    print("| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for batch in args.batch_sizes:
        case = [row for row in rows if row["batch"] == batch]
        naive = statistics.median(next(row for row in case if row["path"].startswith("naive"))["times"])
        for row in case:
            best, median = min(row["times"]), statistics.median(row["times"])
            print(
                f"| {batch} | {row['path']} | {row['context']} | {1000 * best:.1f} | {1000 * median:.1f} | "
                f"{1 / median:.2f} | {batch / median:.1f} | {naive / median:.1f}× |"
            )


if __name__ == "__main__":
    main()
