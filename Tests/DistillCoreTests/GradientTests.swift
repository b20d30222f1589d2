import DistillCore
import Testing

/// A finite-difference check for every differentiable operation.
@Suite struct GradientTests {
    @Test func broadcastingArithmetic() throws {
        var d = TestData(1)
        let shapes: [([Int], [Int])] = [([3, 4], [3, 4]), ([3, 4], [4]), ([3, 4], [3, 1]), ([2, 1, 4], [3, 1]), ([5], []), ([], [2, 3])]
        for (sa, sb) in shapes {
            let a = d.awayFromZero(sa), b = d.awayFromZero(sb)
            try checkGradients("add \(sa) \(sb)", [a, b]) { try $0[0] + $0[1] }
            try checkGradients("sub \(sa) \(sb)", [a, b]) { try $0[0] - $0[1] }
            try checkGradients("mul \(sa) \(sb)", [a, b]) { try $0[0] * $0[1] }
            try checkGradients("div \(sa) \(sb)", [a, b.affine(scale: 1, shift: 0).abs() + 0.5]) { try $0[0] / $0[1] }
        }
        let a = d.uniform([4, 5]), b = d.uniform([4, 5])
        try checkGradients("maximum", [a, b]) { try Tensor.maximum($0[0], $0[1]) }
        try checkGradients("minimum", [a, b]) { try Tensor.minimum($0[0], $0[1]) }
        try checkGradients("same tensor twice", [a]) { try $0[0] * $0[0] + $0[0] }
    }

    /// Maximum and minimum with broadcast operands. Finite differences need |a − b| well above
    /// the step (3e-3): a sits on a 0.1 grid + 0.03 and b on the grid + 0.08, 0.05 apart at
    /// least. Then ties (a, b on a 0.5 grid): the forward equals max/min of the broadcast
    /// pairs exactly, and the gradient is the weights routed to a where a >= b (a <= b for
    /// minimum, a on ties), else to b, summed over each operand's broadcast dims (sums of at
    /// most 12 floats: 1e-6).
    @Test func maximumAndMinimumBroadcast() throws {
        var d = TestData(11)
        let shapes: [([Int], [Int])] = [([3, 4], [4]), ([3, 4], [3, 1]), ([2, 1, 4], [3, 1]), ([5], []), ([], [2, 3]), ([4, 1, 3], [1, 2, 1])]
        func onGrid(_ t: Tensor, step: Float, offset: Float) throws -> Tensor {
            try Tensor(shape: t.shape, scalars: t.scalars.map { ($0 / step).rounded() * step + offset })
        }
        var ties = 0
        for (sa, sb) in shapes {
            let a = try onGrid(d.uniform(sa), step: 0.1, offset: 0.03), b = try onGrid(d.uniform(sb), step: 0.1, offset: 0.08)
            try checkGradients("maximum \(sa) \(sb)", [a, b]) { try Tensor.maximum($0[0], $0[1]) }
            try checkGradients("minimum \(sa) \(sb)", [a, b]) { try Tensor.minimum($0[0], $0[1]) }

            let ta = try onGrid(d.uniform(sa), step: 0.5, offset: 0), tb = try onGrid(d.uniform(sb), step: 0.5, offset: 0)
            for isMax in [true, false] {
                let op = isMax ? Tensor.maximum : Tensor.minimum
                let y = try op(ta, tb)
                // Where each output element reads a and b: their indices broadcast like the values.
                let ia = try Tensor(shape: sa, scalars: (0..<ta.count).map(Float.init)).broadcast(to: y.shape).scalars.map { Int($0) }
                let ib = try Tensor(shape: sb, scalars: (0..<tb.count).map(Float.init)).broadcast(to: y.shape).scalars.map { Int($0) }
                let w = d.uniform(y.shape)
                var ga = [Double](repeating: 0, count: ta.count), gb = [Double](repeating: 0, count: tb.count)
                var forward = [Float]()
                for k in 0..<y.count {
                    let (x, z) = (ta.scalars[ia[k]], tb.scalars[ib[k]])
                    let toA = isMax ? x >= z : x <= z
                    if x == z { ties += 1 }
                    forward.append(toA ? x : z)
                    if toA { ga[ia[k]] += Double(w.scalars[k]) } else { gb[ib[k]] += Double(w.scalars[k]) }
                }
                let name = "\(isMax ? "maximum" : "minimum") \(sa) \(sb) with ties"
                #expect(y.scalars == forward, "\(name): forward")
                let (_, grads) = try valueWithGradient(at: [ta, tb]) { try (op($0[0], $0[1]) * w).sum() }
                for (got, want) in [(grads[0].scalars, ga), (grads[1].scalars, gb)] {
                    #expect(zip(got, want).allSatisfy { abs(Double($0) - $1) <= 1e-6 }, "\(name): gradient \(got) vs \(want)")
                }
            }
        }
        #expect(ties >= 10, "only \(ties) ties: the rule for ties went untested")
    }

