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
            for avx in [false, true] {
                var y = [Float](repeating: 2, count: Int(o * i))
                withSIMD(avx) { ck_reduce_sum(&y, x, o, r, i, 0.5, 1) }
                let shifted = ref.map { $0 + 2 }
                #expect(toleranceRatio(y, shifted, atol: 5e-4, rtol: 1e-6) <= 1, "layout \(o)x\(r)x\(i) avx \(avx)")
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

    @Test(arguments: [CK_ACT_NONE, CK_ACT_SILU, CK_ACT_RELU, CK_ACT_TANH])
    func forwardAndBackwardMatchReference(_ act: ck_act) {
        for (B, IN, OUT) in [(1, 1, 1), (5, 66, 256), (300, 17, 9), (1000, 64, 33), (2000, 40, 30)] as [(Int64, Int64, Int64)] {
            var g = TestRNG(UInt64(B + IN + OUT))
            let x = g.floats(Int(B * IN)), w = g.floats(Int(OUT * IN)), b = g.floats(Int(OUT)), dy = g.floats(Int(B * OUT))
            let (zr, yr) = reference(x, w, b, B, IN, OUT, act)
            var y = [Float](repeating: .nan, count: Int(B * OUT)), z = y
            ck_linear_forward(&y, &z, x, w, b, B, IN, OUT, Int32(act.rawValue))
            #expect(toleranceRatio(y, yr, atol: 1e-4, rtol: 1e-4) <= 1, "forward \(B)x\(IN)x\(OUT)")
            // Backward reference: dz = dy·act'(z), dx = dz W, dW = dzᵀ x, db = Σ dz (plus the start values).
            var dz = [Float](repeating: 0, count: Int(B * OUT))
            ck_act_backward_ref(&dz, dy, zr, B * OUT, Int32(act.rawValue))
            let dx0 = g.floats(Int(B * IN)), dw0 = g.floats(Int(OUT * IN)), db0 = g.floats(Int(OUT))
            var dxr = dx0, dwr = dw0, dbr = db0
            ck_gemm_ref(0, 0, B, IN, OUT, 1, dz, OUT, w, IN, 1, &dxr, IN)
            ck_gemm_ref(1, 0, OUT, IN, B, 1, dz, OUT, x, IN, 1, &dwr, IN)
            for j in 0..<Int(OUT) { for i in 0..<Int(B) { dbr[j] += dz[i * Int(OUT) + j] } }
            var ws = [Float](repeating: .nan, count: Int(ck_linear_backward_workspace_floats(B, IN, OUT, Int32(act.rawValue))))
            var dx = dx0, dw = dw0, db = db0
            ck_linear_backward(&dx, &dw, &db, &ws, 0, dy, z, y, x, w, B, IN, OUT, Int32(act.rawValue))
            #expect(toleranceRatio(dx, dxr, atol: 1e-4, rtol: 1e-4) <= 1, "dx \(B)x\(IN)x\(OUT)")
            #expect(toleranceRatio(dw, dwr, atol: 1e-3, rtol: 1e-4) <= 1, "dw \(B)x\(IN)x\(OUT)")
            #expect(toleranceRatio(db, dbr, atol: 1e-3, rtol: 1e-4) <= 1, "db \(B)x\(IN)x\(OUT)")
            // "Set" mode overwrites garbage instead of adding to it.
            var sx = [Float](repeating: .nan, count: dx.count), sw = [Float](repeating: .nan, count: dw.count)
            var sb = [Float](repeating: .nan, count: db.count)
            let all = Int32(CK_LINEAR_SET_DX | CK_LINEAR_SET_DW | CK_LINEAR_SET_DB)
            ck_linear_backward(&sx, &sw, &sb, &ws, all, dy, z, y, x, w, B, IN, OUT, Int32(act.rawValue))
            #expect(toleranceRatio(sx, zip(dxr, dx0).map { $0 - $1 }, atol: 1e-4, rtol: 1e-3) <= 1)
            #expect(toleranceRatio(sw, zip(dwr, dw0).map { $0 - $1 }, atol: 1e-3, rtol: 1e-3) <= 1)
            #expect(toleranceRatio(sb, zip(dbr, db0).map { $0 - $1 }, atol: 1e-3, rtol: 1e-3) <= 1)
        }
    }
}
