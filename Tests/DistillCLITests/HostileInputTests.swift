import Distill
import Foundation
import Testing

/// Checkpoints with crafted model cards, bad grid files and bad numbers through the command
/// line: each must end with one clear line and exit 1 — no crash, no hang, no output written
/// over a file that was there before.
@Suite(.serialized) struct HostileInputTests {
    /// A checkpoint whose card is the valid one edited by `edit` (a JSON object).
    static func crafted(from valid: Checkpoint, to path: String, _ edit: (inout [String: Any]) -> Void) throws {
        var card = try #require(try JSONSerialization.jsonObject(with: Data(valid.config.utf8)) as? [String: Any])
        edit(&card)
        var ck = valid
        ck.config = String(decoding: try JSONSerialization.data(withJSONObject: card, options: [.sortedKeys]), as: UTF8.self)
        try ck.write(to: path)
    }

    /// Sets `value` at a key path of nested JSON objects ("architecture.mlp._0.hiddenWidths").
    static func set(_ object: inout [String: Any], _ path: [String], _ value: Any) {
        guard let key = path.first else { return }
        if path.count == 1 { object[key] = value; return }
        var inner = object[key] as? [String: Any] ?? [:]
        set(&inner, Array(path.dropFirst()), value)
        object[key] = inner
    }

