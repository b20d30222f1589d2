import DistillCore
import Testing

/// Finite-difference checks of the image operations (convolution, GroupNorm with scale-shift
/// and activation, fused attention, 2× resampling) in every input, the write-mode ("fresh
/// buffer") and accumulate paths of their backward rules, and their errors on bad input.
@Suite struct ImageGradientTests {
    @Test(arguments: [
        // (N, Cin, H, W, Cout, K, stride, padding)
        [2, 3, 5, 5, 4, 3, 1, 1], [1, 2, 6, 5, 3, 3, 2, 1], [2, 3, 4, 4, 2, 1, 1, 0], [1, 2, 7, 7, 3, 5, 1, 2],
        [2, 2, 7, 7, 3, 4, 2, 1], [1, 3, 1, 1, 2, 3, 1, 1], [3, 2, 5, 5, 2, 3, 1, 0],
    ])
    func convolution(_ c: [Int]) throws {
        var d = TestData(40)
        let x = d.uniform([c[0], c[1], c[2], c[3]]), w = d.uniform([c[4], c[1], c[5], c[5]]) * 0.5, b = d.uniform([c[4]])
        try checkGradients("conv2d \(c)", [x, w, b]) { try $0[0].conv2d(weight: $0[1], bias: $0[2], stride: c[6], padding: c[7]) }
        try checkGradients("conv2d no bias \(c)", [x, w]) { try $0[0].conv2d(weight: $0[1], stride: c[6], padding: c[7]) }
    }

    @Test func convolutionGradientBuffers() throws {
        var d = TestData(41)
        let x = d.uniform([2, 3, 5, 5]), w = d.uniform([3, 3, 3, 3]) * 0.5, b = d.uniform([3])
        // The input also used elsewhere: the convolution's backward runs first (writing a fresh
        // buffer) or second (adding to one), depending on the recording order.
        try checkGradients("conv2d then reuse", [x, w, b]) {
            let y = try $0[0].conv2d(weight: $0[1], bias: $0[2], padding: 1)
            return try y + $0[0] * 2
        }
        try checkGradients("reuse then conv2d", [x, w, b]) {
            let z = $0[0] * 2
            return try $0[0].conv2d(weight: $0[1], bias: $0[2], padding: 1) + z
        }
        // A fused residual: residual + conv(x); also the input itself as the residual.
        let r = d.uniform([2, 3, 5, 5])
        try checkGradients("conv2d + residual", [x, w, b, r]) { try $0[0].conv2d(weight: $0[1], bias: $0[2], padding: 1, residual: $0[3]) }
        let w1 = d.uniform([3, 3, 1, 1])
        try checkGradients("conv2d 1×1 + the input as residual", [x, w1]) { try $0[0].conv2d(weight: $0[1], residual: $0[0]) }
        let fused = try x.conv2d(weight: w, bias: b, padding: 1, residual: r)
        let separate = try x.conv2d(weight: w, bias: b, padding: 1) + r
        #expect(fused.scalars == separate.scalars)
        // One tensor as both input and weight: both gradients land in one buffer.
        let s = d.uniform([1, 1, 3, 3])
        try checkGradients("conv2d of a tensor with itself", [s]) { try $0[0].conv2d(weight: $0[0], padding: 1) }
    }

    @Test(arguments: Activation.allCases)
    func groupNorm(_ act: Activation) throws {
        var d = TestData(42)
        let x = d.uniform([2, 6, 3, 3]) * 2 + 0.5, gamma = d.uniform([6]), beta = d.uniform([6])
        let scale = d.uniform([2, 6]) * 0.5, shift = d.uniform([2, 6])
        try checkGradients("groupNorm \(act)", [x, gamma, beta, scale, shift]) {
            try $0[0].groupNorm(groups: 3, gamma: $0[1], beta: $0[2], scale: $0[3], shift: $0[4], activation: act)
        }
    }

    @Test func groupNormForms() throws {
        var d = TestData(43)
        let x = d.uniform([2, 6, 3, 3]) * 2, gamma = d.uniform([6]), beta = d.uniform([6])
        try checkGradients("groupNorm plain", [x]) { try $0[0].groupNorm(groups: 2) }
        try checkGradients("groupNorm one group per channel", [x, gamma, beta]) {
            try $0[0].groupNorm(groups: 6, gamma: $0[1], beta: $0[2], activation: .silu)
        }
        try checkGradients("groupNorm (N, C, L)", [d.uniform([3, 4, 5]), d.uniform([4])]) { try $0[0].groupNorm(groups: 2, gamma: $0[1]) }
        let packed = d.uniform([2, 12]) * 0.5
        try checkGradients("groupNorm packed scale-shift", [x, gamma, beta, packed]) {
            try $0[0].groupNorm(groups: 3, gamma: $0[1], beta: $0[2], scaleShift: $0[3], activation: .silu)
        }
        let s4 = d.uniform([2, 6, 1, 1]) * 0.5
        try checkGradients("groupNorm (N, C, 1, 1) scale, no shift", [x, s4]) { try $0[0].groupNorm(groups: 3, scale: $0[1]) }
        try checkGradients("groupNorm same tensor as scale and shift", [x, d.uniform([2, 6]) * 0.5]) {
            try $0[0].groupNorm(groups: 3, scale: $0[1], shift: $0[1], activation: .silu)
        }
        // The packed scale-shift reused after the norm (its buffer is then not fresh).
        try checkGradients("groupNorm packed, reused", [x, packed]) {
            let y = try $0[0].groupNorm(groups: 3, scaleShift: $0[1], activation: .silu)
            return try y.sum() + ($0[1] * $0[1]).sum()
        }
    }

