#!/bin/sh
# Rebuilds the world model from nothing: instruction data, step-1 data (srf-native tasks), vocabulary,
# training of the LLaVA and the embedder, GGUF export into models/world, the parity references in
# test/data/world-parity, the loss curves, and the held-out evaluation. Needs python3-torch from apt
# (for /usr/bin/python3) and libopenblas0-pthread. See training/world/README.md for times.
set -e
cd "$(dirname "$0")/../.."
OUT=training/world/out
npx tsc -p .
node dist/training/world/make-data.js "$OUT"
(cd training/world && nice -n 15 /usr/bin/python3 train_llava.py out out/train --steps 1600 --pretrain-steps 700 --batch 32 --seed 0)
node dist/training/world/embedder-data.js "$OUT/bert"
(cd training/world && nice -n 15 /usr/bin/python3 train_bert.py out/bert out/bert-train --steps 300 --seed 0)
node dist/training/world/export.js llava "$OUT" "$OUT/train" models/world
node dist/training/world/export.js bert "$OUT/bert" "$OUT/bert-train" models/world
node dist/training/world/parity-cases.js "$OUT" test/data/world-parity
(cd training/world && /usr/bin/python3 reference.py out out/train ../../test/data/world-parity)
(cd training/world && /usr/bin/python3 bert_reference.py out/bert out/bert-train ../../test/data/world-parity/embedder-reference.json)
cp "$OUT/train/loss.csv" training/world/loss-llava.csv
cp "$OUT/bert-train/loss.csv" training/world/loss-bert.csv
cp "$OUT/train/train.json" training/world/train-llava.json
cp "$OUT/bert-train/train.json" training/world/train-bert.json
node dist/training/world/evaluate.js 200
