#!/usr/bin/env bash
# ./test.sh: install what is missing, build everything, run every test through ctest.
set -euo pipefail
cd "$(dirname "$0")"
scripts/setup.sh
scripts/build.sh
cd "${CONVLAB_BUILD_DIR:-build}"
ctest --output-on-failure -j 2 --timeout 600
