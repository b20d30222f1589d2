#!/usr/bin/env bash
# Proves the package can be used by version: clones the committed HEAD, tags it, and builds
# and runs a throwaway package that depends on it with `from:` (SwiftPM refuses versioned
# dependencies whose targets use unsafeFlags).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

git clone --quiet "$root" "$work/swift-distill"
git -C "$work/swift-distill" tag -d $(git -C "$work/swift-distill" tag -l) >/dev/null 2>&1 || true
git -C "$work/swift-distill" -c user.name=ci -c user.email=ci@localhost tag -a 1.0.0 -m "consumer check"

mkdir -p "$work/consumer/Sources/Consumer"
cat > "$work/consumer/Package.swift" <<SWIFT
// swift-tools-version:6.0
import PackageDescription
let package = Package(
    name: "Consumer",
    dependencies: [.package(url: "file://$work/swift-distill", from: "1.0.0")],
    targets: [.executableTarget(name: "Consumer", dependencies: [.product(name: "Distill", package: "swift-distill")])]
)
SWIFT
cat > "$work/consumer/Sources/Consumer/main.swift" <<'SWIFT'
import Distill
let x = try Tensor(shape: [2, 2], scalars: [1, 2, 3, 4])
let (value, grad) = try valueWithGradient(at: x) { try $0.matmul($0).sum() }
print(try value.item(), grad.scalars)
SWIFT
echo "check-consumer: building a package that depends on swift-distill 1.0.0 (from a local tag)"
out="$(cd "$work/consumer" && swift build -c release 2>&1)" || { echo "$out"; echo "check-consumer: FAILED to build" >&2; exit 1; }
result="$("$work/consumer/.build/release/Consumer")"
# value = sum(x·x) = 54; d/dx sum(x·x) = 1ᵀ·xᵀ + xᵀ·1 pattern: [7, 11, 9, 13]
if [ "$result" != "54.0 [7.0, 11.0, 9.0, 13.0]" ]; then
    echo "check-consumer: unexpected output: $result" >&2
    exit 1
fi
echo "check-consumer: ok ($result)"
