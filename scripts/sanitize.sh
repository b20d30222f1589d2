#!/usr/bin/env bash
# The engine, IO and kernel tests (CKernelsTests, DistillCoreTests, DistillTests) under
# AddressSanitizer + LeakSanitizer (Swift and C) and UndefinedBehaviorSanitizer (C only:
# swiftc has no -sanitize=undefined on Linux), in release mode, with the kernel
# allocator's free-list cache off (DISTILL_ALLOC_CACHE=0) so a use-after-free or double
# free of a tensor buffer reaches ASan instead of a recycled block. DistillCLITests are
# left out: they run the whole CLI end to end in subprocesses (over 5 minutes under ASan)
# and read files only through the loaders tested here. The flags are given on the command
# line only; Package.swift keeps no unsafe flags.
#
# usage: scripts/sanitize.sh [extra `swift test` arguments, e.g. --filter IOTests]
# Takes about 3 minutes to build and 2 to test on 2 cores; the build lives in
# .build/sanitize (scripts/fuzz.sh --deterministic reuses it).
set -euo pipefail
cd "$(dirname "$0")/.."
flags=(-c release --scratch-path .build/sanitize --sanitize=address
       -Xcc -fsanitize=undefined -Xcc -fno-sanitize-recover=undefined)
export DISTILL_ALLOC_CACHE=0 SWIFT_BACKTRACE=enable=no
export ASAN_OPTIONS="detect_leaks=1:halt_on_error=1:strict_string_checks=1:check_initialization_order=1"
export LSAN_OPTIONS="suppressions=$PWD/scripts/lsan.supp:print_suppressions=0"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
start=$SECONDS
swift build "${flags[@]}" --build-tests
swift test "${flags[@]}" --skip-build --skip DistillCLITests "$@"
echo "sanitize: ASan + LSan + UBSan test run passed in $((SECONDS - start)) s"
