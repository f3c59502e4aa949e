#!/usr/bin/env bash
# On the lent GPU machine (CUDA 13 under /usr/local/cuda, cmake/ninja in /opt/torch/.venv/bin,
# 16 cores, no Node, no network): unpacks .gpu-kit/ (made by bench/gpu/pack.sh) into a work folder,
# builds the addon and llama.cpp's tools with CUDA for sm_90 in one CMake tree (one ggml compile,
# while the 7B-shaped model is written), runs the GPU smoke test and the benchmark, and prints a short
# table. Meant to finish within ~9 minutes: each later step gets only the time left before DEADLINE.
# Logs go straight to $OUT (when set) as they are written, so a run cut short still reports.
#
#   bench/gpu/run.sh                    full run (CUDA)
#   bench/gpu/run.sh --dry-run          unpack + CPU build + smoke test (--allow-cpu) + a tiny CPU
#                                       benchmark: what can be checked on a machine without a GPU
#   bench/gpu/run.sh --skip-build ...   reuse an unpacked, built work folder
#   BENCH_ARGS="--images 64" bench/gpu/run.sh    extra flags for `npm run bench`
#   BUILD_TOOLS=0 BENCH_ARGS="--quant none --skip-server --skip-cli" bench/gpu/run.sh
#                                       srf-native only, F16, no llama.cpp tools to build (~1 min less)
#   SECOND_ARGS="--kv-layout unified" bench/gpu/run.sh   flags of the second, srf-native-only run
#                                       (default: 48 sequences); SECOND_ARGS=none skips it
#
# First, before any build: the driver and its CUDA version, then whether that driver runs the
# prebuilt CUDA library's kernels (node-llama-cpp's libggml-cuda.so: no native sm_90 code, PTX from
# CUDA 13.1) and how long their JIT takes with an empty CUDA cache and again with it warm
# (bench/gpu/ptx-probe.py on the kit's fatbins/), into $OUT/prebuilt-ptx.jsonl.
#
# Environment: SRF_GPU_KIT (default <repo>/.gpu-kit), SRF_GPU_WORK (default /tmp/srf-gpu),
# CMAKE_CUDA_ARCHITECTURES (default 90), JOBS (default nproc), OUT (folder for results),
# DEADLINE (seconds from the start the whole script must fit in; default 560).
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
  BENCH_ARGS=${BENCH_ARGS:-"--cli-images 2"}  # each mtmd-cli run reloads the 7B: seconds apiece
fi

START=$SECONDS
DEADLINE=${DEADLINE:-560}
say() { printf '\n[gpu-run %4ss] %s\n' "$((SECONDS - START))" "$*"; }
left() { local l=$((DEADLINE - (SECONDS - START))); echo $((l > 1 ? l : 1)); } # `timeout 0` would mean none
LOGS=${OUT:-$WORK/logs}
mkdir -p "$LOGS"
export PATH="$WORK/bin:/opt/torch/.venv/bin:/usr/local/cuda/bin:$PATH"
export CMAKE_CUDA_ARCHITECTURES=$ARCH

# The prebuilt CUDA library on this driver, before anything else (it decides what the README tells
# H100 users): the driver, then its PTX, JIT-compiled cold and warm. At most a third of the time.
say "driver: $(nvidia-smi --query-gpu=name,driver_version,compute_cap --format=csv,noheader 2>/dev/null || echo 'no nvidia-smi')"
nvidia-smi 2>/dev/null | grep -m1 'CUDA Version' || true
if [ -d "$KIT/fatbins" ]; then
  PROBE_CACHE="$WORK/cuda-cache-probe"
  rm -rf "$PROBE_CACHE"
  mkdir -p "$PROBE_CACHE"
  for pass in cold warm; do
    budget=$(( $(left) / 6 > 10 ? $(left) / 6 : 10 ))
    say "prebuilt CUDA library's PTX on this driver, $pass cache (at most $budget s)"
    CUDA_CACHE_PATH="$PROBE_CACHE" CUDA_CACHE_MAXSIZE=4294967296 timeout -k 5 "$budget" python3 "$HERE/ptx-probe.py" "$KIT/fatbins" "$pass" \
      | tee -a "$LOGS/prebuilt-ptx.jsonl" || say "the $pass probe did not finish in $budget s"
  done
  du -sh "$PROBE_CACHE" 2>/dev/null || true
else
  say "no fatbins/ in the kit (pack.sh found no prebuilt CUDA library): the prebuilt PTX is not probed"
fi

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

# BUILD_TOOLS=0: the addon alone (a srf-native-only call: BENCH_ARGS with --quant none --skip-server --skip-cli).
if [ "${BUILD_TOOLS:-1}" = 1 ]; then TOOL_TARGETS="llama-mtmd-cli llama-server llama-quantize"; else TOOL_TARGETS=""; fi
if [ "$SKIP_BUILD" = 0 ]; then
  say "building the addon and llama.cpp's tools in one tree (SRF_GPU=$GPU, sm $ARCH), and the $SHAPE model, at the same time"
  # cmake-js configures (it knows Node's headers); one `cmake --build` then compiles ggml once for
  # the addon and the anchors (CMakeLists.txt: SRF_LLAMA_TOOLS), so ninja keeps all cores busy.
  (set -e
   SRF_GPU=$GPU SRF_LLAMA_TOOLS=ON node node_modules/cmake-js/bin/cmake-js configure --out build
   cmake --build build --target srf_native $TOOL_TARGETS --parallel "$JOBS"
  ) > "$LOGS/build.log" 2>&1 && echo 0 > "$WORK/build.rc" || echo $? > "$WORK/build.rc" &
  BUILD=$!
  (node -e "import('./dist/fixtures/gguf/fixtures.js').then((m) => m.writeFixtures('bench/work/models', { llava: '$SHAPE', seed: 1 }))" \
     > "$LOGS/models.log" 2>&1 && echo 0 > "$WORK/models.rc" || echo $? > "$WORK/models.rc") &
  MODELS=$!
  wait $BUILD $MODELS
  for step in build models; do
    rc=$(cat "$WORK/$step.rc")
    if [ "$rc" != 0 ]; then
      echo "$step failed (exit $rc):" >&2
      tail -40 "$LOGS/$step.log" >&2
      exit 1
    fi
  done
  grep -m1 'srf-native: backend=' "$LOGS/build.log" || true
  say "builds done"
