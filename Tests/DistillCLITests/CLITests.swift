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
    /// True when the process died of a signal (a crash), not by exiting.
    var crashed = false
    /// True when it had to be killed after the time limit (a hang).
    var hung = false
}

/// Runs `distill` with `args` in `directory`; `interruptAfter` sends SIGINT after that many
/// seconds once `waitFor` exists.
func runDistill(_ args: [String], in directory: String? = nil, interruptWhen waitFor: String? = nil,
                environment: [String: String] = [:], timeLimit: Double? = nil) throws -> RunResult {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: distillBinary)
    p.arguments = args
    if !environment.isEmpty { p.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 } }
    if let directory { p.currentDirectoryURL = URL(fileURLWithPath: directory) }
    let out = Pipe(), err = Pipe()
    p.standardOutput = out
    p.standardError = err
    try p.run()
    if let waitFor {
        let deadline = Date().addingTimeInterval(120)
        while !FileManager.default.fileExists(atPath: waitFor) && Date() < deadline && p.isRunning { usleep(20_000) }
        usleep(200_000)
        if p.isRunning { p.interrupt() }
        let grace = Date().addingTimeInterval(30)
        while p.isRunning && Date() < grace { usleep(20_000) }
        if p.isRunning { p.terminate() }   // the interrupt was ignored: the test fails on the exit status
    }
    var hung = false
    if let timeLimit {
        let deadline = Date().addingTimeInterval(timeLimit)
        while p.isRunning && Date() < deadline { usleep(20_000) }
        if p.isRunning { hung = true; kill(p.processIdentifier, SIGKILL) }
    }
    let o = out.fileHandleForReading.readDataToEndOfFile(), e = err.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    return RunResult(status: p.terminationStatus, stdout: String(decoding: o, as: UTF8.self), stderr: String(decoding: e, as: UTF8.self),
                     crashed: p.terminationReason == .uncaughtSignal && !hung, hung: hung)
}

func scratch() throws -> String {
    let d = NSTemporaryDirectory() + "distill-cli-" + UUID().uuidString
    try FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true)
    return d
}

/// Deterministic test bytes (a 64-bit LCG).
struct TestLCG {
    var state: UInt64
    init(_ seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state = state &* 6364136223846793005 &+ 1442695040888963407
        return state >> 33
    }
}

/// A PNG starts with its 8-byte signature and an IHDR chunk of the stated size.
func isPNG(_ path: String, width: Int? = nil) -> Bool {
    guard let b = try? FileIO.read(path), b.count > 33 else { return false }
    let sig: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]
    guard Array(b[0..<8]) == sig, String(bytes: b[12..<16], encoding: .ascii) == "IHDR" else { return false }
    let w = Int(b[16]) << 24 | Int(b[17]) << 16 | Int(b[18]) << 8 | Int(b[19])
    return width.map { $0 == w } ?? (w > 0)
}

