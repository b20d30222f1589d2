import Distill
import Foundation

/// The distillation evidence on an analytic mixture (`docs/methods.md` §6): a teacher (the exact
/// mixture, or a network trained on its samples), every D2F method distilled from it by a
/// ``Distiller``, and each student's quality at its NFE next to the teacher's usual sampler and
/// DDIM at the same NFE. The measures are exact where the mixture allows: for students that map
/// noise deterministically the teacher's way, the RMS distance to the exact ODE map of the same
/// noise; for every sample set, its mean log-likelihood under the mixture minus that of exact
/// samples, its mode coverage and in-mode fraction; and, for scale, the sliced-W2 to exact
/// samples with its floor (two exact draws). One run is one seed (training, data stream,
/// evaluation noise and exact draws); ``markdown(_:)`` combines several into mean ± sd.
package struct DistillationExperiment {
    package struct Row: Sendable, Codable {
        package var method: String
        package var nfe: Int
        package var note: String
        /// RMS distance to the exact ODE map of the same noise (deterministic students).
        package var mapError: Double?
        /// Mean log p(x) of the samples minus that of an exact draw of the same size (nats).
        package var logLikelihoodGap: Double?
        /// Modes covered (nil for rows scored against another reference, e.g. guided ones).
        package var modesCovered: Int?
        package var modes: Int
        /// Fraction of samples inside the 99.9% ellipsoid of their most likely component.
        package var inModeFraction: Double?
        /// Sliced-W2 to exact samples (or to the row's own reference, said in its note).
        package var slicedW2: Double
        /// Reflow's straightness (Liu et al. 2022, eq. 7), where measured.
        package var straightness: Double?

        package init(method: String, nfe: Int, note: String = "", mapError: Double? = nil, logLikelihoodGap: Double? = nil,
                     modesCovered: Int? = nil, modes: Int = 0, inModeFraction: Double? = nil, slicedW2: Double, straightness: Double? = nil) {
            self.method = method
            self.nfe = nfe
            self.note = note
            self.mapError = mapError
            self.logLikelihoodGap = logLikelihoodGap
            self.modesCovered = modesCovered
            self.modes = modes
            self.inModeFraction = inModeFraction
            self.slicedW2 = slicedW2
            self.straightness = straightness
        }
    }

    package let mixture: GaussianMixture
    package let teacher: TrainedModel
    /// Whether ``teacher`` is the exact mixture (otherwise the exact teacher's row is added for
    /// comparison, so a reader can tell teacher error from method error).
    package let teacherIsExact: Bool
    package var settings: Distiller.Settings
    package var samples: Int
    /// The run's seed: training (added to the settings' seed), data stream, evaluation noise
    /// and exact draws all derive from it.
    package var seed: UInt64 = 0
    package var log: ((String) -> Void)?
    /// Receives every evaluated sample set (method, NFE, samples), e.g. to draw them.
    package var onSamples: ((String, Int, Tensor) -> Void)?

    /// The experiment on `mixture` with `teacher` (default: the exact mixture); students train
    /// `steps` steps per stage at batch `batch` with MLPs of `hidden` widths.
    package init(mixture: GaussianMixture, teacher: TrainedModel? = nil, steps: Int, batch: Int = 512, hidden: [Int], samples: Int = 2000,
                 log: ((String) -> Void)? = nil) {
        self.mixture = mixture
        self.teacher = teacher ?? TrainedModel(exact: mixture)
        teacherIsExact = teacher == nil
        settings = Distiller.Settings()
        settings.steps = steps
        settings.batch = batch
        settings.hidden = hidden
        self.samples = samples
        self.log = log
    }

    /// Runs the methods (the D2F ones by default); returns the table rows, baselines first.
    package func run(methods: [DistillationMethod] = [.kd, .pd, .cfd, .tract, .boot, .dsno, .guided, .cd, .ct, .reflow]) throws -> [Row] {
        var rows: [Row] = []
        let n = samples
        var rng = Philox(seed: 2024, stream: seed)
        let noise = try rng.normal([n, mixture.dimension])
        let labels = (0..<n).map { $0 % mixture.componentCount }
        let (exact, _) = try mixture.sample(n, seed: 77, stream: seed)
        let exactLogLikelihood = try mixture.averageLogLikelihood(exact)
        let process = teacher.process!
        let start = try SamplingPlan(sampler: .ddim, nfe: 1).startingLevel(process: process)
        let (truthMap, _) = try mixture.solveProbabilityFlow(noise * Float(start.sigma), from: (start.alpha, start.sigma), to: (1, 0))
        func record(_ method: String, _ nfe: Int, _ x: Tensor, reference: Tensor? = nil, mapped: Bool, _ note: String = "",
                    straightness: Double? = nil) throws {
            let sw2 = try slicedWasserstein2(x, reference ?? exact, seed: 5 &+ seed)
            var row = Row(method: method, nfe: nfe, note: note, mapError: mapped ? rmsDistance(x, truthMap) : nil, modes: mixture.componentCount,
                          slicedW2: sw2, straightness: straightness)
            if reference == nil {
                // The mixture's exact measures (a row scored against another reference, e.g. a
                // guided teacher's samples, has only its SW2).
                let coverage = try mixture.modeCoverage(x)
                row.logLikelihoodGap = try mixture.averageLogLikelihood(x) - exactLogLikelihood
                row.modesCovered = coverage.coveredModes
                row.inModeFraction = coverage.highQualityFraction
            }
            rows.append(row)
            onSamples?(method, nfe, x)
            log?(String(format: "%-30@ NFE %2d  SW2 %.4f%@%@", method as NSString, nfe, sw2,
                        row.mapError.map { String(format: "  map error %.4f", $0) } ?? "",
                        row.logLikelihoodGap.map { String(format: "  log-lik gap %+.3f  modes %d/%d  in-mode %.3f", $0, row.modesCovered!, row.modes,
                                                          row.inModeFraction!) } ?? ""))
        }
        try record("exact samples (another draw)", 0, try mixture.sample(n, seed: 78, stream: seed).samples, mapped: false,
                   "floor: two exact draws")
        let best = try teacher.sample(fromUnitNoise: noise, plan: SamplingPlan(sampler: .dpmpp2M, nfe: 21))
        try record("teacher dpmpp-2m", best.evaluations, best.sample, mapped: true, "the teacher's usual sampler")
        if !teacherIsExact {
            let exactTeacher = try TrainedModel(exact: mixture).sample(fromUnitNoise: noise, plan: SamplingPlan(sampler: .dpmpp2M, nfe: 21))
            try record("exact-mixture teacher dpmpp-2m", exactTeacher.evaluations, exactTeacher.sample, mapped: true,
                       "what a perfect teacher gives with the same sampler")
        }
        for k in [1, 2, 4, 8] {
            try record("teacher ddim", k, try teacher.sample(fromUnitNoise: noise, plan: SamplingPlan(sampler: .ddim, nfe: k)).sample, mapped: true)
        }
        var seeded = settings
        seeded.seed = settings.seed &+ seed
        let distiller = try Distiller(teacher: teacher, dataName: "mixture", settings: seeded) { b, s in
            try mixture.sample(b, seed: 0xDA7A &+ seed, stream: UInt64(s))
        }
        var logged = distiller
        logged.log = log
        for method in methods {
            let name = "\(method.rawValue) (\(method.paper))"
            switch method {
            case .guided:
                let exactModel = TrainedModel(exact: mixture)
                var references: [Float: Tensor] = [:]
                for w: Float in [1, 0, 3] {
                    references[w] = try exactModel.sample(fromUnitNoise: noise, plan: SamplingPlan(sampler: .dpmpp2M, nfe: 21), labels: labels,
                                                          guidance: w).sample
                }
                var guidedDistiller = logged
                guidedDistiller.settings.guidanceWeights = [1, 0, 3]
                for stage in try guidedDistiller.run(.guided) {
                    let w = stage.guidance ?? 1
                    try record("\(name), w = \(Int(w))", stage.nfe, try stage.model.sample(fromUnitNoise: noise, labels: labels).sample,
                               reference: references[w], mapped: false, stage.note + "; SW2 to the guided teacher's samples (DPM-Solver++(2M), 20 steps)")
                }
            case .reflow:
                // The first flow for comparison: flow matching on independent (noise, data) pairs.
                let first = try firstRectifiedFlow(settings: seeded)
                let s1 = try Reflow.straightness(flow: first.flow, z0: noise.slice(0..<min(500, n)), steps: 20)
                for k in [1, 2, 4, 8] {
                    let x = try first.model.sample(fromUnitNoise: noise, plan: SamplingPlan(sampler: .rectifiedFlowEuler, nfe: k, spacing: .time,
                                                                                             finalDenoise: false)).sample
                    try record("1-rectified flow (data)", k, x, mapped: false, straightness: k == 1 ? s1 : nil)
                }
                for stage in try logged.run(.reflow) {
                    // A measured straightness is a figure (combined over seeds), not note text.
                    try record(stage.note == "one-step distilled" ? "reflow + one-step distillation" : "reflow (teacher coupling)", stage.nfe,
                               try stage.model.sample(fromUnitNoise: noise).sample, mapped: stage.note == "one-step distilled",
                               stage.straightness == nil ? stage.note : "", straightness: stage.straightness)
                }
            default:
                for stage in try logged.run(method) {
                    try record(name, stage.nfe, try stage.model.sample(fromUnitNoise: noise).sample, mapped: [.kd, .pd, .cfd, .tract, .boot, .dsno].contains(method), stage.note)
                }
            }
        }
        return rows
    }

    /// 1-rectified flow: flow matching on independent (noise, data) pairs, an MLP of the
    /// settings' widths trained for the settings' steps on the one trainer.
    func firstRectifiedFlow(settings: Distiller.Settings) throws -> (flow: DiffusionModel<MLPScoreNetwork>, model: TrainedModel) {
        let rf = DiffusionProcess.rectifiedFlow()
        let net = try MLPScoreNetwork(.init(dataDimension: mixture.dimension, hiddenWidths: settings.hidden), seed: 11 &+ seed)
        let flow = DiffusionModel(network: net, process: rf, parameterization: .velocity)
        let n = settings.steps, peak = settings.learningRate
        let config = TrainingConfiguration(steps: n, learningRate: .warmupCosine(peak: peak, warmupSteps: min(100, n / 10), totalSteps: n,
                                                                                   minimum: peak / 20),
                                           gradientClip: 1, emaDecay: nil, seed: settings.seed &+ 0xD15)
        let trainer = try Trainer(model: net, configuration: config)
        let batch = settings.batch
        try trainer.run { s, rng in
            let (x0, _) = try mixture.sample(batch, seed: 0xDA7A &+ seed, stream: UInt64(s))
            return try flowMatchingLoss(model: flow, data: x0, rng: &rng)
        }
        let card = ModelCard(architecture: .mlp(net.configuration), process: rf, parameterization: .velocity, dataShape: [mixture.dimension],
                             dataSource: "mixture", provenance: "1-rectified flow")
        return (flow, TrainedModel(network: net, card: card))
    }

    /// Whether rows read back from a work folder are in range (``WorkRecord``).
    package static func areValid(_ rows: [Row]) -> Bool {
        func finite(_ x: Double?) -> Bool { x.map(\.isFinite) ?? true }
        return !rows.isEmpty && rows.allSatisfy { r in
            r.nfe >= 0 && r.modes >= 0 && r.slicedW2.isFinite && r.slicedW2 >= 0 && finite(r.mapError) && (r.mapError ?? 0) >= 0
                && finite(r.logLikelihoodGap) && finite(r.straightness) && (r.modesCovered.map { (0...r.modes).contains($0) } ?? true)
                && (r.inModeFraction.map { (0...1).contains($0) } ?? true)
        }
    }

    /// The runs of one or more seeds as a markdown table: each figure as mean ± sd over the
    /// seeds (its value alone for one seed), mode coverage as the range of counts.
    package static func markdown(_ runs: [[Row]]) throws -> String {
        let combined = try SeedSpread.combine(runs, key: { "\($0.method)|\($0.nfe)|\($0.note)" }) { r in
            [r.mapError, r.logLikelihoodGap, r.modesCovered.map(Double.init), r.inModeFraction, r.slicedW2, r.straightness]
        }
        var out = "| method | NFE | RMS to the exact ODE map | log-likelihood gap | modes covered | in-mode fraction | sliced-W2 | note |\n"
            + "|---|---|---|---|---|---|---|---|\n"
        for (r, f) in combined {
            let note = [r.note, f[5].map { "straightness \($0.text(decimals: 4))" }].compactMap { $0 }.filter { !$0.isEmpty }.joined(separator: "; ")
            out += "| \(r.method) | \(r.nfe == 0 ? "—" : String(r.nfe)) | \(f[0]?.text(decimals: 4) ?? "—") | \(f[1]?.text(decimals: 3) ?? "—") | "
                + "\(f[2]?.countText(of: r.modes) ?? "—") | \(f[3]?.text(decimals: 3) ?? "—") | \(f[4]!.text(decimals: 4)) | \(note) |\n"
        }
        return out
    }
}