    @Test func attention() throws {
        var d = TestData(44)
        let q = d.uniform([2, 2, 5, 4]), k = d.uniform([2, 2, 5, 4]), v = d.uniform([2, 2, 5, 4])
        try checkGradients("attention", [q, k, v]) { try Tensor.attention(q: $0[0], k: $0[1], v: $0[2]) }
        try checkGradients("attention scale 0.7", [q, k, v]) { try Tensor.attention(q: $0[0], k: $0[1], v: $0[2], scale: 0.7) }
        try checkGradients("self-attention, one tensor", [q]) { try Tensor.attention(q: $0[0], k: $0[0], v: $0[0]) }
        let one = d.uniform([1, 1, 1, 3])
        try checkGradients("attention, one token", [one, one * 2, one * 3]) { try Tensor.attention(q: $0[0], k: $0[1], v: $0[2]) }
        let long = d.uniform([1, 1, 70, 3]) * 2   // more than one 64-key block
        try checkGradients("attention, 70 tokens", [long, long * 0.5, long], maxProbes: 40) {
            try Tensor.attention(q: $0[0], k: $0[1], v: $0[2])
        }
    }

    @Test func resampling() throws {
        var d = TestData(45)
        for s in [[2, 3, 4, 4], [1, 2, 5, 7], [1, 1, 1, 1]] {
            try checkGradients("upsample \(s)", [d.uniform(s)]) { try $0[0].upsampleNearest2x() }
        }
        for s in [[2, 3, 4, 4], [1, 2, 5, 7], [1, 1, 2, 2]] {
            try checkGradients("avgpool \(s)", [d.uniform(s)]) { try $0[0].averagePool2x() }
        }
    }

    @Test func channelConcatenation() throws {
        var d = TestData(46)
        let a = d.uniform([2, 3, 4, 4]), b = d.uniform([2, 2, 4, 4])
        #expect(try Tensor.concatChannels([a, b]).scalars == Tensor.concat([a, b], axis: 1).scalars)
        try checkGradients("concatChannels", [a, b]) { try Tensor.concatChannels([$0[0], $0[1]]) }
        try checkGradients("concatChannels, one tensor twice", [a]) { try Tensor.concatChannels([$0[0], $0[0] * 2, $0[0]]) }
        try checkGradients("concatChannels rank 3", [d.uniform([2, 3, 5]), d.uniform([2, 1, 5])]) { try Tensor.concatChannels([$0[0], $0[1]]) }
        #expect(throws: TensorError.self) { try Tensor.concatChannels([a, d.uniform([2, 2, 4, 5])]) }
        #expect(throws: TensorError.self) { try Tensor.concatChannels([]) }
    }

    @Test func valuesMatchDefinitions() throws {
        // 2×2 image, one channel: a 3×3 all-ones kernel with padding 1 sums each pixel's neighbourhood.
        let x = try Tensor(shape: [1, 1, 2, 2], scalars: [1, 2, 3, 4])
        let y = try x.conv2d(weight: Tensor.ones([1, 1, 3, 3]), bias: Tensor([0.5]), padding: 1)
        #expect(y.scalars == [10.5, 10.5, 10.5, 10.5])
        #expect(try x.averagePool2x().scalars == [2.5])
        #expect(try x.upsampleNearest2x().scalars == [1, 1, 2, 2, 1, 1, 2, 2, 3, 3, 4, 4, 3, 3, 4, 4])
        // GroupNorm of one group: zero mean, unit variance; then scale-shift.
        let g = try x.groupNorm(groups: 1, scale: Tensor(shape: [1, 1], scalars: [1]), shift: Tensor(shape: [1, 1], scalars: [3]))
        let mean = g.scalars.reduce(0, +) / 4
        #expect(abs(mean - 3) < 1e-5)
        #expect(abs(g.scalars[3] - g.scalars[0] - 2 * 2 * 3 / Float(5).squareRoot()) < 1e-3)
        // Attention with equal keys averages the values.
        let q = try Tensor(shape: [1, 1, 2, 1], scalars: [1, -1]), k = try Tensor.ones([1, 1, 2, 1])
        let v = try Tensor(shape: [1, 1, 2, 1], scalars: [2, 4])
        #expect(try Tensor.attention(q: q, k: k, v: v).scalars == [3, 3])
    }