@Suite(.serialized) struct CLITests {
    @Test func trainSampleEvalDistill() throws {
        let dir = try scratch()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let t = try runDistill(["train", "--data", "ring8", "--steps", "60", "--hidden", "32,32", "--output", "t", "--json"], in: dir)
        #expect(t.status == 0, "stderr: \(t.stderr)")
        let summary = try #require(try JSONSerialization.jsonObject(with: Data(t.stdout.utf8)) as? [String: Any])
        #expect(summary["steps"] as? Int == 60)
        let saved = try TrainedModel.load(dir + "/t/model.safetensors")
        #expect(saved.itemShape == [2] && saved.card?.dataSource == "ring8" && saved.kind == .diffusion)
        #expect(try Checkpoint.read(from: dir + "/t/model.safetensors").step == 60)
        #expect(FileManager.default.fileExists(atPath: dir + "/t/loss.svg") && FileManager.default.fileExists(atPath: dir + "/t/train.jsonl"))

        let s = try runDistill(["sample", "--model", "t/model.safetensors", "--sampler", "unipc-2", "--nfe", "6", "--count", "300",
                                "--output", "s.npy", "--json"], in: dir)
        #expect(s.status == 0, "stderr: \(s.stderr)")
        let samples = try NPY.read(dir + "/s.npy")
        #expect(samples.shape == [300, 2] && samples.scalars.allSatisfy(\.isFinite))
        #expect(isPNG(dir + "/s.png", width: 400))
        let sj = try #require(try JSONSerialization.jsonObject(with: Data(s.stdout.utf8)) as? [String: Any])
        #expect(sj["nfe"] as? Int == 6)

        // The initial state from a file is used exactly as given: same noise, same samples.
        var noiseRNG = Philox(seed: 4)
        try NPY.write(try noiseRNG.normal([50, 2]) * 80, to: dir + "/noise.npy")
        let a = try runDistill(["sample", "--model", "ring8", "--noise", "noise.npy", "--sampler", "heun", "--nfe", "15", "--output", "a.npy", "--picture", "none"], in: dir)
        let b = try runDistill(["sample", "--model", "ring8", "--noise", "noise.npy", "--sampler", "heun", "--nfe", "15", "--output", "b.npy", "--picture", "none"], in: dir)
        #expect(a.status == 0 && b.status == 0, "stderr: \(a.stderr)")
        #expect(try NPY.read(dir + "/a.npy").scalars == NPY.read(dir + "/b.npy").scalars)
        #expect(!FileManager.default.fileExists(atPath: dir + "/a.png"))

        let g = try runDistill(["sample", "--model", "ring8", "--class", "2", "--guidance", "3", "--nfe", "10", "--output", "g.npy"], in: dir)
        #expect(g.status == 0, "stderr: \(g.stderr)")
        let gs = try NPY.read(dir + "/g.npy").scalars
        let mean = (gs.enumerated().filter { $0.offset % 2 == 1 }.map(\.element).reduce(0, +)) / Float(gs.count / 2)
        #expect(abs(mean - 2) < 0.3, "class 2 of the ring sits at (0, 2); mean y \(mean)")

        let e = try runDistill(["eval", "--samples", "a.npy", "--reference", "ring8", "--json"], in: dir)
        #expect(e.status == 0, "stderr: \(e.stderr)")
        let metrics = try #require(try JSONSerialization.jsonObject(with: Data(e.stdout.utf8)) as? [String: Any])
        #expect(metrics["sliced_w2"] is Double && metrics["modes_covered"] is Double && metrics["log_likelihood"] is Double)

        let d = try runDistill(["distill", "--method", "kd", "--teacher", "ring8", "--steps", "40", "--batch", "64", "--hidden", "16,16",
                                "--output", "kd", "--json"], in: dir)
        #expect(d.status == 0, "stderr: \(d.stderr)")
        #expect(FileManager.default.fileExists(atPath: dir + "/kd/kd-nfe1.safetensors"))
        // A student samples the way it was trained without being told: KD's one DDIM step.
        let ds = try runDistill(["sample", "--model", "kd/kd-nfe1.safetensors", "--output", "k.npy", "--json"], in: dir)
        #expect(ds.status == 0, "stderr: \(ds.stderr)")
        #expect((try JSONSerialization.jsonObject(with: Data(ds.stdout.utf8)) as? [String: Any])?["nfe"] as? Int == 1)
        let c = try runDistill(["distill", "--method", "cd", "--teacher", "ring8", "--steps", "20", "--batch", "64", "--hidden", "16,16",
                                "--output", "cd", "--quiet"], in: dir)
        #expect(c.status == 0, "stderr: \(c.stderr)")
        // A consistency checkpoint samples with the consistency sampler, one evaluation per step;
        // another sampler is refused, not silently wrong.
        for nfe in [1, 3] {
            let cs = try runDistill(["sample", "--model", "cd/cd-nfe1.safetensors", "--nfe", String(nfe), "--count", "50",
                                     "--output", "c\(nfe).npy", "--json"], in: dir)
            #expect(cs.status == 0, "stderr: \(cs.stderr)")
            let cj = try #require(try JSONSerialization.jsonObject(with: Data(cs.stdout.utf8)) as? [String: Any])
            #expect(cj["nfe"] as? Int == nfe)
        }
        let heun = try runDistill(["sample", "--model", "cd/cd-nfe1.safetensors", "--sampler", "heun"], in: dir)
        #expect(heun.status != 0 && heun.stderr.contains("consistency sampler"), "stderr: \(heun.stderr)")
        let gd = try runDistill(["distill", "--method", "diff-instruct", "--teacher", "ring8", "--steps", "30", "--batch", "64", "--hidden", "16,16",
                                 "--output", "di", "--json"], in: dir)
        #expect(gd.status == 0, "stderr: \(gd.stderr)")
        let gj = try #require(try JSONSerialization.jsonObject(with: Data(gd.stdout.utf8)) as? [String: Any])
        let stage = try #require((gj["stages"] as? [[String: Any]])?.first)
        #expect(stage["sliced_w2"] is Double && stage["modes_covered"] is Int)
        let gs2 = try runDistill(["sample", "--model", "di/diff-instruct-nfe1.safetensors", "--count", "123", "--output", "gen.npy"], in: dir)
        #expect(gs2.status == 0, "stderr: \(gs2.stderr)")
        #expect(try NPY.read(dir + "/gen.npy").shape == [123, 2])
        let planned = try runDistill(["sample", "--model", "di/diff-instruct-nfe1.safetensors", "--sampler", "heun"], in: dir)
        #expect(planned.status != 0 && planned.stderr.contains("takes no sampling plan"), "stderr: \(planned.stderr)")
    }

