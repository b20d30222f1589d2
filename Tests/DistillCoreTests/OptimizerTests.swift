import DistillCore
import Testing

/// A module holding one parameter vector, for optimizer tests.
final class Vector: Module {
    let v: Parameter
    init(_ values: [Float]) { v = Parameter(Tensor(values)) }
    func visitParameters(_ visit: (String, Parameter) throws -> Void) rethrows { try visit("v", v) }
}

@Suite struct OptimizerTests {
    /// Minimizes ||v - target||²; every optimizer must get close.
    func minimize(_ make: (Vector) throws -> Optimizer, steps: Int) throws -> Float {
        let m = Vector([3, -2, 0.5])
        let target = Tensor([1, 1, 1])
        let opt = try make(m)
        for _ in 0..<steps {
            try m.valueWithGradient { try (m.v.value - target).squared().sum() }
            try opt.update()
        }
        return try (m.v.value - target).abs().max(axis: 0).item()
    }

    @Test func optimizersConverge() throws {
        #expect(try minimize({ try SGD($0, learningRate: 0.1) }, steps: 100) < 1e-4)
        #expect(try minimize({ try SGD($0, learningRate: 0.05, momentum: 0.9, nesterov: true) }, steps: 300) < 1e-3)
        #expect(try minimize({ try Adam($0, learningRate: 0.05) }, steps: 500) < 1e-2)
        #expect(try minimize({ try Adam.adamW($0, learningRate: 0.05, weightDecay: 0) }, steps: 500) < 1e-2)
    }

    @Test func badHyperparametersThrow() {
        let m = Vector([1])
        #expect(throws: OptimizerError.self) { try Adam(m, beta1: 1.5) }
        #expect(throws: OptimizerError.self) { try SGD(m, learningRate: -1) }
        #expect(throws: OptimizerError.self) { try ExponentialMovingAverage(m, decay: 2) }
    }

    @Test func stateRoundTripGivesIdenticalSteps() throws {
        let a = Vector([3, -2, 0.5]), b = Vector([3, -2, 0.5])
        let oa = try Adam.adamW(a, learningRate: 0.1), ob = try Adam.adamW(b, learningRate: 0.1)
        func step(_ m: Vector, _ o: Optimizer) throws {
            try m.valueWithGradient { try (m.v.value * m.v.value.sin()).sum() }
            try o.update()
        }
        for _ in 0..<3 { try step(a, oa) }
        // b resumes from a's state after 3 steps.
        try b.load(a.stateDictionary())
        try ob.loadState(tensors: oa.stateTensors(), scalars: oa.stateScalars())
        for _ in 0..<4 { try step(a, oa); try step(b, ob) }
        #expect(a.v.value.scalars == b.v.value.scalars)
        #expect(ob.step == 7)
        #expect(throws: OptimizerError.self) { try ob.loadState(tensors: ["exp_avg.nope": Tensor([1])], scalars: ["step": "1"]) }
    }

    @Test func schedulesClippingAndEMA() throws {
        let s = LearningRateSchedule.warmupCosine(peak: 1, warmupSteps: 10, totalSteps: 110, minimum: 0.1)
        #expect(abs(s.learningRate(at: 0) - 0.1) < 1e-6)
        #expect(abs(s.learningRate(at: 9) - 1) < 1e-6)
        #expect(abs(s.learningRate(at: 60) - 0.55) < 1e-5)
        #expect(abs(s.learningRate(at: 500) - 0.1) < 1e-6)
        #expect(LearningRateSchedule.constant(0.3).learningRate(at: 99) == 0.3)

        let m = Vector([3, 4])
        m.v.grad = Tensor([3, 4])
        let norm = clipGradientNorm(m.parameters, maxNorm: 1)
        #expect(abs(norm - 5) < 1e-6)
        #expect(abs(m.v.grad!.scalars[0] - 0.6) < 1e-5 && abs(m.v.grad!.scalars[1] - 0.8) < 1e-5)

        let ema = try ExponentialMovingAverage(m, decay: 0.9)
        m.v.value = Tensor([13, 14])
        try ema.update(from: m)
        #expect(zip(ema.shadow["v"]!.scalars, [4, 5] as [Float]).allSatisfy { abs($0 - $1) < 1e-5 })
        let copy = Vector([0, 0])
        try ema.copy(to: copy)
        #expect(copy.v.value.scalars == ema.shadow["v"]!.scalars)
    }
}
