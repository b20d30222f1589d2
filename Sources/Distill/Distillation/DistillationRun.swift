import Foundation

/// One run of a ``Distiller``: the method's stages in order, each a ``Trainer`` run whose state
/// is checkpointed in the directory, and the students they produce. A stage that finished in
/// an earlier run is reloaded from its checkpoint; the stage that was interrupted continues
/// from its last one, so a resumed run gives the same bits as an uninterrupted one.
struct DistillationRun {
    let d: Distiller
    let method: DistillationMethod
    let directory: String?
    let resume: Bool
    let onStage: ((DistilledStage) throws -> Void)?
    private(set) var stages: [DistilledStage] = []
    let teacherFingerprint: String

    init(distiller: Distiller, method: DistillationMethod, directory: String?, resume: Bool, overwrite: Bool,
         onStage: ((DistilledStage) throws -> Void)?) throws {
        d = distiller
        self.method = method
        self.directory = directory
        self.resume = resume
        self.onStage = onStage
        if distiller.settings.students == .teacher, !method.makesGenerator {
            guard let card = distiller.teacher.card, distiller.teacher.network != nil else {
                throw TrainingError.invalidConfiguration("students of the teacher's architecture need a teacher checkpoint (not an exact mixture)")
            }
            guard card.architecture.consistencySigmaMax == nil else {
                throw TrainingError.invalidConfiguration("students can take a diffusion teacher's architecture, not a consistency model's")
            }
        }
        teacherFingerprint = try fingerprint(of: distiller.teacher)
        if let directory, !resume, !overwrite {
            let prefix = method.rawValue + "-", hidden = "." + method.rawValue + "-"
            let existing = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
            if let clash = existing.sorted().first(where: { ($0.hasPrefix(prefix) || $0.hasPrefix(hidden)) && $0.hasSuffix(".safetensors") }) {
                throw TrainingError.invalidConfiguration("\(directory)/\(clash) exists from an earlier run; resume it, or overwrite it explicitly")
            }
        }
    }

    var settings: Distiller.Settings { d.settings }
    var seed: UInt64 { settings.seed }
    var copiesTeacher: Bool { settings.students == .teacher }
    var process: DiffusionProcess { d.teacher.process! }
    var teacher: any Denoiser { d.denoiser }
    var dimension: Int { d.dimension }
    var sigmaMinTilde: Double { process.sigma(process.cleanestTime) / process.alpha(process.cleanestTime) }

    mutating func execute() throws {
        d.log?("\(method.rawValue) (\(method.paper)): \(settings.steps) steps per stage, batch \(settings.batch)")
        switch method {
        case .kd: try knowledgeDistillation()
        case .pd: try progressive()
        case .tract: try transitiveClosure()
        case .cfd: try classifierFeature()
        case .boot: try bootstrapping()
        case .dsno: try operatorDistillation()
        case .guided: try guided()
        case .cd, .ct: try consistency(training: method == .ct)
        case .reflow: try reflow()
        case .diffInstruct, .sds, .vsd: try generator()
        }
    }

    // MARK: - Stages

    /// Where a stage's running state is checkpointed.
    func statePath(_ stage: String) -> String? {
        directory.map { "\($0)/.\(method.rawValue)-\(stage).state.safetensors" }
    }

    /// The trainer settings of a D2F stage: AdamW without weight decay, warm-up then cosine to
    /// a twentieth of the peak, clipping at norm 1.
    func configuration(steps n: Int, lr peak: Float, emaDecay: Float? = nil) -> TrainingConfiguration {
        TrainingConfiguration(steps: n, learningRate: .warmupCosine(peak: peak, warmupSteps: min(100, n / 10), totalSteps: n, minimum: peak / 20),
                              weightDecay: 0, gradientClip: 1, emaDecay: emaDecay, seed: seed &+ 0xD15,
                              checkpointEvery: settings.checkpointEvery, logEvery: Int.max)
    }

    /// Runs (or resumes, or reloads when finished) one stage of `trainer`; `body` makes a
    /// step's updates from the step and its data batch.
    func train(_ stage: String, _ trainer: Trainer, needsData: Bool, prepare: ((Trainer) throws -> Void)? = nil,
               body: (inout Trainer.Step, Tensor?, [Int]?) throws -> Float) throws {
        trainer.identity = ["method": method.rawValue, "stage": stage, "settings": try Trainer.json(settings),
                            "teacher": teacherFingerprint, "data": d.dataName]
        let path = statePath(stage)
        if resume, let path, FileManager.default.fileExists(atPath: path) {
            try trainer.resume(from: path)
            if trainer.step > 0 { d.log?("\(method.rawValue) \(stage): resumed at step \(trainer.step) of \(trainer.configuration.steps)") }
        }
        try prepare?(trainer)
        guard !needsData || d.data != nil else {
            throw TrainingError.invalidConfiguration("\(method.rawValue) needs training data (samples of the teacher's distribution)")
        }
        let name = label(stage)
        let summary = try trainer.runSteps(checkpoint: path, log: nil, progress: { p in
            d.progress?(name, p)
            if d.shouldStop?() == true { trainer.requestStop() }
        }) { step in
            var x0: Tensor?, labels: [Int]?
            if needsData, let data = d.data { (x0, labels) = try data(settings.batch, step.index) }
            return try body(&step, x0, labels)
        }
        if summary.interrupted { throw TrainingError.interrupted(checkpoint: path ?? "(no directory: nothing was saved)") }
    }

