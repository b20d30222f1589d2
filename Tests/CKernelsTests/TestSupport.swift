import CKernels

/// Deterministic test data (a 64-bit LCG; independent of the library's Philox).
struct TestRNG {
    var state: UInt64
    init(_ seed: UInt64) { state = seed &* 6364136223846793005 &+ 1442695040888963407 }
    mutating func next() -> UInt64 {
        state = state &* 6364136223846793005 &+ 1442695040888963407
        return state
    }
    /// Uniform in [lo, hi).
    mutating func float(_ lo: Float = -1, _ hi: Float = 1) -> Float {
        lo + (hi - lo) * Float(next() >> 40) / Float(1 << 24)
    }
    mutating func floats(_ n: Int, _ lo: Float = -1, _ hi: Float = 1) -> [Float] { (0..<n).map { _ in float(lo, hi) } }
}

/// Largest |a - b| / (atol + rtol * |b|) over the elements; <= 1 means within tolerance.
func toleranceRatio(_ a: [Float], _ b: [Float], atol: Float, rtol: Float) -> Float {
    precondition(a.count == b.count)
    var worst: Float = 0
    for (x, y) in zip(a, b) {
        if x.isNaN != y.isNaN { return .infinity }
        if x.isNaN || x == y { continue }
        worst = max(worst, abs(x - y) / (atol + rtol * abs(y)))
    }
    return worst
}

/// Runs `body` with the kernels' thread count set to `n`, restoring it afterwards.
func withThreads<R>(_ n: Int32, _ body: () throws -> R) rethrows -> R {
    let old = ck_get_num_threads()
    ck_set_num_threads(n)
    defer { ck_set_num_threads(old) }
    return try body()
}

/// Runs `body` with the kernels' SIMD paths (AVX2, AVX-512) on or off for this thread (and the
/// pool threads running its kernels), restoring the setting afterwards; suites running
/// concurrently are unaffected.
func withSIMD<R>(_ on: Bool, _ body: () throws -> R) rethrows -> R {
    let old = ck_cpu_set_thread_simd_enabled(on ? 1 : 0)
    defer { _ = ck_cpu_set_thread_simd_enabled(old) }
    return try body()
}

/// Sizes that exercise SIMD tails, block edges and the trivial cases.
let awkwardSizes = [0, 1, 7, 8, 9, 15, 17, 63, 1000, 16383, 16385, 40_003]

/// The first index where two Float arrays differ bit for bit (or their lengths differ), nil when
/// identical: expectations on it print one index instead of diffing huge arrays.
func firstBitMismatch(_ a: [Float], _ b: [Float]) -> Int? {
    if a.count != b.count { return min(a.count, b.count) }
    return a.indices.first { a[$0].bitPattern != b[$0].bitPattern }
}
