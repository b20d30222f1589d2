import Foundation

/// The D2G methods by name.
public enum GeneratorMethod: String, Sendable, Codable, CaseIterable {
    case diffInstruct = "diff-instruct", sds, vsd

    public var paper: String {
        switch self {
        case .diffInstruct: return "Luo et al. 2023"
        case .sds: return "Poole et al. 2022"
        case .vsd: return "Wang et al. 2023"
        }
    }
}

/// Trains a one-step generator from a frozen teacher with Diff-Instruct, SDS or VSD: the
/// generator and (for Diff-Instruct and VSD) a fake score network, each with its own AdamW,
/// alternating ``Settings/fakeStepsPerGeneratorStep`` fake-score steps and one generator step.
/// No training data are used.
public struct GeneratorDistiller {
    public struct Settings: Sendable {
        public var steps = 2000
        public var batch = 256
        public var generatorLearningRate: Float = 1e-3
        public var fakeLearningRate: Float = 1e-3
        public var weighting: ScoreDistillationWeighting = .sigmaSquared
        /// Times drawn for the teacher (Diff-Instruct trains on t ∈ [0.02, 0.98]).
        public var timeRange: ClosedRange<Double> = 0.02...0.98
        public var hidden: [Int] = [128, 128]
        /// Hidden widths of the fake score network (Diff-Instruct, VSD).
        public var fakeHidden: [Int] = [128, 128, 128]
        /// Fake-score updates per generator update: the fake score must track the generator's
        /// moving distribution (DMD2, Yin et al. 2024, uses 5).
        public var fakeStepsPerGeneratorStep = 1
        /// Latent size (default: the data dimension).
        public var latentDimension: Int?
        /// Extra noise inputs of a stochastic MLP generator (0: deterministic).
        public var noiseDimension = 0
        /// A convolutional image generator instead of the MLP (its data dimension must be the
        /// distiller's; ``latentDimension``, ``noiseDimension`` and ``hidden`` then do not apply).
        public var convolutional: ConvGenerator.Configuration?
        /// Optimize this many particles instead of a network (the particle view of SDS/VSD).
        public var particles: Int?
        /// Asks a class-conditional teacher for this class only (nil: the teacher as it is).
        public var teacherClass: Int?
        /// With ``teacherClass``: classifier-free guidance of the teacher at this weight, whose
        /// null class is ``nullLabel`` (SDS's guidance weight, Poole et al. 2022, use large ones).
        public var guidance: Float?
        public var nullLabel: Int?
        public var seed: UInt64 = 3
        public init() {}
    }

    public let teacher: any Denoiser
    public let process: any DiffusionProcess
    public let dimension: Int
    public var settings: Settings
    public var progress: ((Int, Int, Float) -> Void)?

    public init(teacher: any Denoiser, process: any DiffusionProcess = VPLinearProcess(), dimension: Int, settings: Settings = .init()) {
        self.teacher = teacher
        self.process = process
        self.dimension = dimension
        self.settings = settings
    }