    /// How progress names a stage: "pd, 16 steps", "guided, stage 1", "cd".
    func label(_ stage: String) -> String {
        if stage == method.rawValue { return stage }
        if [.pd, .cfd].contains(method), let k = Int(stage.dropFirst(method.rawValue.count)) { return "\(method.rawValue), \(k) steps" }
        if method == .tract, let k = Int(stage.dropFirst(5)) { return "tract, phase \(k)" }
        if stage.hasPrefix("stage") { return "\(method.rawValue), stage \(stage.dropFirst(5))" }
        return "\(method.rawValue), \(stage)"
    }

    /// A single-module stage: `loss(step, x0, labels, rng)`.
    /// `after` runs after every update (and once before the first, e.g. to sync a target network).
    func fit(_ stage: String, _ module: Module, card: some JSONCard, steps: Int? = nil, lr: Float? = nil, emaDecay: ((Int) -> Float)? = nil,
             emaStart: Float? = nil, needsData: Bool = true, after: ((Trainer) throws -> Void)? = nil,
             _ loss: (Int, Tensor?, [Int]?, inout Philox) throws -> Tensor) throws {
        let c = configuration(steps: steps ?? settings.steps, lr: lr ?? settings.learningRate, emaDecay: emaStart)
        let trainer = try Trainer(model: module, configuration: c, card: card.json, emaDecay: emaDecay)
        try train(stage, trainer, needsData: needsData, prepare: after) { step, x0, labels in
            let s = step.index
            let value = try step.update("model") { rng in try loss(s, x0, labels, &rng) }
            try after?(trainer)
            return value
        }
    }

    /// Records a student, writes it to the directory and hands it to `onStage`.
    mutating func emit(_ name: String, nfe: Int, network: any ConditionalNetwork, card: ModelCard, note: String = "",
                       guidance: Float? = nil, straightness: Double? = nil) throws {
        try emit(DistilledStage(name: name, nfe: nfe, model: TrainedModel(network: network, card: card), note: note, guidance: guidance,
                                straightness: straightness))
    }

    mutating func emit(_ stage: DistilledStage) throws {
        if let directory { try stage.model.write(to: "\(directory)/\(stage.name).safetensors") }
        stages.append(stage)
        try onStage?(stage)
    }

    // MARK: - Students

    /// A student network and its architecture: a fresh MLP, or the teacher's architecture —
    /// with the teacher's weights when `copyTeacher` (the methods whose papers do so).
    func network(_ salt: UInt64, classes: Int? = nil, guidance: Int = 0, copyTeacher: Bool = false) throws -> (AnyNetwork, ModelCard.Architecture) {
        switch settings.students {
        case .mlp:
            let c = MLPScoreNetwork.Configuration(dataDimension: dimension, hiddenWidths: settings.hidden, classCount: classes,
                                                  classEmbeddingDim: 16, guidanceEmbeddingDim: guidance)
            return (AnyNetwork(try MLPScoreNetwork(c, seed: seed &+ salt)), .mlp(c))
        case .teacher:
            let card = d.teacher.card!
            if let classes, card.architecture.classCount != classes {
                throw TrainingError.invalidConfiguration("this method needs a student with \(classes) classes; the teacher's network has "
                    + (card.architecture.classCount.map { "\($0)" } ?? "none"))
            }
            let arch = card.architecture.withGuidanceInput(guidance)
            let net = try arch.network(seed: seed &+ salt)
            if copyTeacher {
                let fresh = try net.copySharedParameters(from: d.teacher.network!)
                d.log?("student starts from the teacher's weights" + (fresh.isEmpty ? "" : " (new at zero: \(fresh.joined(separator: ", ")))"))
            }
            return (AnyNetwork(net), arch)
        }
    }

    /// The conditioning and σ_data of students that copy the teacher (the teacher card's), or
    /// the defaults for fresh students.
    func inputs(copied: Bool) -> (conditioning: NetworkConditioning, sigmaData: Float) {
        if copied, let card = d.teacher.card { return (card.conditioning, card.sigmaData) }
        return (.time, 0.5)
    }

