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

    @Test(arguments: ops)
    func backwardMatchesFormulas(_ op: ck_binop) {
        var r = TestRNG(8)
        for n in [777, 40_003] {   // one block, and a row cut into several blocks
        let a = r.floats(n), b = r.floats(n).map { $0 + ($0 >= 0 ? 0.5 : -0.5) }, dy = r.floats(n)
        var ga = [Float](repeating: 1, count: n), gb = [Float](repeating: 1, count: n)
        ck_binary_backward(&ga, &gb, 1, dy, a, [1], b, [1], [Int64(n)], 1, Int32(op.rawValue))
        for i in 0..<n {
            let (x, y, g) = (a[i], b[i], dy[i])
            let (da, db): (Float, Float)
            switch op {
            case CK_BIN_ADD: (da, db) = (1, 1)
            case CK_BIN_SUB: (da, db) = (1, -1)
            case CK_BIN_MUL: (da, db) = (y, x)
            case CK_BIN_DIV: (da, db) = (1 / y, -x / (y * y))
            case CK_BIN_MAX: (da, db) = x >= y ? (1, 0) : (0, 1)
            default: (da, db) = x <= y ? (1, 0) : (0, 1)
            }
            #expect(abs(ga[i] - (1 + g * da)) <= 1e-5 * (1 + abs(g * da)))
            #expect(abs(gb[i] - (1 + g * db)) <= 1e-5 * (1 + abs(g * db)))
        }
        }
    }

    @Test func affineAxpyFill() {
        for n in awkwardSizes {
            var r = TestRNG(UInt64(n) + 3)
            let x = r.floats(n)
            var y = [Float](repeating: 0, count: n)
            ck_affine(&y, x, Int64(n), 2.5, -1)
            #expect(zip(y, x).allSatisfy { abs($0 - (2.5 * $1 - 1)) <= 1e-6 })
            var z = x
            ck_axpy(&z, x, Int64(n), -3)
            #expect(zip(z, x).allSatisfy { abs($0 - (-2 * $1)) <= 1e-6 })
            ck_fill(&z, Int64(n), 4)
            #expect(z.allSatisfy { $0 == 4 })
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
