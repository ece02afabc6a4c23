#!/usr/bin/env bash
# The generalist of issue #18, end to end and resumable: every line skips what is finished, so the script can be
# run again after an interruption (a session's end, a reboot) and continues where it stopped; training resumes
# exactly from its last checkpoint (saved every 1,000 steps).
# Usage: bash scripts/generalist.sh [DATA_DIR] [RUN_DIR] [HELD_OUT_DATA_DIR]
set -euo pipefail
DATA=${1:-data/generalist}
RUN=${2:-runs/generalist}
HELD_OUT=${3:-data/held_out}

# Expert data of the 30 pretraining tasks + captions + text (the held-out tasks are never recorded here).
gato data generate --plan training/recipes/generalist_data.yaml --tasks generalist --out "$DATA" --workers 2

# One model on all of it (long: several hours on 2 cores; --resume continues it).
gato train --config training/recipes/generalist.yaml --data "$DATA" --output-dir "$RUN" --resume

# Every pretraining task, 50 episodes each, captions and text, with interval statistics (eval_results.*).
gato eval --model "$RUN" --tasks generalist --episodes 50 --num-envs 4 --captions 1000 --data "$DATA" --output-dir "$RUN"

# Transfer (the paper's fine-tuning study): expert data of the held-out tasks, then prompt-only, fine-tuned and
# from-scratch runs for a few, tens and hundreds of episodes (scripts/transfer_study.py).
gato data generate --tasks held_out --episodes-per-task 200 --out "$HELD_OUT" --workers 2
python scripts/transfer_study.py --model "$RUN" --data "$HELD_OUT" --tasks held_out --episodes 5,20,100 \
    --max-steps 1000 --eval-episodes 50 --out "$RUN/transfer"
