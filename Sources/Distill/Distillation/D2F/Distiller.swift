import Foundation

/// The D2F methods by name.
public enum DistillationMethod: String, Sendable, Codable, CaseIterable {
    case kd, pd, guided, cd, ct, reflow

    public var paper: String {
        switch self {
        case .kd: return "Luhman & Luhman 2021"
        case .pd: return "Salimans & Ho 2022"
        case .guided: return "Meng et al. 2023"
        case .cd, .ct: return "Song et al. 2023"
        case .reflow: return "Liu et al. 2022"
        }
    }
}

/// A distilled model at one stage: its network and card (to save), and how it samples.
public struct DistilledStage {
    /// The NFE this stage samples with.
    public var nfe: Int
    /// The student's network (an ``MLPScoreNetwork``, or the teacher's architecture).
    public var network: any ConditionalNetwork
    public var card: ModelCard
    /// Samples from standard normal noise (N, d) (scaled to the model's start level inside),
    /// with labels for class-conditional stages.
    public var sample: (_ noise: Tensor, _ labels: [Int]?) throws -> Tensor
    public var note: String
    /// The guidance weight a guided student samples at.
    public var guidance: Float? = nil
}

/// The trainer configuration shared by every D2F method (`METHODS.md` §6): a frozen teacher
/// (any denoiser, e.g. a checkpoint or the exact mixture), a source of training data, the
/// students (fresh MLPs, or networks of the teacher's architecture started from its weights),
/// and a budget. Each method returns its students stage by stage.
public struct Distiller {
    public struct Budget: Sendable {
        public var steps: Int
        public var batch: Int
        public var hidden: [Int]
        public var learningRate: Float
        public init(steps: Int = 2000, batch: Int = 512, hidden: [Int] = [128, 128, 128], learningRate: Float = 2e-3) {
            self.steps = steps
            self.batch = batch
            self.hidden = hidden
            self.learningRate = learningRate
        }
    }

    /// What the students are made of.
    public enum Students {
        /// Fresh MLPs with the budget's hidden widths, each method in its paper's
        /// parameterization and process (the default; the teacher may be any denoiser).
        case mlp
        /// Networks of the teacher's architecture (an MLP or a U-Net, as its model card says).
        /// Where the papers start the student from the teacher — KD, PD, guided distillation
        /// and CD — the student copies the teacher's weights and keeps the teacher's process,
        /// conditioning and time input, so the copied weights see the inputs they were trained
        /// on; a guided student's guidance input is new and starts at zero, so it begins as the
        /// conditional teacher, and a CD student reads the network as the teacher's denoiser
        /// (``ConsistencyModel/DenoiserForm``). CT and reflow students (trained without a
        /// diffusion teacher's weights in their papers) are fresh networks of that architecture.
        case teacher(network: any ConditionalNetwork, card: ModelCard)
    }

    /// Data batches: (batch size, step) → (x0 rows, labels).
    public typealias DataSource = (_ batch: Int, _ step: Int) throws -> (Tensor, [Int]?)

    public let teacher: any Denoiser
    /// The class-conditional teacher (labels, with `nullLabel` for "no class"), for guided distillation.
    public let conditionalTeacher: (any Denoiser)?
    public let nullLabel: Int?
    public let dimension: Int
    public let data: DataSource
    public var budget: Budget
    public var students: Students = .mlp
    public var dataSource: String
    public var log: ((String) -> Void)?
    /// Called after each training step with (method, step, total, loss).
    public var progress: ((String, Int, Int, Float) -> Void)?
    /// Called with each stage as soon as it is trained (e.g. to checkpoint it), before later
    /// stages start.
    public var onStage: ((DistilledStage) throws -> Void)?
    public var seed: UInt64 = 1
    /// The process the teacher was trained under: teacher-side grids (KD and reflow pairs) come
    /// from it, and PD's student schedule stays inside its log-SNR range. With
    /// ``Students/teacher(network:card:)`` the card's process is used instead.
    public var teacherProcess: any DiffusionProcess = VPLinearProcess()

    public init(teacher: any Denoiser, conditionalTeacher: (any Denoiser)? = nil, nullLabel: Int? = nil, dimension: Int,
                dataSource: String, budget: Budget = .init(), data: @escaping DataSource) {
        self.teacher = teacher
        self.conditionalTeacher = conditionalTeacher
        self.nullLabel = nullLabel
        self.dimension = dimension
        self.data = data
        self.budget = budget
        self.dataSource = dataSource
    }

