import CKernels
import Foundation
import Testing

@Suite struct ReduceKernelTests {
    static let layouts: [(Int64, Int64, Int64)] = [(1, 1, 1), (1, 100_003, 1), (1, 5_000_000, 1), (7, 33, 1), (1, 4096, 256),
                                                   (3, 17, 65), (5, 1, 9), (2, 0, 3), (1, 300, 2)]

    // Float sums in 8 lanes vs a double reference: error grows like sqrt(n)·eps·|x|; with
    // |x| <= 1 the 5e-4 absolute bound holds with margin up to the 5M-element case.
    @Test func sumMatchesReference() {
        for (o, r, i) in Self.layouts {
            var g = TestRNG(UInt64(o * 1000 + r + i))
            let x = g.floats(Int(o * r * i))
            var ref = [Float](repeating: 0, count: Int(o * i))
            ck_reduce_sum_ref(&ref, x, o, r, i, 0.5)
            // Both paths run the same lane order: the same bits ("both round identically").
            let shifted = ref.map { Double($0) + 2 }
            expectBothPaths("sum \(o)x\(r)x\(i)", reference: shifted, scale: shifted.map { 5e-4 + 1e-6 * abs($0) }, tol: 1,
                            bitIdentical: true) {
                var y = [Float](repeating: 2, count: Int(o * i))
                ck_reduce_sum(&y, x, o, r, i, 0.5, 1)
                return y
            }
        }
    }

    @Test func softmaxAndLogSumExp() {
        for (o, r, i) in [(4, 10, 1), (3, 7, 5), (1, 1000, 1)] as [(Int64, Int64, Int64)] {
            var g = TestRNG(11)
            let x = g.floats(Int(o * r * i), -30, 30)
            var y = [Float](repeating: 0, count: x.count), ref = y
            ck_softmax_forward(&y, x, o, r, i)
            ck_softmax_forward_ref(&ref, x, o, r, i)
            #expect(toleranceRatio(y, ref, atol: 1e-7, rtol: 1e-5) <= 1)
            var lse = [Float](repeating: 0, count: Int(o * i))
            ck_logsumexp_forward(&lse, x, o, r, i)
            for oo in 0..<Int(o) {
                for ii in 0..<Int(i) {
                    let vals = (0..<Int(r)).map { Double(x[(oo * Int(r) + $0) * Int(i) + ii]) }
                    let m = vals.max()!
                    let want = m + log(vals.reduce(0) { $0 + exp($1 - m) })
                    #expect(abs(Double(lse[oo * Int(i) + ii]) - want) <= 1e-5 * (1 + abs(want)))
                }
            }
        }
        // All -inf: the result is -inf, not NaN.
        var y: Float = 0
        let x = [Float](repeating: -.infinity, count: 4)
        ck_logsumexp_forward(&y, x, 1, 4, 1)
        #expect(y == -.infinity)
    }

    /// Layouts (outer, r, inner) for the line kernels: single elements, an empty axis, lines
    /// across the 64-line tasks (130 and 195 lines), strided lines and one long line.
    static let lineLayouts: [(Int, Int, Int)] = [(1, 1, 1), (4, 10, 1), (3, 7, 5), (2, 0, 3), (5, 1, 9), (130, 9, 1),
                                                 (3, 17, 65), (2, 40, 70), (1, 20_003, 1)]

    /// Values in [-30, 30] with about one in 16 set to -inf (masked logits); with `allMasked`,
    /// the first line is -inf throughout.
    static func lineValues(_ o: Int, _ r: Int, _ i: Int, allMasked: Bool) -> [Float] {
        var g = TestRNG(UInt64(o * 7919 + r * 31 + i))
        var x = g.floats(o * r * i, -30, 30)
        for k in x.indices where g.next() >> 60 == 0 { x[k] = -.infinity }
        if allMasked { for k in 0..<r { x[k * i] = -.infinity } }
        return x
    }

    /// Visits the lines of an (outer, r, inner) layout: the output index and the input indices.
    static func forEachLine(_ o: Int, _ r: Int, _ i: Int, _ body: (Int, [Int]) -> Void) {
        for oo in 0..<o { for ii in 0..<i { body(oo * i + ii, (0..<r).map { (oo * r + $0) * i + ii }) } }
    }

    /// ck_reduce_max is exact (a max returns one of its inputs): the plain loop's result bit for
    /// bit on both settings, including -inf lines and the empty axis (-inf). The kernel has no
    /// SIMD path; the check covers one if it is added.
    @Test func maxMatchesPlainLoop() {
        for (o, r, i) in Self.lineLayouts {
            let x = Self.lineValues(o, r, i, allMasked: true)
            var ref = [Double](repeating: 0, count: o * i)
            Self.forEachLine(o, r, i) { out, idx in ref[out] = Double(idx.map { x[$0] }.max() ?? -.infinity) }
            expectBothPaths("max \(o)x\(r)x\(i)", reference: ref, tol: 0, bitIdentical: true) {
                var y = [Float](repeating: .nan, count: o * i)
                ck_reduce_max(&y, x, Int64(o), Int64(r), Int64(i))
                return y
            }
        }
    }