    @Test func layers() throws {
        var rng = Philox(seed: 3)
        let conv = try Conv2d(3, 5, kernelSize: 3, padding: 1, rng: &rng)
        #expect(conv.parameterCount == 5 * 3 * 9 + 5)
        let bound = 1 / Float(27).squareRoot()   // PyTorch's default: U(±1/√fanIn)
        #expect(conv.weight.value.scalars.allSatisfy { abs($0) <= bound } && conv.bias!.value.scalars.allSatisfy { abs($0) <= bound })
        #expect(try conv(Tensor.zeros([2, 3, 7, 7])).shape == [2, 5, 7, 7])
        let down = try Conv2d(3, 4, kernelSize: 3, stride: 2, padding: 1, bias: false, rng: &rng)
        #expect(down.bias == nil)
        #expect(try down(Tensor.zeros([1, 3, 7, 7])).shape == [1, 4, 4, 4])
        let zero = try Conv2d(3, 4, kernelSize: 1, zeroInitialized: true, rng: &rng)
        #expect(zero.parameters.allSatisfy { $0.value.scalars.allSatisfy { $0 == 0 } })
        let norm = try GroupNorm(groups: 2, channels: 4, activation: .silu)
        #expect(norm.parameterCount == 8 && norm.namedParameters.map(\.name) == ["weight", "bias"])
        #expect(try norm(Tensor.ones([2, 4, 3, 3])).shape == [2, 4, 3, 3])
        #expect(try norm(Tensor.ones([2, 4, 3, 3]), scaleShift: Tensor.zeros([2, 8])).shape == [2, 4, 3, 3])
    }

    @Test func badInputsThrow() throws {
        var rng = Philox(seed: 4)
        let x = try Tensor.zeros([2, 3, 5, 5])
        func throwsTensorError(_ what: String, _ body: () throws -> Tensor) {
            do {
                _ = try body()
                Issue.record("\(what): no error")
            } catch let e as TensorError {
                #expect(!e.description.isEmpty)
            } catch {
                Issue.record("\(what): \(error) is not a TensorError")
            }
        }
        throwsTensorError("conv channels") { try x.conv2d(weight: Tensor.zeros([4, 2, 3, 3])) }
        throwsTensorError("conv rank") { try Tensor.zeros([3, 5, 5]).conv2d(weight: Tensor.zeros([4, 3, 3, 3])) }
        throwsTensorError("conv non-square kernel") { try x.conv2d(weight: Tensor.zeros([4, 3, 3, 2])) }
        throwsTensorError("conv bias") { try x.conv2d(weight: Tensor.zeros([4, 3, 3, 3]), bias: Tensor.zeros([3])) }
        throwsTensorError("conv kernel too large") { try x.conv2d(weight: Tensor.zeros([4, 3, 7, 7])) }
        throwsTensorError("conv stride 0") { try x.conv2d(weight: Tensor.zeros([4, 3, 3, 3]), stride: 0) }
        throwsTensorError("conv negative padding") { try x.conv2d(weight: Tensor.zeros([4, 3, 3, 3]), padding: -1) }
        throwsTensorError("conv residual shape") { try x.conv2d(weight: Tensor.zeros([4, 3, 3, 3]), residual: Tensor.zeros([2, 4, 5, 5])) }
        throwsTensorError("groups not dividing") { try x.groupNorm(groups: 2) }
        throwsTensorError("gamma shape") { try x.groupNorm(groups: 3, gamma: Tensor.ones([4])) }
        throwsTensorError("scale shape") { try x.groupNorm(groups: 3, scale: Tensor.ones([2, 4])) }
        throwsTensorError("scaleShift shape") { try x.groupNorm(groups: 3, scaleShift: Tensor.ones([2, 3])) }
        throwsTensorError("attention shapes") { try Tensor.attention(q: x.reshaped([2, 3, 5, 5]), k: Tensor.zeros([2, 3, 4, 5]), v: x) }
        throwsTensorError("attention rank") { try Tensor.attention(q: Tensor.zeros([2, 3, 4]), k: Tensor.zeros([2, 3, 4]), v: Tensor.zeros([2, 3, 4])) }
        throwsTensorError("avgpool 1×1") { try Tensor.zeros([1, 1, 1, 1]).averagePool2x() }
        throwsTensorError("upsample rank") { try Tensor.zeros([1, 2, 2]).upsampleNearest2x() }
        throwsTensorError("Conv2d layer channels") { try Conv2d(4, 2, kernelSize: 3, rng: &rng)(x) }
        throwsTensorError("GroupNorm layer channels") { try GroupNorm(groups: 2, channels: 4)(x) }
        #expect(throws: TensorError.self) { try GroupNorm(groups: 3, channels: 4) }
        #expect(throws: TensorError.self) { try Conv2d(0, 2, kernelSize: 3, rng: &rng) }
    }
}