    var process: any DiffusionProcess {
        if case let .teacher(_, card) = students { return card.process.process }
        return teacherProcess
    }
    var sigmaMinTilde: Double { process.sigma(process.cleanestTime) / process.alpha(process.cleanestTime) }

    /// PD's schedule: α = cos(πt/2) (Salimans & Ho 2022) restricted to the teacher's log-SNR
    /// range (and to |λ| ≤ 10, the paper's clip), so the teacher is never asked about noise
    /// levels it was not trained on. Students copied from the teacher keep its process instead.
    var progressiveProcess: any DiffusionProcess {
        if copiesTeacher { return process }
        let (lo, hi) = (max(process.logSNR(process.noisiestTime), -10), min(process.logSNR(process.cleanestTime), 10))
        return VPCosineProcess(s: 0, tMin: 2 / Double.pi * atan(exp(-hi)), tMax: 2 / Double.pi * atan(exp(-lo)))
    }

    var copiesTeacher: Bool {
        if case .teacher = students { return true }
        return false
    }

    /// A student network and its architecture: a fresh MLP, or the teacher's architecture —
    /// with the teacher's weights when `copyTeacher` (the methods whose papers do so).
    func network(_ salt: UInt64, classes: Int? = nil, guidance: Int = 0, copyTeacher: Bool = false) throws -> (AnyNetwork, ModelCard.Architecture) {
        switch students {
        case .mlp:
            let c = MLPScoreNetwork.Configuration(dataDimension: dimension, hiddenWidths: budget.hidden, classCount: classes,
                                                  classEmbeddingDim: 16, guidanceEmbeddingDim: guidance)
            return (AnyNetwork(try MLPScoreNetwork(c, seed: seed &+ salt)), .mlp(c))
        case let .teacher(source, card):
            guard card.architecture.consistencySigmaMax == nil else {
                throw TrainingError.invalidConfiguration("students can take a diffusion teacher's architecture, not a consistency model's")
            }
            guard card.dataShape.reduce(1, *) == dimension else {
                throw TrainingError.invalidConfiguration("the teacher's items have shape \(card.dataShape); the data have \(dimension) values per item")
            }
            if let classes, card.architecture.classCount != classes {
                throw TrainingError.invalidConfiguration("this method needs a student with \(classes) classes; the teacher's network has "
                    + (card.architecture.classCount.map { "\($0)" } ?? "none"))
            }
            let arch = card.architecture.withGuidanceInput(guidance)
            let net = try arch.network(seed: seed &+ salt)
            if copyTeacher {
                let fresh = try net.copySharedParameters(from: source)
                log?("student starts from the teacher's weights" + (fresh.isEmpty ? "" : " (new at zero: \(fresh.joined(separator: ", ")))"))
            }
            return (AnyNetwork(net), arch)
        }
    }

    /// The conditioning and σ_data of students that copy the teacher (the teacher card's), or
    /// the defaults for fresh students.
    func inputs(copied: Bool) -> (conditioning: NetworkConditioning, sigmaData: Float) {
        if copied, case let .teacher(_, card) = students { return (card.conditioning, card.sigmaData) }
        return (.time, 0.5)
    }

    /// A diffusion-model student over `net` (`copied`: started from the teacher's weights).
    func model(_ net: AnyNetwork, _ p: any DiffusionProcess, _ par: Parameterization, copied: Bool) -> DiffusionModel<AnyNetwork> {
        let (conditioning, sigmaData) = inputs(copied: copied)
        return DiffusionModel(network: net, process: p, parameterization: par, conditioning: conditioning, sigmaData: sigmaData)
    }

    /// A copy of `net` (same architecture) to freeze as a finished stage.
    func frozenCopy(_ net: AnyNetwork, _ arch: ModelCard.Architecture) throws -> AnyNetwork {
        let frozen = try arch.network()
        try frozen.copyParameters(from: net)
        return AnyNetwork(frozen)
    }