    /// A diffusion-model student over `net` (`copied`: started from the teacher's weights).
    func model(_ net: AnyNetwork, _ p: DiffusionProcess, _ par: Parameterization, copied: Bool) -> DiffusionModel<AnyNetwork> {
        let (conditioning, sigmaData) = inputs(copied: copied)
        return DiffusionModel(network: net, process: p, parameterization: par, conditioning: conditioning, sigmaData: sigmaData)
    }

    /// A copy of `net` (same architecture) to freeze as a finished stage.
    func frozenCopy(_ net: AnyNetwork, _ arch: ModelCard.Architecture) throws -> AnyNetwork {
        let frozen = try arch.network()
        try frozen.copyParameters(from: net)
        return AnyNetwork(frozen)
    }

    /// A student's card: its architecture, process and parameterization, how it samples.
    func card(_ arch: ModelCard.Architecture, _ p: DiffusionProcess, _ par: Parameterization, _ what: String, copied: Bool,
              plan: SamplingPlan? = nil) -> ModelCard {
        let (conditioning, sigmaData) = inputs(copied: copied)
        var c = ModelCard(architecture: arch, process: p, parameterization: par, conditioning: conditioning, sigmaData: sigmaData,
                          dataShape: d.teacher.itemShape, dataSource: d.dataName, classCount: arch.classCount,
                          provenance: "\(method.rawValue) (\(method.paper)): \(what)")
        c.plan = plan
        c.dataRange = d.teacher.card?.dataRange
        return c
    }

    func karras(_ steps: Int) throws -> NoiseGrid { try NoiseGrid.karras(process, steps: steps, sigmaMin: sigmaMinTilde) }

    /// PD's student schedule, uniform in time (`docs/methods.md` §6.3). A network teacher of a VP
    /// process (and a student copied from the teacher) keeps the teacher's process, so the
    /// teacher's two DDIM steps per student step follow its own time spacing: on Salimans & Ho's
    /// α = cos(πt/2) the first step leaves SNR ≈ 0 for α ≈ 0.2 in one jump, carrying a trained
    /// ε-prediction teacher's x̂0 = (z − σ·ε̂)/α with ε̂'s error amplified by σ/α ≈ 150. The
    /// cosine schedule is kept for the exact mixture (whose x̂0 is exact at every level) and for
    /// VE, EDM and flow teachers, restricted to the teacher's log-SNR range and to |λ| ≤ 10 (the
    /// paper's clip) so the teacher is never asked about levels it was not trained on.
    var progressiveProcess: DiffusionProcess {
        if copiesTeacher || (d.teacher.mixture == nil && (process.underlying is VPLinearProcess || process.underlying is VPCosineProcess)) { return process }
        let (lo, hi) = (max(process.logSNR(process.noisiestTime), -10), min(process.logSNR(process.cleanestTime), 10))
        return .vpCosine(s: 0, tMin: 2 / Double.pi * atan(exp(-hi)), tMax: 2 / Double.pi * atan(exp(-lo)))
    }

    /// A plan of DDIM on PD's k-step grid (uniform in time to the clean end).
    func progressivePlan(_ p: DiffusionProcess, _ k: Int) throws -> SamplingPlan {
        SamplingPlan(sampler: .ddim, levels: try ProgressiveDistillation.grid(process: p, steps: k).levels)
    }

    // MARK: - Methods

    mutating func knowledgeDistillation() throws {
        let (net, arch) = try network(1, copyTeacher: true)
        let student = model(net, process, .data, copied: copiesTeacher)
        let grid = try karras(21)
        let level = grid.levels[0]
        let batch = settings.batch
        let count = max(settings.steps * batch / 4, batch)
        d.log?("kd: \(count) pairs from the teacher's DPM-Solver++(2M), 20 steps")
        let (pn, pt) = try OutputDistillation.pairs(teacher: teacher, sampler: .dpmpp2M, grid: grid, shape: [count, dimension], seed: seed)
        let c = card(arch, process, .data, "one step from σ̃max", copied: copiesTeacher, plan: SamplingPlan(sampler: .ddim, nfe: 1))
        try fit("kd", net, card: c, needsData: false) { s, _, _, _ in
            let i = (s * batch) % (count - batch + 1)
            return try OutputDistillation.loss(student: student, noise: pn.slice(i..<(i + batch)), targets: pt.slice(i..<(i + batch)), level: level)
        }
        try emit("kd-nfe1", nfe: 1, network: try frozenCopy(net, arch).base, card: c)
    }

