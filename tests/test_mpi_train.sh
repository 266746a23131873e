#!/usr/bin/env bash
# tests/test_mpi_train.sh CONVLAB: data-parallel training under mpirun on this machine (loopback), issue 14.
#   1. 20 steps of configs/hdc_seg.json on 2 ranks x 1 thread and in 1 process x 2 threads, both with
#      train.batch_shards=2: the same checkpoint bytes (model and optimizer) and the same metrics.jsonl values
#      (wall-clock fields dropped).
#      The same for 20 DCGAN iterations (configs/dcgan_mnist_ttur.json on the embedded shapes data).
#   2. A global batch the ranks cannot split (15 over 2) is refused before training, naming both numbers.
#   3. compare --quick over 2 ranks gives the results.json numbers of a serial compare.
#   4. compare of one run with train.batch_shards=2 on 2 ranks: trained data-parallel, the serial numbers; with
#      it unset, one line says that a rank idles and how to use it.
#   5. A rank killed mid-run: mpirun stops the other within a bounded time, the survivor says in one line which
#      rank stopped answering, and the last checkpoint still loads. A rank that hangs (SIGSTOP): the other gives
#      up after --exchange-timeout and says so.
# Exit 77 (ctest: skipped) when mpirun is missing, saying so. A second argument --short (sanitizer builds) leaves
# out 3 and 4 (the distributed compares).
set -euo pipefail
BIN="$1"
MODE="${2:-}"
SRC="$(cd "$(dirname "$0")/.." && pwd)"
command -v mpirun >/dev/null || { echo "skipped: mpirun not found (scripts/setup.sh installs openmpi-bin)"; exit 77; }
WORK="$(mktemp -d "${TMPDIR:-/tmp}/convlab-mpi.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
# Open MPI's own allocations at MPI_Init are not ours: no leak report for them in sanitizer builds.
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0"
MPIRUN=(mpirun --allow-run-as-root --oversubscribe --bind-to none -np 2 -x OMP_NUM_THREADS=1 -x ASAN_OPTIONS
        --mca btl_vader_single_copy_mechanism none)
SETS=(--set train.steps=20 --set train.batch_shards=2 --set train.val_every=20 --set train.log_every=5
      --set data.val_size=32)

OMP_NUM_THREADS=2 "$BIN" train "$SRC/configs/hdc_seg.json" "${SETS[@]}" --runs "$WORK/one" -q >/dev/null
"${MPIRUN[@]}" "$BIN" train "$SRC/configs/hdc_seg.json" "${SETS[@]}" --runs "$WORK/two" -q >"$WORK/two.log" 2>&1 ||
  { cat "$WORK/two.log"; echo "FAIL: mpirun -np 2 convlab train failed"; exit 1; }
for f in model.safetensors optimizer.safetensors; do
  cmp "$WORK/one/hdc_seg/$f" "$WORK/two/hdc_seg/$f" || { echo "FAIL: $f differs between 1 process and 2 ranks"; exit 1; }
done
strip_clock() { sed -E 's/"(time|seconds|images_per_s|exchange_seconds|exchange_bytes)":("[^"]*"|[-0-9.e+]+),?//g' "$1"; }
diff <(strip_clock "$WORK/one/hdc_seg/metrics.jsonl") <(strip_clock "$WORK/two/hdc_seg/metrics.jsonl") ||
  { echo "FAIL: metrics.jsonl differs between 1 process and 2 ranks"; exit 1; }
[ "$(grep -c '"loss"' "$WORK/two/hdc_seg/metrics.jsonl")" = 5 ] || { echo "FAIL: expected 4 log rows and 1 validation"; exit 1; }
grep -q '"processes": 2' "$WORK/two/hdc_seg/summary.json" || { echo "FAIL: summary.json does not say 2 processes"; exit 1; }
echo "ok: 2 ranks and 1 process give the same checkpoint bytes and metrics"

# 20 DCGAN iterations (both optimizers and the weight average; the embedded shapes data), the same way.
GSETS=(--set data.dataset=shapes --set data.train_size=64 --set train.steps=20 --set train.batch_size=8
       --set train.log_every=5 --set train.sample_every=20 --set train.samples=4 --set train.batch_shards=2)
OMP_NUM_THREADS=2 "$BIN" train "$SRC/configs/dcgan_mnist_ttur.json" "${GSETS[@]}" --runs "$WORK/gone" -q >/dev/null
"${MPIRUN[@]}" "$BIN" train "$SRC/configs/dcgan_mnist_ttur.json" "${GSETS[@]}" --runs "$WORK/gtwo" -q >"$WORK/gtwo.log" 2>&1 ||
  { cat "$WORK/gtwo.log"; echo "FAIL: mpirun -np 2 convlab train (GAN) failed"; exit 1; }
for f in generator.safetensors discriminator.safetensors generator_ema.safetensors optimizer.safetensors; do
  cmp "$WORK/gone/dcgan_mnist_ttur/$f" "$WORK/gtwo/dcgan_mnist_ttur/$f" ||
    { echo "FAIL: GAN $f differs between 1 process and 2 ranks"; exit 1; }
