"""Do bf16 weights choose the same greedy actions as float32? Agreement rate on held-out expert episodes.

Generates a tiny data folder (``gato data generate`` of a few cheap tasks), trains a tiny model for a few hundred
steps in float32, then loads it twice for acting (``gato.training.precision.load_for_acting``: float32 and
bfloat16 weights) and feeds both the held-out episodes teacher-forced, as ``gato eval``'s held-out action
accuracy does. At every action token both models' restricted logits are decoded exactly as the agent decodes
them (``choose_tokens``: argmax for categorical actions, argmax and the median bin for continuous ones) and
compared. Ties are counted too: ``argmax`` breaks a tie towards the lowest token id in both dtypes, and logits
rounded to bf16 (8 significant bits) tie far more often, so the bf16 model's logits are computed two ways: with
the output-layer product in float32 (what ``act`` does) and in bf16 (what ``lm_head`` on bf16 weights gives),
and the script reports how many disagreements come from a tie in the bf16 logits.

    python scripts/bf16_action_agreement.py --work /tmp/bf16_agreement     # ~2–3 min on 2 CPU cores
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
from gato.episodes.generate import generate
from gato.modeling_gato.acting import choose_tokens
from gato.modeling_gato.modeling_gato import target_mask
from gato.processing.processing_gato import GatoProcessor
from gato.training.config import TrainingConfig
from gato.training.mixture import split_sources
from gato.training.precision import load_for_acting
from gato.training.run_training import load_data, run_training

MODEL_INPUTS = (
    "input_ids",
    "attention_mask",
    "local_positions",
    "patch_mask",
    "patch_pixels",
    "patch_rows",
    "patch_cols",
    "patch_valid",
)


@torch.no_grad()
def action_logits(model, processor, source, max_episodes: int, batch_size: int = 8) -> tuple[dict, str]:
    """Teacher-forced restricted logits at every action target of the held-out episodes, per action dimension,
    computed two ways from the model's final hidden states: ``"float32 output layer"`` (the action API's
    product, in float32 whatever the weights' dtype) and ``"native output layer"`` (the product in the weights'
    dtype, as ``lm_head`` computes it): ``({way: [(steps, hi - lo) per dimension]}, action kind)``."""
    from gato.episodes.schema import read_episode

    spec = source.spec
    ranges = torch.as_tensor(processor.action_token_ranges(spec), dtype=torch.long)
    action_size = ranges.shape[0]
    sequences = [
        sequence
        for index in range(min(max_episodes, len(source.dataset)))
        for sequence in processor.tokenize_episode(read_episode(source.dataset, index, spec), spec)
    ]
    ways = {
        "float32 output layer": [[] for _ in range(action_size)],
        "native output layer": [[] for _ in range(action_size)],
    }
    weight = model.lm_head.weight
    for start in range(0, len(sequences), batch_size):
        batch = processor.collate(sequences[start : start + batch_size])
        hidden = model.model(**{k: batch[k] for k in MODEL_INPUTS if k in batch}).last_hidden_state
        is_target = target_mask(batch["labels"], batch["loss_mask"], batch["attention_mask"])
        hidden = hidden[:, :-1][is_target]  # (targets, hidden): the action tokens, whole steps in order
        if hidden.shape[0] % action_size:
            raise ValueError(f"{spec.name}: expected whole time steps of {action_size} action targets")
        for dim in range(action_size):
            lo, hi = ranges[dim].tolist()
            rows = hidden[dim::action_size]
            ways["float32 output layer"][dim].append(rows.float() @ weight[lo:hi].float().T)
            ways["native output layer"][dim].append((rows @ weight[lo:hi].T).float())
    return {way: [torch.cat(chunks) for chunks in dims] for way, dims in ways.items()}, spec.action.kind


def is_tie(logits: torch.Tensor) -> torch.Tensor:
    """``(steps, n)`` → ``(steps,)`` True where the two largest logits are equal (argmax picks the lower id)."""
    if logits.shape[1] < 2:
        return torch.zeros(logits.shape[0], dtype=torch.bool)
    top = logits.topk(2, dim=-1).values
    return top[:, 0] == top[:, 1]


def compare(fp32: torch.Tensor, bf16: torch.Tensor, decoding: str) -> dict[str, float]:
    chosen32, chosen16 = choose_tokens(fp32, greedy_decoding=decoding), choose_tokens(bf16, greedy_decoding=decoding)
    differ = chosen32 != chosen16
    tie16, tie32 = is_tie(bf16), is_tie(fp32)
    return {
        "tokens": int(len(chosen32)),
        "agree": int((~differ).sum()),
        "ties_float32": int(tie32.sum()),
        "ties_bfloat16": int(tie16.sum()),
        "disagree_at_bf16_tie": int((differ & tie16).sum()) if decoding == "argmax" else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", default="/tmp/bf16_agreement", help="data and run folders go here")
    parser.add_argument("--tasks", default="cartpole,pendulum,babyai_goto_red_ball")
    parser.add_argument("--episodes-per-task", type=int, default=8)
    parser.add_argument("--max-steps", type=int, default=200)
    parser.add_argument("--max-episodes", type=int, default=4, help="held-out episodes compared per task")
    args = parser.parse_args()
    torch.set_num_threads(1)  # tiny matmuls on a shared 2-core machine: one thread avoids OpenMP spin-waits
    started = time.perf_counter()
    work = Path(args.work)
    data_dir, run_dir = work / "data", work / "run"
    if not data_dir.exists():
        generate(args.tasks, args.episodes_per_task, data_dir, seed=0, progress=False)
    if not (run_dir / "model.safetensors").exists():
        config = TrainingConfig(
            preset="gato-tiny",
            data=str(data_dir),
            output_dir=str(run_dir),
            max_steps=args.max_steps,
            batch_size=4,
            max_length=128,
            learning_rate=3e-3,
            warmup_steps=20,
            logging_steps=50,
            eval_steps=args.max_steps,
            save_steps=args.max_steps,
            eval_batches=1,
            report_to="none",
            mixed_precision="no",
            validation_fraction=0.25,
        )
        run_training(config)
    print(f"data + training: {time.perf_counter() - started:.0f} s")
    processor = GatoProcessor.from_pretrained(str(run_dir))
    models = {name: load_for_acting(str(run_dir), name) for name in ("float32", "bfloat16")}
    _, held_out = split_sources(load_data(str(data_dir)), validation_fraction=0.25)
    results = {}
    for source in held_out:
        if source.kind != "episodes":
            continue
        fp32, kind = action_logits(models["float32"], processor, source, args.max_episodes)
        bf16, _ = action_logits(models["bfloat16"], processor, source, args.max_episodes)
        decodings = ["argmax", "median"] if kind == "continuous" else ["argmax"]
        for way in bf16:
            for decoding in decodings:
                rows = [compare(a, b, decoding) for a, b in zip(fp32["float32 output layer"], bf16[way])]
                total = {key: sum(row[key] for row in rows) if rows[0][key] is not None else None for key in rows[0]}
                results[f"{source.name} ({decoding}), bf16 {way}"] = total
    print(
        f"{'task (decoding), bf16 variant':<62} {'tokens':>6} {'agree':>8} {'ties fp32':>9} {'ties bf16':>9} {'differ at bf16 tie':>18}"
    )
    for name, row in results.items():
        at_tie = "—" if row["disagree_at_bf16_tie"] is None else str(row["disagree_at_bf16_tie"])
        print(
            f"{name:<62} {row['tokens']:>6} {row['agree'] / row['tokens']:>8.2%} {row['ties_float32']:>9} "
            f"{row['ties_bfloat16']:>9} {at_tie:>18}"
        )
    # The agent's own decoding: argmax for categorical actions, the median bin for continuous ones (GatoAgent's default).
    agent = {
        name
        for name in results
        if "(median)" in name or ("(argmax)" in name and name.replace("(argmax)", "(median)") not in results)
    }
    for way in ("float32 output layer", "native output layer"):
        chosen = [row for name, row in results.items() if name.endswith(way) and name in agent]
        tokens, agree = sum(r["tokens"] for r in chosen), sum(r["agree"] for r in chosen)
        print(
            f"bf16 with the {way}: {agree}/{tokens} = {agree / tokens:.2%} of the agent's greedy action tokens agree with float32"
        )
    print(f"{time.perf_counter() - started:.0f} s total")
    (work / "agreement.json").write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
