#!/usr/bin/env bash
# On the lent GPU machine (CUDA 13 under /usr/local/cuda, cmake/ninja in /opt/torch/.venv/bin,
# 16 cores, no Node, no network): unpacks .gpu-kit/ (made by bench/gpu/pack.sh) into a work folder,
# builds the addon with CUDA for sm_90 and llama.cpp's tools with CUDA (at the same time, while the
# 7B-shaped model is written), runs the GPU smoke test and the benchmark, and prints a short table.
# Meant to finish within ~9 minutes. Results and logs are copied to $OUT when it is set.
#
#   bench/gpu/run.sh                    full run (CUDA)
#   bench/gpu/run.sh --dry-run          unpack + CPU build + smoke test (--allow-cpu) + a tiny CPU
#                                       benchmark: what can be checked on a machine without a GPU
#   bench/gpu/run.sh --skip-build ...   reuse an unpacked, built work folder
#   BENCH_ARGS="--images 64" bench/gpu/run.sh    extra flags for `npm run bench`
#   KV_AB=0 bench/gpu/run.sh            skip the second srf-native run with per-sequence KV
#
# Environment: SRF_GPU_KIT (default <repo>/.gpu-kit), SRF_GPU_WORK (default /tmp/srf-gpu),
# CMAKE_CUDA_ARCHITECTURES (default 90), JOBS (default nproc), OUT (folder for results).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
KIT=${SRF_GPU_KIT:-$ROOT/.gpu-kit}
WORK=${SRF_GPU_WORK:-/tmp/srf-gpu}
JOBS=${JOBS:-$(nproc)}
ARCH=${CMAKE_CUDA_ARCHITECTURES:-90}
DRY_RUN=0
SKIP_BUILD=0
for arg in "$@"; do
  case "$arg" in
    --dry-run) DRY_RUN=1 ;;
    --skip-build) SKIP_BUILD=1 ;;
    *) echo "unknown argument $arg" >&2; exit 2 ;;
  esac
done
if [ "$DRY_RUN" = 1 ]; then
  GPU=cpu
  SHAPE=${SHAPE:-tiny}
  BENCH_ARGS=${BENCH_ARGS:-"--images 4 --cli-images 1 --parallel 4"}
else
  GPU=cuda
  SHAPE=${SHAPE:-llava-1.5-7b}
  BENCH_ARGS=${BENCH_ARGS:-""}
fi

START=$SECONDS
say() { printf '\n[gpu-run %4ss] %s\n' "$((SECONDS - START))" "$*"; }
export PATH="$WORK/bin:/opt/torch/.venv/bin:/usr/local/cuda/bin:$PATH"
export CMAKE_CUDA_ARCHITECTURES=$ARCH

SRF="$WORK/srf"
if [ "$SKIP_BUILD" = 0 ]; then
  say "unpacking $KIT into $WORK"
  [ -f "$KIT/MANIFEST" ] || { echo "no kit at $KIT: run bench/gpu/pack.sh first and carry .gpu-kit" >&2; exit 1; }
  cat "$KIT/MANIFEST"
  rm -rf "$SRF"
  mkdir -p "$WORK/bin" "$SRF/deps"
  xz -dc "$KIT/node.xz" > "$WORK/bin/node"
  chmod +x "$WORK/bin/node"
  tar -xJf "$KIT/srf.tar.xz" -C "$SRF"
  tar -xJf "$KIT/node_modules.tar.xz" -C "$SRF"
  tar -xJf "$KIT/llama.cpp.tar.xz" -C "$SRF/deps"
  # CMakeLists.txt clones llama.cpp from node-llama-cpp's bundle unless deps/llama.cpp carries the
  # bundle's checksum. The 35 MB bundle is not in the kit: a placeholder whose checksum is written
  # as the stamp makes CMake use the unpacked source as it is.
  mkdir -p "$SRF/node_modules/node-llama-cpp/llama"
  echo "placeholder: llama.cpp comes unpacked from the GPU kit" > "$SRF/node_modules/node-llama-cpp/llama/gitRelease.bundle"
  sha256sum "$SRF/node_modules/node-llama-cpp/llama/gitRelease.bundle" | cut -d' ' -f1 | tr -d '\n' > "$SRF/deps/llama.cpp/.srf-bundle-sha256"
fi
cd "$SRF"
echo "node $(node --version), cmake $(cmake --version | head -1 | cut -d' ' -f3), $(command -v ninja >/dev/null && echo "ninja $(ninja --version)" || echo 'no ninja'), $([ "$GPU" = cuda ] && nvcc --version | tail -1 || echo 'CPU build')"
[ "$GPU" = cuda ] && (nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true)

if [ "$SKIP_BUILD" = 0 ]; then
  say "building the addon (SRF_GPU=$GPU, sm $ARCH), llama.cpp's tools and the $SHAPE model at the same time"
  (SRF_GPU=$GPU node node_modules/cmake-js/bin/cmake-js build --out build --parallel "$JOBS" > "$WORK/addon-build.log" 2>&1; echo $? > "$WORK/addon-build.rc") &
  ADDON=$!
  (SRF_BENCH_BACKEND=$GPU node dist/bench/tools.js > "$WORK/tools-build.log" 2>&1; echo $? > "$WORK/tools-build.rc") &
  TOOLS=$!
  (node -e "import('./dist/lib/gguf/fixtures.js').then((m) => m.writeFixtures('bench/work/models', { llava: '$SHAPE', seed: 1 }))" \
     > "$WORK/models.log" 2>&1; echo $? > "$WORK/models.rc") &
  MODELS=$!
  wait $ADDON $TOOLS $MODELS
  for step in addon-build tools-build models; do
    rc=$(cat "$WORK/$step.rc")
    if [ "$rc" != 0 ]; then
      echo "$step failed (exit $rc):" >&2
      tail -40 "$WORK/$step.log" >&2
      [ -n "${OUT:-}" ] && cp "$WORK"/*.log "$OUT/" 2>/dev/null
      exit 1
    fi
  done
  say "builds done"
fi

say "smoke test"
if [ "$GPU" = cuda ]; then node bench/gpu/smoke.js; else node bench/gpu/smoke.js --allow-cpu; fi

say "benchmark: npm run bench -- --shape $SHAPE $BENCH_ARGS"
# shellcheck disable=SC2086
node dist/bench/run.js --shape "$SHAPE" $BENCH_ARGS --label "bench/gpu/run.sh" | tee "$WORK/bench.log"

# The KV layout is an open question on the GPU (bench/NOTES.md): srf-native again with the other one.
if [ "${KV_AB:-1}" = 1 ]; then
  say "benchmark: srf-native with --kv-layout per-sequence (the GPU default is unified)"
  # shellcheck disable=SC2086
  node dist/bench/run.js --shape "$SHAPE" $BENCH_ARGS --skip-cli --skip-server --kv-layout per-sequence \
    --label "bench/gpu/run.sh, per-sequence KV" | tee "$WORK/bench-per-sequence.log"
fi

if [ -n "${OUT:-}" ]; then
  cp bench/RESULTS.md "$OUT/RESULTS-gpu.md" 2>/dev/null || true
  cp "$WORK"/*.log "$OUT/" 2>/dev/null || true
  cp bench/work/llama-server.log "$OUT/" 2>/dev/null || true
fi
say "done in $((SECONDS - START)) s"
echo
grep -hE '^\|' "$WORK/bench.log" "$WORK/bench-per-sequence.log" 2>/dev/null || true