    /// PD's halvings 16 → 8 → 4 → 2 → 1, each stage's teacher the frozen previous student;
    /// `featureStages` (CFD) replace PD's squared error by the classifier loss in those stages.
    mutating func progressive(featureStages: Set<Int> = [], classifier: (any DistillationClassifier)? = nil) throws {
        let pd = progressiveProcess, name = method.rawValue, cfd = settings.classifierFeature
        let (net, arch) = try network(2, copyTeacher: true)
        let student = model(net, pd, .v, copied: copiesTeacher)
        var current: any Denoiser = teacher
        for k in [16, 8, 4, 2, 1] {
            let t = current
            let features = featureStages.contains(k) ? classifier : nil
            let note = features == nil ? (featureStages.isEmpty ? "" : "PD stage") : "CFD stage, τ = \(cfd.temperature)"
            let c = card(arch, pd, .v, "\(k)-step student" + (note.isEmpty ? "" : " (\(note))"), copied: copiesTeacher, plan: try progressivePlan(pd, k))
            try fit("\(name)\(k)", net, card: c) { _, x0, _, rng in
                if let features {
                    return try ClassifierFeatureDistillation.loss(student: student, teacher: t, classifier: features, x0: x0!, steps: k, settings: cfd, rng: &rng)
                }
                return try ProgressiveDistillation.loss(student: student, teacher: t, x0: x0!, steps: k, rng: &rng)
            }
            let frozen = try frozenCopy(net, arch)
            try emit("\(name)-nfe\(k)", nfe: k, network: frozen.base, card: c, note: note)
            current = model(frozen, pd, .v, copied: copiesTeacher)
        }
    }

    /// CFD (§6.9): PD's stages down to 4 steps, then the 2- and 1-step stages through the
    /// classifier: the exact posterior of a mixture teacher, the package's digit classifier for
    /// 8×8 digits.
    mutating func classifierFeature() throws {
        let classifier: any DistillationClassifier
        if let m = d.teacher.mixture {
            classifier = try MixturePosteriorClassifier(m, noise: settings.classifierFeature.classifierNoise)
        } else if d.teacher.itemShape == [1, 8, 8] || (d.teacher.itemShape == [64] && d.dataName.hasPrefix("digits")) {
            classifier = try DigitClassifier.pretrainedDigits8x8()
        } else {
            throw TrainingError.invalidConfiguration("cfd needs a classifier of the teacher's items: an exact-mixture teacher or 8×8 digits; these items have shape \(d.teacher.itemShape)")
        }
        try progressive(featureStages: [2, 1], classifier: classifier)
    }

    /// TRACT's phases (§6.10): the student's raw weights carry on from phase to phase; a
    /// self-teacher follows them with EMA decay ½ after every step; the evaluation EMA (decay
    /// ρ^{1/S}) is what each phase emits and what teaches the next phase, and it is never
    /// restarted ("always EMA"): phase 2's EMA starts from phase 1's.
    mutating func transitiveClosure() throws {
        let pd = progressiveProcess, schedule = settings.tractSchedule, steps = settings.steps
        let (net, arch) = try network(7, copyTeacher: true)
        let student = model(net, pd, .v, copied: copiesTeacher)
        let selfNet = try frozenCopy(net, arch)
        let selfTeacher = model(selfNet, pd, .v, copied: copiesTeacher)
        let follower = try ExponentialMovingAverage(selfNet, decay: TransitiveClosureDistillation.selfTeacherDecay)
        let decay = TransitiveClosureDistillation.evaluationDecay(stepsPerPhase: steps)
        var current: any Denoiser = teacher
        var previous: AnyNetwork?
        for (phase, (tp, sp)) in zip(schedule, schedule.dropFirst()).enumerated() {
            let c = card(arch, pd, .v, "phase \(phase + 1), \(tp) → \(sp) steps", copied: copiesTeacher, plan: try progressivePlan(pd, sp))
            let config = configuration(steps: steps, lr: settings.learningRate, emaDecay: decay)
            let main = Trainer.Part(name: "model", module: net, optimizer: try Adam.adamW(net, learningRate: settings.learningRate, weightDecay: 0),
                                    schedule: config.learningRate, clip: config.gradientClip,
                                    ema: try ExponentialMovingAverage(previous ?? net, decay: decay),
                                    emaDecay: previous == nil ? nil : { _ in decay })
            // The self-teacher is a part only so that checkpoints hold its weights; it is never stepped.
            let follow = Trainer.Part(name: "self", module: selfNet, optimizer: try Adam(selfNet), schedule: .constant(0), clip: nil, ema: nil)
            let trainer = try Trainer(parts: [main, follow], configuration: config, card: c.json)
            let t = current
            try train("phase\(phase + 1)", trainer, needsData: true, prepare: { _ in try follower.load(selfNet.stateDictionary()) }) { step, x0, _ in
                let value = try step.update("model") { rng in
                    try TransitiveClosureDistillation.loss(student: student, teacher: t, selfTeacher: selfTeacher, x0: x0!,
                                                           teacherSteps: tp, studentSteps: sp, rng: &rng)
                }
                try follower.update(from: net)
                try follower.copy(to: selfNet)
                return value
            }
            let averaged = AnyNetwork(try arch.network())
            try trainer.parts[0].ema!.copy(to: averaged)
            try emit("tract-nfe\(sp)", nfe: sp, network: averaged.base, card: c, note: "phase \(phase + 1), \(tp) → \(sp)")
            current = model(averaged, pd, .v, copied: copiesTeacher)
            previous = averaged
        }
    }

