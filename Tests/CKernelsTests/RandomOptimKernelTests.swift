import CKernels
import Foundation
import Testing

@Suite struct PhiloxKernelTests {
    /// Random123's published known-answer vectors for Philox-4x32-10.
    @Test func knownAnswers() {
        let cases: [([UInt32], [UInt32], [UInt32])] = [
            ([0, 0, 0, 0], [0, 0], [0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8]),
            ([0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff], [0xffffffff, 0xffffffff],
             [0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd]),
            ([0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344], [0xa4093822, 0x299f31d0],
             [0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1]),
        ]
        for (ctr, key, want) in cases {
            var out = [UInt32](repeating: 0, count: 4)
            ck_philox4x32_10(&out, ctr, key)
            #expect(out == want)
        }
    }

    @Test func splitDrawsEqualOneDraw() {
        let n = 50_001
        var whole = [Float](repeating: 0, count: n)
        ck_random_normal(&whole, Int64(n), 42, 3, 17, 0, 1)
        var parts = [Float](repeating: 0, count: n)
        var at = 0
        for piece in [1, 2, 5, 4096, 30_000, n - 34_104] {
            parts.withUnsafeMutableBufferPointer { ck_random_normal($0.baseAddress! + at, Int64(piece), 42, 3, UInt64(17 + at), 0, 1) }
            at += piece
        }
        #expect(at == n)
        #expect(parts == whole)
    }

    /// The normals are the Box-Muller transform of the Philox words as documented, computed in
    /// Double from the same words: u1 = ((w_even >> 8) + 1)·2^-24, u2 = (w_odd >> 8)·2^-24,
    /// lanes (0, 1) from words (0, 1) and (2, 3) from (2, 3). The project's float log and sin/cos
    /// are within 8e-7·max(1, |z|) of it (a few ulps of the result). Positions run across a
    /// carry into the counter's high word.
    @Test func normalsAreTheBoxMullerTransform() {
        let n = 20_000
        for offset in [UInt64(0), 5, (UInt64(1) << 34) - 8_000] {
            var z = [Float](repeating: 0, count: n)
            ck_random_normal(&z, Int64(n), 9, 4, offset, 0, 1)
            var worst = 0.0
            for i in 0..<n {
                let pos = offset + UInt64(i), blk = pos >> 2, lane = Int(pos & 3)
                var w = [UInt32](repeating: 0, count: 4)
                ck_philox4x32_10(&w, [UInt32(truncatingIfNeeded: blk), UInt32(truncatingIfNeeded: blk >> 32), 4, 0], [9, 0])
                let pair = lane & 2
                let u1 = Double((w[pair] >> 8) + 1) / 16_777_216, u2 = Double(w[pair + 1] >> 8) / 16_777_216
                let r = (-2 * log(u1)).squareRoot(), a = 2 * Double.pi * u2
                let want = lane & 1 == 1 ? r * sin(a) : r * cos(a)
                worst = max(worst, abs(Double(z[i]) - want) / max(1, abs(want)))
            }
            #expect(worst < 8e-7, "offset \(offset): worst scaled error \(worst)")
        }
    }

    /// The AVX-512 path (64 values at a time) gives the scalar path's bits at any offset and
    /// length, including runs that start or end mid-group.
    @Test func simdNormalsEqualScalarNormals() {
        for (offset, n) in [(UInt64(0), 64), (3, 200), (61, 1000), (64, 65), ((UInt64(1) << 32) * 4 - 100, 400), (7, 16_385)] {
            var simd = [Float](repeating: 0, count: n), scalar = simd
            ck_random_normal(&simd, Int64(n), 11, 2, offset, 0, 1)
            withSIMD(false) { ck_random_normal(&scalar, Int64(n), 11, 2, offset, 0, 1) }
            #expect(firstBitMismatch(simd, scalar) == nil, "offset \(offset) n \(n)")
        }
    }

