#!/usr/bin/env bash
# The whole test suite on a fresh machine: install what is missing, run every test target
# in release mode (the C kernels are only fast when optimized), then check that another
# package can depend on this one by version.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --python
swift build -c release --build-tests
swift test -c release --skip-build
scripts/check-consumer.sh
