#!/usr/bin/env bash
# The engine tests against the AddressSanitizer build of the addon, llama.cpp, ggml and mtmd.
#
#   SRF_SANITIZE=address npm run build:native     # once: builds build-asan/ (the normal build/ stays)
#   scripts/asan-test.sh                          # the engine tests (test/1[0-8]-*)
#   scripts/asan-test.sh test/16-stress.test.ts   # or the ones named
#
# Node is not built with ASan, so the runtime is preloaded (LD_PRELOAD) into every node process,
# the tests' child processes included; SRF_NATIVE_ADDON makes lib/engine/native.ts load build-asan's
# addon. Leak detection is off: Node keeps much of its memory until exit, and those reports would
# be Node's, not ours (test/18-leak.test.ts checks our growth). Every report goes to a file under
# $ASAN_REPORTS (default a temp folder); the script lists them and fails if there are any.
set -euo pipefail
cd "$(dirname "$0")/.."

addon="$PWD/build-asan/Release/srf_native.node"
if [ ! -f "$addon" ]; then
  echo "asan-test: $addon is missing; build it first: SRF_SANITIZE=address npm run build:native" >&2
  exit 2
fi
libasan=$(${CC:-gcc} -print-file-name=libasan.so)
if [ ! -e "$libasan" ]; then
  echo "asan-test: libasan.so not found next to ${CC:-gcc} (apt install libasan8 / gcc)" >&2
  exit 2
fi

reports=${ASAN_REPORTS:-$(mktemp -d)}
mkdir -p "$reports"
rm -f "$reports"/asan.*
if [ $# -eq 0 ]; then
  set -- test/1[0-8]-*.test.ts
fi

# handle_segv=0: V8 handles SIGSEGV itself (WebAssembly bounds checks).
export ASAN_OPTIONS="detect_leaks=0:handle_segv=0:allow_user_segv_handler=1:detect_odr_violation=0:halt_on_error=1:log_path=$reports/asan"
export LD_PRELOAD="$libasan"
export SRF_NATIVE_ADDON="$addon"
start=$(date +%s)
set +e
npx tap --timeout 3600 "$@"
status=$?
set -e
echo "asan-test: $(( $(date +%s) - start )) s"
if compgen -G "$reports/asan.*" >/dev/null; then
  echo "asan-test: AddressSanitizer reports:" >&2
  for f in "$reports"/asan.*; do
    echo "---- $f" >&2
    cat "$f" >&2
  done
  exit 1
fi
echo "asan-test: no AddressSanitizer reports"
exit "$status"
