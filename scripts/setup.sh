#!/usr/bin/env bash
# Installs what this package needs on a Debian machine with Swift 6.3, skipping what is
# already there: OpenBLAS (with LAPACK), zlib, pkg-config; with --python also the Python
# modules the test suite uses to check file interoperability (numpy, safetensors). On macOS
# nothing is installed (Accelerate and zlib come with the system).
set -euo pipefail

need=()
if [ "$(uname -s)" != Darwin ]; then
    for pkg in libopenblas-dev zlib1g-dev pkg-config; do
        dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
    done
fi
if [ ${#need[@]} -gt 0 ]; then
    echo "setup: installing ${need[*]}"
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    export DEBIAN_FRONTEND=noninteractive
    $sudo apt-get install -y --no-install-recommends "${need[@]}" >/dev/null \
        || { $sudo apt-get update >/dev/null && $sudo apt-get install -y --no-install-recommends "${need[@]}" >/dev/null; }
fi

if [ "${1:-}" = "--python" ]; then
    if ! python3 -c "import numpy, safetensors" 2>/dev/null; then
        echo "setup: installing numpy and safetensors for python3"
        python3 -m pip install --quiet numpy safetensors
    fi
fi

command -v swift >/dev/null || { echo "setup: swift is not on PATH (Swift 6.3 is required)" >&2; exit 1; }
