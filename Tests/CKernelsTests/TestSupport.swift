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

/// Every SIMD level this CPU has (ck_cpu.h), best first: the kernels are tested at each.
let simdLevels: [Int32] = [CK_SIMD_AVX512, CK_SIMD_NEON, CK_SIMD_AVX2, CK_SIMD_SCALAR].map { Int32($0) }
    .filter { ck_simd_supported($0) != 0 }

/// Runs `body` at SIMD `level` on this thread (and the pool threads running its kernels),
/// restoring the previous level afterwards; suites running concurrently are unaffected.
func withSIMDLevel<R>(_ level: Int32, _ body: () throws -> R) rethrows -> R {
    let old = ck_simd_set_thread_level(level)
    precondition(old != -2, "SIMD level \(level) is not supported here")
    defer { _ = ck_simd_set_thread_level(old) }
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

/// Runs `compute` at every SIMD level the CPU has (``simdLevels``): at each vector level on the
/// vector path and on its scalar twins (the test switch off), and at level scalar, and expects
/// each result within tolerance of the reference: |got[i] − reference[i]| <= tol · scale[i] for
/// every i (`scale` defaults to |reference[i]|; NaN must match NaN, and an infinite reference
/// must be met exactly). With `bitIdentical`, every result must have the same bits (every
/// level's vector path and scalar twins, and the portable code). Returns the best level's scalar
/// twin and vector results.
@discardableResult
func expectBothPaths(_ name: String, reference: [Double], scale: [Double]? = nil, tol: Double, bitIdentical: Bool = false,
                     sourceLocation: SourceLocation = #_sourceLocation, _ compute: () -> [Float]) -> (scalar: [Float], simd: [Float]) {
    var runs: [(path: String, got: [Float])] = []
    for level in simdLevels {
        withSIMDLevel(level) {
            let tag = String(cString: ck_simd_name(level))
            if level != Int32(CK_SIMD_SCALAR) { runs.append(("\(tag), scalar twins", withSIMD(false) { compute() })) }
            runs.append((tag, withSIMD(true) { compute() }))
        }
    }
    for (path, got) in runs {
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
        for (path, got) in runs.dropFirst() {
            let mismatch = firstBitMismatch(runs[0].got, got)
            #expect(mismatch == nil, "\(name): \(path) differs from \(runs[0].path) at element \(mismatch ?? -1)",
                    sourceLocation: sourceLocation)
        }
    }
    return (runs[0].got, runs[min(1, runs.count - 1)].got)
}