    func card(_ arch: ModelCard.Architecture, _ p: any DiffusionProcess, _ par: Parameterization, _ method: DistillationMethod,
              _ what: String, copied: Bool) -> ModelCard {
        var shape = [dimension]
        if case let .teacher(_, card) = students { shape = card.dataShape }
        let (conditioning, sigmaData) = inputs(copied: copied)
        return ModelCard(architecture: arch, process: .from(p), parameterization: par, conditioning: conditioning, sigmaData: sigmaData,
                         dataShape: shape, dataSource: dataSource, classCount: arch.classCount,
                         provenance: "\(method.rawValue) (\(method.paper)): \(what)")
    }

    /// Records a finished stage and hands it to ``onStage``.
    func emit(_ stage: DistilledStage, into stages: inout [DistilledStage]) throws {
        stages.append(stage)
        try onStage?(stage)
    }

    /// AdamW with warmup-cosine over `steps`; `loss(step, x0, labels, rng)`.
    func fit(_ name: String, _ module: Module, steps: Int? = nil, lr: Float? = nil, ema: ExponentialMovingAverage? = nil,
             after: (() throws -> Void)? = nil, _ loss: (Int, Tensor, [Int]?, inout Philox) throws -> Tensor) throws {
        let n = steps ?? budget.steps
        let peak = lr ?? budget.learningRate
        let opt = try Adam.adamW(module, learningRate: peak, weightDecay: 0)
        let schedule = LearningRateSchedule.warmupCosine(peak: peak, warmupSteps: min(100, n / 10), totalSteps: n, minimum: peak / 20)
        for s in 0..<n {
            opt.learningRate = schedule.learningRate(at: s)
            var rng = Philox(seed: seed &+ 0xD15, stream: UInt64(s))
            let (x0, labels) = try data(budget.batch, s)
            let value = try module.valueWithGradient { try loss(s, x0, labels, &rng) }
            guard value.isFinite else { throw TrainingError.nonFiniteLoss(step: s, value: value) }
            clipGradientNorm(module.parameters, maxNorm: 1)
            try opt.update()
            try ema?.update(from: module)
            try after?()
            progress?(name, s + 1, n, value)
        }
    }

    func karras(_ steps: Int) throws -> NoiseGrid { try NoiseGrid.karras(process, steps: steps, sigmaMin: sigmaMinTilde) }

    /// Runs `method`; returns its stages (PD: 8, 4, 2, 1 steps; CD/CT: 1, 2, 4; reflow: 2-RF at
    /// 1–8 steps and the one-step distilled flow; guided: stage one at 8 and 4 steps, stage two
    /// at 4), handing each to ``onStage`` as it is done. Guided students are evaluated at each
    /// of `guidanceWeights` after stage one, and stage two runs at the first of them.
    public func run(_ method: DistillationMethod, guidanceWeights: [Float] = [1]) throws -> [DistilledStage] {
        switch method {
        case .kd: return try knowledgeDistillation()
        case .pd: return try progressive()
        case .guided: return try guided(weights: guidanceWeights.isEmpty ? [1] : guidanceWeights)
        case .cd, .ct: return try consistency(training: method == .ct)
        case .reflow: return try reflow()
        }
    }

    func knowledgeDistillation() throws -> [DistilledStage] {
        let (net, arch) = try network(1, copyTeacher: true)
        let student = model(net, process, .data, copied: copiesTeacher)
        let grid = try karras(21)
        let level = grid.levels[0]
        let count = max(budget.steps * budget.batch / 4, budget.batch)
        log?("kd: \(count) pairs from the teacher's DPM-Solver++(2M), 20 steps")
        let (pn, pt) = try OutputDistillation.pairs(teacher: teacher, sampler: .dpmpp2M, grid: grid, shape: [count, dimension], seed: seed)
        try fit("kd", net) { s, _, _, _ in
            let i = (s * budget.batch) % (count - budget.batch + 1)
            return try OutputDistillation.loss(student: student, noise: pn.slice(i..<(i + budget.batch)), targets: pt.slice(i..<(i + budget.batch)), level: level)
        }
        var stages: [DistilledStage] = []
        try emit(DistilledStage(nfe: 1, network: net.base, card: card(arch, process, .data, .kd, "one step from σ̃max; sample with ddim --steps 1 --grid karras", copied: copiesTeacher),
                                sample: { z, _ in try withoutGradient { try student.predict(z * Float(level.sigma), alpha: level.alpha, sigma: level.sigma, time: level.time).data } },
                                note: ""), into: &stages)
        return stages
    }