    /// The library and the command line sample the same bits: checkpoints written by the CLI (a
    /// teacher, CD, PD and Diff-Instruct students), sampled through `TrainedModel` in this
    /// process and by `distill sample` with the same count and seed.
    @Test func libraryAndCLISampleTheSameBits() throws {
        let dir = try scratch()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let small = ["--batch", "64", "--hidden", "16,16", "--quiet"]
        for args in [["train", "--data", "ring8", "--steps", "40", "--hidden", "16,16", "--output", "t", "--quiet"],
                     ["distill", "--method", "cd", "--teacher", "t/model.safetensors", "--steps", "20", "--output", "s"] + small,
                     ["distill", "--method", "pd", "--teacher", "t/model.safetensors", "--steps", "10", "--output", "s"] + small,
                     ["distill", "--method", "diff-instruct", "--teacher", "t/model.safetensors", "--steps", "20", "--output", "s"] + small] {
            let r = try runDistill(args, in: dir)
            #expect(r.status == 0, "\(args): \(r.stderr)")
        }
        for (file, kind) in [("t/model", TrainedModel.Kind.diffusion), ("s/cd-nfe2", .consistency), ("s/pd-nfe4", .diffusion),
                             ("s/diff-instruct-nfe1", .generator)] {
            let r = try runDistill(["sample", "--model", file + ".safetensors", "--count", "64", "--seed", "9", "--output", file + ".npy",
                                    "--picture", "none"], in: dir)
            #expect(r.status == 0, "\(file): \(r.stderr)")
            let model = try TrainedModel.load(dir + "/" + file + ".safetensors")
            #expect(model.kind == kind)
            let library = try model.sample(count: 64, seed: 9)
            let cli = try NPY.read(dir + "/" + file + ".npy")
            #expect(cli.shape == library.shape && cli.scalars == library.scalars, "\(file): the CLI and the library differ")
        }
    }

    /// `distill sample --model FOLDER` samples a diffusers pipeline folder (the vpred fixture)
    /// with the same bits as `TrainedModel.load(FOLDER)` in this process, by default and with a
    /// plan given on the command line.
    @Test func samplesADiffusersPipelineFolder() throws {
        let dir = try scratch()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let folder = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("DistillTests/Fixtures/diffusers/vpred").path
        let model = try TrainedModel.load(folder)
        for (name, options, plan) in [("default", [String](), nil as SamplingPlan?),
                                      ("ddim5", ["--sampler", "ddim", "--nfe", "5", "--grid", "leading"], SamplingPlan(sampler: .ddim, nfe: 5, spacing: .leading))] {
            let r = try runDistill(["sample", "--model", folder, "--count", "3", "--seed", "4", "--output", name + ".npy", "--picture", "none"] + options, in: dir)
            #expect(r.status == 0, "\(name): \(r.stderr)")
            let cli = try NPY.read(dir + "/" + name + ".npy")
            let library = try model.sample(count: 3, plan: plan, seed: 4)
            #expect(cli.shape == [3, 3, 8, 8] && cli.scalars == library.scalars, "\(name): the CLI and the library differ")
        }
    }

