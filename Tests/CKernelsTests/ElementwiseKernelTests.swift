import CKernels
import Testing

@Suite struct ActivationKernelTests {
    static let acts: [ck_act] = [CK_ACT_NONE, CK_ACT_RELU, CK_ACT_SILU, CK_ACT_GELU, CK_ACT_TANH, CK_ACT_SIGMOID, CK_ACT_SOFTPLUS]

    /// Inputs over the useful range plus extremes where exp overflows/underflows.
    func inputs(_ n: Int) -> [Float] {
        var r = TestRNG(UInt64(n))
        var x = r.floats(n, -12, 12)
        let extremes: [Float] = [0, -0.0, 1e-8, -1e-8, 88, -88, 100, -100, 30, -30]
        for (i, e) in extremes.enumerated() where i < n { x[i] = e }
        return x
    }

    // The AVX2 exp is a degree-6 polynomial (< 1.3e-7 relative truncation error) plus float
    // rounding of the range reduction: a few ulps, so 2e-6 relative (1e-30 absolute for
    // results that underflow differently) bounds it with margin.
    @Test(arguments: acts)
    func forwardMatchesReference(_ act: ck_act) {
        for n in awkwardSizes {
            let x = inputs(n)
            var ref = [Float](repeating: 0, count: n)
            ck_act_forward_ref(&ref, x, Int64(n), Int32(act.rawValue))
            for avx in [false, true] {
                var y = [Float](repeating: .nan, count: n)
                withSIMD(avx) { ck_act_forward(&y, x, Int64(n), Int32(act.rawValue)) }
                let ratio = toleranceRatio(y, ref, atol: 1e-30, rtol: 2e-6)
                #expect(ratio <= 1, "act \(act.rawValue) n \(n) avx \(avx): off by \(ratio)x tolerance")
            }
        }
    }

    @Test(arguments: acts)
    func backwardMatchesReferenceAndAccumulates(_ act: ck_act) {
        for n in awkwardSizes {
            let x = inputs(n)
            var r = TestRNG(99)
            let dy = r.floats(n)
            let start = r.floats(n)
            var ref = start
            ck_act_backward_ref(&ref, dy, x, Int64(n), Int32(act.rawValue))
            var y = [Float](repeating: 0, count: n)
            ck_act_forward_ref(&y, x, Int64(n), Int32(act.rawValue))
            for avx in [false, true] {
                for passY in [false, true] {
                    var dx = start
                    withSIMD(avx) {
                        y.withUnsafeBufferPointer { yp in
                            ck_act_backward(&dx, dy, x, passY ? yp.baseAddress : nil, Int64(n), Int32(act.rawValue))
                        }
                    }
                    let ratio = toleranceRatio(dx, ref, atol: 1e-6, rtol: 1e-5)
                    #expect(ratio <= 1, "act \(act.rawValue) n \(n) avx \(avx) y \(passY): off by \(ratio)x tolerance")
                }
            }
        }
    }
}

@Suite struct BinaryKernelTests {
    /// (output shape, a strides, b strides) cases: same shape, row/column/scalar broadcast,
    /// and a general 4-D mix.
    static func cases() -> [([Int64], [Int64], [Int64])] {
        [
            ([1000], [1], [1]),
            ([37, 33], [33, 1], [0, 1]),      // b is a row vector
            ([37, 33], [33, 1], [1, 0]),      // b is a column vector
            ([5, 1], [1, 0], [0, 0]),         // b scalar
            ([3, 4, 5, 6], [0, 30, 6, 1], [20, 5, 1, 0]),
            ([16385], [1], [0]),
            ([2, 3], [0, 1], [1, 0]),         // both broadcast (outer product)
        ]
    }

    static let ops: [ck_binop] = [CK_BIN_ADD, CK_BIN_SUB, CK_BIN_MUL, CK_BIN_DIV, CK_BIN_MAX, CK_BIN_MIN]

    @Test(arguments: ops)
    func forwardMatchesReference(_ op: ck_binop) {
        var r = TestRNG(7)
        for (shape, sa, sb) in Self.cases() {
            let span = { (st: [Int64]) in Int(zip(shape, st).map { ($0 - 1) * $1 }.reduce(0, +)) + 1 }
            let a = r.floats(span(sa)), b = r.floats(span(sb)).map { $0 + ($0 >= 0 ? 0.5 : -0.5) }
            let n = Int(shape.reduce(1, *))
            var ref = [Float](repeating: 0, count: n), y = [Float](repeating: .nan, count: n)
            ck_binary_forward_ref(&ref, a, sa, b, sb, shape, Int32(shape.count), Int32(op.rawValue))
            for avx in [false, true] {
                withSIMD(avx) { ck_binary_forward(&y, a, sa, b, sb, shape, Int32(shape.count), Int32(op.rawValue)) }
                // Same formula in both paths; only division may round differently.
                #expect(toleranceRatio(y, ref, atol: 0, rtol: 1e-7) <= 1, "op \(op.rawValue) shape \(shape) avx \(avx)")
            }
        }
    }

