#!/usr/bin/env bash
# Fuzzes every file loader (.npy, safetensors, checkpoints, IDX/gzip, mixture JSON) under
# AddressSanitizer, for a bounded time per loader, starting from the regression corpus
# Tests/Fuzz/corpus (harness: Tests/Fuzz/DistillFuzz).
#
# usage: scripts/fuzz.sh [--seconds N] [--deterministic] [LOADER...]
#   default: libFuzzer's coverage-guided search (swift build --sanitize=fuzzer), 60 s per
#            loader, about 1.5 minutes to build.
#   --deterministic: the harness's seeded mutation loop instead (reproducible from the
#            seed; reuses the scripts/sanitize.sh build, or builds it).
# A failing input is kept in .build/fuzz-findings/ and the script fails. Once the loader
# is fixed, add the input to the corpus as Tests/Fuzz/corpus/LOADER/bad-NAME (the test
# suite then checks it on every run).
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=60 mode=libfuzzer loaders=()
while [ $# -gt 0 ]; do
    case "$1" in
        --seconds) seconds="$2"; shift 2 ;;
        --deterministic) mode=deterministic; shift ;;
        npy|safetensors|checkpoint|idx|mixture) loaders+=("$1"); shift ;;
        *) echo "usage: scripts/fuzz.sh [--seconds N] [--deterministic] [npy|safetensors|checkpoint|idx|mixture]..." >&2; exit 64 ;;
    esac
done
[ ${#loaders[@]} -gt 0 ] || loaders=(npy safetensors checkpoint idx mixture)

export DISTILL_ALLOC_CACHE=0 SWIFT_BACKTRACE=enable=no
export ASAN_OPTIONS="detect_leaks=0:halt_on_error=1:max_allocation_size_mb=2048:allocator_may_return_null=0"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
findings=.build/fuzz-findings
mkdir -p "$findings"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
ubsan=(-Xcc -fsanitize=undefined -Xcc -fno-sanitize-recover=undefined)

if [ "$mode" = libfuzzer ]; then
    swift build -c release --product DistillFuzz --scratch-path .build/fuzz --sanitize=fuzzer --sanitize=address \
        "${ubsan[@]}" -Xswiftc -DLIBFUZZER
    fuzzer=.build/fuzz/release/DistillFuzz
    replay="DISTILL_FUZZ_LOADER=LOADER $fuzzer FILE"
else
    swift build -c release --product DistillFuzz --scratch-path .build/sanitize --sanitize=address "${ubsan[@]}"
    fuzzer=.build/sanitize/release/DistillFuzz
    replay="$fuzzer LOADER --replay FILE"
fi

failed=()
for loader in "${loaders[@]}"; do
    corpus=(Tests/Fuzz/corpus/"$loader")
    [ "$loader" = checkpoint ] && corpus+=(Tests/Fuzz/corpus/safetensors)   # a checkpoint is a safetensors file
    echo "fuzz: $loader for $seconds s ($mode)"
    if [ "$mode" = libfuzzer ]; then
        # New inputs go to the scratch folder (the first one); the corpus is only read.
        mkdir -p "$work/$loader"
        DISTILL_FUZZ_LOADER="$loader" "$fuzzer" "$work/$loader" "${corpus[@]}" -max_total_time="$seconds" \
            -timeout=10 -rss_limit_mb=4096 -malloc_limit_mb=2048 -detect_leaks=0 -print_final_stats=1 \
            -artifact_prefix="$findings/$loader-" >"$work/$loader.log" 2>&1 || failed+=("$loader")
        grep -E "^Done [0-9]+ runs" "$work/$loader.log" | sed "s/^/fuzz: $loader: /" || true
    else
        args=()
        for c in "${corpus[@]}"; do args+=(--corpus "$c"); done
        "$fuzzer" "$loader" --seconds "$seconds" "${args[@]}" --crash-dir "$findings" >"$work/$loader.log" 2>&1 \
            || failed+=("$loader")
        tail -1 "$work/$loader.log" | sed "s/^/fuzz: /"
    fi
    if [ "${failed[*]:-}" != "" ] && [ "${failed[-1]}" = "$loader" ]; then
        echo "fuzz: $loader FAILED; the end of its log:" >&2
        grep -vE "^    #[0-9]{2,} " "$work/$loader.log" | tail -40 >&2
    fi
done
if [ ${#failed[@]} -gt 0 ]; then
    echo "fuzz: failures in ${failed[*]}; the inputs are in $findings/ (replay one with: $replay)" >&2
    exit 1
fi
echo "fuzz: no failures in ${loaders[*]}"
