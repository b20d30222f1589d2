#!/usr/bin/env bash
# The whole test suite on a fresh machine: install what is missing, run every test target
# in release mode (the C kernels are only fast when optimized), check the public API against
# docs/public-api.txt (count, doc comments, no unreviewed change), build the DocC
# documentation, and check that another package can depend on this one by version.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --python
swift build -c release --build-tests
swift test -c release --skip-build
python3 scripts/public-api.py --build-path .build/release
swift package generate-documentation --target Distill --warnings-as-errors >/dev/null
echo "documentation: builds without warnings"
scripts/check-consumer.sh