    /// Log-sum-exp forward against Double (-inf for an all -inf line and the empty axis), and
    /// its backward dx += dy·exp(x − y) given the kernel's y, accumulating. Forward: the max m,
    /// a rounded x − m inside each exp (its error weighted by the softmax sums to at most
    /// log r), expf within 1 ulp, a rounded log and sum: within 2 roundings of |y| + 2 log r + 1.
    /// Backward: x − y rounded (e^{−t}·t <= 1/e), expf, the product and the sum: 5 roundings of
    /// |dx0| + |dy| (exp(x − y) <= 1).
    @Test func logSumExpForwardAndBackwardMatchDouble() {
        for (o, r, i) in Self.lineLayouts {
            let x = Self.lineValues(o, r, i, allMasked: true)
            var g = TestRNG(UInt64(o + r + i))
            let dy = g.floats(o * i), dx0 = g.floats(o * r * i)
            var ref = [Double](repeating: 0, count: o * i)
            Self.forEachLine(o, r, i) { out, idx in
                let v = idx.map { Double(x[$0]) }, m = v.max() ?? -.infinity
                ref[out] = m == -.infinity ? m : m + log(v.reduce(0) { $0 + exp($1 - m) })
            }
            let logR = log(Double(max(r, 1)))
            let (y, _) = expectBothPaths("logsumexp \(o)x\(r)x\(i)", reference: ref, scale: ref.map { abs($0) + 2 * logR + 1 },
                                         tol: 2 * unitRoundoff) {
                var y = [Float](repeating: .nan, count: o * i)
                ck_logsumexp_forward(&y, x, Int64(o), Int64(r), Int64(i))
                return y
            }
            var dxRef = dx0.map(Double.init), dxScale = dx0.map { abs(Double($0)) }
            Self.forEachLine(o, r, i) { out, idx in
                for k in idx {
                    dxScale[k] += abs(Double(dy[out]))
                    if y[out].isFinite { dxRef[k] += Double(dy[out]) * exp(Double(x[k]) - Double(y[out])) }
                }
            }
            expectBothPaths("logsumexp backward \(o)x\(r)x\(i)", reference: dxRef, scale: dxScale, tol: 5 * unitRoundoff) {
                var dx = dx0
                ck_logsumexp_backward(&dx, dy, x, y, Int64(o), Int64(r), Int64(i))
                return dx
            }
        }
    }

    /// Softmax backward dx += y·(dy − Σ dy·y) given the forward's y, accumulating, against
    /// Double: the dot in double rounded once, the difference, the product and the sum, 4
    /// roundings of |dx0| + |y|·(|dy| + |Σ dy·y|). Masked (-inf) logits give y = 0 and no
    /// gradient. No SIMD path: both settings must meet it.
    @Test func softmaxBackwardMatchesDouble() {
        for (o, r, i) in Self.lineLayouts {
            var x = Self.lineValues(o, r, i, allMasked: false)
            Self.forEachLine(o, r, i) { _, idx in if let k = idx.first { x[k] = 0 } }   // no line entirely masked
            var g = TestRNG(UInt64(o * r * i + 5))
            let dy = g.floats(o * r * i), dx0 = g.floats(o * r * i)
            var y = [Float](repeating: .nan, count: o * r * i)
            ck_softmax_forward(&y, x, Int64(o), Int64(r), Int64(i))
            var ref = dx0.map(Double.init), scale = dx0.map { abs(Double($0)) }
            Self.forEachLine(o, r, i) { _, idx in
                let dot = idx.reduce(0.0) { $0 + Double(dy[$1]) * Double(y[$1]) }
                for k in idx {
                    ref[k] += Double(y[k]) * (Double(dy[k]) - dot)
                    scale[k] += abs(Double(y[k])) * (abs(Double(dy[k])) + abs(dot))
                }
            }
            expectBothPaths("softmax backward \(o)x\(r)x\(i)", reference: ref, scale: scale, tol: 4 * unitRoundoff) {
                var dx = dx0
                ck_softmax_backward(&dx, dy, y, Int64(o), Int64(r), Int64(i))
                return dx
            }
        }
    }

    @Test func sumOfSquaresInDouble() {
        var g = TestRNG(3)
        let x = g.floats(70_001)
        let want = x.reduce(0.0) { $0 + Double($1) * Double($1) }
        #expect(abs(ck_sum_squares(x, Int64(x.count)) - want) <= 1e-9 * want)
        #expect(ck_sum_squares(x, 0) == 0)
    }
}