    mutating func guided() throws {
        guard let null = d.teacher.classCount else {
            throw TrainingError.invalidConfiguration("guided distillation needs a class-conditional teacher")
        }
        let pd = progressiveProcess
        let (net, arch) = try network(6, classes: null, guidance: 16, copyTeacher: true)
        let student = model(net, pd, .v, copied: copiesTeacher)
        let teacher = self.teacher
        let card1 = card(arch, pd, .v, "stage 1: w-conditioned student", copied: copiesTeacher)
        try fit("stage1", net, card: card1) { _, x0, labels, rng in
            guard let labels else { throw TrainingError.invalidConfiguration("guided distillation needs labelled data") }
            return try GuidedDistillation.loss(student: student, teacher: teacher, x0: x0!, labels: labels, nullLabel: null,
                                               guidance: 0...4, rng: &rng)
        }
        let stage1 = try frozenCopy(net, arch)
        for w in settings.guidanceWeights {
            for k in [8, 4] {
                var c = card1
                c.plan = try progressivePlan(pd, k)
                c.guidance = w
                try emit("guided-w\(weightName(w))-nfe\(k)", nfe: k, network: stage1.base, card: c, note: "stage 1", guidance: w)
            }
        }
        let w = settings.guidanceWeights[0]
        let s2 = student.withGuidance(w)
        let stage1Model = model(stage1, pd, .v, copied: copiesTeacher).withGuidance(w)
        var card2 = card(arch, pd, .v, "stage 2: 4 steps at w = \(weightName(w))", copied: copiesTeacher, plan: try progressivePlan(pd, 4))
        card2.guidance = w
        try fit("stage2", net, card: card2, steps: settings.steps / 2) { _, x0, labels, rng in
            try ProgressiveDistillation.loss(student: s2, teacher: stage1Model, x0: x0!, steps: 4, labels: labels, rng: &rng)
        }
        try emit("guided-w\(weightName(w))-nfe4-stage2", nfe: 4, network: try frozenCopy(net, arch).base, card: card2, note: "stage 2",
                 guidance: w)
    }

    /// CD and CT. A CD student copied from the teacher reads the network as the teacher's
    /// denoiser (``ConsistencyModel/DenoiserForm``), so it starts from the teacher as in the
    /// paper; CT students (trained without a teacher in the paper) start fresh. The target
    /// network θ⁻ is the EMA of the student, copied after every step.
    mutating func consistency(training: Bool) throws {
        let copy = copiesTeacher && !training
        let (net, arch) = try network(3, copyTeacher: copy)
        let (targetNet, _) = try network(3, copyTeacher: copy)
        var form: ConsistencyModel<AnyNetwork>.DenoiserForm?
        if copy, let tc = d.teacher.card {
            form = .init(process: tc.process, parameterization: tc.parameterization, conditioning: tc.conditioning)
        }
        let student = ConsistencyModel(network: net, sigmaData: Double(inputs(copied: copy).sigmaData), denoiserForm: form)
        let target = ConsistencyModel(network: targetNet, sigmaData: student.sigmaData, denoiserForm: form)
        let total = settings.steps
        var c = card(arch.consistency(sigmaMax: student.sigmaMax), form?.process ?? .edm(), form?.parameterization ?? .data,
                     copy ? "consistency model over the teacher's denoiser, started from its weights" : "consistency model", copied: copy)
        if copy { c.consistencyReadsDenoiser = true }
        let decay: (Int) -> Float = training
            ? { s in Float(ConsistencyDistillation.trainingSchedule(step: s, totalSteps: total, s0: 10, s1: 80).emaDecay) }
            : { _ in 0.99 }
        let teacher = self.teacher
        try fit(training ? "ct" : "cd", net, card: c, emaDecay: decay, emaStart: 0.99, after: { trainer in
            try trainer.parts[0].ema!.copy(to: targetNet)
        }) { s, x0, _, rng in
            if training {
                let n = ConsistencyDistillation.trainingSchedule(step: s, totalSteps: total, s0: 10, s1: 80).steps
                return try ConsistencyDistillation.trainingLoss(student: student, target: target, x0: x0!, steps: n, rng: &rng)
            }
            return try ConsistencyDistillation.distillationLoss(student: student, target: target, teacher: teacher, x0: x0!, steps: 18, rng: &rng)
        }
        let final = try frozenCopy(net, arch.consistency(sigmaMax: student.sigmaMax))
        for (k, times) in [(1, [Double]()), (2, [0.8]), (4, [2, 0.8, 0.3])] {
            var ck = c
            let levels = ([student.sigmaMax] + times).map { NoiseLevel(alpha: 1, sigma: $0) } + [.clean]
            ck.plan = SamplingPlan(sampler: .consistency, levels: levels)
            try emit("\(method.rawValue)-nfe\(k)", nfe: k, network: final.base, card: ck,
                     note: times.isEmpty ? "" : "re-noised at σ̃ = " + times.map { String($0) }.joined(separator: ", "))
        }
    }