    @Test func streamsAndSeedsDiffer() {
        var a = [Float](repeating: 0, count: 64), b = a, c = a
        ck_random_uniform(&a, 64, 1, 0, 0, 0, 1)
        ck_random_uniform(&b, 64, 1, 1, 0, 0, 1)
        ck_random_uniform(&c, 64, 2, 0, 0, 0, 1)
        #expect(a != b && a != c && b != c)
    }

    // Moments of 2^20 draws: the standard error of the mean is ~1e-3 (normal) and ~3e-4
    // (uniform); bounds at ~5 standard errors. Also a coarse KS distance to the exact CDFs.
    @Test func distributionsHaveTheRightMoments() {
        let n = 1 << 20
        var z = [Float](repeating: 0, count: n), u = z
        ck_random_normal(&z, Int64(n), 7, 0, 0, 0, 1)
        ck_random_uniform(&u, Int64(n), 7, 1, 0, -2, 4)
        let mz = z.reduce(0.0) { $0 + Double($1) } / Double(n)
        let vz = z.reduce(0.0) { $0 + Double($1) * Double($1) } / Double(n) - mz * mz
        #expect(abs(mz) < 5e-3 && abs(vz - 1) < 7e-3, "normal mean \(mz) var \(vz)")
        let mu = u.reduce(0.0) { $0 + Double($1) } / Double(n)
        #expect(abs(mu - 1) < 9e-3, "uniform mean \(mu)")
        #expect(u.allSatisfy { $0 >= -2 && $0 < 4 })
        let zs = z.sorted()
        var ks = 0.0
        for i in stride(from: 0, to: n, by: 97) {
            let cdf = 0.5 * erfc(-Double(zs[i]) / 2.0.squareRoot())
            ks = max(ks, abs(cdf - Double(i) / Double(n)))
        }
        #expect(ks < 3e-3, "KS distance \(ks)")
    }
}

@Suite struct OptimizerKernelTests {
    @Test(arguments: [true, false])
    func adamStepMatchesDoubleFormula(_ decoupled: Bool) {
        var g = TestRNG(1)
        let n = 1003
        var p = g.floats(n), m = g.floats(n, 0, 0.1), v = g.floats(n, 0, 0.01)
        let grad = g.floats(n)
        var (pd, md, vd) = (p.map(Double.init), m.map(Double.init), v.map(Double.init))
        let (lr, b1, b2, eps, wd, step, scale) = (1e-2, 0.9, 0.999, 1e-8, 0.1, 7, 0.5)
        ck_adam_step(&p, &m, &v, grad, Int64(n), Float(lr), Float(b1), Float(b2), Float(eps), Float(wd), decoupled ? 1 : 0,
                     Int64(step), Float(scale))
        for i in 0..<n {
            var gi = scale * Double(grad[i])
            if decoupled { pd[i] *= 1 - lr * wd } else { gi += wd * pd[i] }
            md[i] = b1 * md[i] + (1 - b1) * gi
            vd[i] = b2 * vd[i] + (1 - b2) * gi * gi
            let denom = (vd[i] / (1 - pow(b2, Double(step)))).squareRoot() + eps
            pd[i] -= lr / (1 - pow(b1, Double(step))) * md[i] / denom
        }
        #expect(toleranceRatio(p, pd.map(Float.init), atol: 1e-6, rtol: 1e-5) <= 1)
        #expect(toleranceRatio(m, md.map(Float.init), atol: 1e-7, rtol: 1e-5) <= 1)
        #expect(toleranceRatio(v, vd.map(Float.init), atol: 1e-9, rtol: 1e-5) <= 1)
    }

    @Test(arguments: [(0.0, false), (0.9, false), (0.9, true)])
    func sgdStepMatchesFormula(_ momentum: Double, _ nesterov: Bool) {
        var g = TestRNG(2)
        let n = 257
        var p = g.floats(n), buf = g.floats(n)
        let grad = g.floats(n)
        let (p0, b0) = (p, buf)
        let (lr, wd): (Double, Double) = (0.1, 0.01)
        for first in [true, false] {
            p = p0; buf = b0
            ck_sgd_step(&p, &buf, grad, Int64(n), Float(lr), Float(momentum), 0, Float(wd), nesterov ? 1 : 0, first ? 1 : 0, 1)
            for i in 0..<n {
                let gi = Double(grad[i]) + wd * Double(p0[i])
                var d = gi
                if momentum != 0 {
                    let b = first ? gi : momentum * Double(b0[i]) + gi
                    #expect(abs(Double(buf[i]) - b) <= 1e-6)
                    d = nesterov ? gi + momentum * b : b
                }
                #expect(abs(Double(p[i]) - (Double(p0[i]) - lr * d)) <= 1e-6)
            }
        }
    }

