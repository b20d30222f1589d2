import Foundation

/// The distillation evidence on the 8×8 digits (`METHODS.md` §6–§8): a class-conditional U-Net
/// teacher trained by denoising score matching with label dropout, every D2F method and every
/// D2G method distilled from it (students take the teacher's U-Net or are MLPs over the 64
/// pixels, per ``Settings/teacherArchitecture``; generators are MLPs), and each
/// result's FID and KID on the in-project digit classifier's features against the real digits,
/// next to the teacher with DDIM at the students' NFE and with its usual samplers. Guided rows
/// also give the classifier's accuracy on the requested classes.
public struct DigitsExperiment {
    public struct Settings: Sendable {
        /// The teacher U-Net (image size, channels and classes are set from the digits).
        public var unet = UNet.Configuration(imageSize: 8, baseChannels: 32, channelMultipliers: [1, 2], blocksPerLevel: 1,
                                             attentionResolutions: [4], headCount: 4, groups: 8)
        public var teacherSteps = 4000
        public var teacherBatch = 64
        /// Steps, batch and MLP widths of every D2F student stage.
        public var budget = Distiller.Budget(steps: 1500, batch: 128, hidden: [512, 512, 512], learningRate: 1e-3)
        /// Methods whose students take the teacher's U-Net (``Distiller/Students/teacher(network:card:)``:
        /// KD, PD and guided students start from its weights and CD students from its denoiser,
        /// as in their papers); the others are fresh MLPs of the budget's widths.
        public var teacherArchitecture: Set<DistillationMethod> = [.kd, .pd, .guided, .cd]
        /// D2G generator settings (the dimension is the digits').
        public var generator: GeneratorDistiller.Settings = {
            var s = GeneratorDistiller.Settings()
            s.steps = 3000
            s.hidden = [512, 512, 512]
            s.fakeHidden = [512, 512, 512]
            s.fakeStepsPerGeneratorStep = 4
            return s
        }()
        /// Generated images scored per row (the real set has 1797).
        public var samples = 1000
        public var seed: UInt64 = 0
        public init() {}
    }

    public struct Row: Sendable {
        public var method: String
        public var nfe: Int
        public var fid: Double
        public var kid: Double
        /// The classifier's accuracy on the requested class (class-conditional rows only).
        public var accuracy: Double?
        public var note: String
    }

    public var settings: Settings
    /// Where the teacher's checkpoint is written; an existing one is reused (not retrained).
    public var teacherCheckpoint: String?
    public var methods = DistillationMethod.allCases
    public var generatorMethods = GeneratorMethod.allCases
    /// Guidance weights of the guided teacher and of the guided students (stage two distills
    /// the first).
    public var guidanceWeights: [Float] = [1, 0, 3]
    public var log: ((String) -> Void)?
    /// (phase, step, total) during training phases.
    public var progress: ((String, Int, Int) -> Void)?
    /// Receives every evaluated sample set (method, NFE, samples (N, 64)), e.g. to draw them.
    public var onSamples: ((String, Int, Tensor) -> Void)?

    public init(settings: Settings = .init(), teacherCheckpoint: String? = nil) {
        self.settings = settings
        self.teacherCheckpoint = teacherCheckpoint
    }

