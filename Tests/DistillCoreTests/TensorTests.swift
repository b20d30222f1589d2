import DistillCore
import Testing

@Suite struct TensorTests {
    @Test func creationAndReading() throws {
        let t = try Tensor(shape: [2, 3], scalars: [1, 2, 3, 4, 5, 6])
        #expect(t.shape == [2, 3] && t.count == 6 && t.rank == 2)
        #expect(try t.scalar(at: [1, 2]) == 6)
        #expect(try Tensor.zeros([0, 4]).count == 0)
        #expect(try Tensor(3.5).item() == 3.5)
        #expect(try Tensor.linspace(0, 1, count: 5).scalars == [0, 0.25, 0.5, 0.75, 1])
        #expect(try Tensor.full([2, 2], 7).scalars == [7, 7, 7, 7])
    }

    @Test func badInputThrowsClearErrors() throws {
        #expect(throws: TensorError.countMismatch(operation: "Tensor(shape:scalars:)", count: 3, expected: 4)) {
            try Tensor(shape: [2, 2], scalars: [1, 2, 3])
        }
        #expect(throws: TensorError.self) { try Tensor.zeros([-1, 2]) }
        let a = try Tensor.zeros([2, 3]), b = try Tensor.zeros([4])
        do {
            _ = try a + b
            Issue.record("adding [2, 3] and [4] must throw")
        } catch let e as TensorError {
            #expect(e.description.contains("[2, 3]") && e.description.contains("[4]"))
        }
        #expect(throws: TensorError.self) { try a.matmul(b.reshaped([4, 1])) }
        #expect(throws: TensorError.self) { try a.reshaped([4, 2]) }
        #expect(throws: TensorError.self) { try a.slice(1..<3) }
        #expect(throws: TensorError.self) { try a.scalar(at: [0, 3]) }
        #expect(throws: TensorError.self) { try a.sum(axes: [2]) }
        #expect(throws: TensorError.self) { try a.permuted([0, 0]) }
        #expect(throws: TensorError.self) { try a.item() }
        #expect(throws: TensorError.self) { try Tensor.concat([a, b]) }
        #expect(throws: TensorError.self) { try a.linear(weight: Tensor.zeros([4, 2]), bias: nil) }
        #expect(throws: TensorError.self) { try Tensor.zeros([3, 2]).gatherRows([3]) }
    }

    @Test func copyOnWrite() throws {
        let a = try Tensor(shape: [3], scalars: [1, 2, 3])
        var b = a
        try b.addInPlace(a)
        #expect(a.scalars == [1, 2, 3] && b.scalars == [2, 4, 6])
        let view = try a.slice(1..<3)
        var w = view
        w.scaleInPlace(by: 10)
        #expect(view.scalars == [2, 3] && w.scalars == [20, 30] && a.scalars == [1, 2, 3])
    }

    @Test func arithmeticValues() throws {
        let a = try Tensor(shape: [2, 2], scalars: [1, 2, 3, 4])
        let row = Tensor([10, 20])
        #expect(try (a + row).scalars == [11, 22, 13, 24])
        #expect(try (a * row.reshaped([2, 1])).scalars == [10, 20, 60, 80])
        #expect(try a.sum(axes: [0]).scalars == [4, 6])
        #expect(try a.mean(axes: [1], keepingDims: true).shape == [2, 1])
        #expect(try a.matmul(a).scalars == [7, 10, 15, 22])
        #expect(try a.transposed().scalars == [1, 3, 2, 4])
        #expect(try Tensor.concat([a, a], axis: 1).scalars == [1, 2, 1, 2, 3, 4, 3, 4])
        #expect(try Tensor.stack([row, row]).shape == [2, 2])
        let sm = try Tensor([0, 0, 0, 0]).softmax().scalars
        #expect(sm.allSatisfy { abs($0 - 0.25) < 1e-7 })
        #expect(try a.max(axis: 1).scalars == [2, 4])
    }
}

@Suite struct AutodiffTests {
    @Test func nonScalarOutputThrows() throws {
        #expect(throws: AutodiffError.self) { try valueWithGradient(at: Tensor([1, 2])) { $0 * 2 } }
    }

    @Test func detachedAndNoGradStopGradients() throws {
        let x = Tensor([1, 2, 3])
        let (_, g1) = try valueWithGradient(at: x) { try ($0 * $0.detached()).sum() }
        #expect(g1.scalars == [1, 2, 3])      // d/dx (x·c) with c = x held constant
        let (_, g2) = try valueWithGradient(at: x) { x in try (x + withoutGradient { x * 5 }).sum() }
        #expect(g2.scalars == [1, 1, 1])
        let (_, g3) = try valueWithGradient(at: x) { _ in Tensor(2).sum() }
        #expect(g3.scalars == [0, 0, 0])      // not a function of x: zero gradient
    }

    @Test func tracesEndWithTheScope() throws {
        var escaped: Tensor?
        _ = try valueWithGradient(at: Tensor([1, 2])) { x in
            let y = x * 3
            escaped = y
            #expect(y.isTraced)
            return y.sum()
        }
        #expect(escaped?.isTraced == false)
        #expect(try escaped.map { try ($0 * 2).sum().item() } == 18)
    }

    @Test func parametersGetGradientsAndFrozenOnesDoNot() throws {
        var rng = Philox(seed: 1)
        let layer = try Linear(3, 2, rng: &rng)
        let x = try rng.normal([4, 3])
        layer.bias!.isTrainable = false
        let loss = try layer.valueWithGradient { try layer(x).squared().sum() }
        #expect(loss > 0)
        #expect(layer.weight.grad?.shape == [2, 3])
        #expect(layer.bias!.grad == nil)
        #expect(!layer.weight.value.isTraced)
        // Accumulation doubles the gradient.
        let g1 = layer.weight.grad!.scalars
        try layer.valueWithGradient(accumulate: true) { try layer(x).squared().sum() }
        #expect(zip(layer.weight.grad!.scalars, g1).allSatisfy { abs($0 - 2 * $1) <= 1e-5 * (1 + abs($1)) })
    }

    @Test func moduleStateCopyAndErrors() throws {
        var rng = Philox(seed: 2)
        let a = try Linear(3, 2, rng: &rng), b = try Linear(3, 2, rng: &rng)
        try b.copyParameters(from: a)
        #expect(b.weight.value.scalars == a.weight.value.scalars)
        b.weight.value.scaleInPlace(by: 2)   // copy-on-write: a keeps its values
        #expect(b.weight.value.scalars != a.weight.value.scalars)
        let c = try Linear(4, 2, rng: &rng)
        #expect(throws: ModuleError.self) { try c.copyParameters(from: a) }
        #expect(a.parameterCount == 8)
        #expect(a.namedParameters.map(\.name) == ["weight", "bias"])
    }
}