done
diff <(strip_clock "$WORK/gone/dcgan_mnist_ttur/metrics.jsonl") <(strip_clock "$WORK/gtwo/dcgan_mnist_ttur/metrics.jsonl") ||
  { echo "FAIL: GAN metrics.jsonl differs between 1 process and 2 ranks"; exit 1; }
echo "ok: 20 GAN iterations on 2 ranks end in the checkpoint bytes and metrics of 1 process"

if "${MPIRUN[@]}" "$BIN" train "$SRC/configs/hdc_seg.json" --set train.batch_size=15 --runs "$WORK/bad" -q \
     >"$WORK/bad.log" 2>&1; then
  echo "FAIL: a batch of 15 over 2 ranks was accepted"; exit 1
fi
grep -q "convlab: train.batch_size: a global batch of 15 cannot be split evenly over 2 processes" "$WORK/bad.log" ||
  { cat "$WORK/bad.log"; echo "FAIL: no line naming 15 and 2"; exit 1; }
[ ! -e "$WORK/bad/hdc_seg/model.safetensors" ] || { echo "FAIL: a refused run wrote a checkpoint"; exit 1; }
echo "ok: an unsplittable batch is refused with one line naming both numbers"

# results.json of two compares: the same numbers, clock fields left out
same_results() {
  python3 - "$1" "$2" <<'PY'
import json, sys
CLOCK = {"timing", "step_seconds_probe", "wall_s", "cpu_s", "time", "out", "run_dir"}
def strip(j):
    if isinstance(j, dict): return {k: strip(v) for k, v in j.items() if k not in CLOCK}
    if isinstance(j, list): return [strip(v) for v in j]
    return j
a, b = (strip(json.load(open(p))) for p in sys.argv[1:3])
if a != b:
    print("differs in", [k for k in a if a[k] != b.get(k)]); sys.exit(1)
PY
}

# A distributed compare --quick: the same results.json numbers as a serial one (timings aside).
if [ "$MODE" = "--short" ]; then
  echo "skipped in this build (--short): the distributed compares"
else
EXP="$SRC/configs/experiments/gridding_vs_hdc.json"
OMP_NUM_THREADS=2 "$BIN" compare "$EXP" --quick --out "$WORK/cmp_serial" -q >/dev/null
"${MPIRUN[@]}" "$BIN" compare "$EXP" --quick --out "$WORK/cmp_dist" -q >"$WORK/cmp.log" 2>&1 ||
  { cat "$WORK/cmp.log"; echo "FAIL: mpirun -np 2 convlab compare failed"; exit 1; }
same_results "$WORK/cmp_serial/results.json" "$WORK/cmp_dist/results.json" || { echo "FAIL: distributed compare differs"; exit 1; }
python3 -c 'import json,sys; t=json.load(open(sys.argv[1]))["timing"]; sys.exit(t["runs_trained"] != t["runs"])' "$WORK/cmp_dist/results.json" ||
  { echo "FAIL: the distributed compare's results.json does not count the runs its ranks trained"; exit 1; }
echo "ok: compare --quick over 2 ranks writes the numbers of a serial compare"

# One run on 2 ranks, train.batch_shards=2: the two ranks train it together (data-parallel), with the
# results.json numbers of the serial compare.
cat >"$WORK/one_run.json" <<EOF
{"name": "one_run", "variants": [{"name": "hdc", "config": "$SRC/configs/hdc_seg.json"}], "seeds": [0],
 "budgets": [6], "val_every": 6,
 "set": ["data.image_size=32", "data.val_size=16", "train.batch_size=8", "train.batch_shards=2",
         "schedule.warmup_steps=2", "train.grid_images=2", "train.log_every=3"]}
EOF
OMP_NUM_THREADS=2 "$BIN" compare "$WORK/one_run.json" --out "$WORK/one_serial" -q >/dev/null
"${MPIRUN[@]}" "$BIN" compare "$WORK/one_run.json" --out "$WORK/one_dist" >"$WORK/one.log" 2>&1 ||
  { cat "$WORK/one.log"; echo "FAIL: mpirun -np 2 convlab compare (one run) failed"; exit 1; }
same_results "$WORK/one_serial/results.json" "$WORK/one_dist/results.json" || { echo "FAIL: data-parallel compare run differs"; exit 1; }
python3 - "$WORK/one_dist/runs/hdc_s0/summary.json" "$WORK/one_serial/runs/hdc_s0/summary.json" <<'PY' ||
import json, sys
d, s = (json.load(open(p)) for p in sys.argv[1:3])
assert (d["processes"], d["batch_shards"], s["processes"], s["batch_shards"]) == (2, 2, 1, 2), (d, s)
assert d["exchange_bytes_per_step"] > 0, d
PY
  { echo "FAIL: the run was not trained data-parallel on 2 processes"; exit 1; }
