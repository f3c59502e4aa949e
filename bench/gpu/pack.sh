#!/usr/bin/env bash
# Packs into .gpu-kit/ (git-ignored) everything the lent GPU machine needs to build and benchmark
# srf-native: it has CUDA 13, cmake/ninja under /opt/torch/.venv/bin, but no Node, no npm and no
# network (shared/GPU-MACHINE.md). The kit must stay well under the 64 MiB a device call carries.
#
#   node.xz               this machine's node binary (glibc-only dependencies), xz-compressed
#   node_modules.tar.xz   sharp + @img, node-addon-api, node-api-headers, cmake-js, yargs and their
#                         dependencies (closure from package-lock.json), plus node-llama-cpp's
#                         llama.cpp.info.json (not its 35 MB source bundle)
#   llama.cpp.tar.xz      deps/llama.cpp without .git, docs, models, tests, examples, web UI
#                         sources and the ggml backends that are not CPU/CUDA
#   srf.tar.xz            package.json, CMakeLists.txt, scripts/, native/, the compiled dist/ (tsc runs here
#                         first), bin/ (the CLI launcher), bench/gpu/, models/world/ (the demo's model)
#   fatbins/              a few whole fatbin modules of node-llama-cpp's prebuilt libggml-cuda.so
#                         (bench/gpu/extract-fatbins.mjs), for bench/gpu/ptx-probe.py: does the
#                         driver there run the prebuilt library's PTX, and how long its JIT takes
#   MANIFEST              sizes, checksums, versions
#
# Usage: bench/gpu/pack.sh   (then carry .gpu-kit with the device call and run bench/gpu/run.sh)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
KIT=${SRF_GPU_KIT:-$ROOT/.gpu-kit}
LIMIT_MIB=${SRF_GPU_KIT_LIMIT_MIB:-56}
XZ_LEVEL=${XZ_LEVEL:-6}
cd "$ROOT"

say() { printf '[pack %5ss] %s\n' "$SECONDS" "$*"; }

[ -f deps/llama.cpp/CMakeLists.txt ] || { echo "deps/llama.cpp is missing: build the addon first (npm run build:native)" >&2; exit 1; }
[ -d node_modules/sharp ] || { echo "node_modules is missing: run npm install first" >&2; exit 1; }

rm -rf "$KIT"
mkdir -p "$KIT"

say "compiling TypeScript (dist/)"
npx tsc -p .

say "node binary: $(command -v node) ($(node --version))"
xz -T0 "-$XZ_LEVEL" -c "$(command -v node)" > "$KIT/node.xz"

