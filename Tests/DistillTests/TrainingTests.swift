import Distill
import Foundation
import Testing

@Suite struct TrainerTests {
    func makeTrainer(steps: Int, dir: String, seed: UInt64 = 5) throws -> (Trainer, DiffusionModel<MLPScoreNetwork>, Tensor) {
        let net = try MLPScoreNetwork(.init(hiddenWidths: [32, 32]), seed: 1)
        let model = DiffusionModel(network: net, process: VPLinearProcess(), parameterization: .epsilon)
        let config = TrainingConfiguration(steps: steps, learningRate: .warmupCosine(peak: 3e-3, warmupSteps: 5, totalSteps: steps, minimum: 1e-4),
                                           weightDecay: 0.01, gradientClip: 1, emaDecay: 0.9, seed: seed, checkpointEvery: 7,
                                           checkpointPath: dir + "/ck.safetensors", logPath: dir + "/log.jsonl", logEvery: 5)
        let data = try ToyDataset.eightGaussians.sample(1024, seed: 2)
        return (try Trainer(model: net, configuration: config), model, data)
    }

    func step(_ model: DiffusionModel<MLPScoreNetwork>, _ data: Tensor) -> (Int, inout Philox) throws -> Tensor {
        { s, rng in
            let i = (s * 64) % 1024
            return try denoisingScoreMatchingLoss(model: model, x0: data.slice(i..<(i + 64)), rng: &rng)
        }
    }

    func bits(_ m: Module) -> [UInt32] { m.parameters.flatMap { $0.value.scalars.map(\.bitPattern) } }

    @Test func resumeIsBitExactAndLogsAndCheckpointsAreWritten() throws {
        let dirA = try tempDir(), dirB = try tempDir()
        defer { try? FileManager.default.removeItem(atPath: dirA); try? FileManager.default.removeItem(atPath: dirB) }
        let (a, ma, data) = try makeTrainer(steps: 30, dir: dirA)
        let summary = try a.run(loss: step(ma, data))
        #expect(summary.endStep == 30 && !summary.interrupted)

        // Run B: stopped after step 14 (as on Ctrl-C: a checkpoint is written), then a fresh
        // trainer, built from a different initialization, resumes from the file to step 30.
        let (b1, mb1, _) = try makeTrainer(steps: 30, dir: dirB)
        let stopped = try b1.run(progress: { if $0.step == 14 { b1.requestStop() } }, loss: step(mb1, data))
        #expect(stopped.interrupted && stopped.endStep == 14)
        let net2 = try MLPScoreNetwork(.init(hiddenWidths: [32, 32]), seed: 99)
        let b2 = try Trainer(model: net2, configuration: b1.configuration)
        try b2.resume(from: dirB + "/ck.safetensors")
        #expect(b2.step == 14)
        try b2.run(loss: step(DiffusionModel(network: net2, process: VPLinearProcess(), parameterization: .epsilon), data))
        #expect(bits(a.model) == bits(b2.model) ? true : false, "parameters differ after resume")
        #expect(a.ema!.shadow.keys.allSatisfy { a.ema!.shadow[$0]!.scalars == b2.ema!.shadow[$0]!.scalars })

        let lines = try String(contentsOfFile: dirA + "/log.jsonl", encoding: .utf8).split(separator: "\n")
        #expect(lines.count == 6)   // steps 5, 10, ..., 30
        let last = try #require(try JSONSerialization.jsonObject(with: Data(lines.last!.utf8)) as? [String: Any])
        #expect(last["step"] as? Int == 30 && (last["loss"] as? Double).map { $0.isFinite } == true)
        let ck = try Checkpoint.read(from: dirA + "/ck.safetensors")
        #expect(ck.step == 30 && ck.extra["training"] != nil)
        #expect(try FileManager.default.contentsOfDirectory(atPath: dirA).sorted() == ["ck.safetensors", "log.jsonl"])
    }

    @Test func stopRequestSavesAndReturns() throws {
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let (t, m, data) = try makeTrainer(steps: 1000, dir: dir)
        var calls = 0
        let summary = try t.run(progress: { p in
            calls += 1
            if p.step == 3 { t.requestStop() }
        }, loss: step(m, data))
        #expect(summary.interrupted && summary.endStep == 3 && calls == 3)
        #expect(try Checkpoint.read(from: dir + "/ck.safetensors").step == 3)
    }

    @Test func nonFiniteLossStops() throws {
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let (t, _, _) = try makeTrainer(steps: 5, dir: dir)
        #expect(throws: TrainingError.self) { try t.run { _, _ in Tensor(Float.nan) } }
    }
}

func tempDir() throws -> String {
    let d = NSTemporaryDirectory() + "distill-" + UUID().uuidString
    try FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true)
    return d
}

/// The first index where two Float arrays differ bit for bit (or their lengths differ), nil when
/// identical: expectations on it print one index instead of diffing huge arrays.
func firstBitMismatch(_ a: [Float], _ b: [Float]) -> Int? {
    if a.count != b.count { return min(a.count, b.count) }
    return a.indices.first { a[$0].bitPattern != b[$0].bitPattern }
}
