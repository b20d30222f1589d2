import Distill
import Foundation

/// The distillation evidence on the 8×8 digits (`docs/methods.md` §6–§8): a class-conditional
/// U-Net teacher trained by denoising score matching with label dropout, every D2F method and
/// every D2G method distilled from it (students take the teacher's U-Net or are MLPs over the
/// 64 pixels, per ``Settings/teacherArchitecture``; generators are MLPs), and each result's FID
/// and KID on the in-project digit classifier's features against the real digits, next to the
/// teacher with DDIM at the students' NFE and with its usual samplers. Guided rows also give
/// the classifier's accuracy on the requested classes.
package struct DigitsExperiment {
    package struct Settings: Sendable {
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
        /// Methods whose students take the teacher's U-Net (KD, PD and guided students start from
        /// its weights and CD students from its denoiser, as in their papers); the others are
        /// fresh MLPs of the students' widths.
        package var teacherArchitecture: Set<DistillationMethod> = [.kd, .pd, .guided, .cd]
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
        package init() {}
    }

    package struct Row: Sendable {
        package var method: String
        package var nfe: Int
        package var fid: Double
        package var kid: Double
        /// The classifier's accuracy on the requested class (class-conditional rows only).
        package var accuracy: Double?
        package var note: String
    }

    package var settings: Settings
    /// Where the teacher's checkpoint is written; an existing one is reused (not retrained).
    package var teacherCheckpoint: String?
    package var methods: [DistillationMethod] = [.kd, .pd, .guided, .cd, .ct, .reflow]
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
        let real = digits.rows
        let classifier = try DigitClassifier.pretrainedDigits8x8()
        let teacher = try trainTeacher(digits)
        let null = digits.classCount!
        var rows: [Row] = []
        func record(_ method: String, _ nfe: Int, _ x: Tensor, labels: [Int]? = nil, _ note: String = "") throws {
            let flat = try x.reshaped([x.shape[0], 64])
            let fid = try classifier.frechetDistance(real, flat)
            let kid = try classifier.kernelInceptionDistance(real, flat, subsets: 20, subsetSize: min(500, x.shape[0]), seed: s.seed &+ 7).mean
            let acc = try labels.map { try classifier.accuracy(images: flat, labels: $0) }
            rows.append(Row(method: method, nfe: nfe, fid: fid, kid: kid, accuracy: acc, note: note))
            onSamples?(method, nfe, flat)
            log?(String(format: "%-34@ NFE %2d  FID %8.3f  KID %.4f%@", method as NSString, nfe, fid, kid,
                        acc.map { String(format: "  accuracy %.3f", $0) } ?? ""))
        }

        // Baselines: half the real digits against all of them (the floor at this size), the teacher.
        let half = try real.gatherRows(Array(stride(from: 0, to: real.shape[0], by: 2)))
        try record("real digits (every other one)", 0, half, "floor of FID/KID with \(half.shape[0]) images")
        let n = s.samples
        var rng = Philox(seed: s.seed &+ 2024)
        let noise = try rng.normal([n, 64])
        let labels = (0..<n).map { $0 % null }
        let best = try teacher.sample(fromUnitNoise: noise, plan: SamplingPlan(sampler: .dpmpp2M, nfe: 21))
        try record("teacher dpmpp-2m", best.evaluations, best.sample, "the teacher's usual sampler (unconditional)")
        let heun = try teacher.sample(fromUnitNoise: noise, plan: SamplingPlan(sampler: .heun, nfe: 35))
        try record("teacher heun", heun.evaluations, heun.sample)
        for k in [1, 2, 4, 8] {
            try record("teacher ddim", k, try teacher.sample(fromUnitNoise: noise, plan: SamplingPlan(sampler: .ddim, nfe: k)).sample)
        }
        for w in guidanceWeights {
            let guided = try teacher.sample(fromUnitNoise: noise, plan: SamplingPlan(sampler: .dpmpp2M, nfe: 21), labels: labels, guidance: w)
            try record("teacher dpmpp-2m, w = \(weightName(w))", guided.evaluations * 2, guided.sample, labels: labels,
                       "class-conditional with classifier-free guidance (NFE counts both network calls per step)")
        }

        // D2F students.
        let batches = try digits.batches(size: s.students.batch, seed: s.seed &+ 5)
        var studentSettings = s.students
        studentSettings.seed = s.seed &+ 11
        studentSettings.guidanceWeights = guidanceWeights
        for method in methods {
            let name = "\(method.rawValue) (\(method.paper))"
            studentSettings.students = s.teacherArchitecture.contains(method) ? .teacher : .mlp
            var distiller = try Distiller(teacher: teacher, dataName: "digits", settings: studentSettings) { _, step in
                let b = try batches(step)
                return (b.rows, b.labels)
            }
            distiller.log = log
            distiller.progress = { phase, p in progress?(phase, p.step, p.totalSteps) }
            for stage in try distiller.run(method) {
                let conditional = method == .guided
                try record(conditional ? "\(name), w = \(weightName(stage.guidance ?? 1))" : name, stage.nfe,
                           try stage.model.sample(fromUnitNoise: noise, labels: conditional ? labels : nil).sample,
                           labels: conditional ? labels : nil, stage.note)
            }
        }

        // D2G generators.
        for method in generatorMethods {
            var d = try Distiller(teacher: teacher, settings: s.generator)
            d.progress = { phase, p in progress?(phase, p.step, p.totalSteps) }
            let stage = try d.run(method)[0]
            try record("\(method.rawValue) (\(method.paper))", 1, try stage.model.sample(count: n, seed: s.seed &+ 99), "one-step generator")
        }
        return rows
    }

    /// The teacher (EMA weights): loaded from ``teacherCheckpoint`` when it exists, otherwise
    /// trained there.
    func trainTeacher(_ digits: Dataset) throws -> TrainedModel {
        if let path = teacherCheckpoint, FileManager.default.fileExists(atPath: path) {
            log?("teacher: loading \(path)")
            return try TrainedModel.load(path)
        }
        var recipe = DiffusionRecipe()
        recipe.unet = settings.unet
        recipe.steps = settings.teacherSteps
        recipe.batch = settings.teacherBatch
        recipe.learningRate = 1e-3
        recipe.classConditional = true
        recipe.seed = settings.seed
        log?("teacher: U-Net, \(settings.teacherSteps) steps at batch \(settings.teacherBatch)")
        let (model, summary) = try recipe.train(on: digits, checkpoint: teacherCheckpoint, progress: { p in
            progress?("teacher", p.step, p.totalSteps)
        })
        log?(String(format: "teacher: trained in %.0f s, smoothed loss %.4f", summary.seconds, summary.finalSmoothedLoss))
        return model
    }

    /// The rows as a markdown table.
    package static func markdown(_ rows: [Row]) -> String {
        var out = "| method | NFE | FID | KID | class accuracy | note |\n|---|---|---|---|---|---|\n"
        for r in rows {
            out += "| \(r.method) | \(r.nfe == 0 ? "—" : String(r.nfe)) | \(String(format: "%.3f", r.fid)) | \(String(format: "%.4f", r.kid)) | "
                + "\(r.accuracy.map { String(format: "%.3f", $0) } ?? "—") | \(r.note) |\n"
        }
        return out
    }
}

/// "1", "0.5": a guidance weight in a label.
package func weightName(_ w: Float) -> String { w == w.rounded() ? String(Int(w)) : String(w) }
