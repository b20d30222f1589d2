import Distill
import Foundation
import Testing

@Suite struct TrainerTests {
    func makeTrainer(steps: Int, seed: UInt64 = 5, peak: Float = 3e-3) throws -> (Trainer, DiffusionModel<MLPScoreNetwork>, Tensor) {
        let net = try MLPScoreNetwork(.init(hiddenWidths: [32, 32]), seed: 1)
        let model = DiffusionModel(network: net, process: .vpLinear(), parameterization: .epsilon)
        let config = TrainingConfiguration(steps: steps, learningRate: .warmupCosine(peak: peak, warmupSteps: 5, totalSteps: steps, minimum: 1e-4),
                                           weightDecay: 0.01, gradientClip: 1, emaDecay: 0.9, seed: seed, checkpointEvery: 7, logEvery: 5)
        let data = try ToyDataset.eightGaussians.sample(1024, seed: 2)
        return (try Trainer(model: net, configuration: config), model, data)
    }

    /// The checkpoint and log files of a run in `dir`.
    func checkpoint(_ dir: String) -> String { dir + "/ck.safetensors" }
    func log(_ dir: String) -> String { dir + "/log.jsonl" }

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
        let (a, ma, data) = try makeTrainer(steps: 30)
        let summary = try a.run(checkpoint: checkpoint(dirA), log: log(dirA), loss: step(ma, data))
        #expect(summary.endStep == 30 && !summary.interrupted)

        // Run B: stopped after step 14 (as on Ctrl-C: a checkpoint is written), then a fresh
        // trainer, built from a different initialization, resumes from the file to step 30.
        let (b1, mb1, _) = try makeTrainer(steps: 30)
        let stopped = try b1.run(checkpoint: checkpoint(dirB), log: log(dirB), progress: { if $0.step == 14 { b1.requestStop() } },
                                 loss: step(mb1, data))
        #expect(stopped.interrupted && stopped.endStep == 14)
        let net2 = try MLPScoreNetwork(.init(hiddenWidths: [32, 32]), seed: 99)
        let b2 = try Trainer(model: net2, configuration: b1.configuration)
        try b2.resume(from: checkpoint(dirB))
        #expect(b2.step == 14)
        try b2.run(checkpoint: checkpoint(dirB), log: log(dirB),
                   loss: step(DiffusionModel(network: net2, process: .vpLinear(), parameterization: .epsilon), data))
        #expect(bits(a.model) == bits(b2.model) ? true : false, "parameters differ after resume")
        let (emaA, emaB) = (try #require(a.parts[0].ema).shadow, try #require(b2.parts[0].ema).shadow)
        #expect(emaA.keys.allSatisfy { emaA[$0]!.scalars == emaB[$0]!.scalars })
        // The resumed log keeps the lines up to step 14 and continues: the same steps as run A's.
        #expect(try String(contentsOfFile: log(dirB), encoding: .utf8).split(separator: "\n").count == 6)

        let lines = try String(contentsOfFile: log(dirA), encoding: .utf8).split(separator: "\n")
        #expect(lines.count == 6)   // steps 5, 10, ..., 30
        let last = try #require(try JSONSerialization.jsonObject(with: Data(lines.last!.utf8)) as? [String: Any])
        #expect(last["step"] as? Int == 30 && (last["loss"] as? Double).map { $0.isFinite } == true)
        let ck = try Checkpoint.read(from: checkpoint(dirA))
        #expect(ck.step == 30 && ck.extra["training"] != nil)
        #expect(try FileManager.default.contentsOfDirectory(atPath: dirA).sorted() == ["ck.safetensors", "log.jsonl"])
    }

    @Test func stopRequestSavesAndReturns() throws {
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let (t, m, data) = try makeTrainer(steps: 1000)
        var calls = 0
        let summary = try t.run(checkpoint: checkpoint(dir), progress: { p in
            calls += 1
            if p.step == 3 { t.requestStop() }
        }, loss: step(m, data))
        #expect(summary.interrupted && summary.endStep == 3 && calls == 3)
        #expect(try Checkpoint.read(from: checkpoint(dir)).step == 3)
    }

    /// Resuming refuses a checkpoint written by a run with other settings — naming the
    /// setting, leaving the model and step as they were — and one whose identity (data,
    /// method, …) differs; a run with the same settings resumes.
    @Test func resumeRefusesACheckpointOfOtherSettings() throws {
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let (t, m, data) = try makeTrainer(steps: 10)
        try t.run(checkpoint: checkpoint(dir), loss: step(m, data))
        for (other, setting) in [(try makeTrainer(steps: 10, seed: 6).0, "the seed"), (try makeTrainer(steps: 12).0, "steps"),
                                 (try makeTrainer(steps: 10, peak: 1e-3).0, "the learning rate")] {
            let before = bits(other.model)
            do {
                try other.resume(from: checkpoint(dir))
                Issue.record("resumed a checkpoint of other settings (\(setting))")
            } catch let TrainingError.checkpointMismatch(message) {
                #expect(message.hasPrefix(setting + " was"), "\(message)")
            }
            #expect(bits(other.model) == before && other.step == 0)
        }
        let (otherData, _, _) = try makeTrainer(steps: 10)
        otherData.identity = ["data": "moons"]
        #expect(throws: TrainingError.self) { try otherData.resume(from: checkpoint(dir)) }
        let (same, _, _) = try makeTrainer(steps: 10)
        try same.resume(from: checkpoint(dir))
        #expect(same.step == 10 && bits(same.model) == bits(t.model))
    }

    @Test func nonFiniteLossStops() throws {
        let (t, _, _) = try makeTrainer(steps: 5)
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
