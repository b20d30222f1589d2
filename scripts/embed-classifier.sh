#!/usr/bin/env bash
# Regenerates Sources/Distill/Metrics/DigitClassifierWeights.swift: trains the default digits
# classifier (DigitClassifier.trainDefault()) and embeds its safetensors bytes as base64.
# Then rebuild: the new weights are compiled into the library.
set -euo pipefail
cd "$(dirname "$0")/.."
SCRATCH="${SCRATCH:-.build}"
swift build -c release --build-tests --scratch-path "$SCRATCH"
DISTILL_REGENERATE_CLASSIFIER=1 swift test -c release --skip-build --scratch-path "$SCRATCH" \
    --filter "DigitClassifierTests/regenerateEmbeddedClassifier"
echo "wrote Sources/Distill/Metrics/DigitClassifierWeights.swift"