grep -q "hdc_s0: trained by ranks 0-1 (data-parallel)" "$WORK/one.log" ||
  { cat "$WORK/one.log"; echo "FAIL: no line saying ranks 0-1 trained the run"; exit 1; }
echo "ok: one compare run with train.batch_shards=2 trains on both ranks with the numbers of a serial compare"
# The same run without train.batch_shards (S = 1): rank 1 idles, and rank 0 says so in one line with the remedy.
sed 's/ "train.batch_shards=2",//' "$WORK/one_run.json" >"$WORK/one_s1.json"
"${MPIRUN[@]}" "$BIN" compare "$WORK/one_s1.json" --out "$WORK/one_s1" >"$WORK/one_s1.log" 2>&1 ||
  { cat "$WORK/one_s1.log"; echo "FAIL: mpirun -np 2 convlab compare (one run, S = 1) failed"; exit 1; }
[ "$(grep -c 'idle (a run is split over processes only when its train.batch_shards is a multiple of their number: add e.g. "train.batch_shards=2" to the experiment.s "set")' "$WORK/one_s1.log")" = 1 ] ||
  { cat "$WORK/one_s1.log"; echo "FAIL: no single line saying that rank 1 idles and how to use it"; exit 1; }
echo "ok: with train.batch_shards unset the spare rank idles and rank 0 says so once"
fi

# Signal rank 1 once a checkpoint exists (run_and_signal NAME SIGNAL [train options]): mpirun must end the run
# (non-zero) within 60 s, rank 0 must say in one line what happened, and the last checkpoint must load.
run_and_signal() {
  local name="$1" sig="$2"
  shift 2
  "${MPIRUN[@]}" "$BIN" train "$SRC/configs/hdc_seg.json" --set train.steps=400 --set train.checkpoint_every=2 \
    --set train.val_every=400 --set train.batch_size=4 --set data.image_size=32 --runs "$WORK/$name" -q "$@" \
    >"$WORK/$name.log" 2>&1 &
  local mpi_pid=$! rank1="" p
  for _ in $(seq 1 600); do
    [ -e "$WORK/$name/hdc_seg/model.safetensors" ] && break
    sleep 0.1
  done
  [ -e "$WORK/$name/hdc_seg/model.safetensors" ] || { kill "$mpi_pid" 2>/dev/null; echo "FAIL: no checkpoint within 60 s"; exit 1; }
  for p in $(pgrep -f -- "--runs $WORK/$name"); do
    [ "$(tr '\0' '\n' <"/proc/$p/environ" 2>/dev/null | grep -c '^OMPI_COMM_WORLD_RANK=1$')" = 1 ] && rank1=$p
  done
  [ -n "$rank1" ] || { kill "$mpi_pid"; echo "FAIL: rank 1 not found"; exit 1; }
  kill "-$sig" "$rank1"
  T0=$(date +%s)
  STATUS=0
  for _ in $(seq 1 600); do kill -0 "$mpi_pid" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$mpi_pid" 2>/dev/null; then kill -9 "$mpi_pid"; echo "FAIL: the run went on 60 s after SIG$sig to rank 1"; exit 1; fi
  wait "$mpi_pid" || STATUS=$?
  [ "$STATUS" != 0 ] || { echo "FAIL: mpirun exited 0 after SIG$sig to rank 1"; exit 1; }
  "$BIN" eval --checkpoint "$WORK/$name/hdc_seg/model.safetensors" --set data.val_size=8 >/dev/null ||
    { echo "FAIL: the last checkpoint does not load after SIG$sig to rank 1"; exit 1; }
}
STEP='stopped at step [0-9]+: rank 1'
DURING='(during the gradient exchange|while the processes agreed on a stop)'
KEPT='; the last good checkpoint \(step [0-9]+\) is kept in '

# Rank 1 killed: mpirun sends rank 0 SIGTERM (and SIGKILL a second later); rank 0 names rank 1.
run_and_signal kill KILL
grep -Eq "^convlab: $STEP stopped answering $DURING \(a process died or was killed\)$KEPT" "$WORK/kill.log" ||
  { cat "$WORK/kill.log"; echo "FAIL: rank 0 did not say that rank 1 stopped answering"; exit 1; }
echo "ok: a killed rank stops the run in $(( $(date +%s) - T0 )) s (mpirun exit $STATUS), rank 0 says so, the last checkpoint loads"

# Rank 1 hangs (stopped): rank 0 gives up after --exchange-timeout and names it; mpirun then ends rank 1.
run_and_signal hang STOP --exchange-timeout 2
grep -Eq "^convlab: $STEP did not answer for 2 s $DURING \(a process hangs or its machine froze; --exchange-timeout sets the limit\)$KEPT" "$WORK/hang.log" ||
  { cat "$WORK/hang.log"; echo "FAIL: rank 0 did not say that rank 1 did not answer for 2 s"; exit 1; }
echo "ok: a hung rank stops the run in $(( $(date +%s) - T0 )) s (mpirun exit $STATUS) with --exchange-timeout 2, rank 0 says so"