    @Test func emaUpdate() {
        var g = TestRNG(4)
        var ema = g.floats(100)
        let p = g.floats(100), e0 = ema
        ck_ema_update(&ema, p, 100, 0.99)
        for i in 0..<100 { #expect(abs(ema[i] - (0.99 * e0[i] + 0.01 * p[i])) <= 1e-6) }
    }
}

@Suite struct NormEmbeddingLayoutKernelTests {
    @Test func layerNormForwardMatchesDouble() {
        let (N, D): (Int64, Int64) = (37, 70)
        var g = TestRNG(9)
        let x = g.floats(Int(N * D), -3, 5), gamma = g.floats(Int(D)), beta = g.floats(Int(D))
        var y = [Float](repeating: 0, count: x.count), mean = [Float](repeating: 0, count: Int(N)), rstd = mean
        ck_layernorm_forward(&y, &mean, &rstd, x, gamma, beta, N, D, 1e-5)
        for r in 0..<Int(N) {
            let row = x[(r * Int(D))..<((r + 1) * Int(D))].map(Double.init)
            let mu = row.reduce(0, +) / Double(D)
            let varr = row.reduce(0) { $0 + ($1 - mu) * ($1 - mu) } / Double(D)
            for c in 0..<Int(D) {
                let want = (row[c] - mu) / (varr + 1e-5).squareRoot() * Double(gamma[c]) + Double(beta[c])
                #expect(abs(Double(y[r * Int(D) + c]) - want) <= 1e-5 * (1 + abs(want)))
            }
        }
    }

    @Test func fourierAndLookup() {
        let t: [Float] = [0, 0.5, -1.25]
        let f: [Float] = [1, 2, 10]
        var y = [Float](repeating: 0, count: 18)
        ck_fourier_forward(&y, t, f, 3, 3)
        for b in 0..<3 {
            for k in 0..<3 {
                #expect(abs(y[b * 6 + k] - sinf(t[b] * f[k])) <= 1e-6)
                #expect(abs(y[b * 6 + 3 + k] - cosf(t[b] * f[k])) <= 1e-6)
            }
        }
        let table: [Float] = (0..<12).map(Float.init)   // (4, 3)
        let idx: [Int32] = [3, 0, 3]
        var out = [Float](repeating: 0, count: 9)
        ck_lookup_forward(&out, table, idx, 3, 3)
        #expect(out == [9, 10, 11, 0, 1, 2, 9, 10, 11])
        var dt = [Float](repeating: 0, count: 12)
        ck_lookup_backward(&dt, [Float](repeating: 1, count: 9), idx, 3, 3)
        #expect(dt == [1, 1, 1, 0, 0, 0, 0, 0, 0, 2, 2, 2])
    }

    /// Rows whose t repeats the previous row's bits are copied, not recomputed: every row must
    /// equal that row computed alone, across task boundaries (64 rows) and for 0 next to -0.
    @Test func fourierRepeatedTimesEqualRowsComputedAlone() {
        var t = [Float](repeating: 0.25, count: 150)
        for i in 60..<70 { t[i] = 0.75 }
        t[100] = 0; t[101] = -0.0; t[102] = -0.0; t[103] = 0
        let f: [Float] = [1, 3, 1000, 0.01]
        var y = [Float](repeating: .nan, count: 150 * 8)
        ck_fourier_forward(&y, t, f, 150, 4)
        for b in 0..<150 {
            var row = [Float](repeating: .nan, count: 8)
            ck_fourier_forward(&row, [t[b]], f, 1, 4)
            #expect(firstBitMismatch(Array(y[b * 8..<b * 8 + 8]), row) == nil, "row \(b)")
        }
    }

