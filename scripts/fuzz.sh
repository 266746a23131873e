#!/usr/bin/env bash
# scripts/fuzz.sh [SECONDS] [TARGET...]: builds build-fuzz/ (or $CONVLAB_FUZZ_BUILD_DIR) with clang,
# -DCONVLAB_FUZZ=ON (libFuzzer + ASan + UBSan) and runs each harness of tests/fuzz/ for SECONDS (default 60) on a
# copy of its seed corpus (tests/fuzz/corpus/<target>/), with its dictionary, 2 GB of RSS and 10 s per input.
# Targets: safetensors config set op_case image jpeg (default: all, one after the other).
# Any crash, sanitizer report, leak, timeout or out-of-memory fails the script and prints the reproducer; the
# work folder (corpus copies, logs, crash files) is kept then. To turn a finding into a regression test, copy
# the crash file to tests/fuzz/regressions/<target>/ (tests/test_fuzz_regressions.cpp replays it in ./test.sh).
# Reproduce one input: build-fuzz/fuzz_<target> CRASH_FILE
set -euo pipefail
cd "$(dirname "$0")/.."
SECS="${1:-60}"
[ $# -gt 0 ] && shift
TARGETS=("$@")
[ ${#TARGETS[@]} -gt 0 ] || TARGETS=(safetensors config set op_case image jpeg)
BUILD_DIR="${CONVLAB_FUZZ_BUILD_DIR:-build-fuzz}"

scripts/setup.sh
T0=$(date +%s)
if [ ! -f "$BUILD_DIR/CMakeCache.txt" ]; then
  CC=clang CXX=clang++ cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Release -DCONVLAB_FUZZ=ON >/dev/null
fi
mkdir -p "$BUILD_DIR"
if ! cmake --build "$BUILD_DIR" -j "$(nproc)" >"$BUILD_DIR/fuzz-build.log" 2>&1; then
  grep -E "error" "$BUILD_DIR/fuzz-build.log" | head -40 >&2 || true
  tail -20 "$BUILD_DIR/fuzz-build.log" >&2
  echo "fuzz: build failed (log: $BUILD_DIR/fuzz-build.log)" >&2
  exit 1
fi
echo "fuzz: $BUILD_DIR built in $(($(date +%s) - T0)) s"

WORK="$(mktemp -d "${TMPDIR:-/tmp}/convlab-fuzz.XXXXXX")"
# Sanitizer reports abort (the build uses -fno-sanitize-recover=all); libFuzzer checks leaks itself when LSan
# works here (it says so and carries on when it does not).
export ASAN_OPTIONS="halt_on_error=1:strict_string_checks=1"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1"
FAILED=()
for t in "${TARGETS[@]}"; do
  case "$t" in
    safetensors) max_len=4096; dict=tests/fuzz/safetensors.dict ;;
    config) max_len=8192; dict=tests/fuzz/json.dict ;;
    set) max_len=512; dict=tests/fuzz/json.dict ;;
    op_case) max_len=4096; dict=tests/fuzz/json.dict ;;
    image) max_len=4096; dict=tests/fuzz/image.dict ;;
    jpeg) max_len=4096; dict=tests/fuzz/image.dict ;;
    *) echo "fuzz: unknown target $t (safetensors config set op_case image jpeg)" >&2; exit 2 ;;
  esac
  bin="$BUILD_DIR/fuzz_$t"
  mkdir -p "$WORK/$t/corpus" "$WORK/$t/artifacts" "$WORK/$t/tmp"
  cp tests/fuzz/corpus/"$t"/* "$WORK/$t/corpus/"
  t1=$(date +%s)
  # TMPDIR: the config target's private copy of configs/ lands in the work folder.
  if TMPDIR="$WORK/$t/tmp" "$bin" -max_total_time="$SECS" -rss_limit_mb=2048 -timeout=10 -max_len="$max_len" \
       -dict="$dict" -artifact_prefix="$WORK/$t/artifacts/" -print_final_stats=1 "$WORK/$t/corpus" \
       >"$WORK/$t/log" 2>&1 && [ -z "$(ls -A "$WORK/$t/artifacts")" ]; then
    echo "fuzz: $t: clean for $SECS s ($(grep -o 'stat::number_of_executed_units: *[0-9]*' "$WORK/$t/log" | grep -o '[0-9]*$') inputs, corpus $(ls "$WORK/$t/corpus" | wc -l) files; $(($(date +%s) - t1)) s)"
  else
    FAILED+=("$t")
    echo "fuzz: $t: FAILED after $(($(date +%s) - t1)) s" >&2
    grep -m1 -B2 -A30 -E "ERROR: |runtime error|SUMMARY|==[0-9]+== ?ERROR|deadly signal|timeout|out-of-memory" \
      "$WORK/$t/log" >&2 || tail -40 "$WORK/$t/log" >&2
    for a in "$WORK/$t/artifacts"/*; do
      [ -e "$a" ] && echo "fuzz: reproduce with: $bin $a   (log: $WORK/$t/log)" >&2
    done
  fi
done
if [ ${#FAILED[@]} -gt 0 ]; then
  echo "fuzz: FAILED: ${FAILED[*]} (work folder kept: $WORK)" >&2
  exit 1
fi
rm -rf "$WORK"
echo "fuzz: all clean ($(($(date +%s) - T0)) s)"