    /// The trained generator (and the card describing it).
    public func run(_ method: GeneratorMethod) throws -> (generator: any Generator, card: GeneratorCard) {
        let s = settings
        let latent = s.convolutional?.latentDimension ?? (s.particles == nil ? s.latentDimension ?? dimension : 1)
        let card = GeneratorCard(method: method.rawValue, latentDimension: latent, dataDimension: dimension,
                                 hidden: s.particles == nil && s.convolutional == nil ? s.hidden : [], particles: s.particles,
                                 noiseDimension: s.noiseDimension == 0 ? nil : s.noiseDimension, convolutional: s.convolutional)
        let gen = try card.makeGenerator(seed: s.seed)
        guard gen.dataDimension == dimension else {
            throw TrainingError.invalidConfiguration("the generator makes items of \(gen.dataDimension) values; the teacher's have \(dimension)")
        }
        var teacher: any Denoiser = self.teacher
        if let c = s.teacherClass {
            if let w = s.guidance {
                guard let null = s.nullLabel else { throw TrainingError.invalidConfiguration("guidance needs the teacher's null label") }
                teacher = GuidedDenoiser(AnyDenoiser(teacher), guidance: w, nullLabel: null)
            }
            teacher = FixedLabelDenoiser(AnyDenoiser(teacher), label: c)
        } else if s.guidance != nil {
            throw TrainingError.invalidConfiguration("guidance needs a teacher class")
        }
        let genOpt = try Adam(gen, learningRate: s.generatorLearningRate, beta1: 0, beta2: 0.999)
        let needsFake = method != .sds
        guard s.fakeStepsPerGeneratorStep >= 1 else {
            throw TrainingError.invalidConfiguration("fakeStepsPerGeneratorStep must be >= 1")
        }
        let fakeNet = try MLPScoreNetwork(.init(dataDimension: dimension, hiddenWidths: s.fakeHidden), seed: s.seed &+ 1)
        let fake = DiffusionModel(network: fakeNet, process: process, parameterization: .epsilon)
        let fakeOpt = try Adam.adamW(fakeNet, learningRate: s.fakeLearningRate, weightDecay: 0)
        for step in 0..<s.steps {
            var rng = Philox(seed: s.seed &+ 0x6E, stream: UInt64(step))
            for _ in 0..<(needsFake ? s.fakeStepsPerGeneratorStep : 0) {
                let x = try withoutGradient { try gen.sample(s.batch, rng: &rng) }
                try fakeNet.valueWithGradient { try ScoreDistillation.fakeScoreLoss(fake: fake, generated: x, rng: &rng) }
                try fakeOpt.update()
            }
            let loss = try gen.valueWithGradient { () throws -> Tensor in
                let x = try gen.sample(s.batch, rng: &rng)
                switch method {
                case .diffInstruct:
                    return try ScoreDistillation.diffInstructLoss(generated: x, teacher: teacher, fake: fake, process: process,
                                                                  weighting: s.weighting, timeRange: s.timeRange, rng: &rng)
                case .sds:
                    return try ScoreDistillation.sdsLoss(generated: x, teacher: teacher, process: process, weighting: s.weighting,
                                                         timeRange: s.timeRange, rng: &rng)
                case .vsd:
                    return try ScoreDistillation.vsdLoss(generated: x, teacher: teacher, fake: fake, process: process,
                                                         weighting: s.weighting, timeRange: s.timeRange, rng: &rng)
                }
            }
            clipGradientNorm(gen.parameters, maxNorm: 10)
            try genOpt.update()
            progress?(step + 1, s.steps, loss)
        }
        return (gen, card)
    }
}

/// What rebuilds a saved generator: stored as its checkpoint's configuration.
public struct GeneratorCard: Codable, Sendable, Equatable {
    public var format = "distill.generator"
    public var method: String
    public var latentDimension: Int
    public var dataDimension: Int
    public var hidden: [Int]
    public var particles: Int?
    /// Extra noise inputs of a stochastic MLP generator (nil: none).
    public var noiseDimension: Int?
    /// Set for a convolutional image generator.
    public var convolutional: ConvGenerator.Configuration?

    public init(method: String, latentDimension: Int, dataDimension: Int, hidden: [Int], particles: Int? = nil,
                noiseDimension: Int? = nil, convolutional: ConvGenerator.Configuration? = nil) {
        self.method = method
        self.latentDimension = latentDimension
        self.dataDimension = dataDimension
        self.hidden = hidden
        self.particles = particles
        self.noiseDimension = noiseDimension
        self.convolutional = convolutional
    }

    /// A new generator of this architecture, initialized from `seed`.
    public func makeGenerator(seed: UInt64 = 0) throws -> any Generator {
        if let particles { return try ParticleGenerator(count: particles, dataDimension: dataDimension, seed: seed) }
        if let convolutional { return try ConvGenerator(convolutional, seed: seed) }
        return try MLPGenerator(latentDimension: latentDimension, noiseDimension: noiseDimension ?? 0, dataDimension: dataDimension,
                                hidden: hidden, seed: seed)
    }

    /// Rebuilds the generator and loads `weights`.
    public func makeGenerator(weights: [String: Tensor]) throws -> any Generator {
        let g = try makeGenerator()
        try g.load(weights)
        return g
    }

    public var json: String {
        let enc = JSONEncoder()
        enc.outputFormatting = [.sortedKeys]
        return String(decoding: (try? enc.encode(self)) ?? Data(), as: UTF8.self)
    }
}
