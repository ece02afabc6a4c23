#!/usr/bin/env bash
# The CPU multi-task run published in the README ("One set of weights") and BENCHMARKS.md: data → train →
# DAgger data from that model → train again → DAgger data from the second model → train a third time → evaluate →
# model card, on 2 CPU cores (about 3 h 50 min).
# Usage: bash scripts/cpu_multitask.sh [DATA_DIR] [RUN_DIR]
set -euo pipefail
DATA=${1:-data/multitask}
RUN=${2:-runs/multitask}

# Expert episodes, captions and text, as one data plan (per-task episodes and action noise: the YAML file says
# why). Episode i of a task depends only on (seed, task, i), so the plan's calls can run in any order or be resumed.
gato data generate --plan training/recipes/cpu_multitask_data.yaml --out "$DATA" --workers 2

# Round 1: one model, the whole default suite + captions + text (model, weights and schedule in the recipe).
# Rounds 1 and 2 are skipped once finished (train_results.json): the DAgger rounds add splits to $DATA, and a
# --resume on changed data is refused, so a re-run of the script would stop here.
[ -f "$RUN-round1/train_results.json" ] || gato train --config training/recipes/cpu_multitask.yaml --data "$DATA" \
    --output-dir "$RUN-round1" --resume

# DAgger: round 1's model plays PickupLoc and Breakout (the expert's action executed instead half the time) and
# the experts label every state it reaches (docs/DATA.md); the episodes go into <task>_dagger beside the data.
[ -d "$DATA/babyai_pickup_loc_dagger" ] || gato data generate --tasks babyai_pickup_loc --episodes-per-task 3000 \
    --dagger-model "$RUN-round1" --expert-mix 0.5 --out "$DATA" --workers 2
[ -d "$DATA/atari_breakout_dagger" ] || gato data generate --tasks atari_breakout --episodes-per-task 60 \
    --dagger-model "$RUN-round1" --expert-mix 0.5 --out "$DATA" --workers 2

# Round 2: a new model, from scratch, on the expert data + the DAgger episodes (the first recipe + their weights).
[ -f "$RUN-round2/train_results.json" ] || gato train --config training/recipes/cpu_multitask_dagger.yaml \
    --data "$DATA" --output-dir "$RUN-round2" --resume

# DAgger, second round: round 2's model plays, into <task>_dagger2 (rooms and games of its own); round 1's
# episodes stay (DAgger aggregates every round's data).
[ -d "$DATA/babyai_pickup_loc_dagger2" ] || gato data generate --tasks babyai_pickup_loc --episodes-per-task 3000 \
    --dagger-model "$RUN-round2" --expert-mix 0.5 --dagger-round 2 --out "$DATA" --workers 2
[ -d "$DATA/atari_breakout_dagger2" ] || gato data generate --tasks atari_breakout --episodes-per-task 240 \
    --dagger-model "$RUN-round2" --expert-mix 0.5 --dagger-round 2 --out "$DATA" --workers 2

# Round 3: a new model, from scratch, on everything (round 2's recipe + the second round's weights and steps).
gato train --config training/recipes/cpu_multitask_dagger2.yaml --data "$DATA" --output-dir "$RUN" --resume

# Every default task (50 episodes each), 1,000 images of each held-out caption split, text loss;
# results and plot go into the run folder.
gato eval --model "$RUN" --tasks default --episodes 50 --num-envs 4 --captions 1000 --data "$DATA" --output-dir "$RUN"

# The model card (README.md) with the results, checked as `gato push` would upload it.
gato push "$RUN" --repo-id gato/gato-cpu-multitask --dry-run
