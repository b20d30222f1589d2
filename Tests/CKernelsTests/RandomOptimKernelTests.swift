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

    /// The vector path (64 values at a time, at the best level: avx512, avx2 or neon) gives the
    /// scalar path's bits at any offset and length, including runs that start or end mid-group.
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
    /// Sizes for the fused optimizer passes: the awkward sizes plus the tails of 4×-unrolled
    /// 8-float vectors.
    static let sizes = awkwardSizes + [31, 33, 65]

    /// One Adam/AdamW step on both paths against the formula in Double (from the same Float
    /// inputs and hyperparameters), for the first step (the largest bias corrections) and a
    /// later one. Outputs p, m, v, each within 32 roundings of its scale: the chain to p has
    /// about 20 (g', m, v, the square root, both bias factors, quotient, product, decay,
    /// difference); scales are the magnitudes of the terms (|β₁m| + (1−β₁)|g'|, and so on),
    /// so cancellation in a sum is not charged to the kernel. v is kept >= 1e-3 so the
    /// denominator's relative error stays within that of v.
    @Test(arguments: [true, false])
    func adamStepMatchesDoubleFormulaOnBothPaths(_ decoupled: Bool) {
        let (lr, b1, b2, eps, wd, scale): (Float, Float, Float, Float, Float, Float) = (1e-2, 0.9, 0.999, 1e-8, 0.1, 0.5)
        for n in Self.sizes {
            for step in [1, 7] {
                var g = TestRNG(UInt64(n * 10 + step))
                let p0 = g.floats(n), m0 = g.floats(n, -0.1, 0.1), v0 = g.floats(n, 1e-3, 1e-2), grad = g.floats(n)
                let (dlr, db1, db2, deps, dwd, dscale) = (Double(lr), Double(b1), Double(b2), Double(eps), Double(wd), Double(scale))
                let bc1 = 1 - pow(db1, Double(step)), bc2 = 1 - pow(db2, Double(step))
                var ref = [Double](repeating: 0, count: 3 * n), sc = ref
                for i in 0..<n {
                    let p = Double(p0[i]), m = Double(m0[i]), v = Double(v0[i])
                    let keep = decoupled ? 1 - dlr * dwd : 1, l2 = decoupled ? 0 : dwd
                    let gi = dscale * Double(grad[i]) + l2 * p, gAbs = abs(dscale * Double(grad[i])) + abs(l2 * p)
                    let mi = db1 * m + (1 - db1) * gi, mScale = abs(db1 * m) + (1 - db1) * gAbs
                    let vi = db2 * v + (1 - db2) * gi * gi, vScale = db2 * v + (1 - db2) * gAbs * gAbs
                    let size = dlr / bc1 / ((vi / bc2).squareRoot() + deps)
                    (ref[i], sc[i]) = (keep * p - size * mi, abs(keep * p) + size * mScale)
                    (ref[n + i], sc[n + i]) = (mi, mScale)
                    (ref[2 * n + i], sc[2 * n + i]) = (vi, vScale)
                }
                expectBothPaths("adam n \(n) step \(step) decoupled \(decoupled)", reference: ref, scale: sc, tol: 32 * unitRoundoff) {
                    var p = p0, m = m0, v = v0
                    ck_adam_step(&p, &m, &v, grad, Int64(n), lr, b1, b2, eps, wd, decoupled ? 1 : 0, Int64(step), scale)
                    return p + m + v
                }
            }
        }
    }

    /// One SGD step on both paths against PyTorch's formula in Double, for every option
    /// (momentum, dampening, Nesterov, first step); outputs p and buf. With momentum 0 buf is
    /// unused: it must come back unchanged (and may be NULL). Tolerance 16 roundings of the
    /// terms' magnitudes: the chain to p has at most 11 (g', 1 − dampening, buf, Nesterov's
    /// sum, the step).
    @Test(arguments: [(0.0, 0.0, false), (0.9, 0.0, false), (0.9, 0.1, false), (0.9, 0.0, true)] as [(Float, Float, Bool)])
    func sgdStepMatchesFormulaOnBothPaths(_ momentum: Float, _ dampening: Float, _ nesterov: Bool) {
        let (lr, wd, scale): (Float, Float, Float) = (0.1, 0.01, 0.5)
        let (dlr, dwd, dscale, mom, damp) = (Double(lr), Double(wd), Double(scale), Double(momentum), Double(dampening))
        for n in Self.sizes {
            var g = TestRNG(UInt64(n) + 2)
            let p0 = g.floats(n), buf0 = g.floats(n), grad = g.floats(n)
            for first in [true, false] {
                var ref = [Double](repeating: 0, count: 2 * n), sc = ref
                for i in 0..<n {
                    let p = Double(p0[i])
                    let gi = dscale * Double(grad[i]) + dwd * p, gAbs = abs(dscale * Double(grad[i])) + abs(dwd * p)
                    var (d, dAbs) = (gi, gAbs)
                    (ref[n + i], sc[n + i]) = (Double(buf0[i]), 0)   // unused: unchanged, exactly
                    if momentum != 0 {
                        let b = first ? gi : mom * Double(buf0[i]) + (1 - damp) * gi
                        let bAbs = first ? gAbs : abs(mom * Double(buf0[i])) + (1 - damp) * gAbs
                        (ref[n + i], sc[n + i]) = (b, bAbs)
                        (d, dAbs) = nesterov ? (gi + mom * b, gAbs + mom * bAbs) : (b, bAbs)
                    }
                    (ref[i], sc[i]) = (p - dlr * d, abs(p) + dlr * dAbs)
                }
                let name = "sgd n \(n) momentum \(momentum) dampening \(dampening) nesterov \(nesterov) first \(first)"
                expectBothPaths(name, reference: ref, scale: sc, tol: 16 * unitRoundoff) {
                    var p = p0, buf = buf0
                    ck_sgd_step(&p, &buf, grad, Int64(n), lr, momentum, dampening, wd, nesterov ? 1 : 0, first ? 1 : 0, scale)
                    return p + buf
                }
                if momentum == 0 {
                    expectBothPaths("\(name), no buffer", reference: Array(ref[..<n]), scale: Array(sc[..<n]), tol: 16 * unitRoundoff) {
                        var p = p0
                        ck_sgd_step(&p, nil, grad, Int64(n), lr, 0, dampening, wd, nesterov ? 1 : 0, first ? 1 : 0, scale)
                        return p
                    }
                }
            }
        }
    }

    /// ema = decay·ema + (1 − decay)·p on both paths against Double: 1 − decay is exact for
    /// decay in [0.5, 1] (Sterbenz), then two products and a sum, 3 roundings of
    /// |decay·ema| + |(1 − decay)·p|.
    @Test func emaUpdateMatchesFormulaOnBothPaths() {
        for decay: Float in [0.999, 0.75] {
            for n in Self.sizes {
                var g = TestRNG(UInt64(n) + 4)
                let e0 = g.floats(n), p = g.floats(n)
                let d = Double(decay), w = 1 - Double(decay)
                expectBothPaths("ema n \(n) decay \(decay)", reference: zip(e0, p).map { d * Double($0) + w * Double($1) },
                                scale: zip(e0, p).map { abs(d * Double($0)) + abs(w * Double($1)) }, tol: 3 * unitRoundoff) {
                    var ema = e0
                    ck_ema_update(&ema, p, Int64(n), decay)
                    return ema
                }
            }
        }
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

    /// ck_layernorm_backward against the formula in Double from the same inputs and the
    /// forward's cached mean and rstd, with and without gamma, for rows across the 32-row
    /// tasks and columns across the 64-column tasks; every gradient accumulates onto random
    /// values, and asking for dx alone or dgamma/dbeta alone gives the same bits. The kernel
    /// has no SIMD path: both settings must meet the bounds (the check then covers one if it
    /// is added). dx: 16 roundings of |dx0| + rstd·(|dh| + mean|dh| + |h|·mean|dh·h|), dh =
    /// dy·gamma, h = (x − mean)·rstd (h, dh, the two means, h·c, two differences, the product,
    /// the sum: about 12). dgamma, dbeta: float sums over N rows, (N + 3) roundings of
    /// |start| + Σ|term| (the worst case of a sequential sum).
    @Test(arguments: [(1, 1), (37, 70), (5, 130), (70, 3), (2, 200)] as [(Int, Int)])
    func layerNormBackwardMatchesDouble(_ N: Int, _ D: Int) {
        var g = TestRNG(UInt64(N * 1000 + D))
        let x = g.floats(N * D, -3, 5), gamma = g.floats(D), beta = g.floats(D), dy = g.floats(N * D)
        let dx0 = g.floats(N * D), dg0 = g.floats(D), db0 = g.floats(D)
        for affine in [true, false] {
            var y = [Float](repeating: 0, count: N * D), mean = [Float](repeating: 0, count: N), rstd = mean
            ck_layernorm_forward(&y, &mean, &rstd, x, affine ? gamma : nil, affine ? beta : nil, Int64(N), Int64(D), 1e-5)
            var dxRef = [Double](repeating: 0, count: N * D), dxScale = dxRef
            var dgRef = dg0.map(Double.init), dbRef = db0.map(Double.init)
            var dgScale = dg0.map { abs(Double($0)) }, dbScale = db0.map { abs(Double($0)) }
            for r in 0..<N {
                let m = Double(mean[r]), rs = Double(rstd[r])
                let h = (0..<D).map { (Double(x[r * D + $0]) - m) * rs }
                let dh = (0..<D).map { Double(dy[r * D + $0]) * (affine ? Double(gamma[$0]) : 1) }
                let a = dh.reduce(0, +) / Double(D), c = zip(dh, h).reduce(0) { $0 + $1.0 * $1.1 } / Double(D)
                let aAbs = dh.reduce(0) { $0 + abs($1) } / Double(D), cAbs = zip(dh, h).reduce(0) { $0 + abs($1.0 * $1.1) } / Double(D)
                for i in 0..<D {
                    dxRef[r * D + i] = Double(dx0[r * D + i]) + rs * (dh[i] - a - h[i] * c)
                    dxScale[r * D + i] = abs(Double(dx0[r * D + i])) + rs * (abs(dh[i]) + aAbs + abs(h[i]) * cAbs)
                    let t = Double(dy[r * D + i])
                    dgRef[i] += t * h[i]
                    dgScale[i] += abs(t * h[i])
                    dbRef[i] += t
                    dbScale[i] += abs(t)
                }
            }
            let gp = affine ? gamma : nil
            let name = "layerNorm N \(N) D \(D) affine \(affine)"
            // Rounding counts folded into the scales: 16 for dx, N + 3 for the column sums.
            let scale = dxScale.map { 16 * $0 } + (dgScale + dbScale).map { Double(N + 3) * $0 }
            let (all, _) = expectBothPaths(name, reference: dxRef + dgRef + dbRef, scale: scale, tol: unitRoundoff) {
                var dx = dx0, dg = dg0, db = db0
                ck_layernorm_backward(&dx, &dg, &db, dy, x, gp, mean, rstd, Int64(N), Int64(D))
                return dx + dg + db
            }
            var dxAlone = dx0, dgAlone = dg0, dbAlone = db0
            ck_layernorm_backward(&dxAlone, nil, nil, dy, x, gp, mean, rstd, Int64(N), Int64(D))
            ck_layernorm_backward(nil, &dgAlone, &dbAlone, dy, x, gp, mean, rstd, Int64(N), Int64(D))
            #expect(firstBitMismatch(dxAlone + dgAlone + dbAlone, all) == nil, "\(name): gradients asked for separately differ")
        }
    }

    /// ck_fourier_backward against Double, for batches across the 64-row tasks and
    /// frequency counts across the 64-column tasks, gradients accumulating onto random values,
    /// each alone (NULL for the other) giving the same bits. The angle is the Float product
    /// t·f as in the forward (which defines y = sin, cos of it); sin and cos of it in Double.
    /// A float sum of H (or B) terms of 4 roundings each (sin/cos within 1 ulp, two products,
    /// a difference, the factor): (H + 6) roundings of |start| + Σ|f|(|dy·cos| + |dy'·sin|)
    /// for dt, likewise with |t| and B for dfreqs. No SIMD path: both settings must meet it.
    @Test(arguments: [(1, 1), (3, 3), (70, 5), (5, 130), (150, 65)] as [(Int, Int)])
    func fourierBackwardMatchesDouble(_ B: Int, _ H: Int) {
        var g = TestRNG(UInt64(B * 1000 + H))
        var t = g.floats(B), f = g.floats(H, -3, 3)
        if B > 3 { t[1] = t[0]; t[2] = 0 }
        if H > 3 { f[0] = 60; f[1] = -250 }   // Gaussian Fourier features reach such frequencies
        let dy = g.floats(B * 2 * H), dt0 = g.floats(B), df0 = g.floats(H)
        var dtRef = dt0.map(Double.init), dfRef = df0.map(Double.init)
        var dtScale = dt0.map { abs(Double($0)) }, dfScale = df0.map { abs(Double($0)) }
        for b in 0..<B {
            for k in 0..<H {
                let a = Double(t[b] * f[k]), c = Double(dy[b * 2 * H + k]), s = Double(dy[b * 2 * H + H + k])
                let term = c * Foundation.cos(a) - s * Foundation.sin(a), termAbs = abs(c * Foundation.cos(a)) + abs(s * Foundation.sin(a))
                dtRef[b] += Double(f[k]) * term
                dtScale[b] += abs(Double(f[k])) * termAbs
                dfRef[k] += Double(t[b]) * term
                dfScale[k] += abs(Double(t[b])) * termAbs
            }
        }
        // Rounding counts folded into the scales: H + 6 for dt, B + 6 for dfreqs.
        let scale = dtScale.map { Double(H + 6) * $0 } + dfScale.map { Double(B + 6) * $0 }
        let (both, _) = expectBothPaths("fourier B \(B) H \(H)", reference: dtRef + dfRef, scale: scale, tol: unitRoundoff) {
            var dt = dt0, df = df0
            ck_fourier_backward(&dt, &df, dy, t, f, Int64(B), Int64(H))
            return dt + df
        }
        var dtAlone = dt0, dfAlone = df0
        ck_fourier_backward(&dtAlone, nil, dy, t, f, Int64(B), Int64(H))
        ck_fourier_backward(nil, &dfAlone, dy, t, f, Int64(B), Int64(H))
        #expect(firstBitMismatch(dtAlone + dfAlone, both) == nil, "fourier B \(B) H \(H): gradients asked for separately differ")
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
