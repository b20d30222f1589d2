import DistillCore
import Foundation
import Testing

/// DSNO's temporal Fourier layer (`docs/methods.md` §6.12): its linear part is the truncated
/// real DFT pair with a complex channel mixing per mode, and its gradients are the tape's.
@Suite struct TemporalFourierTests {
    /// Per channel, the naive low-pass of M slices keeping modes 0..<K, with R_k = identity:
    /// (1/M)·Σ_k c_k·Re(H_k·e^{2πikm/M}), H_k = Σ_m h_m·e^{−2πikm/M}, in Double.
    func lowPass(_ h: [Float], b: Int, m: Int, c: Int, modes k: Int) -> [Double] {
        var out = [Double](repeating: 0, count: h.count)
        for bi in 0..<b {
            for ch in 0..<c {
                let x = (0..<m).map { Double(h[(bi * m + $0) * c + ch]) }
                for t in 0..<m {
                    var sum = 0.0
                    for f in 0..<k {
                        var re = 0.0, im = 0.0
                        for s in 0..<m {
                            re += x[s] * cos(2 * Double.pi * Double(f * s) / Double(m))
                            im -= x[s] * sin(2 * Double.pi * Double(f * s) / Double(m))
                        }
                        let a = 2 * Double.pi * Double(f * t) / Double(m), weight: Double = (f == 0 || 2 * f == m) ? 1 : 2
                        sum += weight * (re * cos(a) - im * sin(a))
                    }
                    out[(bi * m + t) * c + ch] = sum / Double(m)
                }
            }
        }
        return out
    }

    @Test(arguments: [(4, 2), (4, 3), (5, 3), (6, 2), (1, 1)])
    func linearPartIsTheTruncatedDFT(m: Int, modes k: Int) throws {
        let (b, c) = (3, 4)
        var data = TestData(UInt64(m * 10 + k))
        let h = data.uniform([b, m, c])
        var eye = [Float](repeating: 0, count: k * c * c)
        for f in 0..<k { for i in 0..<c { eye[(f * c + i) * c + i] = 1 } }
        let out = try TemporalFourierLayer.apply(h, real: Tensor(shape: [k, c, c], scalars: eye), imag: Tensor.zeros([k, c, c]),
                                                 bases: .init(times: m, modes: k))
        let y = lowPass(h.scalars, b: b, m: m, c: c, modes: k)
        for i in 0..<h.count {
            let leaky = y[i] > 0 ? y[i] : 0.01 * y[i]
            #expect(abs(Double(out.scalars[i]) - (Double(h.scalars[i]) + leaky)) < 1e-5, "M \(m) K \(k) element \(i)")
        }
        // All modes kept: the linear part is the identity.
        if k == m / 2 + 1 { for i in 0..<h.count { #expect(abs(y[i] - Double(h.scalars[i])) < 1e-5) } }
    }

    /// The linear part's gradients (the LeakyReLU after it is the relu op, checked on its own;
    /// its kink at 0 would defeat finite differences at these random sums).
    @Test(arguments: [(4, 2), (5, 3), (6, 4)])
    func gradientsMatchFiniteDifferences(m: Int, modes k: Int) throws {
        var data = TestData(7)
        let (b, c) = (2, 3)
        let bases = try TemporalFourierLayer.Bases(times: m, modes: k)
        try checkGradients("temporal Fourier M \(m) K \(k)", [data.uniform([b, m, c]), data.uniform([k, c, c]), data.uniform([k, c, c])]) {
            try TemporalFourierLayer.spectral($0[0], real: $0[1], imag: $0[2], bases: bases)
        }
    }

    @Test func badShapesAreErrors() throws {
        #expect(throws: TensorError.self) { try TemporalFourierLayer.Bases(times: 4, modes: 4) }
        #expect(throws: TensorError.self) {
            try TemporalFourierLayer.apply(Tensor.zeros([2, 3, 4]), real: Tensor.zeros([2, 4, 4]), imag: Tensor.zeros([2, 4, 4]),
                                           bases: .init(times: 4, modes: 2))
        }
    }
}
