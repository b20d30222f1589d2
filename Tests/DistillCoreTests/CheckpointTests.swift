import DistillCore
import Foundation
import Testing

@Suite struct CheckpointTests {
    /// Two linear layers trained by AdamW with EMA.
    final class Net: Module {
        let a: Linear, b: Linear
        init(seed: UInt64) throws {
            var rng = Philox(seed: seed)
            a = try Linear(2, 16, activation: .silu, rng: &rng)
            b = try Linear(16, 2, rng: &rng)
        }
        func callAsFunction(_ x: Tensor) throws -> Tensor { try b(a(x)) }
        func visitParameters(_ visit: (String, Parameter) throws -> Void) rethrows {
            try visitChild(a, as: "a", visit)
            try visitChild(b, as: "b", visit)
        }
    }

    func trainStep(_ net: Net, _ opt: Optimizer, _ ema: ExponentialMovingAverage, step: Int) throws {
        var rng = Philox(seed: 9, stream: UInt64(step))
        let x = try rng.normal([32, 2])
        try net.valueWithGradient { try (net(x) - x).squared().mean() }
        try opt.update()
        try ema.update(from: net)
    }

    @Test func resumeFromCheckpointIsBitExact() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        // Uninterrupted: 10 steps.
        let n1 = try Net(seed: 1)
        let o1 = try Adam.adamW(n1, learningRate: 1e-2)
        let e1 = try ExponentialMovingAverage(n1, decay: 0.9)
        for s in 0..<10 { try trainStep(n1, o1, e1, step: s) }
        // Interrupted after 4 steps, saved, restored into fresh objects, 6 more steps.
        let n2 = try Net(seed: 1)
        let o2 = try Adam.adamW(n2, learningRate: 1e-2)
        let e2 = try ExponentialMovingAverage(n2, decay: 0.9)
        for s in 0..<4 { try trainStep(n2, o2, e2, step: s) }
        try Checkpoint(model: n2, optimizer: o2, ema: e2, step: 4, config: #"{"width":16}"#, extra: ["note": "x"])
            .write(to: dir + "/ck.safetensors")
        let n3 = try Net(seed: 2)
        let o3 = try Adam.adamW(n3, learningRate: 1e-2)
        let e3 = try ExponentialMovingAverage(n3, decay: 0.9)
        let ck = try Checkpoint.read(from: dir + "/ck.safetensors")
        #expect(ck.step == 4 && ck.config == #"{"width":16}"# && ck.extra == ["note": "x"])
        try ck.restore(model: n3, optimizer: o3, ema: e3)
        for s in 4..<10 { try trainStep(n3, o3, e3, step: s) }
        for (p1, p3) in zip(n1.parameters, n3.parameters) {
            #expect(firstBitMismatch(p1.value.scalars, p3.value.scalars) == nil)
        }
        for (k, v) in e1.shadow { #expect(firstBitMismatch(v.scalars, e3.shadow[k]!.scalars) == nil) }
    }

    @Test func wrongFilesAreRejected() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try SafeTensors.write(.init(tensors: ["x": Tensor([1])]), to: dir + "/plain.safetensors")
        #expect(throws: IOError.self) { try Checkpoint.read(from: dir + "/plain.safetensors") }
        let net = try Net(seed: 1)
        try Checkpoint(model: net, optimizer: nil, step: 0).write(to: dir + "/ck.safetensors")
        let other = try Linear(3, 3, rng: &Philox.testing)
        #expect(throws: ModuleError.self) { try Checkpoint.read(from: dir + "/ck.safetensors").restore(model: other, optimizer: nil) }
    }
}

extension Philox {
    nonisolated(unsafe) static var testing = Philox(seed: 0)
}
