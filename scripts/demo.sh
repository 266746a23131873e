#!/usr/bin/env bash
# scripts/demo.sh: the default job of ./run.sh: trains configs/hdc_seg.json (HDC dilations 1,2,5,1,2,5) on the
# embedded shapes data, then prints where the pictures and metrics are and the final mIoU.
# Extra arguments go to `convlab train` (e.g. ./run.sh --set train.steps=300).
# Run again without arguments, it continues the earlier run (--resume: an interrupted one goes on from its last
# checkpoint, a finished one just reports); `./run.sh --overwrite` starts over.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN="${CONVLAB_BUILD_DIR:-build}/convlab"
if [ $# -eq 0 ] && { [ -f runs/hdc_seg/checkpoint.json ] || [ -f runs/hdc_seg/model.safetensors ]; }; then
  echo "run.sh: runs/hdc_seg holds an earlier run: continuing it (./run.sh --overwrite starts over)"
  exec "$BIN" train configs/hdc_seg.json --resume
fi
exec "$BIN" train configs/hdc_seg.json "$@"