@Suite struct GemmKernelTests {
    // Float GEMM vs a double reference: |error| <= K·eps·Σ|a||b| ~ K·6e-8 for |a|,|b| <= 1,
    // so 1e-4 absolute + 1e-4 relative bounds K up to ~1000 with margin.
    @Test func matchesReferenceForAllTransposes() {
        // Includes long-K shapes that take the K-split path (with a workspace).
        let sizes: [(Int64, Int64, Int64)] = [(1, 1, 1), (7, 5, 3), (33, 65, 17), (130, 7, 129), (256, 256, 256),
                                              (600, 70, 300), (3, 900, 40), (1, 300, 2), (64, 48, 3000), (20, 3, 1025)]
        for (m, n, k) in sizes {
            for ta: Int32 in [0, 1] {
                for tb: Int32 in [0, 1] {
                    var g = TestRNG(UInt64(m * n * k) + UInt64(ta * 2 + tb))
                    let a = g.floats(Int(m * k)), b = g.floats(Int(k * n)), c0 = g.floats(Int(m * n))
                    let lda = ta == 1 ? m : k, ldb = tb == 1 ? k : n
                    var ref = c0, c = c0
                    ck_gemm_ref(ta, tb, m, n, k, 0.75, a, lda, b, ldb, 0.5, &ref, n)
                    var ws = [Float](repeating: .nan, count: Int(ck_gemm_workspace_floats(m, n, k)))
                    ck_gemm(ta, tb, m, n, k, 0.75, a, lda, b, ldb, 0.5, &c, n, &ws)
                    // K up to 3000 here: the bound K·eps·Σ|ab| is ~2e-4, so 1e-3 for those.
                    let tol: Float = k > 1000 ? 1e-3 : 1e-4
                    #expect(toleranceRatio(c, ref, atol: tol, rtol: 1e-4) <= 1, "\(m)x\(n)x\(k) ta \(ta) tb \(tb)")
                    var c2 = c0
                    ck_gemm(ta, tb, m, n, k, 0.75, a, lda, b, ldb, 0.5, &c2, n, nil)
                    #expect(toleranceRatio(c2, ref, atol: tol, rtol: 1e-4) <= 1, "no workspace \(m)x\(n)x\(k)")
                }
            }
        }
    }

    @Test func batchedMatchesLoopOfSingles() {
        let (m, n, k, batch): (Int64, Int64, Int64, Int64) = (37, 21, 19, 5)
        var g = TestRNG(12)
        let a = g.floats(Int(m * k * batch)), b = g.floats(Int(k * n))
        var c = [Float](repeating: 0, count: Int(m * n * batch)), ref = c
        ck_gemm_batched(0, 0, m, n, k, 1, a, k, m * k, b, n, 0, 0, &c, n, m * n, batch)
        for i in 0..<Int(batch) {
            a.withUnsafeBufferPointer { ap in
                ref.withUnsafeMutableBufferPointer { rp in
                    ck_gemm_ref(0, 0, m, n, k, 1, ap.baseAddress! + i * Int(m * k), k, b, n, 0, rp.baseAddress! + i * Int(m * n), n)
                }
            }
        }
        #expect(toleranceRatio(c, ref, atol: 1e-4, rtol: 1e-4) <= 1)
    }

    @Test func planDependsOnSizesOnly() {
        var s: Int64 = 0, l: Int64 = 0
        var rows: Int32 = 0
        ck_gemm_plan(4096, 256, 256, &s, &l, &rows)
        #expect(rows == 1 && s * l >= 4096 && s <= 8)
        ck_gemm_plan(2, 1000, 10, &s, &l, &rows)
        #expect(rows == 0 && s >= 1 && s * l >= 1000)
        #expect(ck_gemm_workspace_floats(256, 256, 4096) > 0)     // a weight gradient: split along K
        #expect(ck_gemm_workspace_floats(4096, 256, 256) == 0)
    }
}

@Suite struct LinearKernelTests {
    /// Reference y = act(x Wᵀ + b) through the reference GEMM and activation.
    func reference(_ x: [Float], _ w: [Float], _ b: [Float], _ B: Int64, _ IN: Int64, _ OUT: Int64, _ act: ck_act) -> (z: [Float], y: [Float]) {
        var z = [Float](repeating: 0, count: Int(B * OUT))
        for i in 0..<Int(B) { for j in 0..<Int(OUT) { z[i * Int(OUT) + j] = b[j] } }
        ck_gemm_ref(0, 1, B, OUT, IN, 1, x, IN, w, IN, 1, &z, OUT)
        var y = z
        ck_act_forward_ref(&y, z, B * OUT, Int32(act.rawValue))
        return (z, y)
    }

