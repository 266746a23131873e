#!/usr/bin/env bash
# tests/test_install.sh SOURCE_DIR BUILD_DIR [CXX [FLAGS]]: convlab as a library a C++ program uses (ctest "install_examples").
# Installs the build to a temporary prefix, configures and builds examples/ against it with
# find_package(convlab CONFIG REQUIRED) (with compiler CXX and compile + link FLAGS, e.g. a sanitized build's),
# and runs both programs, checking what they print:
#   train_shapes:   the training loop ran every step, wrote a checkpoint, and the loss went down;
#   input_gradient: on a checkpoint trained by the installed `convlab` binary, the input pixels with a
#                   non-zero gradient are exactly the theoretical receptive field of configs/hdc_seg.json
#                   (35x35, no holes).
set -euo pipefail
src=$1
build=$2
cxx=${3:-c++}
flags=${4:-}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "test_install: $*" >&2; exit 1; }

cmake --install "$build" --prefix "$tmp/prefix" >"$tmp/install.log" || { cat "$tmp/install.log"; fail "install failed"; }
[ -x "$tmp/prefix/bin/convlab" ] || fail "bin/convlab not installed"
[ -f "$tmp/prefix/include/convlab/models/train/engine.h" ] || fail "headers not installed under include/convlab"
if grep -rl '#include "tools/' "$tmp/prefix/include" >/dev/null; then fail "an installed header includes tools/"; fi

cmake -S "$src/examples" -B "$tmp/examples" -DCMAKE_PREFIX_PATH="$tmp/prefix" -DCMAKE_CXX_COMPILER="$cxx" \
  -DCMAKE_CXX_FLAGS="$flags" -DCMAKE_EXE_LINKER_FLAGS="$flags" >"$tmp/configure.log" 2>&1 ||
  { cat "$tmp/configure.log"; fail "configuring examples/ against the installed package failed"; }
cmake --build "$tmp/examples" -j2 >"$tmp/build.log" 2>&1 || { cat "$tmp/build.log"; fail "building examples/ failed"; }

# (a) a network built in code, trained 30 steps by the library's loop.
"$tmp/examples/train_shapes" "$tmp/runs" 30 >"$tmp/a.out" || { cat "$tmp/a.out"; fail "train_shapes failed"; }
cat "$tmp/a.out"
grep -q '^steps 30$' "$tmp/a.out" || fail "train_shapes did not report 30 steps"
[ -f "$tmp/runs/example_shapes/model.safetensors" ] || fail "train_shapes wrote no checkpoint"
[ -f "$tmp/runs/example_shapes/checkpoint.json" ] || fail "train_shapes wrote no checkpoint.json"
losses=$(grep -o '"loss":[-0-9.e+]*' "$tmp/runs/example_shapes/metrics.jsonl" | cut -d: -f2)
[ "$(echo "$losses" | wc -l)" -eq 6 ] || fail "expected 6 log lines (every 5 steps) in metrics.jsonl, got: $losses"
first=$(echo "$losses" | head -1)
last=$(echo "$losses" | tail -1)
awk -v a="$first" -v b="$last" 'BEGIN { exit !(b < a) }' || fail "the loss did not go down: $first -> $last"

# (b) config + checkpoint -> d out / d input; the checkpoint comes from the installed convlab binary.
"$tmp/prefix/bin/convlab" --threads 2 train "$src/configs/hdc_seg.json" --runs "$tmp/runs" -q \
  --set train.steps=2 --set train.batch_size=2 --set data.val_size=2 >/dev/null || fail "installed convlab train failed"
"$tmp/examples/input_gradient" "$src/configs/hdc_seg.json" "$tmp/runs/hdc_seg/model.safetensors" >"$tmp/b.out" ||
  { cat "$tmp/b.out"; fail "input_gradient failed"; }
cat "$tmp/b.out"
grep -q '^gradient box 35x35 at 15,15$' "$tmp/b.out" || fail "the gradient does not fill hdc_seg's 35x35 receptive field"
grep -q '^receptive field box 35x35 at 15,15$' "$tmp/b.out" || fail "unexpected receptive field"
grep -q '^pixels with a non-zero gradient 1225, reached by the receptive field 1225$' "$tmp/b.out" ||
  fail "non-zero gradient pixels differ from the receptive field's"
echo "test_install: ok"
