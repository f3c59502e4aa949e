#!/bin/sh
# Rebuilds the world model from nothing: instruction data, step-1 data (srf-native tasks), vocabulary,
# the vision tower's pretraining (then frozen) and its probes, the LLaVA's two stages, the embedder,
# GGUF export into models/world, the parity references in test/data/world-parity, the loss curves,
# and the held-out evaluation beside the blind baseline. Needs python3-torch from apt (for
# /usr/bin/python3) and libopenblas0-pthread. See training/world/README.md for times.
#
#   training/world/run.sh                 # on this machine's CPU
#   DEVICE=cuda PYTHON=/opt/torch/.venv/bin/python3 training/world/run.sh   # the same recipe on a GPU
#   RESUME=1 training/world/run.sh        # go on from the last checkpoints (data kept)
set -e
cd "$(dirname "$0")/../.."
OUT=training/world/out
PY=${PYTHON:-/usr/bin/python3}
DEV=${DEVICE:-cpu}
RES=${RESUME:+--resume}
npx tsc -p .
[ -n "$RESUME" ] && [ -f "$OUT/data.json" ] || node dist/training/world/make-data.js "$OUT"
(cd training/world && nice -n 15 "$PY" pretrain_vision.py out out/train --steps 3000 --batch 128 --seed 0 --device "$DEV" $RES)
(cd training/world && nice -n 15 "$PY" train_llava.py out out/train --vision out/train/vision.pt --steps 12000 --pretrain-steps 2000 --caption-share 0.3 --batch 32 --seed 0 --device "$DEV" $RES)
(cd training/world && "$PY" probe_vision.py out out/train/checkpoint.pt --projector --out out/train/probe-projector.json)
node dist/training/world/embedder-data.js "$OUT/bert"
(cd training/world && nice -n 15 "$PY" train_bert.py out/bert out/bert-train --steps 300 --seed 0)
node dist/training/world/export.js llava "$OUT" "$OUT/train" models/world
node dist/training/world/export.js bert "$OUT/bert" "$OUT/bert-train" models/world
node dist/training/world/parity-cases.js "$OUT" test/data/world-parity
(cd training/world && "$PY" reference.py out out/train ../../test/data/world-parity)
(cd training/world && "$PY" bert_reference.py out/bert out/bert-train ../../test/data/world-parity/embedder-reference.json)
cp "$OUT/train/loss.csv" training/world/loss-llava.csv
cp "$OUT/train/val-loss.csv" training/world/val-loss-llava.csv
cp "$OUT/train/vision-loss.csv" training/world/loss-vision.csv
cp "$OUT/train/probe.json" training/world/probe-vision.json
cp "$OUT/train/probe-projector.json" training/world/probe-projector.json
cp "$OUT/bert-train/loss.csv" training/world/loss-bert.csv
cp "$OUT/train/train.json" training/world/train-llava.json
cp "$OUT/train/vision-train.json" training/world/train-vision.json
cp "$OUT/bert-train/train.json" training/world/train-bert.json
node dist/training/world/evaluate.js 200
