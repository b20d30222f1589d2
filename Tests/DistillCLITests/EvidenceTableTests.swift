import Distill
import DistillSupport
import Foundation
import Testing

/// The evidence pages' arithmetic: figures over seeds as mean ± sample standard deviation, runs
/// matched row by row, and the tables' labels.
struct EvidenceTableTests {
    @Test func spreadIsTheMeanAndTheSampleStandardDeviation() {
        let s = SeedSpread([1, 2, 3, 4])
        #expect(s.mean == 2.5)
        // Σ(x − 2.5)² = 5, divided by n − 1 = 3.
        #expect(abs(s.standardDeviation - (5.0 / 3).squareRoot()) < 1e-15)
        #expect(s.text(decimals: 3) == "2.500 ± 1.291")
        #expect(SeedSpread([0.25]).text(decimals: 2) == "0.25")
        #expect(SeedSpread([0.25]).standardDeviation == 0)
        #expect(SeedSpread([8, 8, 8]).countText(of: 8) == "8/8")
        #expect(SeedSpread([7, 8, 6]).countText(of: 8) == "6–8/8")
    }

    @Test func runsAreCombinedRowByRowAndMustMatch() throws {
        typealias Row = DistillationExperiment.Row
        func run(_ map: Double, _ sw2: Double, gap: Double?) -> [Row] {
            [Row(method: "exact samples (another draw)", nfe: 0, note: "floor", logLikelihoodGap: 0.01, modesCovered: 8, modes: 8,
                 inModeFraction: 1, slicedW2: 0.1),
             Row(method: "kd", nfe: 1, mapError: map, logLikelihoodGap: gap, modesCovered: 8, modes: 8, inModeFraction: 0.9, slicedW2: sw2)]
        }
        let page = try DistillationExperiment.markdown([run(0.1, 0.2, gap: -1), run(0.3, 0.4, gap: -3)])
        let kd = try #require(page.split(separator: "\n").first { $0.hasPrefix("| kd |") })
        // Means 0.2 and 0.3 and -2; sd of a pair {a, b} is |a − b|/√2.
        #expect(kd == "| kd | 1 | 0.2000 ± 0.1414 | -2.000 ± 1.414 | 8/8 | 0.900 ± 0.000 | 0.3000 ± 0.1414 |  |")
        // A figure missing in any seed is not reported as if measured.
        let partial = try DistillationExperiment.markdown([run(0.1, 0.2, gap: -1), run(0.3, 0.4, gap: nil)])
        #expect(partial.contains("| kd | 1 | 0.2000 ± 0.1414 | — |"))
        // Runs whose rows differ cannot be combined.
        var other = run(0.1, 0.2, gap: -1)
        other[1].nfe = 2
        #expect(throws: SeedSpreadError.self) { try DistillationExperiment.markdown([run(0.1, 0.2, gap: -1), other]) }
    }

    @Test func digitsTableLabelsKIDTimesAThousand() {
        let row = DigitsExperiment.Row(method: "cd", nfe: 1, fid: SeedSpread([10, 12]), kid: SeedSpread([0.002, 0.004]), accuracy: nil, note: "")
        let page = DigitsExperiment.markdown([row])
        #expect(page.contains("| method | NFE | FID | KID ×10³ | class accuracy | note |"))
        #expect(page.contains("| cd | 1 | 11.000 ± 1.414 | 3.00 ± 1.41 | — | 2 seeds |"))
    }

    @Test func workRecordsAreReadBackOnlyWhenWellFormedAndOfTheSameSettings() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("evidence-\(getpid())").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        typealias Record = WorkRecord<[FinishedDigitsRow]>
        let path = dir + "/kd-seed1.json"
        let row = FinishedDigitsRow(method: "kd", nfe: 1, fid: 5.9, kid: 0.002, accuracy: nil, note: "", images: [Float](repeating: 0.5, count: 128))
        // The first call computes and keeps the piece, the second reads it back.
        var computed = 0
        for expectReused in [false, true] {
            let (rows, reused) = try Record.reuse(dir, "kd-seed1.json", fingerprint: "A", log: nil, isValid: FinishedDigitsRow.areValid) {
                computed += 1
                return [row]
            }
            #expect(reused == expectReused && computed == 1 && rows.count == 1 && rows[0].fid == 5.9 && rows[0].images.count == 128)
        }
        // Another run's settings, a broken file, and out-of-range figures are refused by name.
        #expect(throws: (any Error).self) { try Record.load(path, fingerprint: "B", isValid: FinishedDigitsRow.areValid) }
        for bad in [FinishedDigitsRow(method: "kd", nfe: -1, fid: 1, kid: 0, accuracy: nil, note: "", images: [Float](repeating: 0, count: 64)),
                    FinishedDigitsRow(method: "kd", nfe: 1, fid: 1, kid: 0, accuracy: 2, note: "", images: [Float](repeating: 0, count: 64)),
                    FinishedDigitsRow(method: "kd", nfe: 1, fid: 1, kid: 0, accuracy: nil, note: "", images: [Float](repeating: 0, count: 65))] {
            try Record(fingerprint: "A", payload: [bad]).write(path)
            #expect(throws: (any Error).self) { try Record.load(path, fingerprint: "A", isValid: FinishedDigitsRow.areValid) }
        }
        let mixtureRow = DistillationExperiment.Row(method: "kd", nfe: 1, modesCovered: 9, modes: 8, slicedW2: 0.1)
        #expect(!DistillationExperiment.areValid([mixtureRow]))
        try Data("{\"fingerprint\": \"A\", \"payload\": [".utf8).write(to: URL(fileURLWithPath: path))
        do { _ = try Record.load(path, fingerprint: "A", isValid: FinishedDigitsRow.areValid); Issue.record("a truncated file was read") } catch {
            #expect("\(error)".contains(path))
        }
    }

    @Test func aStoppedDigitsTeacherIsResumedNotTakenAsFinished() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("teacher-\(getpid())").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let digits = try Dataset.load("digits")
        var settings = DigitsExperiment.Settings()
        settings.unet = UNet.Configuration(imageSize: 8, baseChannels: 8, channelMultipliers: [1], blocksPerLevel: 1, attentionResolutions: [],
                                           headCount: 1, groups: 4)
        settings.teacherBatch = 8
        settings.teacherSteps = 6
        let path = dir + "/teacher.safetensors"
        // A run stopped after 4 of 6 steps leaves its checkpoint at step 4.
        var stopped = 0
        _ = try DigitsExperiment(settings: settings).teacherRecipe.train(on: digits, checkpoint: path, shouldStop: {
            stopped += 1
            return stopped >= 4
        })
        #expect(try Checkpoint.read(from: path).step == 4)
        var lines: [String] = []
        var experiment = DigitsExperiment(settings: settings, teacherCheckpoint: path)
        experiment.log = { lines.append($0) }
        _ = try experiment.trainTeacher(digits)
        #expect(lines.contains { $0.contains("resuming") && $0.contains("at step 4 of 6") }, "\(lines)")
        #expect(try Checkpoint.read(from: path).step == 6)
        // A finished one is loaded as it is.
        lines = []
        _ = try experiment.trainTeacher(digits)
        #expect(lines == ["teacher: loading \(path)"], "\(lines)")
    }
}
