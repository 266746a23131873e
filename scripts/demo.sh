#!/usr/bin/env bash
# scripts/demo.sh: the default job of ./run.sh: trains configs/hdc_seg.json (HDC dilations 1,2,5,1,2,5) on the
# embedded shapes data, then prints where the pictures and metrics are and the final mIoU.
# Extra arguments go to `convlab train` (e.g. ./run.sh --set train.steps=300).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN="${CONVLAB_BUILD_DIR:-build}/convlab"
"$BIN" train configs/hdc_seg.json "$@"
