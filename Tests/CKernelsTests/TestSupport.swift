import CKernels
import Testing

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

/// One float rounding: the unit roundoff of Float32 (2^-24). Tolerances below are stated as
/// multiples of it, counted from the roundings a kernel's formula performs.
let unitRoundoff = 0x1p-24

/// Runs `compute` on the scalar path (SIMD off) and on the SIMD path (on; on a CPU without
/// AVX2+FMA that is the scalar path again), and expects each result within tolerance of the
/// reference: |got[i] − reference[i]| <= tol · scale[i] for every i (`scale` defaults to
/// |reference[i]|; NaN must match NaN, and an infinite reference must be met exactly). With
/// `bitIdentical`, the two paths must also agree bit for bit. Returns both results.
@discardableResult
func expectBothPaths(_ name: String, reference: [Double], scale: [Double]? = nil, tol: Double, bitIdentical: Bool = false,
                     sourceLocation: SourceLocation = #_sourceLocation, _ compute: () -> [Float]) -> (scalar: [Float], simd: [Float]) {
    let scalar = withSIMD(false) { compute() }, simd = withSIMD(true) { compute() }
    for (path, got) in [("scalar", scalar), ("SIMD", simd)] {
        #expect(got.count == reference.count, "\(name) (\(path)): \(got.count) values, reference \(reference.count)",
                sourceLocation: sourceLocation)
        guard got.count == reference.count else { continue }
        var worst = 0.0, at = -1
        for i in got.indices {
            let g = Double(got[i]), r = reference[i]
            let ratio: Double
            if r.isNaN || g.isNaN || r.isInfinite { ratio = (r.isNaN && g.isNaN) || g == r ? 0 : .infinity }
            else {
                let err = abs(g - r), bound = tol * (scale?[i] ?? abs(r))
                ratio = err == 0 ? 0 : err / bound
            }
            if !(ratio <= worst) { worst = ratio; at = i }
        }
        #expect(worst <= 1, "\(name) (\(path)): element \(at) is \(at >= 0 ? got[at] : 0), reference \(at >= 0 ? reference[at] : 0): \(worst)x the tolerance",
                sourceLocation: sourceLocation)
    }
    if bitIdentical {
        let mismatch = firstBitMismatch(scalar, simd)
        #expect(mismatch == nil, "\(name): scalar and SIMD paths differ at element \(mismatch ?? -1)", sourceLocation: sourceLocation)
    }
    return (scalar, simd)
}