    /// Forward, backward (accumulating) and write-mode backward on the scalar and SIMD paths
    /// (the activation passes fused into the stripes, and the bias sum, have both; OpenBLAS
    /// picks its own code either way), each against the reference GEMM and activation. Bounds
    /// as |got − ref| <= atol + rtol·|ref|: K·eps·Σ|ab| for sums of up to 2000 products of
    /// values in [-1, 1] (1e-4; 1e-3 for dW and db, summed over B = 2000 rows).
    @Test(arguments: [CK_ACT_NONE, CK_ACT_SILU, CK_ACT_RELU, CK_ACT_TANH])
    func forwardAndBackwardMatchReference(_ act: ck_act) {
        /// The reference and the per-element bound (atol + rtol·|ref|) of concatenated outputs.
        func bounds(_ parts: [([Float], Double, Double)]) -> (ref: [Double], scale: [Double]) {
            let ref = parts.flatMap { $0.0.map(Double.init) }
            return (ref, parts.flatMap { p in p.0.map { p.1 + p.2 * abs(Double($0)) } })
        }
        for (B, IN, OUT) in [(1, 1, 1), (5, 66, 256), (300, 17, 9), (1000, 64, 33), (2000, 40, 30)] as [(Int64, Int64, Int64)] {
            var g = TestRNG(UInt64(B + IN + OUT))
            let x = g.floats(Int(B * IN)), w = g.floats(Int(OUT * IN)), b = g.floats(Int(OUT)), dy = g.floats(Int(B * OUT))
            let (zr, yr) = reference(x, w, b, B, IN, OUT, act)
            let shape = "\(B)x\(IN)x\(OUT) act \(act.rawValue)"
            let fwd = bounds([(yr, 1e-4, 1e-4), (zr, 1e-4, 1e-4)])
            expectBothPaths("forward \(shape)", reference: fwd.ref, scale: fwd.scale, tol: 1) {
                var y = [Float](repeating: .nan, count: Int(B * OUT)), z = y
                ck_linear_forward(&y, &z, x, w, b, B, IN, OUT, Int32(act.rawValue))
                return y + z
            }
            // Backward reference: dz = dy·act'(z), dx = dz W, dW = dzᵀ x, db = Σ dz (plus the start values).
            var dz = [Float](repeating: 0, count: Int(B * OUT))
            ck_act_backward_ref(&dz, dy, zr, B * OUT, Int32(act.rawValue))
            let dx0 = g.floats(Int(B * IN)), dw0 = g.floats(Int(OUT * IN)), db0 = g.floats(Int(OUT))
            var dxr = dx0, dwr = dw0, dbr = db0
            ck_gemm_ref(0, 0, B, IN, OUT, 1, dz, OUT, w, IN, 1, &dxr, IN)
            ck_gemm_ref(1, 0, OUT, IN, B, 1, dz, OUT, x, IN, 1, &dwr, IN)
            for j in 0..<Int(OUT) { for i in 0..<Int(B) { dbr[j] += dz[i * Int(OUT) + j] } }
            let wsCount = Int(ck_linear_backward_workspace_floats(B, IN, OUT, Int32(act.rawValue)))
            /// The kernel's backward from the kernel's own forward (y, z), into copies of the starts.
            func backward(_ flags: Int32, _ start: ([Float], [Float], [Float])) -> [Float] {
                var y = [Float](repeating: .nan, count: Int(B * OUT)), z = y
                ck_linear_forward(&y, &z, x, w, b, B, IN, OUT, Int32(act.rawValue))
                var ws = [Float](repeating: .nan, count: wsCount)
                var (dx, dw, db) = start
                ck_linear_backward(&dx, &dw, &db, &ws, flags, dy, z, y, x, w, B, IN, OUT, Int32(act.rawValue))
                return dx + dw + db
            }
            let acc = bounds([(dxr, 1e-4, 1e-4), (dwr, 1e-3, 1e-4), (dbr, 1e-3, 1e-4)])
            expectBothPaths("backward \(shape)", reference: acc.ref, scale: acc.scale, tol: 1) { backward(0, (dx0, dw0, db0)) }
            // "Set" mode overwrites garbage instead of adding to it.
            let all = Int32(CK_LINEAR_SET_DX | CK_LINEAR_SET_DW | CK_LINEAR_SET_DB)
            let set = bounds([(zip(dxr, dx0).map { $0 - $1 }, 1e-4, 1e-3), (zip(dwr, dw0).map { $0 - $1 }, 1e-3, 1e-3),
                              (zip(dbr, db0).map { $0 - $1 }, 1e-3, 1e-3)])
            let garbage = { (n: Int64) in [Float](repeating: .nan, count: Int(n)) }
            expectBothPaths("write-mode backward \(shape)", reference: set.ref, scale: set.scale, tol: 1) {
                backward(all, (garbage(B * IN), garbage(OUT * IN), garbage(OUT)))
            }
        }
    }
}
