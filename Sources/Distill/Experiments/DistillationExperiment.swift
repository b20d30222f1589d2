import Foundation

/// The distillation evidence on an analytic mixture (`METHODS.md` §6): a teacher (the exact
/// mixture, or a network trained on its samples), every D2F method distilled from it by a
/// ``Distiller``, and each student's quality at its NFE next to the teacher's usual sampler and
/// DDIM at the same NFE. Quality is the sliced-W2 to exact samples (with the floor of two exact
/// draws for scale) and, for students that map noise deterministically the teacher's way, the
/// RMS distance to the teacher's exact ODE map of the same noise.
public struct DistillationExperiment {
    public struct Row: Sendable {
        public var method: String
        public var nfe: Int
        public var slicedW2: Double
        public var mapError: Double?
        public var note: String

        public init(method: String, nfe: Int, slicedW2: Double, mapError: Double?, note: String) {
            self.method = method
            self.nfe = nfe
            self.slicedW2 = slicedW2
            self.mapError = mapError
            self.note = note
        }
    }

    public let mixture: GaussianMixture
    public let teacher: any Denoiser
    public var budget: Distiller.Budget
    public var samples: Int
    public var log: ((String) -> Void)?
    /// Receives every evaluated sample set (method, NFE, samples), e.g. to draw them.
    public var onSamples: ((String, Int, Tensor) -> Void)?

    public init(mixture: GaussianMixture, teacher: (any Denoiser)? = nil, budget: Distiller.Budget = .init(), samples: Int = 2000,
                log: ((String) -> Void)? = nil) {
        self.mixture = mixture
        self.teacher = teacher ?? mixture
        self.budget = budget
        self.samples = samples
        self.log = log
    }

    /// Runs the methods (all by default); returns the table rows, baselines first.
    public func run(methods: [DistillationMethod] = DistillationMethod.allCases) throws -> [Row] {
        var rows: [Row] = []
        let n = samples, process = VPLinearProcess()
        var rng = Philox(seed: 2024)
        let noise = try rng.normal([n, mixture.dimension])
        let labels = (0..<n).map { $0 % mixture.componentCount }
        let (exact, _) = try mixture.sample(n, seed: 77)
        let start = (alpha: process.alpha(1), sigma: process.sigma(1))
        let sigmaMin = process.sigma(1e-3) / process.alpha(1e-3)
        let karras = { (k: Int) in try NoiseGrid.karras(process, steps: k, sigmaMin: sigmaMin) }
        let xT = noise * Float(try karras(1).levels[0].sigma)
        let (truthMap, _) = try mixture.solveProbabilityFlow(xT, from: (try karras(1).levels[0].alpha, try karras(1).levels[0].sigma), to: (1, 0))
        func record(_ method: String, _ nfe: Int, _ x: Tensor, reference: Tensor? = nil, mapped: Bool, _ note: String = "") throws {
            let sw2 = try slicedWasserstein2(x, reference ?? exact, seed: 5)
            let err = mapped ? (zip(x.scalars, truthMap.scalars).reduce(0.0) { $0 + Double($1.0 - $1.1) * Double($1.0 - $1.1) } / Double(x.count)).squareRoot() : nil
            rows.append(Row(method: method, nfe: nfe, slicedW2: sw2, mapError: err, note: note))
            onSamples?(method, nfe, x)
            log?(String(format: "%-30@ NFE %2d  SW2 %.4f%@", method as NSString, nfe, sw2, err.map { String(format: "  map error %.4f", $0) } ?? ""))
        }
        _ = start
        try record("exact samples (another draw)", 0, try mixture.sample(n, seed: 78).samples, mapped: false, "sampling floor of SW2 at this size")
        let best = try sampleDPMSolverPP2M(teacher, from: xT, grid: karras(21))
        try record("teacher dpmpp-2m", best.evaluations, best.sample, mapped: true, "the teacher's usual sampler")
        for k in [1, 2, 4, 8] { try record("teacher ddim", k, try sampleDDIM(teacher, from: xT, grid: karras(k)).sample, mapped: true) }
        var distiller = Distiller(teacher: teacher, conditionalTeacher: ClassConditionalMixture(mixture), nullLabel: mixture.componentCount,
                                  dimension: mixture.dimension, dataSource: "mixture", budget: budget) { b, s in
            let (x, c) = try mixture.sample(b, seed: 0xDA7A, stream: UInt64(s))
            return (x, c)
        }
        distiller.log = log
        for method in methods {
            let name = "\(method.rawValue) (\(method.paper))"
            switch method {
            case .guided:
                let cond = ClassConditionalMixture(mixture)
                var references: [Float: Tensor] = [:]
                for w: Float in [1, 0, 3] {
                    references[w] = try sampleDPMSolverPP2M(GuidedDenoiser(cond, guidance: w, nullLabel: cond.nullLabel), from: xT,
                                                            grid: karras(21), options: .init(labels: labels)).sample
                }
                for stage in try distiller.run(.guided, guidanceWeights: [1, 0, 3]) {
                    let w = stage.guidance ?? 1
                    try record("\(name), w = \(Int(w))", stage.nfe, try stage.sample(noise, labels), reference: references[w], mapped: false,
                               stage.note + "; SW2 to the guided teacher's samples (DPM-Solver++(2M), 20 steps)")
                }
            case .reflow:
                // The first flow for comparison: flow matching on independent (noise, data) pairs.
                let rf = RectifiedFlowProcess()
                let first = try MLPScoreNetwork(.init(dataDimension: mixture.dimension, hiddenWidths: budget.hidden), seed: 11)
                let flow1 = DiffusionModel(network: first, process: rf, parameterization: .velocity)
                try distiller.fit("1-rectified flow", first) { _, x0, _, rng in try flowMatchingLoss(model: flow1, data: x0, rng: &rng) }
                let s1 = try Reflow.straightness(flow: flow1, z0: noise.slice(0..<min(500, n)), steps: 20)
                for k in [1, 2, 4, 8] {
                    try record("1-rectified flow (data)", k, try sampleRectifiedFlowEuler(flow1, from: noise, grid: NoiseGrid.timeUniform(rf, steps: k)).sample,
                               mapped: false, k == 1 ? String(format: "straightness %.4f", s1) : "")
                }
                for stage in try distiller.run(.reflow) {
                    try record(stage.note == "one-step distilled" ? "reflow + one-step distillation" : "reflow (teacher coupling)", stage.nfe,
                               try stage.sample(noise, nil), mapped: stage.note == "one-step distilled", stage.note)
                }
            default:
                for stage in try distiller.run(method) {
                    try record(name, stage.nfe, try stage.sample(noise, nil), mapped: method == .kd || method == .pd, stage.note)
                }
            }
        }
        return rows
    }

    /// The rows as a markdown table.
    public static func markdown(_ rows: [Row]) -> String {
        var out = "| method | NFE | sliced-W2 to exact samples | RMS to the teacher's ODE map | note |\n|---|---|---|---|---|\n"
        for r in rows {
            out += "| \(r.method) | \(r.nfe) | \(String(format: "%.4f", r.slicedW2)) | \(r.mapError.map { String(format: "%.4f", $0) } ?? "—") | \(r.note) |\n"
        }
        return out
    }
}
