#!/usr/bin/env bash
# scripts/demo.sh: the default job of ./run.sh: `convlab op` on the worked example of the op-case spec
# (a 4x4 input and a 3x3 kernel), whose output is [[122,148],[126,134]] and whose input gradient, with that
# output fed back as grad_output, is the transposed convolution C^T y.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN="${CONVLAB_BUILD_DIR:-build}/convlab"
echo "== convlab op configs/examples/worked_example.case.json"
"$BIN" op configs/examples/worked_example.case.json
