"""Training items per second from a data folder: episodes read window by window against whole-episode reads.

``MixtureDataset.__getitem__`` reads only the time steps an item needs (its first step, then its window;
``episode_from_arrow(..., steps=slice(a, b))``), so an Atari item decodes a few dozen compressed frames, not the
whole episode's. The baseline, measured in the same run and alternated with it round by round, is the former
path: decode every step of the episode, then cut the window out (``slice_episode``); both give the same tokens
(``tests/training/test_training_mixture.py``). Items are drawn as training draws them (by default the config's
prompt probability; a prompted item also reads its whole demonstration episode, in both paths).

    gato data generate --tasks atari_breakout --episodes-per-task 3 --out /tmp/atari
    python benchmarks/mixture_throughput.py --data /tmp/atari          # ~30 s on one core
"""

from __future__ import annotations

import os

for _variable in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import argparse  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
from contextlib import contextmanager  # noqa: E402

from datasets import load_from_disk  # noqa: E402
from gato.modeling_gato import GatoConfig  # noqa: E402
from gato.processing.episode_layout import slice_episode  # noqa: E402
from gato.training import mixture  # noqa: E402
from gato.training.config import TrainingConfig  # noqa: E402
from gato.training.run_training import build_processor  # noqa: E402


@contextmanager
def whole_episode_reads():
    """The baseline: every read decodes the whole episode, then the asked steps are cut out of it."""
    windowed = mixture.episode_from_arrow

    def whole(table, spec, steps=None):
        episode = windowed(table, spec)
        return episode if steps is None else slice_episode(episode, steps.start, steps.stop)

    mixture.episode_from_arrow = whole
    try:
        yield
    finally:
        mixture.episode_from_arrow = windowed


def items_per_second(dataset: mixture.MixtureDataset, items: int) -> float:
    started = time.perf_counter()
    for index in range(items):
        dataset[index]
    return items / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True, help="a `gato data generate` folder (its episode tasks are used)")
    parser.add_argument("--max-length", type=int, default=384, help="context (the CPU recipe's)")
    parser.add_argument("--items", type=int, default=40, help="items per round and path")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--prompt-probability",
        type=float,
        default=TrainingConfig().prompt_probability,
        help="share of prompted items (default: training's)",
    )
    args = parser.parse_args()
    train, _ = mixture.split_sources(load_from_disk(args.data), TrainingConfig().validation_fraction)
    episodes = [source for source in train if source.kind == "episodes"]
    processor = build_processor(GatoConfig.from_preset("gato-tiny"), max_length=args.max_length)
    dataset = mixture.MixtureDataset(
        episodes, processor, length=args.items, prompt_probability=args.prompt_probability
    )
    items_per_second(dataset, 2)  # warm-up: file handles, page cache
    rates: dict[str, list[float]] = {"whole episode": [], "window": []}
    for _ in range(args.rounds):
        with whole_episode_reads():
            rates["whole episode"].append(items_per_second(dataset, args.items))
        rates["window"].append(items_per_second(dataset, args.items))
    steps = sum(sum(source.dataset.with_format(None)["num_steps"]) for source in episodes)
    print(
        f"{', '.join(source.name for source in episodes)}: {sum(len(s) for s in episodes)} training episodes, "
        f"{steps} steps; context {args.max_length}; prompt probability {args.prompt_probability}; "
        f"{args.items} items × {args.rounds} rounds"
    )
    print(f"{'path':<14} {'items/s (median)':>16} {'rounds':>24}")
    for name, values in rates.items():
        print(f"{name:<14} {statistics.median(values):>16.1f} {' '.join(f'{v:.1f}' for v in values):>24}")
    print(f"speed-up: {statistics.median(rates['window']) / statistics.median(rates['whole episode']):.1f}×")


if __name__ == "__main__":
    main()
