import DistillCore
import Testing

/// Deterministic test tensors.
struct TestData {
    var rng: Philox
    init(_ seed: UInt64) { rng = Philox(seed: seed, stream: 99) }

    mutating func uniform(_ shape: [Int], _ lo: Float = -1, _ hi: Float = 1) -> Tensor {
        try! rng.uniform(shape, low: lo, high: hi)
    }

    /// Values with |x| in [0.1, 1] — away from kinks (relu, abs, max) at 0.
    mutating func awayFromZero(_ shape: [Int]) -> Tensor {
        let u = uniform(shape, 0.1, 1)
        let s = uniform(shape)
        return try! Tensor(shape: shape, scalars: zip(u.scalars, s.scalars).map { $1 < 0 ? -$0 : $0 })
    }
}

/// Compares the tape's gradients of Σ w·f(inputs) (w fixed random weights) with central
/// finite differences of the same sum evaluated in Double.
///
/// Step h = 3e-3 in Float32: truncation error O(h²) ~ 1e-5 for smooth f, and the rounding
/// noise of the Float32 evaluation, ~1e-7·|f|·√n / h, stays near 1e-4 for the sizes used.
/// A gradient is accepted when |analytic - numeric| <= 5e-3 + 2e-2·|numeric|; a wrong
/// rule (missing factor, sign, transposition, broadcast sum) misses by far more.
func checkGradients(_ name: String, _ inputs: [Tensor], h: Float = 3e-3, atol: Double = 5e-3, rtol: Double = 2e-2,
                    maxProbes: Int = 60, sourceLocation: SourceLocation = #_sourceLocation,
                    _ f: ([Tensor]) throws -> Tensor) throws {
    let probe = try f(inputs)
    var data = TestData(12345)
    let w = data.uniform(probe.shape)
    func weighted(_ xs: [Tensor]) throws -> Double {
        let y = try withoutGradient { try f(xs) }
        return zip(y.scalars, w.scalars).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
    }
    let (_, grads) = try valueWithGradient(at: inputs) { try (f($0) * w).sum() }
    for (k, x) in inputs.enumerated() {
        let g = grads[k].scalars
        #expect(grads[k].shape == x.shape, "\(name): gradient \(k) has shape \(grads[k].shape), input \(x.shape)", sourceLocation: sourceLocation)
        let stride = max(1, x.count / maxProbes)
        for i in Swift.stride(from: 0, to: x.count, by: stride) {
            var plus = inputs, minus = inputs
            var xp = x.scalars, xm = x.scalars
            xp[i] += h
            xm[i] -= h
            plus[k] = try Tensor(shape: x.shape, scalars: xp)
            minus[k] = try Tensor(shape: x.shape, scalars: xm)
            let numeric = (try weighted(plus) - weighted(minus)) / Double(2 * h)
            let analytic = Double(g[i])
            let ok = abs(analytic - numeric) <= atol + rtol * abs(numeric)
            #expect(ok, "\(name): input \(k) element \(i): tape \(analytic), finite difference \(numeric)", sourceLocation: sourceLocation)
            if !ok { return }
        }
    }
}

/// The first index where two Float arrays differ bit for bit (or their lengths differ), nil when
/// identical: expectations on it print one index instead of diffing huge arrays.
func firstBitMismatch(_ a: [Float], _ b: [Float]) -> Int? {
    if a.count != b.count { return min(a.count, b.count) }
    return a.indices.first { a[$0].bitPattern != b[$0].bitPattern }
}