    mutating func reflow() throws {
        let rf = DiffusionProcess.rectifiedFlow()
        let batch = settings.batch
        let count = max(settings.steps * batch / 4, batch)
        d.log?("reflow: \(count) pairs from the teacher's DPM-Solver++(2M), 20 steps")
        let grid21 = try karras(21)
        let (z0, z1) = try OutputDistillation.pairs(teacher: teacher, sampler: .dpmpp2M, grid: grid21, shape: [count, dimension], seed: seed &+ 7)
        let unit = z0 * Float(1 / grid21.levels[0].sigma)   // the pairs' noise as N(0, I)
        let (net, arch) = try network(5)
        let flow = model(net, rf, .velocity, copied: false)
        func pair(_ s: Int) throws -> (Tensor, Tensor) {
            let i = (s * batch) % (count - batch + 1)
            return (try unit.slice(i..<(i + batch)), try z1.slice(i..<(i + batch)))
        }
        let cardFlow = card(arch, rf, .velocity, "rectified flow on the teacher's coupling", copied: false)
        try fit("reflow", net, card: cardFlow, needsData: false) { s, _, _, rng in
            let (a, b) = try pair(s)
            return try Reflow.loss(flow: flow, z0: a, z1: b, rng: &rng)
        }
        let straight = try Reflow.straightness(flow: flow, z0: unit.slice(0..<min(500, count)), steps: 20)
        let rectified = try frozenCopy(net, arch)
        for k in [1, 2, 4, 8] {
            var c = cardFlow
            c.plan = SamplingPlan(sampler: .rectifiedFlowEuler, nfe: k, spacing: .time, finalDenoise: false)
            try emit("reflow-nfe\(k)", nfe: k, network: rectified.base, card: c, note: k == 1 ? String(format: "straightness %.4f", straight) : "",
                     straightness: k == 1 ? straight : nil)
        }
        let oneStep = card(arch, rf, .velocity, "one-step distilled flow", copied: false,
                           plan: SamplingPlan(sampler: .rectifiedFlowEuler, nfe: 1, spacing: .time, finalDenoise: true))
        try fit("onestep", net, card: oneStep, steps: settings.steps / 2, lr: settings.learningRate / 4, needsData: false) { s, _, _, _ in
            let (a, b) = try pair(s)
            return try Reflow.oneStepLoss(flow: flow, z0: a, z1: b)
        }
        try emit("reflow-onestep-nfe1", nfe: 1, network: try frozenCopy(net, arch).base, card: oneStep, note: "one-step distilled")
    }

    /// The teacher a data-free generator learns from: the whole teacher, or one class of it
    /// (``Distiller/Settings/teacherClass``), classifier-free guided at
    /// ``Distiller/Settings/teacherGuidance`` when set.
    func oneClassTeacher() throws -> any Denoiser {
        var teacher: any Denoiser = self.teacher
        if let c = settings.teacherClass {
            guard let classes = d.teacher.classCount, (0..<classes).contains(c) else {
                throw TrainingError.invalidConfiguration("the teacher class \(c) is not among the teacher's \(d.teacher.classCount.map { "classes 0..<\($0)" } ?? "(no classes)")")
            }
            if let w = settings.teacherGuidance { teacher = GuidedDenoiser(AnyDenoiser(teacher), guidance: w, nullLabel: classes) }
            teacher = FixedLabelDenoiser(AnyDenoiser(teacher), label: c)
        } else if settings.teacherGuidance != nil {
            throw TrainingError.invalidConfiguration("guidance of the teacher needs a teacher class")
        }
        return teacher
    }

