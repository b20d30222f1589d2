#!/usr/bin/env bash
# The main job on a fresh machine: install what is missing, build in release mode, run the
# quickstart demo. Extra arguments go to `distill demo`.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
swift build -c release --product distill
.build/release/distill demo "$@"
