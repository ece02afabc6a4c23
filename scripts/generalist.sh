#!/usr/bin/env bash
# The generalist of issue #18, end to end and resumable: every line skips what is finished, so the script can be
# run again after an interruption (a session's end, a reboot) and continues where it stopped; training resumes
# exactly from its last checkpoint (saved every 1,000 steps).
# Usage: [DAGGER_ROUNDS=N] bash scripts/generalist.sh [DATA_DIR] [RUN_DIR] [HELD_OUT_DATA_DIR]
#   DAGGER_ROUNDS: DAgger rounds after pretraining (default 0: none; see below).
set -euo pipefail
DATA=${1:-data/generalist}
RUN=${2:-runs/generalist}
HELD_OUT=${3:-data/held_out}
DAGGER_ROUNDS=${DAGGER_ROUNDS:-0}

# Expert data of the 30 pretraining tasks + captions + text (the held-out tasks are never recorded here).
gato data generate --plan training/recipes/generalist_data.yaml --tasks generalist --out "$DATA" --workers 2

# One model on all of it (long: several hours on 2 cores; --resume continues it). Skipped once finished
# (train_results.json): a DAgger round adds splits to $DATA, and a --resume on changed data is refused.
[ -f "$RUN/train_results.json" ] || gato train --config training/recipes/generalist.yaml --data "$DATA" \
    --output-dir "$RUN" --resume

# Every pretraining task, 50 episodes each, captions and text, with interval statistics (eval_results.*).
[ -f "$RUN/eval_results.json" ] || gato eval --model "$RUN" --tasks generalist --episodes 50 --num-envs 4 \
    --captions 1000 --data "$DATA" --output-dir "$RUN"

# DAgger rounds (optional): in round R the latest model plays the tasks whose group in the data plan sets
# dagger_episodes, the expert labels every state it reaches (`--plan … --dagger-model`, splits <task>_dagger /
# <task>_dagger<R> beside the expert data; held-out tasks never), then a model starts from the latest one
# (--init-from: its weights, a fresh optimizer and schedule) and trains on everything into $RUN-dagger<R>.
# Each DAgger split weighs 1 in the mixture like every task of the recipe (task_weights name none of them).
# The round's 10,000 steps at a peak rate of 3e-4 are first guesses, not yet measured.
MODEL=$RUN
for ((ROUND = 1; ROUND <= DAGGER_ROUNDS; ROUND++)); do
    gato data generate --plan training/recipes/generalist_data.yaml --tasks generalist --out "$DATA" --workers 2 \
        --dagger-model "$MODEL" --dagger-round "$ROUND"
    [ -f "$RUN-dagger$ROUND/train_results.json" ] || gato train --config training/recipes/generalist.yaml \
        --init-from "$MODEL" --data "$DATA" --output-dir "$RUN-dagger$ROUND" --max-steps 10000 --warmup-steps 200 \
        --learning-rate 3e-4 --resume
    [ -f "$RUN-dagger$ROUND/eval_results.json" ] || gato eval --model "$RUN-dagger$ROUND" --tasks generalist \
        --episodes 50 --num-envs 4 --captions 1000 --data "$DATA" --output-dir "$RUN-dagger$ROUND"
    MODEL=$RUN-dagger$ROUND
done

# Transfer (the paper's fine-tuning study) from the latest model: expert data of the held-out tasks, then
# prompt-only, fine-tuned and from-scratch runs for a few, tens and hundreds of episodes (scripts/transfer_study.py).
# 300 steps at a peak rate of 3e-4 for both arms: at 500 steps scratch imitated mountain_car_continuous from 5
# episodes, at 300 the pretrained model was ahead on both BabyAI levels tried (BENCHMARKS.md, transfer pilots).
gato data generate --tasks held_out --episodes-per-task 200 --out "$HELD_OUT" --workers 2
python scripts/transfer_study.py --model "$MODEL" --data "$HELD_OUT" --tasks held_out --episodes 5,20,100 \
    --max-steps 300 --learning-rate 3e-4 --warmup-steps 30 --eval-episodes 50 --out "$MODEL/transfer"