    /// BOOT (§6.11): one data-free stage training ŷ_θ(ε, t) on PD's time axis; the student is
    /// emitted as a one-step ``SignalGenerator``. A class-conditional teacher is distilled for
    /// one class (guided when asked), as the generators are.
    mutating func bootstrapping() throws {
        guard settings.students == .mlp else {
            throw TrainingError.invalidConfiguration("boot students are MLPs of the noise and the time; students of the teacher's architecture are not supported")
        }
        let p = progressiveProcess, n = settings.bootIntervals
        let (net, arch) = try network(8)
        let teacher = try oneClassTeacher()
        let config = SignalGenerator.Configuration(architecture: arch, itemShape: d.teacher.itemShape, time: p.timeRange.lowerBound)
        var card = GeneratorCard(method: method.rawValue, latentDimension: dimension, dataDimension: dimension, hidden: [])
        card.signal = config
        card.dataShape = d.teacher.itemShape
        card.provenance = "\(method.rawValue) (\(method.paper)), \(settings.steps) steps, data-free, from a teacher trained on \(d.teacher.card?.dataSource ?? "an exact mixture")"
            + (settings.teacherClass.map { ", class \($0)" } ?? "") + (settings.teacherGuidance.map { ", guidance \($0)" } ?? "")
        let shape = [settings.batch, dimension]
        try fit("boot", net, card: card, needsData: false) { _, _, _, rng in
            try BootstrappingDistillation.loss(student: net, process: p, teacher: teacher, shape: shape, intervals: n, rng: &rng)
        }
        let generator = SignalGenerator(config, network: try frozenCopy(net, arch).base)
        try emit(DistilledStage(name: "boot-nfe1", nfe: 1, model: TrainedModel(.generator(generator, card)), note: "data-free"))
    }

    /// DSNO (§6.12): pairs of starting noise and teacher trajectory at the slices' times, then one
    /// stage fitting a ``TrajectoryGenerator`` to them; emitted as a one-step generator.
    mutating func operatorDistillation() throws {
        guard settings.students == .mlp else {
            throw TrainingError.invalidConfiguration("dsno students are trajectory MLPs; the teacher's architecture cannot be copied")
        }
        let p = progressiveProcess, times = OperatorDistillation.defaultTimes
        let batch = settings.batch, count = max(settings.steps * batch / 64, batch)
        d.log?("dsno: \(count) trajectories of the teacher (\(d.teacher.mixture == nil ? "DPM-Solver++(2M), 64 steps" : "exact ODE")) at u = \(times)")
        let (start, states) = try OperatorDistillation.trajectories(teacher: oneClassTeacher(), mixture: settings.teacherClass == nil ? d.teacher.mixture : nil,
                                                                    process: p, times: times, itemShape: d.teacher.itemShape, count: count, seed: seed,
                                                                    progress: { [log = d.log] done, total in log?("dsno: \(done) of \(total) trajectories") })
        let top = try ProgressiveDistillation.grid(process: p, steps: 1).levels[0]
        let config = TrajectoryGenerator.Configuration(dataDimension: dimension, hiddenWidths: settings.hidden, times: times, startSigma: top.sigma)
        let gen = try TrajectoryGenerator(config, seed: seed &+ 10)
        var card = GeneratorCard(method: method.rawValue, latentDimension: dimension, dataDimension: dimension, hidden: [])
        card.trajectory = config
        card.dataShape = d.teacher.itemShape
        card.provenance = "\(method.rawValue) (\(method.paper)), \(settings.steps) steps on \(count) teacher trajectories"
        let w = OperatorDistillation.weights(process: p, times: times)
        try fit("dsno", gen, card: card, needsData: false) { s, _, _, _ in
            let i = (s * batch) % (count - batch + 1)
            return try OperatorDistillation.loss(student: gen, start: start.slice(i..<(i + batch)), states: states.slice(i..<(i + batch)), weights: w)
        }
        let frozen = try TrajectoryGenerator(config)
        try frozen.copyParameters(from: gen)
        try emit(DistilledStage(name: "dsno-nfe1", nfe: 1, model: TrainedModel(.generator(frozen, card)),
                                note: "states at u = " + times.map { String($0) }.joined(separator: ", ")))
    }