    /// Index spaces for the backward: the forward's cases, a transposed operand (stride 33 in
    /// the last dim), a contiguous row cut into three blocks, and long rows broadcast against a
    /// row and a column vector.
    static func backwardCases() -> [([Int64], [Int64], [Int64])] {
        cases() + [([33, 37], [1, 33], [37, 1]), ([40_003], [1], [1]), ([2, 16_385], [16_385, 1], [0, 1]),
                   ([3, 20_000], [20_000, 1], [1, 0])]
    }

    /// ck_binary_backward on both paths against ∂(a op b) in Double, in the output layout, for
    /// broadcast operands, in accumulate mode (both gradients at once, onto random values) and
    /// in write mode (one gradient per call, as the engine asks for them, onto NaN garbage).
    /// MAX/MIN draw a and b from a grid of 0.25 so ties occur (the gradient must go to a).
    /// Tolerance 5 roundings of scale |start| + |dy·∂|: DIV's ∂/∂b rounds b·b, the quotient,
    /// the product with dy and the sum (4); the others fewer. Write mode rounds one product,
    /// the same in both paths: bit for bit (the body is compiled twice from one source).
    @Test(arguments: ops)
    func backwardMatchesReferenceOnBothPaths(_ op: ck_binop) {
        var r = TestRNG(8 + UInt64(op.rawValue))
        let ties = op == CK_BIN_MAX || op == CK_BIN_MIN
        for (shape, sa, sb) in Self.backwardCases() {
            let span = { (st: [Int64]) in Int(zip(shape, st).map { ($0 - 1) * $1 }.reduce(0, +)) + 1 }
            let grid = { (v: Float) in ties ? (v * 4).rounded() / 4 : v }
            let a = r.floats(span(sa), -1.5, 1.5).map(grid), b = r.floats(span(sb)).map { grid($0 + ($0 >= 0 ? 0.5 : -0.5)) }
            let n = Int(shape.reduce(1, *)), nd = Int32(shape.count)
            let dy = r.floats(n), startA = r.floats(n), startB = r.floats(n)
            // Reference: walk the index space as ck_binary_forward_ref does.
            var refA = [Double](repeating: 0, count: n), refB = refA
            for k in 0..<n {
                var rest = k, ao = 0, bo = 0
                for d in stride(from: shape.count - 1, through: 0, by: -1) {
                    let i = rest % Int(shape[d])
                    rest /= Int(shape[d])
                    ao += i * Int(sa[d])
                    bo += i * Int(sb[d])
                }
                let x = Double(a[ao]), y = Double(b[bo])
                let (da, db): (Double, Double)
                switch op {
                case CK_BIN_ADD: (da, db) = (1, 1)
                case CK_BIN_SUB: (da, db) = (1, -1)
                case CK_BIN_MUL: (da, db) = (y, x)
                case CK_BIN_DIV: (da, db) = (1 / y, -x / (y * y))
                case CK_BIN_MAX: (da, db) = x >= y ? (1, 0) : (0, 1)
                default: (da, db) = x <= y ? (1, 0) : (0, 1)
                }
                refA[k] = Double(dy[k]) * da
                refB[k] = Double(dy[k]) * db
            }
            let name = "op \(op.rawValue) shape \(shape) a \(sa) b \(sb)"
            let accRef = zip(startA + startB, refA + refB).map { Double($0) + $1 }
            let accScale = zip(startA + startB, refA + refB).map { abs(Double($0)) + abs($1) }
            expectBothPaths("accumulate \(name)", reference: accRef, scale: accScale, tol: 5 * unitRoundoff) {
                var ga = startA, gb = startB
                ck_binary_backward(&ga, &gb, 1, dy, a, sa, b, sb, shape, nd, Int32(op.rawValue))
                return ga + gb
            }
            expectBothPaths("write \(name)", reference: refA + refB, tol: 5 * unitRoundoff, bitIdentical: true) {
                var ga = [Float](repeating: .nan, count: n), gb = ga
                ck_binary_backward(&ga, nil, 0, dy, a, sa, b, sb, shape, nd, Int32(op.rawValue))
                ck_binary_backward(nil, &gb, 0, dy, a, sa, b, sb, shape, nd, Int32(op.rawValue))
                return ga + gb
            }
        }
    }

