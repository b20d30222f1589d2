import Distill
import Foundation

/// The distillation evidence on an analytic mixture (`docs/methods.md` §6): a teacher (the exact
/// mixture, or a network trained on its samples), every D2F method distilled from it by a
/// ``Distiller``, and each student's quality at its NFE next to the teacher's usual sampler and
/// DDIM at the same NFE. Quality is the sliced-W2 to exact samples (with the floor of two exact
/// draws for scale) and, for students that map noise deterministically the teacher's way, the
/// RMS distance to the teacher's exact ODE map of the same noise.
package struct DistillationExperiment {
    package struct Row: Sendable {
        package var method: String
        package var nfe: Int
        package var slicedW2: Double
        package var mapError: Double?
        package var note: String

        package init(method: String, nfe: Int, slicedW2: Double, mapError: Double?, note: String) {
            self.method = method
            self.nfe = nfe
            self.slicedW2 = slicedW2
            self.mapError = mapError
            self.note = note
        }
    }

    package let mixture: GaussianMixture
    package let teacher: TrainedModel
    package var settings: Distiller.Settings
    package var samples: Int
    package var log: ((String) -> Void)?
    /// Receives every evaluated sample set (method, NFE, samples), e.g. to draw them.
    package var onSamples: ((String, Int, Tensor) -> Void)?

    /// The experiment on `mixture` with `teacher` (default: the exact mixture); students train
    /// `steps` steps per stage at batch `batch` with MLPs of `hidden` widths.
    package init(mixture: GaussianMixture, teacher: TrainedModel? = nil, steps: Int, batch: Int = 512, hidden: [Int], samples: Int = 2000,
                 log: ((String) -> Void)? = nil) {
        self.mixture = mixture
        self.teacher = teacher ?? TrainedModel(exact: mixture)
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
        var rng = Philox(seed: 2024)
        let noise = try rng.normal([n, mixture.dimension])
        let labels = (0..<n).map { $0 % mixture.componentCount }
        let (exact, _) = try mixture.sample(n, seed: 77)
        let process = teacher.process!
        let start = try SamplingPlan(sampler: .ddim, nfe: 1).startingLevel(process: process)
        let (truthMap, _) = try mixture.solveProbabilityFlow(noise * Float(start.sigma), from: (start.alpha, start.sigma), to: (1, 0))
        func record(_ method: String, _ nfe: Int, _ x: Tensor, reference: Tensor? = nil, mapped: Bool, _ note: String = "") throws {
            let sw2 = try slicedWasserstein2(x, reference ?? exact, seed: 5)
            let err = mapped ? rmsDistance(x, truthMap) : nil
            rows.append(Row(method: method, nfe: nfe, slicedW2: sw2, mapError: err, note: note))
            onSamples?(method, nfe, x)
            log?(String(format: "%-30@ NFE %2d  SW2 %.4f%@", method as NSString, nfe, sw2, err.map { String(format: "  map error %.4f", $0) } ?? ""))
        }
        try record("exact samples (another draw)", 0, try mixture.sample(n, seed: 78).samples, mapped: false, "sampling floor of SW2 at this size")
        let best = try teacher.sample(fromUnitNoise: noise, plan: SamplingPlan(sampler: .dpmpp2M, nfe: 21))
        try record("teacher dpmpp-2m", best.evaluations, best.sample, mapped: true, "the teacher's usual sampler")
        for k in [1, 2, 4, 8] {
            try record("teacher ddim", k, try teacher.sample(fromUnitNoise: noise, plan: SamplingPlan(sampler: .ddim, nfe: k)).sample, mapped: true)
        }
        let distiller = try Distiller(teacher: teacher, dataName: "mixture", settings: settings) { b, s in
            try mixture.sample(b, seed: 0xDA7A, stream: UInt64(s))
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
                let first = try firstRectifiedFlow(distiller: logged)
                let s1 = try Reflow.straightness(flow: first.flow, z0: noise.slice(0..<min(500, n)), steps: 20)
                for k in [1, 2, 4, 8] {
                    let x = try first.model.sample(fromUnitNoise: noise, plan: SamplingPlan(sampler: .rectifiedFlowEuler, nfe: k, spacing: .time,
                                                                                             finalDenoise: false)).sample
                    try record("1-rectified flow (data)", k, x, mapped: false, k == 1 ? String(format: "straightness %.4f", s1) : "")
                }
                for stage in try logged.run(.reflow) {
                    try record(stage.note == "one-step distilled" ? "reflow + one-step distillation" : "reflow (teacher coupling)", stage.nfe,
                               try stage.model.sample(fromUnitNoise: noise).sample, mapped: stage.note == "one-step distilled", stage.note)
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
    func firstRectifiedFlow(distiller: Distiller) throws -> (flow: DiffusionModel<MLPScoreNetwork>, model: TrainedModel) {
        let rf = DiffusionProcess.rectifiedFlow()
        let net = try MLPScoreNetwork(.init(dataDimension: mixture.dimension, hiddenWidths: settings.hidden), seed: 11)
        let flow = DiffusionModel(network: net, process: rf, parameterization: .velocity)
        let n = settings.steps, peak = settings.learningRate
        let config = TrainingConfiguration(steps: n, learningRate: .warmupCosine(peak: peak, warmupSteps: min(100, n / 10), totalSteps: n,
                                                                                   minimum: peak / 20),
                                           gradientClip: 1, emaDecay: nil, seed: settings.seed &+ 0xD15)
        let trainer = try Trainer(model: net, configuration: config)
        let batch = settings.batch
        try trainer.run { s, rng in
            let (x0, _) = try mixture.sample(batch, seed: 0xDA7A, stream: UInt64(s))
            return try flowMatchingLoss(model: flow, data: x0, rng: &rng)
        }
        let card = ModelCard(architecture: .mlp(net.configuration), process: rf, parameterization: .velocity, dataShape: [mixture.dimension],
                             dataSource: "mixture", provenance: "1-rectified flow")
        return (flow, TrainedModel(network: net, card: card))
    }

    /// The rows as a markdown table.
    package static func markdown(_ rows: [Row]) -> String {
        var out = "| method | NFE | sliced-W2 to exact samples | RMS to the teacher's ODE map | note |\n|---|---|---|---|---|\n"
        for r in rows {
            out += "| \(r.method) | \(r.nfe) | \(String(format: "%.4f", r.slicedW2)) | \(r.mapError.map { String(format: "%.4f", $0) } ?? "—") | \(r.note) |\n"
        }
        return out
    }
}