    /// Diff-Instruct, SDS or VSD: a one-step generator and (Diff-Instruct, VSD) a fake score
    /// network, each with its own Adam, alternating ``Distiller/Settings/fakeStepsPerGeneratorStep``
    /// fake-score updates and one generator update. No data are used.
    mutating func generator() throws {
        let s = settings, g = s.generator
        var latent = s.latentDimension ?? dimension
        var conv: ConvGenerator.Configuration?
        if s.convolutionalGenerator {
            let shape = d.teacher.itemShape
            guard shape.count == 3, shape[1] == shape[2] else {
                throw TrainingError.invalidConfiguration("a convolutional generator needs an image teacher ([C, S, S] items); this one has items of shape \(shape)")
            }
            conv = ConvGenerator.Configuration(imageSize: shape[1], imageChannels: shape[0], latentDimension: s.latentDimension ?? 64,
                                               stochastic: s.stochasticGenerator)
            latent = conv!.latentDimension
        }
        if g.particles != nil { latent = 1 }
        var card = GeneratorCard(method: method.rawValue, latentDimension: latent, dataDimension: dimension,
                                 hidden: g.particles == nil && conv == nil ? s.hidden : [], particles: g.particles,
                                 noiseDimension: !s.convolutionalGenerator && s.stochasticGenerator ? latent : nil, convolutional: conv)
        card.dataShape = d.teacher.itemShape
        card.provenance = "\(method.rawValue) (\(method.paper)), \(s.steps) steps from a teacher trained on \(d.teacher.card?.dataSource ?? "an exact mixture")"
        let genSeed = seed
        let gen = try card.makeGenerator(seed: genSeed)
        let teacher = try oneClassTeacher()
        let lr = g.generatorLearningRate ?? s.learningRate
        let process = self.process
        let main = Trainer.Part(name: "model", module: gen, optimizer: try Adam(gen, learningRate: lr, beta1: 0, beta2: 0.999),
                                schedule: .constant(lr), clip: 10, ema: nil)
        let fakeNet = try MLPScoreNetwork(.init(dataDimension: dimension, hiddenWidths: s.fakeHidden), seed: genSeed &+ 1)
        let fake = DiffusionModel(network: fakeNet, process: process, parameterization: .epsilon)
        let fakePart = Trainer.Part(name: "fake", module: fakeNet, optimizer: try Adam.adamW(fakeNet, learningRate: g.fakeLearningRate, weightDecay: 0),
                                    schedule: .constant(g.fakeLearningRate), clip: nil, ema: nil)
        let config = TrainingConfiguration(steps: s.steps, learningRate: .constant(lr), gradientClip: 10, emaDecay: nil, seed: genSeed &+ 0x6E,
                                           checkpointEvery: s.checkpointEvery, logEvery: Int.max)
        let trainer = try Trainer(parts: [main, fakePart], configuration: config, card: card.json)
        let needsFake = method != .sds
        let method = self.method
        try train("generator", trainer, needsData: false) { step, _, _ in
            for _ in 0..<(needsFake ? s.fakeStepsPerGeneratorStep : 0) {
                try step.update("fake") { rng in
                    let x = try withoutGradient { try gen.sample(s.batch, rng: &rng) }
                    return try ScoreDistillation.fakeScoreLoss(fake: fake, generated: x, rng: &rng)
                }
            }
            return try step.update("model") { rng in
                let x = try gen.sample(s.batch, rng: &rng)
                switch method {
                case .diffInstruct:
                    return try ScoreDistillation.diffInstructLoss(generated: x, teacher: teacher, fake: fake, process: process,
                                                                  weighting: g.weighting, timeRange: g.timeRange, rng: &rng)
                case .sds:
                    return try ScoreDistillation.sdsLoss(generated: x, teacher: teacher, process: process, weighting: g.weighting,
                                                         timeRange: g.timeRange, rng: &rng)
                default:
                    return try ScoreDistillation.vsdLoss(generated: x, teacher: teacher, fake: fake, process: process,
                                                         weighting: g.weighting, timeRange: g.timeRange, rng: &rng)
                }
            }
        }
        try emit(DistilledStage(name: "\(method.rawValue)-nfe1", nfe: 1, model: TrainedModel(.generator(gen, card)), note: "one-step generator"))
    }
}

/// A card stored in a stage's checkpoints as JSON.
protocol JSONCard { var json: String { get } }
extension ModelCard: JSONCard {}
extension GeneratorCard: JSONCard {}

/// "1", "0.5", "-2": a guidance weight in a file name.
func weightName(_ w: Float) -> String { w == w.rounded() ? String(Int(w)) : String(w) }

/// A short, stable digest of a teacher (its card and weights, or its mixture): resumed
/// distillation runs must have the same teacher.
func fingerprint(of model: TrainedModel) throws -> String {
    var h: UInt64 = 0xcbf2_9ce4_8422_2325   // FNV-1a, 64 bits
    func mix(_ bytes: UnsafeRawBufferPointer) { for b in bytes { h = (h ^ UInt64(b)) &* 0x100_0000_01b3 } }
    if let m = model.mixture {
        Array(try Trainer.json(m).utf8).withUnsafeBytes(mix)
    } else if let card = model.card, let net = model.network {
        Array(card.json.utf8).withUnsafeBytes(mix)
        for (name, t) in net.stateDictionary().sorted(by: { $0.key < $1.key }) {
            Array(name.utf8).withUnsafeBytes(mix)
            t.withUnsafeBufferPointer { mix(UnsafeRawBufferPointer($0)) }
        }
    }
    return String(h, radix: 16)
}
