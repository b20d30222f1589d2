import Distill
import Foundation
import Testing

/// The `distill` executable next to the test bundle (both are build products).
let distillBinary = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
    .deletingLastPathComponent().appendingPathComponent("distill").path

struct RunResult {
    let status: Int32
    let stdout: String
    let stderr: String
}

func runDistill(_ args: [String]) throws -> RunResult {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: distillBinary)
    p.arguments = args
    let out = Pipe(), err = Pipe()
    p.standardOutput = out
    p.standardError = err
    try p.run()
    let o = out.fileHandleForReading.readDataToEndOfFile(), e = err.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    return RunResult(status: p.terminationStatus, stdout: String(decoding: o, as: UTF8.self), stderr: String(decoding: e, as: UTF8.self))
}

@Suite(.serialized) struct CLITests {
    @Test func demoTrainsAndSavesACheckpoint() throws {
        let dir = NSTemporaryDirectory() + "distill-cli-" + UUID().uuidString
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let r = try runDistill(["demo", "--steps", "40", "--batch", "64", "--output", dir, "--json"])
        #expect(r.status == 0, "stderr: \(r.stderr)")
        let obj = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        #expect((obj["samples_per_second"] as? Double ?? 0) > 0)
        #expect((obj["steps"] as? Int) == 40)
        let path = try #require(obj["checkpoint"] as? String)
        let ck = try Checkpoint.read(from: path)
        #expect(ck.step == 40 && ck.ema != nil && !ck.optimizerTensors.isEmpty)
        let config = try JSONDecoder().decode(MLPScoreNetwork.Configuration.self, from: Data(ck.config.utf8))
        let net = try MLPScoreNetwork(config)
        try net.load(ck.model)
    }

    @Test func demoPrintsProgressAndSummary() throws {
        let dir = NSTemporaryDirectory() + "distill-cli-" + UUID().uuidString
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let r = try runDistill(["demo", "--steps", "20", "--batch", "32", "--output", dir, "--dataset", "moons"])
        #expect(r.status == 0)
        #expect(r.stdout.contains("[20/20] loss"))
        #expect(r.stdout.contains("samples/s"))
    }

    @Test func badArgumentsGiveOneClearLine() throws {
        let r = try runDistill(["demo", "--dataset", "nope"])
        #expect(r.status != 0)
        #expect(r.stderr.contains("unknown dataset 'nope'") && r.stderr.contains("8gaussians"))
        let b = try runDistill(["bench", "--group", "nope"])
        #expect(b.status != 0)
        #expect(b.stderr.contains("unknown benchmark group 'nope'"))
    }

    @Test func benchEmitsJSONLines() throws {
        let r = try runDistill(["bench", "--quick", "--group", "elementwise", "--json"])
        #expect(r.status == 0, "stderr: \(r.stderr)")
        let lines = r.stdout.split(separator: "\n")
        #expect(lines.count == 8)   // peak, triad, six kernels
        for line in lines {
            let obj = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
            #expect(obj["name"] is String && obj["value"] is Double && obj["unit"] is String)
        }
    }
}