    /// Ctrl-C during `distill distill` saves the running stage and exits 130; `--resume`
    /// finishes the run with the same bits as an uninterrupted one.
    @Test func interruptedDistillationResumesWithTheSameBits() throws {
        let dir = try scratch()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let args = ["distill", "--method", "pd", "--teacher", "ring8", "--steps", "300", "--batch", "64", "--hidden", "32,32", "--quiet"]
        let whole = try runDistill(args + ["--output", "whole"], in: dir)
        #expect(whole.status == 0, "stderr: \(whole.stderr)")
        let cut = try runDistill(args + ["--output", "cut"], in: dir, interruptWhen: dir + "/cut/pd-nfe16.safetensors")
        #expect(cut.status == 130, "exit \(cut.status), stderr: \(cut.stderr)")
        #expect(cut.stderr.contains("--resume"), "stderr: \(cut.stderr)")
        let states = try FileManager.default.contentsOfDirectory(atPath: dir + "/cut").filter { $0.hasSuffix(".state.safetensors") }
        #expect(states.contains(".pd-pd8.state.safetensors"), "\(states)")
        #expect(!FileManager.default.fileExists(atPath: dir + "/cut/pd-nfe1.safetensors"))
        let again = try runDistill(args + ["--output", "cut"], in: dir)
        #expect(again.status != 0 && again.stderr.contains("exists from an earlier run"), "stderr: \(again.stderr)")
        let resumed = try runDistill(args + ["--output", "cut", "--resume"], in: dir)
        #expect(resumed.status == 0, "stderr: \(resumed.stderr)")
        for k in [16, 8, 4, 2, 1] {
            let a = try Checkpoint.read(from: dir + "/whole/pd-nfe\(k).safetensors").model
            let b = try Checkpoint.read(from: dir + "/cut/pd-nfe\(k).safetensors").model
            #expect(a.keys.sorted() == b.keys.sorted() && a.allSatisfy { b[$0.key]?.scalars == $0.value.scalars }, "pd-nfe\(k) differs")
        }
        let changed = try runDistill(["distill", "--method", "pd", "--teacher", "ring8", "--steps", "300", "--batch", "32", "--hidden", "32,32",
                                      "--quiet", "--output", "cut", "--resume"], in: dir)
        #expect(changed.status != 0 && changed.stderr.contains("settings"), "a resume with another batch must be refused: \(changed.stderr)")
    }

    /// `train` never replaces a model without being asked, and a resume must match the run.
    @Test func trainKeepsModelsUnlessTold() throws {
        let dir = try scratch()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let args = ["train", "--data", "moons", "--steps", "30", "--hidden", "16", "--output", "t", "--quiet"]
        #expect(try runDistill(args, in: dir).status == 0)
        let before = try FileIO.read(dir + "/t/model.safetensors")
        let again = try runDistill(args, in: dir)
        #expect(again.status != 0 && again.stderr.contains("--resume") && again.stderr.contains("--force"), "stderr: \(again.stderr)")
        #expect(try FileIO.read(dir + "/t/model.safetensors") == before)
        let seed = try runDistill(args + ["--seed", "5", "--resume"], in: dir)
        #expect(seed.status != 0 && seed.stderr.contains("seed"), "stderr: \(seed.stderr)")
        #expect(try runDistill(args + ["--seed", "5", "--force"], in: dir).status == 0)
        #expect(try FileIO.read(dir + "/t/model.safetensors") != before)
    }

    @Test func demoWritesItsPictures() throws {
        let dir = try scratch()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let r = try runDistill(["demo", "--output", "d", "--teacher-steps", "60", "--distill-steps", "20", "--quiet"], in: dir)
        #expect(r.status == 0, "stderr: \(r.stderr)")
        for f in ["samplers.png", "distillation.png"] { #expect(isPNG(dir + "/d/" + f), "\(f)") }
        for f in ["quality_vs_nfe.svg", "loss.svg"] {
            let text = (try? String(contentsOfFile: dir + "/d/" + f, encoding: .utf8)) ?? ""
            #expect(text.hasPrefix("<svg") && text.contains("</svg>"), "\(f)")
        }
        #expect(r.stdout.contains("| kd (Luhman & Luhman 2021) | 1 |") && r.stdout.contains("done in"))
    }

    @Test func interruptedTrainingKeepsItsCheckpoint() throws {
        let dir = try scratch()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let r = try runDistill(["train", "--data", "moons", "--steps", "200000", "--checkpoint-every", "50", "--hidden", "16",
                                "--output", "t", "--quiet"], in: dir, interruptWhen: dir + "/t/model.safetensors")
        #expect(r.status == 130, "exit \(r.status), stderr: \(r.stderr)")
        let ck = try Checkpoint.read(from: dir + "/t/model.safetensors")
        #expect(ck.step >= 50)
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: dir + "/t").filter { $0.hasPrefix(".") }
        #expect(leftovers.isEmpty, "temporary files left: \(leftovers)")
    }