    func progressive() throws -> [DistilledStage] {
        let pd = progressiveProcess
        let (net, arch) = try network(2, copyTeacher: true)
        let student = model(net, pd, .v, copied: copiesTeacher)
        var current: any Denoiser = teacher
        var stages: [DistilledStage] = []
        var steps = 16
        while steps >= 1 {
            let t = current, k = steps
            try fit("pd-\(k)", net) { _, x0, _, rng in
                try ProgressiveDistillation.loss(student: student, teacher: t, x0: x0, steps: k, rng: &rng)
            }
            let frozen = model(try frozenCopy(net, arch), pd, .v, copied: copiesTeacher)
            if k <= 8 {
                let grid = try ProgressiveDistillation.grid(process: pd, steps: k)
                try emit(DistilledStage(nfe: k, network: frozen.network.base,
                                        card: card(arch, pd, .v, .pd, "\(k)-step student; sample with ddim --steps \(k) --grid time", copied: copiesTeacher),
                                        sample: { z, _ in try sampleDDIM(frozen, from: z * Float(grid.levels[0].sigma), grid: grid).sample }, note: ""),
                         into: &stages)
            }
            current = frozen
            steps /= 2
        }
        return stages
    }

    func guided(weights: [Float]) throws -> [DistilledStage] {
        guard let cond = conditionalTeacher, let null = nullLabel else {
            throw TrainingError.invalidConfiguration("guided distillation needs a class-conditional teacher")
        }
        let pd = progressiveProcess
        let (net, arch) = try network(6, classes: null, guidance: 16, copyTeacher: true)
        let student = model(net, pd, .v, copied: copiesTeacher)
        try fit("guided stage 1", net) { _, x0, labels, rng in
            guard let labels else { throw TrainingError.invalidConfiguration("guided distillation needs labelled data") }
            return try GuidedDistillation.loss(student: student, teacher: cond, x0: x0, labels: labels, nullLabel: null, guidance: 0...4, rng: &rng)
        }
        let stage1 = model(try frozenCopy(net, arch), pd, .v, copied: copiesTeacher)
        func sampler(_ m: DiffusionModel<AnyNetwork>, _ k: Int) throws -> (Tensor, [Int]?) throws -> Tensor {
            let grid = try ProgressiveDistillation.grid(process: pd, steps: k)
            return { z, labels in try sampleDDIM(m, from: z * Float(grid.levels[0].sigma), grid: grid, options: .init(labels: labels)).sample }
        }
        var stages: [DistilledStage] = []
        let card1 = card(arch, pd, .v, .guided, "stage 1: w-conditioned student", copied: copiesTeacher)
        for w in weights {
            for k in [8, 4] {
                try emit(DistilledStage(nfe: k, network: stage1.network.base, card: card1, sample: try sampler(stage1.withGuidance(w), k),
                                        note: "stage 1", guidance: w), into: &stages)
            }
        }
        let w = weights[0]
        let s2 = student.withGuidance(w)
        try fit("guided stage 2", net, steps: budget.steps / 2) { _, x0, labels, rng in
            try ProgressiveDistillation.loss(student: s2, teacher: stage1.withGuidance(w), x0: x0, steps: 4, labels: labels, rng: &rng)
        }
        try emit(DistilledStage(nfe: 4, network: net.base, card: card(arch, pd, .v, .guided, "stage 2: 4 steps at w = \(w)", copied: copiesTeacher),
                                sample: try sampler(s2, 4), note: "stage 2", guidance: w), into: &stages)
        return stages
    }

