import Distill
import Foundation

/// The distillation evidence on the 8×8 digits (`docs/methods.md` §6–§8): a class-conditional
/// U-Net teacher trained by denoising score matching with label dropout, every D2F method and
/// every D2G method distilled from it (students take the teacher's U-Net or are MLPs over the
/// 64 pixels, per ``Settings/teacherArchitecture``; generators are MLPs), and each result's FID
/// and KID on the in-project digit classifier's features against half the real digits (the
/// floor is the other, disjoint half), next to the teacher with DDIM at the students' NFE and
/// with its usual samplers. Guided rows also give the classifier's accuracy on the requested
/// classes. The methods of ``Settings/repeated`` (generators and consistency students, whose
/// figures vary most between runs) are trained ``Settings/seeds`` times and reported as
/// mean ± sd.
package struct DigitsExperiment {
    package struct Settings: Sendable, Codable {
        /// The teacher U-Net (image size, channels and classes are set from the digits).
        package var unet = UNet.Configuration(imageSize: 8, baseChannels: 32, channelMultipliers: [1, 2], blocksPerLevel: 1,
                                              attentionResolutions: [4], headCount: 4, groups: 8)
        package var teacherSteps = 4000
        package var teacherBatch = 64
        /// Steps, batch and MLP widths of every D2F student stage.
        package var students: Distiller.Settings = {
            var s = Distiller.Settings()
            s.steps = 1500
            s.batch = 128
            s.hidden = [512, 512, 512]
            s.learningRate = 1e-3
            return s
        }()
        /// Methods whose students take the teacher's U-Net (KD, PD, CFD, TRACT and guided students
        /// start from its weights and CD students from its denoiser, as in their papers); the
        /// others are fresh MLPs of the students' widths.
        package var teacherArchitecture: [DistillationMethod] = [.kd, .pd, .cfd, .tract, .guided, .cd]
        /// D2G generator settings.
        package var generator: Distiller.Settings = {
            var s = Distiller.Settings()
            s.steps = 3000
            s.batch = 256
            s.seed = 3
            s.hidden = [512, 512, 512]
            s.fakeHidden = [512, 512, 512]
            s.fakeStepsPerGeneratorStep = 4
            s.generator.generatorLearningRate = 1e-3
            return s
        }()
        /// Generated images scored per row (the real set has 1797).
        package var samples = 1000
        package var seed: UInt64 = 0
        /// Methods trained ``seeds`` times (seeds of training, data order and evaluation noise):
        /// the generators and the consistency students.
        package var repeated: [DistillationMethod] = [.cd, .ct, .boot, .dsno, .diffInstruct, .sds, .vsd]
        /// Runs of each method in ``repeated``.
        package var seeds = 5
        package init() {}
    }

    /// A table row: its figures over the seeds it was measured with (one for most rows).
    package struct Row: Sendable {
        package var method: String
        package var nfe: Int
        package var fid: SeedSpread
        /// KID (unbiased MMD², cubic kernel) in its own units; the page prints it ×10³.
        package var kid: SeedSpread
        /// The classifier's accuracy on the requested class (class-conditional rows only).
        package var accuracy: SeedSpread?
        package var note: String

        package init(method: String, nfe: Int, fid: SeedSpread, kid: SeedSpread, accuracy: SeedSpread?, note: String) {
            self.method = method
            self.nfe = nfe
            self.fid = fid
            self.kid = kid
            self.accuracy = accuracy
            self.note = note
        }
    }

    package var settings: Settings
    /// Where the teacher's checkpoint is written; an existing one is reused (not retrained).
    package var teacherCheckpoint: String?
    /// A folder keeping each finished method run (its rows and first images), so that a killed
    /// run resumes after the last finished one. Entries of runs with other settings are refused.
    package var workDirectory: String?
    package var methods: [DistillationMethod] = [.kd, .pd, .cfd, .tract, .boot, .dsno, .guided, .cd, .ct, .reflow]
    package var generatorMethods: [DistillationMethod] = [.diffInstruct, .sds, .vsd]
    /// Guidance weights of the guided teacher and of the guided students (stage two distills
    /// the first).
    package var guidanceWeights: [Float] = [1, 0, 3]
    package var log: ((String) -> Void)?
    /// (phase, step, total) during training phases.
    package var progress: ((String, Int, Int) -> Void)?
    /// Receives every evaluated sample set (method, NFE, samples (N, 64)), e.g. to draw them.
    package var onSamples: ((String, Int, Tensor) -> Void)?

    package init(settings: Settings = .init(), teacherCheckpoint: String? = nil) {
        self.settings = settings
        self.teacherCheckpoint = teacherCheckpoint
    }

    /// Trains (or loads) the teacher, distills it by every method, and scores everything.
    package func run() throws -> [Row] {
        let s = settings
        let digits = try Dataset.load("digits")
        // The reference set is every other digit; the floor is the other half, disjoint from it.
        let reference = try digits.rows.gatherRows(Array(stride(from: 0, to: digits.rows.shape[0], by: 2)))
        let otherHalf = try digits.rows.gatherRows(Array(stride(from: 1, to: digits.rows.shape[0], by: 2)))
        let classifier = try DigitClassifier.pretrainedDigits8x8()
        let teacher = try trainTeacher(digits)
        let null = digits.classCount!
        var rows: [Row] = []
        // The first images of each scored set since the last reset (kept with finished runs).
        var captured: [[Float]] = []
        func score(_ method: String, _ nfe: Int, _ x: Tensor, labels: [Int]? = nil, _ note: String = "", seed k: UInt64 = 0) throws -> Row {
            let flat = try x.reshaped([x.shape[0], 64])
            let fid = try classifier.frechetDistance(reference, flat)
            let kid = try classifier.kernelInceptionDistance(reference, flat, subsets: 20, subsetSize: min(500, x.shape[0]), seed: s.seed &+ 7).mean
            let acc = try labels.map { try classifier.accuracy(images: flat, labels: $0) }
            if k == 0 { onSamples?(method, nfe, flat) }
            captured.append(try flat.slice(0..<min(50, flat.shape[0])).scalars)
            log?(String(format: "%-34@ NFE %2d  FID %8.3f  KID×10³ %8.2f%@%@", method as NSString, nfe, fid, kid * 1000,
                        acc.map { String(format: "  accuracy %.3f", $0) } ?? "", s.seeds > 1 && k > 0 ? "  (seed \(k + 1))" : ""))
            return Row(method: method, nfe: nfe, fid: SeedSpread([fid]), kid: SeedSpread([kid]), accuracy: acc.map { SeedSpread([$0]) }, note: note)
        }
        func record(_ method: String, _ nfe: Int, _ x: Tensor, labels: [Int]? = nil, _ note: String = "") throws {
            rows.append(try score(method, nfe, x, labels: labels, note))
        }

        // Baselines: the other half of the real digits (the floor at this size), the teacher.
        try record("real digits (the other half)", 0, otherHalf, "floor: \(otherHalf.shape[0]) real digits disjoint from the reference")
        let n = s.samples
        // Evaluation noise of run k of a repeated method (k = 0 for every other row).
        func noise(_ k: UInt64) throws -> Tensor {
            var rng = Philox(seed: s.seed &+ 2024, stream: k)
            return try rng.normal([n, 64])
        }
        let noise0 = try noise(0)
        let labels = (0..<n).map { $0 % null }
        let best = try teacher.sample(fromUnitNoise: noise0, plan: SamplingPlan(sampler: .dpmpp2M, nfe: 21))
        try record("teacher dpmpp-2m", best.evaluations, best.sample, "the teacher's usual sampler (unconditional)")
        let heun = try teacher.sample(fromUnitNoise: noise0, plan: SamplingPlan(sampler: .heun, nfe: 35))
        try record("teacher heun", heun.evaluations, heun.sample)
        for k in [1, 2, 4, 8] {
            try record("teacher ddim", k, try teacher.sample(fromUnitNoise: noise0, plan: SamplingPlan(sampler: .ddim, nfe: k)).sample)
        }
        for w in guidanceWeights {
            let guided = try teacher.sample(fromUnitNoise: noise0, plan: SamplingPlan(sampler: .dpmpp2M, nfe: 21), labels: labels, guidance: w)
            try record("teacher dpmpp-2m, w = \(weightName(w))", guided.evaluations * 2, guided.sample, labels: labels,
                       "class-conditional with classifier-free guidance (NFE counts both network calls per step)")
        }

        // The method's rows: one run, or `seeds` runs combined into mean ± sd; each run is read
        // from the work folder when an earlier run finished it there.
        let fingerprint = try workFingerprint(s, " teacher " + (teacherCheckpoint ?? "trained"))
        func rowsOf(_ method: DistillationMethod, _ runOnce: (UInt64, Tensor) throws -> [Row]) throws -> [Row] {
            let runs = try (0..<UInt64(s.repeated.contains(method) ? s.seeds : 1)).map { k in
                let (kept, reused) = try WorkRecord<[FinishedDigitsRow]>.reuse(workDirectory, "\(method.rawValue)-seed\(k + 1).json", fingerprint: fingerprint,
                                                                            log: log, isValid: FinishedDigitsRow.areValid) {
                    captured = []
                    let rows = try runOnce(k, try noise(k))
                    return zip(rows, captured).map { r, x in
                        FinishedDigitsRow(method: r.method, nfe: r.nfe, fid: r.fid.values[0], kid: r.kid.values[0], accuracy: r.accuracy?.values[0],
                                          note: r.note, images: x)
                    }
                }
                if reused && k == 0 { for r in kept { onSamples?(r.method, r.nfe, try Tensor(shape: [r.images.count / 64, 64], scalars: r.images)) } }
                return kept.map { Row(method: $0.method, nfe: $0.nfe, fid: SeedSpread([$0.fid]), kid: SeedSpread([$0.kid]),
                                      accuracy: $0.accuracy.map { SeedSpread([$0]) }, note: $0.note) }
            }
            return try SeedSpread.combine(runs, key: { "\($0.method)|\($0.nfe)|\($0.note)" }) { r in
                [r.fid.values[0], r.kid.values[0], r.accuracy?.values[0]]
            }.map { r, f in Row(method: r.method, nfe: r.nfe, fid: f[0]!, kid: f[1]!, accuracy: f[2], note: r.note) }
        }

        // D2F students.
        for method in methods {
            let name = "\(method.rawValue) (\(method.paper))"
            rows += try rowsOf(method) { k, noise in
                let batches = try digits.batches(size: s.students.batch, seed: s.seed &+ 5 &+ 1000 &* k)
                var studentSettings = s.students
                studentSettings.seed = s.seed &+ 11 &+ 1000 &* k
                studentSettings.guidanceWeights = guidanceWeights
                studentSettings.students = s.teacherArchitecture.contains(method) ? .teacher : .mlp
                var distiller = try Distiller(teacher: teacher, dataName: "digits", settings: studentSettings) { _, step in
                    let b = try batches(step)
                    return (b.rows, b.labels)
                }
                distiller.log = log
                distiller.progress = { phase, p in progress?(phase, p.step, p.totalSteps) }
                return try distiller.run(method).map { stage in
                    let conditional = method == .guided
                    return try score(conditional ? "\(name), w = \(weightName(stage.guidance ?? 1))" : name, stage.nfe,
                                     try stage.model.sample(fromUnitNoise: noise, labels: conditional ? labels : nil).sample,
                                     labels: conditional ? labels : nil, stage.note, seed: k)
                }
            }
        }

        // D2G generators.
        for method in generatorMethods {
            rows += try rowsOf(method) { k, _ in
                var generatorSettings = s.generator
                generatorSettings.seed = s.generator.seed &+ 1000 &* k
                var d = try Distiller(teacher: teacher, settings: generatorSettings)
                d.progress = { phase, p in progress?(phase, p.step, p.totalSteps) }
                let stage = try d.run(method)[0]
                return [try score("\(method.rawValue) (\(method.paper))", 1, try stage.model.sample(count: n, seed: s.seed &+ 99 &+ k),
                                  "one-step generator", seed: k)]
            }
        }
        return rows
    }

    /// How the teacher is trained: DSM on the digits with label dropout, per ``settings``.
    package var teacherRecipe: DiffusionRecipe {
        var recipe = DiffusionRecipe()
        recipe.unet = settings.unet
        recipe.steps = settings.teacherSteps
        recipe.batch = settings.teacherBatch
        recipe.learningRate = 1e-3
        recipe.classConditional = true
        recipe.seed = settings.seed
        return recipe
    }

    /// The teacher (EMA weights): loaded from ``teacherCheckpoint`` when it holds a finished
    /// run, resumed from it when it holds a stopped one, otherwise trained there.
    package func trainTeacher(_ digits: Dataset) throws -> TrainedModel {
        var resume = false
        if let path = teacherCheckpoint, FileManager.default.fileExists(atPath: path) {
            let step = try Checkpoint.read(from: path).step
            if step >= settings.teacherSteps {
                log?("teacher: loading \(path)")
                return try TrainedModel.load(path)
            }
            log?("teacher: resuming \(path) at step \(step) of \(settings.teacherSteps)")
            resume = true
        }
        log?("teacher: U-Net, \(settings.teacherSteps) steps at batch \(settings.teacherBatch)")
        let (model, summary) = try teacherRecipe.train(on: digits, checkpoint: teacherCheckpoint, resume: resume, progress: { p in
            progress?("teacher", p.step, p.totalSteps)
        })
        log?(String(format: "teacher: trained in %.0f s, smoothed loss %.4f", summary.seconds, summary.finalSmoothedLoss))
        return model
    }

    /// The rows as a markdown table: FID, KID ×10³ and class accuracy, as mean ± sd where a
    /// row was measured over several seeds (the seed count is in the note).
    package static func markdown(_ rows: [Row]) -> String {
        var out = "| method | NFE | FID | KID ×10³ | class accuracy | note |\n|---|---|---|---|---|---|\n"
        for r in rows {
            let seeds = r.fid.values.count > 1 ? "\(r.fid.values.count) seeds" : ""
            let note = [r.note, seeds].filter { !$0.isEmpty }.joined(separator: "; ")
            out += "| \(r.method) | \(r.nfe == 0 ? "—" : String(r.nfe)) | \(r.fid.text(decimals: 3)) | \(SeedSpread(r.kid.values.map { $0 * 1000 }).text(decimals: 2)) | "
                + "\(r.accuracy?.text(decimals: 3) ?? "—") | \(note) |\n"
        }
        return out
    }
}