    /// Image data train a U-Net (chosen by the data), whose checkpoint samples image grids and
    /// scores FID/KID.
    @Test func trainSampleEvalUNetOnDigits() throws {
        let dir = try scratch()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let t = try runDistill(["train", "--data", "digits", "--class-conditional", "--steps", "4", "--batch", "16", "--base-channels", "8",
                                "--blocks-per-level", "1", "--output", "u", "--json"], in: dir)
        #expect(t.status == 0, "stderr: \(t.stderr)")
        let saved = try TrainedModel.load(dir + "/u/model.safetensors")
        let card = try #require(saved.card)
        guard case let .unet(config) = card.architecture else { Issue.record("not a U-Net: \(card.architecture)"); return }
        #expect(config.imageSize == 8 && config.imageChannels == 1 && config.classCount == 10 && config.channelMultipliers == [1, 2])
        let step = try Checkpoint.read(from: dir + "/u/model.safetensors").step
        #expect(saved.itemShape == [1, 8, 8] && step == 4)
        let s = try runDistill(["sample", "--model", "u/model.safetensors", "--sampler", "dpmpp-2m", "--nfe", "3", "--count", "20",
                                "--class", "4", "--guidance", "1.5", "--output", "u.npy"], in: dir)
        #expect(s.status == 0, "stderr: \(s.stderr)")
        let x = try NPY.read(dir + "/u.npy")
        #expect(x.shape == [20, 1, 8, 8] && x.scalars.allSatisfy(\.isFinite))
        #expect(isPNG(dir + "/u.png"))
        let e = try runDistill(["eval", "--samples", "u.npy", "--reference", "digits", "--json"], in: dir)
        #expect(e.status == 0, "stderr: \(e.stderr)")
        let metrics = try #require(try JSONSerialization.jsonObject(with: Data(e.stdout.utf8)) as? [String: Any])
        #expect(metrics["fid_digits"] is Double && metrics["kid_digits"] is Double)
        // A stochastic convolutional generator from the U-Net teacher, sampled as images.
        let g = try runDistill(["distill", "--method", "diff-instruct", "--teacher", "u/model.safetensors", "--generator", "conv", "--stochastic",
                                "--latent", "8", "--steps", "10", "--batch", "8", "--output", "g", "--quiet"], in: dir)
        #expect(g.status == 0, "stderr: \(g.stderr)")
        let gs = try runDistill(["sample", "--model", "g/diff-instruct-nfe1.safetensors", "--count", "7", "--output", "g.npy"], in: dir)
        #expect(gs.status == 0, "stderr: \(gs.stderr)")
        #expect(try NPY.read(dir + "/g.npy").shape == [7, 1, 8, 8] && isPNG(dir + "/g.png"))
        // PD students that copy the U-Net teacher: each stage saved as a U-Net checkpoint.
        let pd = try runDistill(["distill", "--method", "pd", "--teacher", "u/model.safetensors", "--student", "teacher", "--steps", "10",
                                 "--batch", "8", "--output", "p", "--quiet"], in: dir)
        #expect(pd.status == 0, "stderr: \(pd.stderr)")
        for k in [16, 8, 4, 2, 1] {
            let stage = try #require(try TrainedModel.load(dir + "/p/pd-nfe\(k).safetensors").card)
            #expect(stage.architecture == card.architecture && stage.parameterization == .v && stage.plan?.sampler == .ddim)
        }
        let mixtureStudents = try runDistill(["distill", "--method", "pd", "--teacher", "ring8", "--student", "teacher", "--steps", "10"], in: dir)
        #expect(mixtureStudents.status != 0 && mixtureStudents.stderr.contains("--student teacher needs a diffusion-model checkpoint"),
                "stderr: \(mixtureStudents.stderr)")
        let classGen = try runDistill(["distill", "--method", "sds", "--teacher", "ring8", "--class", "3", "--guidance", "2", "--steps", "10",
                                       "--output", "c3", "--quiet"], in: dir)
        #expect(classGen.status == 0, "stderr: \(classGen.stderr)")
        let badClass = try runDistill(["distill", "--method", "sds", "--teacher", "ring8", "--class", "9", "--steps", "10"], in: dir)
        #expect(badClass.status != 0 && badClass.stderr.contains("--class 9"), "stderr: \(badClass.stderr)")
        let notImages = try runDistill(["distill", "--method", "sds", "--teacher", "ring8", "--generator", "conv", "--steps", "10"], in: dir)
        #expect(notImages.status != 0 && notImages.stderr.contains("--generator conv needs an image teacher"), "stderr: \(notImages.stderr)")
        // Sizes the U-Net cannot halve, and a U-Net for 2-D points, are one clear line each.
        let odd = try runDistill(["train", "--data", "digits", "--channel-multipliers", "1,1,1,1,1", "--steps", "1", "--output", "odd"], in: dir)
        #expect(odd.status != 0 && odd.stderr.contains("image size 8 cannot be halved 4 times"), "stderr: \(odd.stderr)")
        let flat = try runDistill(["train", "--data", "moons", "--network", "unet", "--steps", "1", "--output", "flat"], in: dir)
        #expect(flat.status != 0 && flat.stderr.contains("--network unet needs image data"), "stderr: \(flat.stderr)")
    }

    /// FID/KID on images other than the 8×8 digits: a classifier trained on a labelled IDX
    /// reference, written, then reused.
    @Test func evalTrainsAndReusesAClassifier() throws {
        let dir = try scratch()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        // 300 labelled 12×12 images: class k lights a 3×3 block at a place of its own, plus noise.
        let (n, side) = (300, 12)
        var rng = TestLCG(5)
        var pixels = [UInt8](), labels = [UInt8]()
        for i in 0..<n {
            let k = i % 10
            labels.append(UInt8(k))
            for y in 0..<side {
                for x in 0..<side {
                    let lit = (y / 3 == k / 4 + 1) && (x / 3 == k % 4)
                    pixels.append(UInt8(min(255, (lit ? 200 : 20) + Int(rng.next() % 40))))
                }
            }
        }
        func be32(_ v: Int) -> [UInt8] { [24, 16, 8, 0].map { UInt8((v >> $0) & 0xFF) } }
        try FileIO.writeAtomically(dir + "/img.idx", [0, 0, 8, 3] + be32(n) + be32(side) + be32(side) + pixels)
        try FileIO.writeAtomically(dir + "/lab.idx", [0, 0, 8, 1] + be32(n) + labels)
        let images = try ImageDataset.idx(images: dir + "/img.idx", labels: nil).images
        try NPY.write(images, to: dir + "/s.npy")
        let args = ["eval", "--samples", "s.npy", "--reference", "idx:img.idx,lab.idx", "--classifier", "clf.safetensors",
                    "--classifier-steps", "300", "--json"]
        let first = try runDistill(args, in: dir)
        #expect(first.status == 0, "stderr: \(first.stderr)")
        let m1 = try #require(try JSONSerialization.jsonObject(with: Data(first.stdout.utf8)) as? [String: Any])
        let accuracy = try #require(m1["classifier_held_out_accuracy"] as? Double)
        #expect(accuracy > 0.9, "held-out accuracy \(accuracy) on 10 well-separated classes")
        let fid = try #require(m1["fid"] as? Double)
        #expect(abs(fid) < 1e-3, "the reference against itself: FID \(fid)")
        #expect(FileManager.default.fileExists(atPath: dir + "/clf.safetensors"))
        let second = try runDistill(args, in: dir)
        let m2 = try #require(try JSONSerialization.jsonObject(with: Data(second.stdout.utf8)) as? [String: Any])
        #expect(m2["classifier_held_out_accuracy"] == nil && (m2["fid"] as? Double).map { abs($0 - fid) < 1e-9 } == true)
        let unlabelled = try runDistill(["eval", "--samples", "s.npy", "--reference", "npy:s.npy", "--classifier", "other.safetensors"], in: dir)
        #expect(unlabelled.status != 0 && unlabelled.stderr.contains("has no labels"), "stderr: \(unlabelled.stderr)")
    }

    @Test func badInputGivesOneClearLine() throws {
        let dir = try scratch()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let cases: [([String], String)] = [
            (["sample", "--model", "ring8", "--sampler", "nope"], "unknown sampler 'nope'; valid: euler"),
            (["sample", "--model", "ring8", "--sampler", "dpmpp2m"], "did you mean 'dpmpp-2m'"),
            (["sample", "--model", "ring8", "--count", "0"], "--count must be in 1..."),
            (["sample", "--model", "ring8", "--nfe", "0"], "--nfe must be in 1..."),
            (["sample", "--model", "ring8", "--guidance", "nan", "--class", "1"], "guidance"),
            (["train", "--data", "moons", "--steps", "-3"], "--steps"),
            (["train", "--data", "moons", "--hidden", "9999999"], "--hidden"),
            (["distill", "--method", "pdd", "--teacher", "ring8"], "did you mean 'pd'"),
            (["sample", "--model", "missing.safetensors"], "missing.safetensors"),
            (["train", "--data", "nowhere"], "unknown data 'nowhere'"),
            (["train", "--data", "moons", "--process", "vp-weird"], "unknown process 'vp-weird'"),
            (["sample", "--model", "ring8", "--class", "9"], "--class 9"),
            (["sample", "--model", "ring8", "--grid", "zigzag"], "unknown grid 'zigzag'"),
            (["eval", "--samples", "none.npy", "--reference", "ring8"], "none.npy"),
            (["distill", "--method", "magic", "--teacher", "ring8"], "unknown method 'magic'"),
            (["distill", "--method", "pd", "--teacher", "ring8", "--student", "nope"], "unknown --student 'nope'"),
            (["bench", "--group", "nope"], "unknown benchmark group 'nope'"),
        ]
        for (args, phrase) in cases {
            let r = try runDistill(args, in: dir)
            #expect(r.status != 0, "\(args) should fail")
            #expect(r.stderr.contains(phrase), "\(args): stderr was \(r.stderr)")
            #expect(r.stderr.split(separator: "\n").count <= 3, "\(args): \(r.stderr)")
        }
        // A corrupt checkpoint names the file and leaves nothing behind.
        try FileIO.writeAtomically(dir + "/bad.safetensors", [1, 2, 3])
        let r = try runDistill(["sample", "--model", "bad.safetensors"], in: dir)
        #expect(r.status != 0 && r.stderr.contains("bad.safetensors"))
    }

    @Test func benchWritesResultPages() throws {
        let dir = try scratch()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let args = ["bench", "--quick", "--group", "generators", "--group", "digits", "--markdown-dir", "pages", "--json", "--work", "w"]
        let r = try runDistill(args, in: dir)
        #expect(r.status == 0, "stderr: \(r.stderr)")
        // A rerun with the same work folder reads every finished piece back and writes the same pages.
        func pages() throws -> [[UInt8]] {
            try ["generators-ring8.md", "generators-gmm64.md", "digits.md", "digits-cd-nfe1.png", "generators-ring8-vsd.png"].map {
                try FileIO.read(dir + "/pages/" + $0)
            }
        }
        let first = try pages()
        let again = try runDistill(args, in: dir)
        #expect(again.status == 0 && again.stderr.contains("seed2.json: read from") && again.stderr.contains("teacher: loading"), "stderr: \(again.stderr)")
        #expect(try pages() == first)
        // Progress on stderr while the evidence groups run; results only on stdout.
        #expect(r.stderr.contains("generators on ring8, seed 2 of 2") && r.stderr.contains("teacher: U-Net")
                && r.stderr.contains("teacher: step 30 of 30"), "stderr: \(r.stderr)")
        let page = try String(contentsOfFile: dir + "/pages/generators-ring8.md", encoding: .utf8)
        #expect(page.contains("Written by `distill bench --group generators --markdown-dir pages`") && page.contains("| sds (Poole"))
        // Figures over the seeds (two with --quick), the floor first.
        #expect(page.contains("mean ± sd over 2 seeds") && page.contains("| exact samples (another draw) | — | ") && page.contains(" ± "))
        #expect(isPNG(dir + "/pages/generators-ring8-diff-instruct.png"))
        #expect(FileManager.default.fileExists(atPath: dir + "/pages/generators-gmm64.md"))
        // The digits page: the teacher, every D2F method's stages and every generator, each with FID.
        let digits = try String(contentsOfFile: dir + "/pages/digits.md", encoding: .utf8)
        for method in ["teacher dpmpp-2m", "teacher ddim", "kd (", "pd (", "cfd (", "tract (", "boot (", "dsno (", "guided (", "cd (", "ct (",
                       "reflow (", "diff-instruct (", "sds (", "vsd ("] {
            #expect(digits.contains("| \(method)"), "digits page lacks \(method)")
        }
        // KID's scale is labelled, the floor is the disjoint half, repeated rows give their seeds.
        #expect(digits.contains("| KID ×10³ |") && digits.contains("| real digits (the other half) |") && digits.contains("| cd (Song et al. 2023) | 1 |")
                && digits.contains("; 2 seeds |"))
        #expect(isPNG(dir + "/pages/digits-teacher-dpmpp-2m-nfe21.png"))
        let fids = r.stdout.split(separator: "\n").compactMap { line -> Double? in
            guard let o = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any], (o["name"] as? String)?.hasPrefix("digits_") == true
            else { return nil }
            return o["value"] as? Double
        }
        #expect(fids.count >= 25 && fids.allSatisfy { $0.isFinite && $0 >= 0 }, "\(fids)")
    }

    @Test func benchEmitsJSONLines() throws {
        let r = try runDistill(["bench", "--quick", "--group", "elementwise", "--json"])
        #expect(r.status == 0, "stderr: \(r.stderr)")
        let lines = r.stdout.split(separator: "\n")
        #expect(lines.count == 8)   // peak, triad, six kernels
        for line in lines {
            let obj = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
            #expect(obj["name"] is String && obj["value"] is Double && obj["unit"] is String)
            #expect(obj["simd"] as? String == Runtime.simdLevel.rawValue)
        }
    }

    /// `--simd` and DISTILL_SIMD cap the level (each record says which); a level the CPU lacks
    /// or a bad name is a one-line error.
    @Test func simdLevelFromFlagAndEnvironment() throws {
        let r = try runDistill(["bench", "--quick", "--group", "elementwise", "--json", "--simd", "scalar"])
        #expect(r.status == 0, "stderr: \(r.stderr)")
        let levels = try r.stdout.split(separator: "\n").map {
            try #require(try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any])["simd"] as? String
        }
        #expect(levels.count == 8 && levels.allSatisfy { $0 == "scalar" }, "\(levels)")
        let viaEnvironment = try runDistill(["bench", "--quick", "--group", "elementwise", "--json"], environment: ["DISTILL_SIMD": "scalar"])
        #expect(viaEnvironment.status == 0, "stderr: \(viaEnvironment.stderr)")
        #expect(viaEnvironment.stdout.split(separator: "\n").allSatisfy { $0.contains("\"simd\":\"scalar\"") })
        let missing = SIMDLevel.allCases.first { !Runtime.supportedSIMDLevels.contains($0) }!   // neon on x86-64, avx2 on arm64
        let supported = Runtime.supportedSIMDLevels.map(\.rawValue).joined(separator: ", ")
        for (args, env, message) in [
            (["bench", "--group", "elementwise", "--simd", missing.rawValue], [:],
             "--simd \(missing.rawValue): not available on this CPU; supported: \(supported)"),
            (["bench", "--group", "elementwise", "--simd", "sse"], [:], "--simd sse: expected one of scalar, avx2, avx512, neon"),
            (["sample", "--help"], ["DISTILL_SIMD": "fast"], "DISTILL_SIMD=fast: expected a level this CPU has: \(supported)"),
            (["sample", "--help"], ["DISTILL_SIMD": missing.rawValue], "DISTILL_SIMD=\(missing.rawValue): expected a level this CPU has: \(supported)"),
        ] {
            let bad = try runDistill(args, environment: env)
            #expect(bad.status == 1 && bad.stdout.isEmpty && bad.stderr == "distill: error: \(message)\n", "\(args) \(env): \(bad.stderr)")
        }
    }
}