    /// CD and CT. A CD student copied from the teacher reads the network as the teacher's
    /// denoiser (``ConsistencyModel/DenoiserForm``), so it starts from the teacher as in the
    /// paper; CT students (trained without a teacher in the paper) start fresh.
    func consistency(training: Bool) throws -> [DistilledStage] {
        let copy = copiesTeacher && !training
        let (net, arch) = try network(3, copyTeacher: copy)
        let (targetNet, _) = try network(3, copyTeacher: copy)
        var form: ConsistencyModel<AnyNetwork>.DenoiserForm?
        if copy, case let .teacher(_, card) = students {
            form = .init(process: card.process, parameterization: card.parameterization, conditioning: card.conditioning)
        }
        let student = ConsistencyModel(network: net, sigmaData: Double(inputs(copied: copy).sigmaData), denoiserForm: form)
        let target = ConsistencyModel(network: targetNet, sigmaData: student.sigmaData, denoiserForm: form)
        let ema = try ExponentialMovingAverage(net, decay: 0.99)
        let total = budget.steps
        let name = training ? "ct" : "cd"
        try fit(name, net, ema: ema, after: { try ema.copy(to: targetNet) }) { s, x0, _, rng in
            if training {
                let (n, mu) = ConsistencyDistillation.trainingSchedule(step: s, totalSteps: total, s0: 10, s1: 80)
                ema.decay = Float(mu)
                return try ConsistencyDistillation.trainingLoss(student: student, target: target, x0: x0, steps: n, rng: &rng)
            }
            return try ConsistencyDistillation.distillationLoss(student: student, target: target, teacher: teacher, x0: x0, steps: 18, rng: &rng)
        }
        let method: DistillationMethod = training ? .ct : .cd
        var c = card(arch.consistency(sigmaMax: student.sigmaMax), form?.process.process ?? EDMProcess(), form?.parameterization ?? .data,
                     method, copy ? "consistency model over the teacher's denoiser, started from its weights" : "consistency model", copied: copy)
        if copy { c.consistencyReadsDenoiser = true }
        var stages: [DistilledStage] = []
        for (k, times) in [(1, [Double]()), (2, [0.8]), (4, [2, 0.8, 0.3])] {
            try emit(DistilledStage(nfe: k, network: net.base, card: c,
                                    sample: { z, _ in try sampleConsistency(student, from: z * Float(student.sigmaMax), times: times).sample },
                                    note: times.isEmpty ? "" : "re-noised at σ̃ = \(times)"), into: &stages)
        }
        return stages
    }

    func reflow() throws -> [DistilledStage] {
        let rf = RectifiedFlowProcess()
        let grid = { (k: Int) in try NoiseGrid.timeUniform(rf, steps: k) }
        let count = max(budget.steps * budget.batch / 4, budget.batch)
        log?("reflow: \(count) pairs from the teacher's DPM-Solver++(2M), 20 steps")
        let (z0, z1) = try OutputDistillation.pairs(teacher: teacher, sampler: .dpmpp2M, grid: karras(21), shape: [count, dimension], seed: seed &+ 7)
        let unit = try z0 * Float(1 / (try karras(21)).levels[0].sigma)   // the pairs' noise as N(0, I)
        let (net, arch) = try network(5)
        let flow = model(net, rf, .velocity, copied: false)
        func batch(_ s: Int) throws -> (Tensor, Tensor) {
            let i = (s * budget.batch) % (count - budget.batch + 1)
            return (try unit.slice(i..<(i + budget.batch)), try z1.slice(i..<(i + budget.batch)))
        }
        try fit("reflow", net) { s, _, _, rng in let (a, b) = try batch(s); return try Reflow.loss(flow: flow, z0: a, z1: b, rng: &rng) }
        let straight = try Reflow.straightness(flow: flow, z0: unit.slice(0..<min(500, count)), steps: 20)
        let rectified = model(try frozenCopy(net, arch), rf, .velocity, copied: false)
        let cardFlow = card(arch, rf, .velocity, .reflow, "rectified flow on the teacher's coupling; sample with rf-euler --grid time", copied: false)
        var stages: [DistilledStage] = []
        for k in [1, 2, 4, 8] {
            try emit(DistilledStage(nfe: k, network: rectified.network.base, card: cardFlow,
                                    sample: { [grid] z, _ in try sampleRectifiedFlowEuler(rectified, from: z, grid: grid(k)).sample },
                                    note: k == 1 ? String(format: "straightness %.4f", straight) : ""), into: &stages)
        }
        try fit("reflow one-step", net, steps: budget.steps / 2, lr: budget.learningRate / 4) { s, _, _, _ in
            let (a, b) = try batch(s)
            return try Reflow.oneStepLoss(flow: flow, z0: a, z1: b, start: rf.epsilon)
        }
        try emit(DistilledStage(nfe: 1, network: net.base, card: card(arch, rf, .velocity, .reflow, "one-step distilled flow; sample with rf-euler --steps 1 --grid time", copied: false),
                                sample: { z, _ in try Reflow.oneStepSample(flow: flow, z0: z, start: rf.epsilon) }, note: "one-step distilled"), into: &stages)
        return stages
    }
}
