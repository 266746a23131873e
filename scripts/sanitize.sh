#!/usr/bin/env bash
# scripts/sanitize.sh: the memory-safety check of the whole project under AddressSanitizer + UBSan (GCC).
#  1. configures and builds build-asan/ (or $CONVLAB_ASAN_BUILD_DIR) with -DCONVLAB_SANITIZE=ON (-O1 -g, every
#     target instrumented, any report aborts);
#  2. runs the full ctest suite there;
#  3. trains ONE step of every shipped config in configs/ (small batch and datasets through --set) and runs
#     `convlab compare configs/experiments/gridding_vs_hdc.json --quick`.
# Any sanitizer report or non-zero exit fails the script. Reports are also written to files (log_path), so a
# report in a child process whose exit code a test does not look at is still caught; they are printed at the end.
# MNIST configs use data/mnist (scripts/get_mnist.sh) or $CONVLAB_MNIST_DIR when present; without the digits
# a GAN config trains on the embedded shapes set (--set data.dataset=shapes) and the classifier is skipped
# (named in the output).
# LeakSanitizer needs ptrace-like thread suspension; where the machine forbids it, leak detection is switched
# off with a message (everything else still runs).
# Usage: scripts/sanitize.sh [--no-build] [--no-tests | --no-train]   (CI: no arguments, after ./test.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR="${CONVLAB_ASAN_BUILD_DIR:-build-asan}"
RUN_TESTS=1
RUN_TRAIN=1
RUN_BUILD=1
for a in "$@"; do
  case "$a" in
    --no-tests) RUN_TESTS=0 ;;
    --no-train) RUN_TRAIN=0 ;;
    --no-build) RUN_BUILD=0 ;;  # use build-asan as it is
    *) echo "usage: scripts/sanitize.sh [--no-build] [--no-tests | --no-train]" >&2; exit 2 ;;
  esac
done

scripts/setup.sh
stamp() { date +%s; }
T0=$(stamp)
if [ ! -f "$BUILD_DIR/CMakeCache.txt" ]; then
  cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Release -DCONVLAB_SANITIZE=ON >/dev/null
fi
# GCC under ASan prints many false -Wmaybe-uninitialized warnings in Eigen: keep the log, show it on failure.
mkdir -p "$BUILD_DIR"
if [ "$RUN_BUILD" = 1 ] && ! cmake --build "$BUILD_DIR" -j "$(nproc)" >"$BUILD_DIR/sanitize-build.log" 2>&1; then
  grep -E "error|Error" "$BUILD_DIR/sanitize-build.log" | head -40 >&2 || true
  tail -20 "$BUILD_DIR/sanitize-build.log" >&2
  echo "sanitize: build failed (log: $BUILD_DIR/sanitize-build.log)" >&2
  exit 1
fi
[ "$RUN_BUILD" = 1 ] && echo "sanitize: $BUILD_DIR built in $(($(stamp) - T0)) s"

WORK="$(mktemp -d "${TMPDIR:-/tmp}/convlab-sanitize.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
REPORTS="$WORK/reports"
mkdir -p "$REPORTS"

# Can LeakSanitizer run here? Ask a 3-line program that leaks on purpose.
LEAKS=0
printf '#include <cstdlib>\nvoid* volatile p;\nint main() { p = std::malloc(7); p = nullptr; return 0; }\n' >"$WORK/leak.cpp"
if g++ -fsanitize=address -g "$WORK/leak.cpp" -o "$WORK/leak" 2>/dev/null; then
  out="$(ASAN_OPTIONS=detect_leaks=1 "$WORK/leak" 2>&1 || true)"
  if grep -q "detected memory leaks" <<<"$out"; then
    LEAKS=1
  else
    echo "sanitize: LeakSanitizer cannot run on this machine ($(grep -m1 -E "LeakSanitizer|ptrace" <<<"$out" || echo "no report from a leaking program")): leak detection is off"
  fi
fi
export ASAN_OPTIONS="halt_on_error=1:detect_leaks=$LEAKS:strict_string_checks=1:check_initialization_order=1:strict_init_order=1:detect_invalid_pointer_pairs=0:log_path=$REPORTS/asan:log_exe_name=1"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1:log_path=$REPORTS/ubsan:log_exe_name=1"