/// The README's command lines and every command's `--help` examples run as written, with
/// training lengths cut down (`--steps 12`, short demos, `bench --quick`), in the order that
/// makes the files each one reads exist.
@Suite(.serialized) struct ExampleTests {
    /// The package root (this file is Tests/DistillCLITests/CLITests.swift).
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().path

    /// Lines starting with `distill ` (after a `swift run -c release ` prefix), comments cut.
    static func commands(in text: String) -> [[String]] {
        text.split(separator: "\n").compactMap { raw -> [String]? in
            var line = raw.trimmingCharacters(in: .whitespaces)
            if line.hasPrefix("swift run -c release ") { line.removeFirst("swift run -c release ".count) }
            guard line.hasPrefix("distill ") else { return nil }
            if let hash = line.range(of: " #") { line = String(line[..<hash.lowerBound]) }
            return Array(line.split(separator: " ").map(String.init).dropFirst())
        }
    }

    /// The example with its training shortened.
    static func shortened(_ args: [String]) -> [String] {
        let short = ["--steps": "12", "--teacher-steps": "30", "--distill-steps": "10", "--generator-steps": "10", "--classifier-steps": "50"]
        var out = args
        for i in out.indices.dropLast() where short[out[i]] != nil { out[i + 1] = short[out[i]]! }
        switch out.first {
        case "train", "distill": if !out.contains("--steps") { out += ["--steps", "12"] }
        case "demo":
            for key in ["--teacher-steps", "--distill-steps", "--generator-steps"] where !out.contains(key) { out += [key, short[key]!] }
            out.append("--quiet")
        case "bench": out.append("--quick")
        default: break
        }
        return out
    }

    @Test func readmeAndHelpExamplesRun() throws {
        let dir = try scratch()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let readme = try String(contentsOfFile: Self.root + "/README.md", encoding: .utf8)
        let block = try #require(readme.components(separatedBy: "## Command line").dropFirst().first?.components(separatedBy: "```").dropFirst().first)
        var all = Self.commands(in: block)
        #expect(all.count >= 8, "README command lines: \(all)")
        for command in ["train", "distill", "sample", "eval", "demo", "bench"] {
            let help = try runDistill([command, "--help"], environment: ["COLUMNS": "1000"])
            let examples = Self.commands(in: help.stdout.components(separatedBy: "Examples:").dropFirst().first ?? "")
            #expect(examples.count >= 2, "\(command) --help has no examples")
            all += examples
        }
        for args in all.map(Self.shortened) {
            let r = try runDistill(args, in: dir)
            #expect(r.status == 0, "distill \(args.joined(separator: " ")): \(r.stderr)")
        }
    }
}
