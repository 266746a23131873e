#!/usr/bin/env bash
# ./run.sh: install what is missing, build Release, train the default segmentation model (see README).
set -euo pipefail
cd "$(dirname "$0")"
scripts/setup.sh
scripts/build.sh --target convlab
exec scripts/demo.sh "$@"