    @Test func stridedCopyLongRows() {
        // A single 40 003-long row is cut into several tasks; every element must arrive.
        let n = 40_003
        let x: [Float] = (0..<(2 * n)).map(Float.init)
        var y = [Float](repeating: -1, count: n)
        ck_strided_copy(&y, [1], x, [2], [Int64(n)], 1, 0)   // every other element of x
        #expect(y == (0..<n).map { Float(2 * $0) })
    }

    @Test func stridedCopyPermutes() {
        // x (2, 3, 4) → y = x.permute(2, 0, 1), shape (4, 2, 3).
        let x: [Float] = (0..<24).map(Float.init)
        var y = [Float](repeating: 0, count: 24)
        ck_strided_copy(&y, [6, 3, 1], x, [1, 12, 4], [4, 2, 3], 3, 0)
        for i in 0..<4 { for j in 0..<2 { for k in 0..<3 { #expect(y[i * 6 + j * 3 + k] == x[j * 12 + k * 4 + i]) } } }
        ck_strided_copy(&y, [6, 3, 1], x, [1, 12, 4], [4, 2, 3], 3, 1)
        for i in 0..<4 { for j in 0..<2 { for k in 0..<3 { #expect(y[i * 6 + j * 3 + k] == 2 * x[j * 12 + k * 4 + i]) } } }
    }
}

@Suite struct SamplerKernelTests {
    /// The fused step equals the reference combination (same Philox noise positions) within
    /// Float rounding of a 4-term sum (1e-6 relative), for awkward sizes and 1–8 inputs.
    @Test func combineMatchesReference() {
        for n in awkwardSizes {
            var g = TestRNG(UInt64(n) + 1)
            let inputs = (0..<8).map { _ in g.floats(n) }
            for k in [1, 3, 8] {
                let coeffs = (0..<k).map { _ in g.float(-2, 2) }
                for std: Float in [0, 0.7] {
                    var y = [Float](repeating: .nan, count: n), ref = y, scalar = y
                    let ptrs = inputs.prefix(k).map { $0.withUnsafeBufferPointer { UnsafePointer($0.baseAddress) } }
                    withExtendedLifetime(inputs) {
                        var p = ptrs
                        ck_sampler_combine(&y, &p, coeffs, Int32(k), std, 7, 3, 11, Int64(n))
                        ck_sampler_combine_ref(&ref, &p, coeffs, Int32(k), std, 7, 3, 11, Int64(n))
                        withSIMD(false) { ck_sampler_combine(&scalar, &p, coeffs, Int32(k), std, 7, 3, 11, Int64(n)) }
                    }
                    #expect(toleranceRatio(y, ref, atol: 1e-6, rtol: 1e-6) <= 1, "n \(n) k \(k) std \(std)")
                    #expect(firstBitMismatch(y, scalar) == nil, "SIMD vs scalar: n \(n) k \(k) std \(std)")
                }
            }
        }
    }

    @Test func combineIsThreadCountInvariantAndCanWriteInPlace() {
        let n = 300_001
        var g = TestRNG(3)
        let a = g.floats(n), b = g.floats(n)
        func run() -> [Float] {
            var y = a
            y.withUnsafeMutableBufferPointer { yp in
                b.withUnsafeBufferPointer { bp in
                    var p: [UnsafePointer<Float>?] = [UnsafePointer(yp.baseAddress), bp.baseAddress]
                    ck_sampler_combine(yp.baseAddress, &p, [0.5, -1.5], 2, 0.3, 1, 2, 3, Int64(n))   // y aliases input 0
                }
            }
            return y
        }
        let one = withThreads(1) { run() }, two = withThreads(2) { run() }
        #expect(firstBitMismatch(one, two) == nil)
        var z = [Float](repeating: 0, count: n)
        ck_random_normal(&z, Int64(n), 1, 2, 3, 0, 1)
        #expect((0..<n).allSatisfy { abs(one[$0] - (0.5 * a[$0] - 1.5 * b[$0] + 0.3 * z[$0])) <= 1e-5 })
    }
}