fi

say "smoke test"
if [ "$GPU" = cuda ]; then SMOKE_FLAGS=""; else SMOKE_FLAGS="--allow-cpu"; fi
# shellcheck disable=SC2086
timeout -k 5 120 node bench/gpu/smoke.js $SMOKE_FLAGS 2>&1 | tee "$LOGS/smoke.log" || say "smoke test FAILED (benchmark goes on)"
# The whole pipeline through the CLI, as a user's GPU CI job would run it (tiny models: seconds).
say "demo: srf-native run --demo"
if timeout -k 5 120 node bin/srf-native.js run --demo --out "$WORK/demo-out" >> "$LOGS/smoke.log" 2>&1 \
   && [ -s "$WORK/demo-out/train.llava.json" ]; then
  echo "ok   srf-native run --demo wrote $WORK/demo-out/train.llava.json" | tee -a "$LOGS/smoke.log"
else
  echo "FAIL srf-native run --demo (see smoke.log)" | tee -a "$LOGS/smoke.log"
fi
grep -m1 'engine:' "$LOGS/smoke.log" || true

# SRF_TRACE: srf-native's per-prefix and per-step times, for bench/NOTES.md.
say "benchmark: npm run bench -- --shape $SHAPE $BENCH_ARGS (at most $(left) s)"
# shellcheck disable=SC2086
SRF_TRACE="$LOGS/trace.jsonl" timeout -k 10 "$(left)" node dist/bench/run.js --shape "$SHAPE" $BENCH_ARGS --label "bench/gpu/run.sh" 2>&1 | tee "$LOGS/bench.log" || true

# A second srf-native run answers the next open question (bench/NOTES.md): by default, whether
# 48 sequences beat 32 (more rows per decode step against more KV memory: 96 streams x 1,024 cells
# = 48 GB for 7B, within an H100). Every request in flight needs its image's prefix cached, so
# the prefix cache stays at its default (= parallel): with fewer, prefixes are evaluated again.
SECOND_ARGS=${SECOND_ARGS:-"--parallel 48 --kv-layout per-sequence"}
if [ "$SECOND_ARGS" != none ] && [ "$(left)" -gt 45 ]; then
  say "benchmark: srf-native with $SECOND_ARGS (at most $(left) s)"
  # shellcheck disable=SC2086
  SRF_TRACE="$LOGS/trace-second.jsonl" timeout -k 10 "$(left)" node dist/bench/run.js --shape "$SHAPE" $BENCH_ARGS --skip-cli --skip-server $SECOND_ARGS \
    --label "bench/gpu/run.sh, $SECOND_ARGS" 2>&1 | tee "$LOGS/bench-second.log" || true
fi

# srf-native run through the CLI as a user runs it (issue 10: its defaults, no caps), traced, on the
# bench's images and model, to compare with the pipeline peer and the engine. Its log goes to the end
# of bench-second.log, its trace to trace-cli.jsonl (a device call returns at most 8 files).
# --truncated keep: the random-weight model never ends a reply, and its replies cut back to a full
# sentence would be rejected before their re-predictions, i.e. a third of the work measured.
# (`|| true`: ls fails when either file is missing, and pipefail + set -e would end the script here.)
CLI_MODEL=$(ls bench/work/models/llava-"$SHAPE"-seed1-model-q4_k_m.gguf bench/work/models/llava-"$SHAPE"-seed1-model-f16.gguf 2>/dev/null | head -1 || true)
if [ -n "$CLI_MODEL" ] && [ "$(left)" -gt 120 ]; then
  say "srf-native run (CLI defaults) on bench/work/images with $(basename "$CLI_MODEL") (at most $(left) s)"
  SRF_TRACE="$LOGS/trace-cli.jsonl" /usr/bin/time -v timeout -k 10 "$(left)" node bin/srf-native.js run --model "$CLI_MODEL" \
    --mmproj bench/work/models/llava-"$SHAPE"-seed1-mmproj-f16.gguf --embedder bench/work/models/bert-minilm-seed1-f16.gguf \
    --images bench/work/images --truncated keep --out "$WORK/cli-out" >> "$LOGS/bench-second.log" 2>&1 || say "srf-native run did not finish (see bench-second.log)"
  tail -3 "$LOGS/bench-second.log"
fi

cp bench/RESULTS.md "$LOGS/RESULTS-gpu.md" 2>/dev/null || true
# (bench/work/llama-server.log stays behind: a device call returns at most 8 files.)
say "done in $((SECONDS - START)) s"
echo
grep -hE '^\|' "$LOGS/bench.log" "$LOGS/bench-second.log" 2>/dev/null || true
