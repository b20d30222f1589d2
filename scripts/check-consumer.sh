#!/usr/bin/env bash
# Proves the package can be used by version, as the README says: clones the committed HEAD,
# tags it, and builds a throwaway package that depends on it with `from:` (SwiftPM refuses
# versioned dependencies whose targets use unsafeFlags). Its main.swift is the README's
# "library in ten lines", run as written; a second program loads checkpoints written by the
# `distill` command line through `TrainedModel` and must sample the same bits as `distill sample`.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
distill="${DISTILL:-$root/.build/release/distill}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

git clone --quiet "$root" "$work/swift-distill"
git -C "$work/swift-distill" tag -d $(git -C "$work/swift-distill" tag -l) >/dev/null 2>&1 || true
git -C "$work/swift-distill" -c user.name=ci -c user.email=ci@localhost tag -a 1.0.0 -m "consumer check"

mkdir -p "$work/consumer/Sources/Readme" "$work/consumer/Sources/Loader"
cat > "$work/consumer/Package.swift" <<SWIFT
// swift-tools-version:6.0
import PackageDescription
let package = Package(
    name: "Consumer",
    dependencies: [.package(url: "file://$work/swift-distill", from: "1.0.0")],
    targets: [
        .executableTarget(name: "Readme", dependencies: [.product(name: "Distill", package: "swift-distill")]),
        .executableTarget(name: "Loader", dependencies: [.product(name: "Distill", package: "swift-distill")]),
    ]
)
SWIFT
# The README's Swift block, verbatim.
awk '/^## The library in ten lines/{f=1} f&&/^```swift/{g=1;next} g&&/^```/{exit} g' "$root/README.md" > "$work/consumer/Sources/Readme/main.swift"
cat > "$work/consumer/Sources/Loader/main.swift" <<'SWIFT'
import Distill
// Loader CHECKPOINT OUT.npy: 64 samples at seed 9 through the library's one sampling API.
let args = CommandLine.arguments
let model = try TrainedModel.load(args[1])
try NPY.write(try model.sample(count: 64, seed: 9), to: args[2])
SWIFT

echo "check-consumer: building a package that depends on swift-distill 1.0.0 (from a local tag)"
out="$(cd "$work/consumer" && swift build -c release 2>&1)" || { echo "$out"; echo "check-consumer: FAILED to build" >&2; exit 1; }
echo "check-consumer: running the README example"
sw2="$("$work/consumer/.build/release/Readme")"
python3 -c "import sys; v = float(sys.argv[1]); sys.exit(0 if 0 <= v < 0.5 else 1)" "$sw2" \
    || { echo "check-consumer: the README example printed '$sw2'; expected a sliced-W2 in [0, 0.5) between teacher and student" >&2; exit 1; }

echo "check-consumer: checkpoints written by the CLI, sampled by the consumer and by distill sample"
cli="$work/cli"
mkdir -p "$cli"
( cd "$cli"
  "$distill" train --data ring8 --steps 40 --hidden 16,16 --output t --quiet
  for m in cd pd diff-instruct; do
      "$distill" distill --method "$m" --teacher t/model.safetensors --steps 20 --batch 64 --hidden 16,16 --output s --quiet >/dev/null
  done )
for ck in t/model s/cd-nfe2 s/pd-nfe4 s/diff-instruct-nfe1; do
    ( cd "$cli" && "$distill" sample --model "$ck.safetensors" --count 64 --seed 9 --output "$ck.cli.npy" --picture none >/dev/null )
    "$work/consumer/.build/release/Loader" "$cli/$ck.safetensors" "$cli/$ck.lib.npy"
    cmp -s "$cli/$ck.cli.npy" "$cli/$ck.lib.npy" || { echo "check-consumer: $ck: the consumer's samples differ from distill sample's" >&2; exit 1; }
done
echo "check-consumer: ok (README example: sliced-W2 $sw2; 4 checkpoints sampled with the same bits)"
