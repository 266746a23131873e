#!/usr/bin/env bash
# scripts/build.sh: configure (once) and build convlab in Release into build/ (or $CONVLAB_BUILD_DIR).
# Quiet: the compiler's output goes to $BUILD_DIR/build.log and one summary line is printed
# ("build: ok in 41 s (12 files compiled, 0 warnings; log: build/build.log)"). When the build fails, the
# log's errors (or its last 60 lines) are printed and the exit code is the build's. CONVLAB_VERBOSE_BUILD=1
# streams the full output instead. Arguments go to `cmake --build` (e.g. --target convlab).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR="${CONVLAB_BUILD_DIR:-build}"
if [ ! -f "$BUILD_DIR/CMakeCache.txt" ]; then
  cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Release >/dev/null
fi
JOBS="$(nproc)"
if [ "${CONVLAB_VERBOSE_BUILD:-0}" = 1 ]; then
  exec cmake --build "$BUILD_DIR" -j "$JOBS" "$@"
fi
LOG="$BUILD_DIR/build.log"
start=$(date +%s)
status=0
cmake --build "$BUILD_DIR" -j "$JOBS" "$@" >"$LOG" 2>&1 || status=$?
secs=$(( $(date +%s) - start ))
compiled=$(grep -c "Building CXX object" "$LOG" || true)
warnings=$(grep -c "warning:" "$LOG" || true)
if [ "$status" -ne 0 ]; then
  echo "build: FAILED after ${secs} s (exit $status); errors from $LOG:" >&2
  if grep -qE "error:|\*\*\*" "$LOG"; then grep -E -B2 -A6 "error:|\*\*\*" "$LOG" | head -80 >&2; else tail -n 60 "$LOG" >&2; fi
  exit "$status"
fi
plural() { [ "$1" = 1 ] && echo "$1 $2" || echo "$1 $2s"; }
echo "build: ok in ${secs} s ($(plural "$compiled" "file") compiled, $(plural "$warnings" warning); log: $LOG)"