    /// The fused linear combination Σ cₖ·tₖ (+ noise): three terms, a tensor given twice (its
    /// coefficients add), eight terms (the most it takes), and with noise (a constant: the
    /// same generator state on every evaluation).
    @Test func linearCombination() throws {
        var d = TestData(12)
        let ts = (0..<8).map { _ in d.uniform([3, 5]) }
        let cs: [Float] = [0.5, -1.25, 2, 0.75, -3, 1.5, -0.5, 0.25]
        try checkGradients("linearCombination", Array(ts[..<3])) { try Tensor.linearCombination(zip(cs, $0).map { ($0, $1) }) }
        try checkGradients("linearCombination, a term twice", Array(ts[..<2])) {
            try Tensor.linearCombination([(0.5, $0[0]), (-1.25, $0[1]), (3, $0[0])])
        }
        try checkGradients("linearCombination, 8 terms", ts) { try Tensor.linearCombination(zip(cs, $0).map { ($0, $1) }) }
        try checkGradients("linearCombination with noise", Array(ts[..<2])) {
            var noise = Philox(seed: 3, stream: 1)
            return try Tensor.linearCombination([(0.5, $0[0]), (-1.25, $0[1])], noiseStd: 0.7, noise: &noise)
        }
    }

    @Test func scalarArithmetic() throws {
        var d = TestData(2)
        let x = d.uniform([7])
        try checkGradients("affine", [x]) { $0[0].affine(scale: -2.5, shift: 1) }
        try checkGradients("scalar ops", [x]) { 3 - (2 * $0[0] + 1) / 4 }
        try checkGradients("negation", [x]) { -$0[0] }
    }

    @Test func unaryMath() throws {
        var d = TestData(3)
        let x = d.awayFromZero([9]), pos = d.uniform([9], 0.2, 2)
        try checkGradients("exp", [x]) { $0[0].exp() }
        try checkGradients("log", [pos]) { $0[0].log() }
        try checkGradients("sqrt", [pos]) { $0[0].sqrt() }
        try checkGradients("squared", [x]) { $0[0].squared() }
        try checkGradients("abs", [x]) { $0[0].abs() }
        try checkGradients("sin", [x]) { $0[0].sin() }
        try checkGradients("cos", [x]) { $0[0].cos() }
        try checkGradients("reciprocal", [pos]) { $0[0].reciprocal() }
    }

    @Test(arguments: Activation.allCases)
    func activations(_ f: Activation) throws {
        var d = TestData(4)
        let x = d.awayFromZero([40]) * 3
        try checkGradients("\(f)", [x]) { $0[0].activation(f) }
    }

    @Test func reductions() throws {
        var d = TestData(5)
        let x = d.uniform([3, 4, 5])
        try checkGradients("sum", [x]) { $0[0].sum() }
        try checkGradients("mean", [x]) { $0[0].mean() }
        for axes in [[0], [1], [2], [-1], [0, 2], [0, 1, 2]] {
            try checkGradients("sum axes \(axes)", [x]) { try $0[0].sum(axes: axes) }
            try checkGradients("mean axes \(axes) keep", [x]) { try $0[0].mean(axes: axes, keepingDims: true) }
        }
        for axis in [0, 1, 2] {
            try checkGradients("logSumExp \(axis)", [x]) { try $0[0].logSumExp(axis: axis) }
            try checkGradients("softmax \(axis)", [x]) { try $0[0].softmax(axis: axis) }
            try checkGradients("logSoftmax \(axis)", [x]) { try $0[0].logSoftmax(axis: axis) }
        }
    }