say "node_modules subset"
MODULES=$(node -e '
  // Resolve dependencies the way Node does (nested node_modules first, then each parent folder),
  // following package-lock.json, so nested copies (cmake-js/node_modules/yargs) find their own deps.
  const lock = require("./package-lock.json").packages;
  const fs = require("fs");
  const seen = new Set();
  const resolveFrom = (from, name) => {
    let dir = from;
    for (;;) {
      const candidate = (dir ? dir + "/" : "") + "node_modules/" + name;
      if (lock[candidate]) return candidate;
      if (!dir) return undefined;
      const cut = dir.lastIndexOf("node_modules/");
      dir = cut <= 0 ? "" : dir.slice(0, cut - 1);
    }
  };
  const visit = (path) => {
    if (!path || seen.has(path) || !fs.existsSync(path)) return; // optional deps for other platforms
    seen.add(path);
    const entry = lock[path];
    for (const d of Object.keys({ ...entry.dependencies, ...entry.optionalDependencies })) visit(resolveFrom(path, d));
  };
  ["sharp", "node-addon-api", "node-api-headers", "cmake-js", "yargs"].forEach((n) => visit("node_modules/" + n));
  // Nested packages travel inside their parent folder; list top-level ones only.
  console.log([...seen].map((p) => p.split("/").slice(0, p.split("/")[1].startsWith("@") ? 3 : 2).join("/"))
    .filter((p, i, all) => all.indexOf(p) === i).sort().join("\n"));
')
# shellcheck disable=SC2086
tar -cf - --exclude='*.md' --exclude='*.d.ts' --exclude='*.map' \
  $MODULES node_modules/node-llama-cpp/llama/llama.cpp.info.json node_modules/node-llama-cpp/package.json \
  | xz -T0 "-$XZ_LEVEL" > "$KIT/node_modules.tar.xz"

say "llama.cpp source"
tar -cf - -C deps \
  --exclude='llama.cpp/.git' --exclude='llama.cpp/.github' --exclude='llama.cpp/.devops' \
  --exclude='llama.cpp/docs' --exclude='llama.cpp/models' --exclude='llama.cpp/tests' \
  --exclude='llama.cpp/examples' --exclude='llama.cpp/pocs' --exclude='llama.cpp/benches' \
  --exclude='llama.cpp/media' --exclude='llama.cpp/gguf-py' --exclude='llama.cpp/conversion' \
  --exclude='llama.cpp/*.py' --exclude='llama.cpp/tools/ui/src' --exclude='llama.cpp/tools/ui/static' \
  --exclude='llama.cpp/tools/ui/tests' --exclude='llama.cpp/tools/server/tests' \
  --exclude='llama.cpp/tools/mtmd/test-*' --exclude='llama.cpp/tools/mtmd/legacy-models' \
  --exclude='llama.cpp/ggml/src/ggml-cann' --exclude='llama.cpp/ggml/src/ggml-et' \
  --exclude='llama.cpp/ggml/src/ggml-hexagon' --exclude='llama.cpp/ggml/src/ggml-metal' \
  --exclude='llama.cpp/ggml/src/ggml-opencl' --exclude='llama.cpp/ggml/src/ggml-openvino' \
  --exclude='llama.cpp/ggml/src/ggml-sycl' --exclude='llama.cpp/ggml/src/ggml-virtgpu' \
  --exclude='llama.cpp/ggml/src/ggml-vulkan' --exclude='llama.cpp/ggml/src/ggml-webgpu' \
  --exclude='llama.cpp/ggml/src/ggml-zdnn' --exclude='llama.cpp/ggml/src/ggml-zendnn' \
  llama.cpp | xz -T0 "-$XZ_LEVEL" > "$KIT/llama.cpp.tar.xz"

PREBUILT_CUDA=node_modules/@node-llama-cpp/linux-x64-cuda/bins/linux-x64-cuda/libggml-cuda.so
if [ -f "$PREBUILT_CUDA" ]; then
  say "fatbin modules of the prebuilt CUDA library"
  node bench/gpu/extract-fatbins.mjs "$PREBUILT_CUDA" "$KIT/fatbins" "${FATBIN_MIB:-6}"
fi

say "srf-native sources and dist/"
tar -cf - --exclude='*.map' package.json CMakeLists.txt scripts native dist bin bench/gpu models/world | xz -T0 "-$XZ_LEVEL" > "$KIT/srf.tar.xz"

{
  echo "srf-native GPU kit, packed $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(uname -m)"
  echo "git: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet 2>/dev/null || echo ' (working tree has changes)')"
  echo "node: $(node --version)"
  echo "llama.cpp bundle sha256: $(cat deps/llama.cpp/.srf-bundle-sha256 2>/dev/null || echo unknown)"
  echo
  (cd "$KIT" && for f in node.xz node_modules.tar.xz llama.cpp.tar.xz srf.tar.xz; do
     awk -v f="$f" -v b="$(stat -c %s "$f")" -v h="$(sha256sum "$f" | cut -c1-16)" 'BEGIN { printf "%-20s %8.1f MiB  %s\n", f, b / 1048576, h }'
   done)
} > "$KIT/MANIFEST"

TOTAL=$(du -sb "$KIT" | cut -f1)
TOTAL_MIB=$((TOTAL / 1048576))
cat "$KIT/MANIFEST"
say "total ${TOTAL_MIB} MiB (limit ${LIMIT_MIB} MiB; a device call carries 64 MiB including the working tree)"
if [ "$TOTAL_MIB" -ge "$LIMIT_MIB" ]; then
  echo "the kit is too large" >&2
  exit 1
fi
