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