    @Test func craftedModelCardsFailCleanly() throws {
        let dir = try scratch()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let t = try runDistill(["train", "--data", "ring8", "--steps", "10", "--hidden", "8", "--output", "t", "--quiet"], in: dir)
        #expect(t.status == 0, "stderr: \(t.stderr)")
        let valid = try Checkpoint.read(from: dir + "/t/model.safetensors")
        let mlp = ["architecture", "mlp", "_0"]
        let edits: [(String, ([String: Any]) -> [String: Any])] = [
            ("negative beta", { var c = $0; Self.set(&c, ["process", "vpLinear", "_0", "beta0"], -1.0); return c }),
            ("epsilon above 1", { var c = $0; Self.set(&c, ["process", "vpLinear", "_0", "epsilon"], 2.0); return c }),
            ("ddpm with no steps", { var c = $0; c["process"] = ["ddpm": ["steps": 0, "betaStart": 1e-4, "betaEnd": 0.02]]; return c }),
            ("edm range upside down", { var c = $0; c["process"] = ["edm": ["_0": ["sigmaMin": 80.0, "sigmaMax": 0.002, "sigmaData": 0.5]]]; return c }),
            ("a billion hidden units", { var c = $0; Self.set(&c, mlp + ["hiddenWidths"], [1_000_000_000]); return c }),
            ("no hidden layers", { var c = $0; Self.set(&c, mlp + ["hiddenWidths"], [Int]()); return c }),
            ("huge data dimension", { var c = $0; Self.set(&c, mlp + ["dataDimension"], 1 << 40); c["dataShape"] = [1 << 40]; return c }),
            ("a billion classes", { var c = $0; Self.set(&c, mlp + ["classCount"], 1_000_000_000); c["classCount"] = 1_000_000_000; return c }),
            ("shape that disagrees", { var c = $0; c["dataShape"] = [3]; return c }),
            ("unknown format", { var c = $0; c["format"] = "something.else"; return c }),
            ("negative sigma data", { var c = $0; c["sigmaData"] = -0.5; return c }),
            ("a plan of 0 NFE", { var c = $0; c["plan"] = ["sampler": "ddim", "nfe": 0, "spacing": "karras", "finalDenoise": true]; return c }),
            ("a plan with levels out of order", { var c = $0
                c["plan"] = ["sampler": "ddim", "spacing": "karras", "finalDenoise": true,
                             "levels": [["alpha": 1.0, "sigma": 0.1], ["alpha": 1.0, "sigma": 5.0], ["alpha": 1.0, "sigma": 0.0]]]; return c }),
            ("an absurd guidance", { var c = $0; c["guidance"] = 1e30; return c }),
            ("a data range upside down", { var c = $0; c["dataRange"] = [1.0, -1.0]; return c }),
        ]
        try FileIO.writeAtomically(dir + "/planted.npy", Array("keep me".utf8))
        for (i, (what, edit)) in edits.enumerated() {
            let path = dir + "/bad\(i).safetensors"
            try Self.crafted(from: valid, to: path) { card in card = edit(card) }
            for args in [["sample", "--model", path, "--output", "planted.npy"],
                         ["distill", "--method", "kd", "--teacher", path, "--steps", "10", "--output", "d\(i)"]] {
                let r = try runDistill(args, in: dir, timeLimit: 60)
                #expect(!r.crashed && !r.hung, "\(what): \(args.first!) crashed or hung")
                #expect(r.status == 1, "\(what): \(args.first!) exited \(r.status): \(r.stderr)")
                #expect(r.stderr.contains("bad\(i).safetensors") && r.stderr.split(separator: "\n").count == 1,
                        "\(what): \(args.first!): \(r.stderr)")
            }
            #expect(try FileIO.read(dir + "/planted.npy") == Array("keep me".utf8), "\(what) destroyed the planted output")
        }
    }

    /// A checkpoint never makes the command line open a file it names: a card naming
    /// `gmm:/dev/zero` as its data is sampled (and distilled) without reading it.
    @Test func namedDataIsNeverOpened() throws {
        let dir = try scratch()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        #expect(try runDistill(["train", "--data", "ring8", "--steps", "10", "--hidden", "8", "--output", "t", "--quiet"], in: dir).status == 0)
        let valid = try Checkpoint.read(from: dir + "/t/model.safetensors")
        try Self.crafted(from: valid, to: dir + "/zero.safetensors") { $0["dataSource"] = "gmm:/dev/zero" }
        let s = try runDistill(["sample", "--model", "zero.safetensors", "--count", "10", "--output", "z.npy"], in: dir, timeLimit: 60)
        #expect(s.status == 0 && !s.hung, "stderr: \(s.stderr)")
        let a = try runDistill(["sample", "--model", "zero.safetensors", "--sampler", "analytic-dpm", "--nfe", "5", "--output", "a.npy"],
                               in: dir, timeLimit: 60)
        #expect(a.status == 1 && !a.hung && a.stderr.contains("--data"), "stderr: \(a.stderr)")
        let d = try runDistill(["distill", "--method", "pd", "--teacher", "zero.safetensors", "--steps", "10", "--output", "p"],
                               in: dir, timeLimit: 60)
        #expect(d.status == 1 && !d.hung && d.stderr.contains("training data"), "stderr: \(d.stderr)")
    }

    @Test func badGridFilesAndNumbersFailCleanly() throws {
        let dir = try scratch()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let grids = ["[[1e300, 1e300], [1, 0]]", "[[1, 2], [1, 3]]", "[[0, 1], [1, 0]]", "[]", "{\"a\": 1}", "[[1, 2, 3]]", "not json"]
        for (i, text) in grids.enumerated() {
            try FileIO.writeAtomically(dir + "/g\(i).json", Array(text.utf8))
            let r = try runDistill(["sample", "--model", "ring8", "--grid-file", "g\(i).json", "--output", "o.npy"], in: dir, timeLimit: 60)
            #expect(!r.crashed && !r.hung && r.status == 1, "grid \(text): exit \(r.status), \(r.stderr)")
            #expect(r.stderr.split(separator: "\n").count == 1, "grid \(text): \(r.stderr)")
        }
        #expect(!FileManager.default.fileExists(atPath: dir + "/o.npy"))
        let numbers: [[String]] = [
            ["sample", "--model", "ring8", "--count", "4611686018427387904"],
            ["sample", "--model", "ring8", "--nfe", "100000000"],
            ["sample", "--model", "ring8", "--class", "1", "--guidance", "inf"],
            ["train", "--data", "moons", "--batch", "4611686018427387904", "--output", "t"],
            ["train", "--data", "digits", "--base-channels", "100000", "--output", "t"],
            ["train", "--data", "moons", "--lr", "nan", "--output", "t"],
            ["distill", "--method", "sds", "--teacher", "ring8", "--latent", "4611686018427387904"],
            ["distill", "--method", "pd", "--teacher", "ring8", "--hidden", "4611686018427387904"],
            ["demo", "--teacher-steps", "0"],
        ]
        for args in numbers {
            let r = try runDistill(args, in: dir, timeLimit: 60)
            #expect(!r.crashed && !r.hung && r.status != 0, "\(args): exit \(r.status), \(r.stderr)")
            #expect(r.stderr.split(separator: "\n").count <= 3, "\(args): \(r.stderr)")
        }
        #expect(!FileManager.default.fileExists(atPath: dir + "/t"))
    }
}