/// "1", "0.5": a guidance weight in a label.
package func weightName(_ w: Float) -> String { w == w.rounded() ? String(Int(w)) : String(w) }

/// One scored row of a finished method run of ``DigitsExperiment``, as its work folder keeps it
/// (``WorkRecord``): the figures and the first images.
package struct FinishedDigitsRow: Codable {
    package var method: String
    package var nfe: Int
    package var fid: Double
    package var kid: Double
    package var accuracy: Double?
    package var note: String
    /// Up to 50 images, 64 values each.
    package var images: [Float]

    package init(method: String, nfe: Int, fid: Double, kid: Double, accuracy: Double?, note: String, images: [Float]) {
        (self.method, self.nfe, self.fid, self.kid, self.accuracy, self.note, self.images) = (method, nfe, fid, kid, accuracy, note, images)
    }

    /// Whether a run's rows are in range: at least one, NFE ≥ 0, finite FID and KID, accuracy
    /// in [0, 1], 1 to 50 finite images.
    package static func areValid(_ rows: [FinishedDigitsRow]) -> Bool {
        !rows.isEmpty && rows.allSatisfy { r in
            r.nfe >= 0 && r.fid.isFinite && r.kid.isFinite && (r.accuracy.map { (0...1).contains($0) } ?? true)
                && r.images.count % 64 == 0 && (64...(50 * 64)).contains(r.images.count) && r.images.allSatisfy(\.isFinite)
        }
    }
}
