#!/bin/sh
# Reruns the whole quality experiment on the committed world model (models/world): the filter
# benchmark on 500 held-out images, then one round of self-refinement with its three controls.
# Writes bench/QUALITY.md and bench/quality/{filter,round1}-results.json. Needs python3-torch from apt
# for /usr/bin/python3 (round 1 only; libopenblas0-pthread makes it faster). See README.md beside this.
set -e
cd "$(dirname "$0")/../.."
npx tsc -p .
nice -n 15 node dist/bench/quality/run.js --images 500
nice -n 15 node dist/bench/quality/run.js round1