    /// ck_affine (also in place) and ck_axpy on both paths at sizes around the vector widths
    /// and block edges, against Double: a product and a sum, at most 2 roundings of
    /// |alpha·x| + |beta| (|y| + |alpha·x| for axpy); the SIMD path may fuse them into one FMA.
    @Test func affineAndAxpyMatchReferenceOnBothPaths() {
        let (alpha, beta): (Float, Float) = (-1.7, 0.3)
        for n in awkwardSizes + [31, 33, 65, 127] {
            var r = TestRNG(UInt64(n) + 3)
            let x = r.floats(n), y0 = r.floats(n)
            let ax = x.map { Double(alpha) * Double($0) }
            let affineRef = ax.map { $0 + Double(beta) }, affineScale = ax.map { abs($0) + abs(Double(beta)) }
            expectBothPaths("affine n \(n)", reference: affineRef, scale: affineScale, tol: 2 * unitRoundoff) {
                var y = [Float](repeating: .nan, count: n)
                ck_affine(&y, x, Int64(n), alpha, beta)
                return y
            }
            expectBothPaths("affine in place n \(n)", reference: affineRef, scale: affineScale, tol: 2 * unitRoundoff) {
                var y = x
                y.withUnsafeMutableBufferPointer { ck_affine($0.baseAddress, $0.baseAddress, Int64(n), alpha, beta) }
                return y
            }
            expectBothPaths("axpy n \(n)", reference: zip(y0, ax).map { Double($0) + $1 },
                            scale: zip(y0, ax).map { abs(Double($0)) + abs($1) }, tol: 2 * unitRoundoff) {
                var y = y0
                ck_axpy(&y, x, Int64(n), alpha)
                return y
            }
            var z = x
            ck_fill(&z, Int64(n), 4)
            #expect(z.allSatisfy { $0 == 4 })
        }
    }

    /// The STREAM triad probe a = b + s·c on both paths against Double: 2 roundings of
    /// |b| + |s·c| (the SIMD path may fuse them into one FMA).
    @Test func triadMatchesReferenceOnBothPaths() {
        let s: Float = 3.1
        for n in awkwardSizes + [31, 33, 65] {
            var r = TestRNG(UInt64(n) + 77)
            let b = r.floats(n), c = r.floats(n)
            expectBothPaths("triad n \(n)", reference: zip(b, c).map { Double($0) + Double(s) * Double($1) },
                            scale: zip(b, c).map { abs(Double($0)) + abs(Double(s) * Double($1)) }, tol: 2 * unitRoundoff) {
                var a = [Float](repeating: .nan, count: n)
                ck_bench_triad(&a, b, c, s, Int64(n))
                return a
            }
        }
    }

    @Test func unaryBackwardMatchesDerivatives() {
        let ops: [(ck_unop, (Double) -> Double)] = [
            (CK_UN_NEG, { _ in -1 }), (CK_UN_EXP, { libm_exp($0) }), (CK_UN_LOG, { 1 / $0 }),
            (CK_UN_SQRT, { 0.5 / $0.squareRoot() }), (CK_UN_SQUARE, { 2 * $0 }), (CK_UN_ABS, { $0 > 0 ? 1 : -1 }),
            (CK_UN_SIN, { libm_cos($0) }), (CK_UN_COS, { -libm_sin($0) }), (CK_UN_RECIP, { -1 / ($0 * $0) }),
        ]
        var r = TestRNG(5)
        let x = r.floats(500, 0.1, 3)
        let dy = r.floats(500)
        for (op, d) in ops {
            var y = [Float](repeating: 0, count: 500), dx = [Float](repeating: 0, count: 500)
            ck_unary_forward(&y, x, 500, Int32(op.rawValue))
            ck_unary_backward(&dx, dy, x, y, 500, Int32(op.rawValue))
            for i in 0..<500 {
                let want = Double(dy[i]) * d(Double(x[i]))
                #expect(abs(Double(dx[i]) - want) <= 1e-5 * (1 + abs(want)), "op \(op.rawValue) at x=\(x[i])")
            }
        }
    }
}

import Glibc
func libm_exp(_ x: Double) -> Double { Glibc.exp(x) }
func libm_sin(_ x: Double) -> Double { Glibc.sin(x) }
func libm_cos(_ x: Double) -> Double { Glibc.cos(x) }