FAILED=()
reports_since() {  # prints and counts report files written so far
  local n=0 f
  for f in "$REPORTS"/*; do
    [ -e "$f" ] || continue
    n=$((n + 1))
    echo "---- sanitizer report $f" >&2
    head -60 "$f" >&2
  done
  return $((n > 0))
}

if [ "$RUN_TESTS" = 1 ]; then
  T1=$(stamp)
  if ! (cd "$BUILD_DIR" && ctest --output-on-failure -j 2 --timeout 1800); then FAILED+=("ctest"); fi
  echo "sanitize: ctest under ASan + UBSan took $(($(stamp) - T1)) s"
  if ! reports_since; then FAILED+=("ctest (sanitizer reports)"); fi
  rm -f "$REPORTS"/*
fi

if [ "$RUN_TRAIN" = 1 ]; then
  T2=$(stamp)
  BIN="$BUILD_DIR/convlab"
  MNIST_DIR="${CONVLAB_MNIST_DIR:-data/mnist}"
  HAVE_MNIST=0
  [ -f "$MNIST_DIR/digits/9.json" ] && HAVE_MNIST=1
  SKIPPED=()
  for cfg in configs/*.json; do
    name="$(basename "$cfg" .json)"
    task=""
    f="$cfg"
    for _ in 1 2 3 4; do  # the task is inherited through "extends"
      task="$(grep -o '"task": *"[a-z]*"' "$f" | head -1 | sed 's/.*"\([a-z]*\)"$/\1/' || true)"
      [ -n "$task" ] && break
      parent="$(grep -o '"extends": *"[^"]*"' "$f" | head -1 | sed 's/.*"\([^"]*\)"$/\1/' || true)"
      [ -n "$parent" ] || break
      f="$(dirname "$f")/$parent"
    done
    if ! grep -q '"layers"' "$cfg" && ! grep -q '"extends"' "$cfg"; then
      echo "sanitize: $name: a base file without a model (extended by others): nothing to train"
      continue
    fi
    sets=(--set train.steps=1)
    case "$task" in
      gan)
        sets+=(--set train.batch_size=4 --set train.samples=4 --set data.train_size=64)
        [ "$HAVE_MNIST" = 1 ] || sets+=(--set data.dataset=shapes) ;;
      classification)
        if [ "$HAVE_MNIST" = 0 ]; then
          SKIPPED+=("$name (needs MNIST: scripts/get_mnist.sh)")
          continue
        fi
        sets+=(--set train.batch_size=4 --set data.train_size=64 --set data.test_size=64) ;;
      *)
        sets+=(--set train.batch_size=2 --set data.train_size=16 --set data.val_size=4 --set train.grid_images=2) ;;
    esac
    t=$(stamp)
    if CONVLAB_MNIST_DIR="$MNIST_DIR" "$BIN" --threads 2 train "$cfg" "${sets[@]}" --runs "$WORK/runs" -q \
         >"$WORK/$name.log" 2>&1; then
      echo "sanitize: one step of $name: ok ($(($(stamp) - t)) s)"
    else
      echo "sanitize: one step of $name FAILED:" >&2
      tail -20 "$WORK/$name.log" >&2
      FAILED+=("train $name")
    fi
  done
  t=$(stamp)
  if "$BIN" --threads 2 compare configs/experiments/gridding_vs_hdc.json --quick --out "$WORK/compare" -q \
       >"$WORK/compare.log" 2>&1; then
    echo "sanitize: compare gridding_vs_hdc --quick: ok ($(($(stamp) - t)) s)"
  else
    echo "sanitize: compare gridding_vs_hdc --quick FAILED:" >&2
    tail -20 "$WORK/compare.log" >&2
    FAILED+=("compare --quick")
  fi
  for s in "${SKIPPED[@]+"${SKIPPED[@]}"}"; do echo "sanitize: SKIPPED $s"; done
  if ! reports_since; then FAILED+=("training (sanitizer reports)"); fi
  echo "sanitize: training steps took $(($(stamp) - T2)) s"
fi

if [ ${#FAILED[@]} -gt 0 ]; then
  echo "sanitize: FAILED: ${FAILED[*]}" >&2
  exit 1
fi
echo "sanitize: no sanitizer reports ($(($(stamp) - T0)) s in all; leak detection $([ "$LEAKS" = 1 ] && echo on || echo off))"