    /// Trains (or loads) the teacher, distills it by every method, and scores everything.
    public func run() throws -> [Row] {
        let s = settings
        let digits = try ImageDataset.digits8x8()
        let real = try digits.images.flattened(from: 1)
        let classifier = try DigitClassifier.pretrainedDigits8x8()
        let saved = try trainTeacher(digits: digits, real: real)
        let teacher = saved.denoiser
        let null = digits.classCount
        var rows: [Row] = []
        func record(_ method: String, _ nfe: Int, _ x: Tensor, labels: [Int]? = nil, _ note: String = "") throws {
            let fid = try classifier.frechetDistance(real, x)
            let kid = try classifier.kernelInceptionDistance(real, x, subsets: 20, subsetSize: min(500, x.shape[0]), seed: s.seed &+ 7).mean
            let acc = try labels.map { try classifier.accuracy(images: x, labels: $0) }
            rows.append(Row(method: method, nfe: nfe, fid: fid, kid: kid, accuracy: acc, note: note))
            onSamples?(method, nfe, x)
            log?(String(format: "%-34@ NFE %2d  FID %8.3f  KID %.4f%@", method as NSString, nfe, fid, kid,
                        acc.map { String(format: "  accuracy %.3f", $0) } ?? ""))
        }

        // Baselines: half the real digits against all of them (the floor at this size), the teacher.
        let half = try real.gatherRows(Array(stride(from: 0, to: real.shape[0], by: 2)))
        try record("real digits (every other one)", 0, half, "floor of FID/KID with \(half.shape[0]) images")
        let n = s.samples, process = VPLinearProcess()
        var rng = Philox(seed: s.seed &+ 2024)
        let noise = try rng.normal([n, 64])
        let labels = (0..<n).map { $0 % null }
        let sigmaMin = process.sigma(process.cleanestTime) / process.alpha(process.cleanestTime)
        let karras = { (k: Int) in try NoiseGrid.karras(process, steps: k, sigmaMin: sigmaMin) }
        let xT = noise * Float(try karras(1).levels[0].sigma)
        let best = try sampleDPMSolverPP2M(teacher, from: xT, grid: karras(21))
        try record("teacher dpmpp-2m", best.evaluations, best.sample, "the teacher's usual sampler (unconditional)")
        let heun = try sampleHeun(teacher, from: xT, grid: karras(18))
        try record("teacher heun", heun.evaluations, heun.sample)
        for k in [1, 2, 4, 8] { try record("teacher ddim", k, try sampleDDIM(teacher, from: xT, grid: karras(k)).sample) }
        for w in guidanceWeights {
            let guidedTeacher = GuidedDenoiser(AnyDenoiser(teacher), guidance: w, nullLabel: null)
            let guided = try sampleDPMSolverPP2M(guidedTeacher, from: xT, grid: karras(21), options: .init(labels: labels))
            try record("teacher dpmpp-2m, w = \(formatWeight(w))", guided.evaluations * 2, guided.sample, labels: labels,
                       "class-conditional with classifier-free guidance (NFE counts both network calls per step)")
        }

        // D2F students.
        let sampler = try BatchSampler(count: real.shape[0], batchSize: min(s.budget.batch, real.shape[0]), seed: s.seed &+ 5)
        var distiller = Distiller(teacher: teacher, conditionalTeacher: teacher, nullLabel: null, dimension: 64, dataSource: "digits",
                                  budget: s.budget) { _, step in
            let b = try sampler.batch(forStep: step, rows: real, labels: digits.labels)
            return (b.rows, b.labels)
        }
        distiller.seed = s.seed &+ 11
        distiller.log = log
        distiller.progress = { name, step, total, _ in progress?(name, step, total) }
        for method in methods {
            let name = "\(method.rawValue) (\(method.paper))"
            distiller.students = s.teacherArchitecture.contains(method) ? .teacher(network: saved.network, card: saved.card) : .mlp
            for stage in try distiller.run(method, guidanceWeights: guidanceWeights) {
                let conditional = method == .guided
                try record(conditional ? "\(name), w = \(formatWeight(stage.guidance ?? 1))" : name, stage.nfe,
                           try withoutGradient { try stage.sample(noise, conditional ? labels : nil) },
                           labels: conditional ? labels : nil, stage.note)
            }
        }

        // D2G generators.
        for method in generatorMethods {
            var d = GeneratorDistiller(teacher: teacher, process: process, dimension: 64, settings: s.generator)
            d.progress = { step, total, _ in progress?(method.rawValue, step, total) }
            let (generator, _) = try d.run(method)
            var grng = Philox(seed: s.seed &+ 99)
            try record("\(method.rawValue) (\(method.paper))", 1, try withoutGradient { try generator.sample(n, rng: &grng) },
                       "one-step generator")
        }
        return rows
    }

    /// The teacher (EMA weights): loaded from ``teacherCheckpoint`` when it exists, otherwise
    /// trained there.
    func trainTeacher(digits: ImageDataset, real: Tensor) throws -> SavedModel {
        if let path = teacherCheckpoint, FileManager.default.fileExists(atPath: path) {
            log?("teacher: loading \(path)")
            return try SavedModel.load(path)
        }
        var recipe = DiffusionRecipe()
        recipe.unet = settings.unet
        recipe.steps = settings.teacherSteps
        recipe.batch = settings.teacherBatch
        recipe.learningRate = 1e-3
        recipe.classConditional = true
        recipe.seed = settings.seed
        let path = teacherCheckpoint ?? FileManager.default.temporaryDirectory.appendingPathComponent("digits-teacher-\(UUID().uuidString).safetensors").path
        defer { if teacherCheckpoint == nil { try? FileManager.default.removeItem(atPath: path) } }
        log?("teacher: U-Net, \(settings.teacherSteps) steps at batch \(settings.teacherBatch)")
        let (_, _, summary) = try recipe.train(rows: real, labels: digits.labels, itemShape: [1, 8, 8], classCount: digits.classCount,
                                               dataSource: "digits", checkpoint: path, log: nil) { p, _ in
            progress?("teacher", p.step, settings.teacherSteps)
        }
        log?(String(format: "teacher: trained in %.0f s, smoothed loss %.4f", summary.seconds, summary.finalSmoothedLoss))
        return try SavedModel.load(path)
    }

    private func formatWeight(_ w: Float) -> String { w == w.rounded() ? String(Int(w)) : String(w) }

    /// The rows as a markdown table.
    public static func markdown(_ rows: [Row]) -> String {
        var out = "| method | NFE | FID | KID | class accuracy | note |\n|---|---|---|---|---|---|\n"
        for r in rows {
            out += "| \(r.method) | \(r.nfe == 0 ? "—" : String(r.nfe)) | \(String(format: "%.3f", r.fid)) | \(String(format: "%.4f", r.kid)) | "
                + "\(r.accuracy.map { String(format: "%.3f", $0) } ?? "—") | \(r.note) |\n"
        }
        return out
    }
}