    @Test func matmul() throws {
        var d = TestData(6)
        for ta in [false, true] {
            for tb in [false, true] {
                let a = d.uniform(ta ? [5, 3] : [3, 5]), b = d.uniform(tb ? [4, 5] : [5, 4])
                try checkGradients("matmul ta \(ta) tb \(tb)", [a, b]) { try $0[0].matmul($0[1], transposingA: ta, transposingB: tb) }
                let ab = d.uniform(ta ? [2, 5, 3] : [2, 3, 5]), bb = d.uniform(tb ? [2, 4, 5] : [2, 5, 4])
                try checkGradients("batched ta \(ta) tb \(tb)", [ab, bb]) { try $0[0].matmul($0[1], transposingA: ta, transposingB: tb) }
                try checkGradients("shared B ta \(ta) tb \(tb)", [ab, b]) { try $0[0].matmul($0[1], transposingA: ta, transposingB: tb) }
                try checkGradients("shared A ta \(ta) tb \(tb)", [a, bb]) { try $0[0].matmul($0[1], transposingA: ta, transposingB: tb) }
            }
        }
    }

    @Test(arguments: Activation.allCases)
    func fusedLinear(_ f: Activation) throws {
        var d = TestData(7)
        let x = d.uniform([6, 5]), w = d.uniform([4, 5]), b = d.uniform([4])
        try checkGradients("linear \(f)", [x, w, b]) { try $0[0].linear(weight: $0[1], bias: $0[2], activation: f) }
        let x3 = d.uniform([2, 3, 5])
        try checkGradients("linear rank-3 no bias \(f)", [x3, w]) { try $0[0].linear(weight: $0[1], bias: nil, activation: f) }
    }

    @Test func layout() throws {
        var d = TestData(8)
        let x = d.uniform([2, 3, 4])
        try checkGradients("reshaped", [x]) { try $0[0].reshaped([4, -1]).squared() }
        try checkGradients("flattened", [x]) { try $0[0].flattened(from: 1).squared() }
        try checkGradients("slice rows", [x]) { try $0[0].slice(1..<2).squared() }
        try checkGradients("row", [x]) { try $0[0].row(0).squared() }
        try checkGradients("slice axis 2", [x]) { try $0[0].slice(1..<3, axis: 2).squared() }
        try checkGradients("slice axis 1", [x]) { try $0[0].slice(0..<2, axis: -2).squared() }
        try checkGradients("permuted", [x]) { try $0[0].permuted([2, 0, 1]).squared() }
        try checkGradients("transposed", [x]) { try $0[0].transposed().squared() }
        try checkGradients("expand/squeeze", [x]) { try $0[0].expandingDims(at: 1).squeezed().squared() }
        let v = d.uniform([3, 1])
        try checkGradients("broadcast", [v]) { try $0[0].broadcast(to: [2, 3, 4]).squared() }
        let y = d.uniform([2, 5, 4])
        try checkGradients("concat axis 1", [x, y]) { try Tensor.concat([$0[0], $0[1]], axis: 1).squared() }
        try checkGradients("concat same twice", [x]) { try Tensor.concat([$0[0], $0[0]], axis: 2).squared() }
        try checkGradients("stack", [x, x.affine(scale: 2, shift: 0)]) { try Tensor.stack([$0[0], $0[1]], axis: 1).squared() }
    }

    @Test func layerNorm() throws {
        var d = TestData(9)
        let x = d.uniform([5, 8], -2, 3), g = d.uniform([8]), b = d.uniform([8])
        try checkGradients("layerNorm", [x, g, b]) { try $0[0].layerNorm(gamma: $0[1], beta: $0[2]) }
        try checkGradients("layerNorm plain", [x]) { try $0[0].layerNorm(gamma: nil, beta: nil) }
    }

    @Test func embeddings() throws {
        var d = TestData(10)
        let t = d.uniform([5]), f = d.uniform([3], -3, 3)
        try checkGradients("fourier", [t, f]) { try $0[0].fourierFeatures(frequencies: $0[1]) }
        let table = d.uniform([4, 3])
        try checkGradients("gatherRows", [table]) { try $0[0].gatherRows([3, 0, 3, 1]) }
    }
}
