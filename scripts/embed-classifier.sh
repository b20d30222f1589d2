#!/usr/bin/env bash
# Retrains the default digits classifier (DigitClassifier.trainDefault()) and replaces the
# package resource Sources/Distill/Resources/digits8x8-classifier.safetensors with it. The
# test that trains it writes to a temporary file; this script moves that file into place.
set -euo pipefail
cd "$(dirname "$0")/.."
SCRATCH="${SCRATCH:-.build}"
out="$(mktemp -d)/digits8x8-classifier.safetensors"
swift build -c release --build-tests --scratch-path "$SCRATCH"
DISTILL_CLASSIFIER_OUT="$out" swift test -c release --skip-build --scratch-path "$SCRATCH" \
    --filter "DigitClassifierTests/regenerateShippedClassifier"
mv "$out" Sources/Distill/Resources/digits8x8-classifier.safetensors
echo "wrote Sources/Distill/Resources/digits8x8-classifier.safetensors; rebuild to ship it"
