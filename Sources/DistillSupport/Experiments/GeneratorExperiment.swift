import Distill
import Foundation

/// The D2G evidence on an analytic mixture (`docs/methods.md` §7): one-step generators trained
/// from the exact teacher by Diff-Instruct, SDS and VSD, scored against exact samples by the
/// mixture's exact measures (log-likelihood gap to an exact draw, mode coverage, in-mode
/// fraction) and sliced-W2, next to the teacher's own samples at 1, 4 and 35 NFE. SDS's
/// mode-seeking shows as collapsed coverage. One run is one seed; ``markdown(_:)`` combines
/// several into mean ± sd.
package struct GeneratorExperiment {
    package struct Row: Sendable, Codable {
        package var method: String
        package var nfe: Int
        package var slicedW2: Double
        /// Mean log p(x) of the samples minus that of an exact draw of the same size (nats).
        package var logLikelihoodGap: Double
        package var modesCovered: Int
        package var modes: Int
        package var highQualityFraction: Double
    }

    package let mixture: GaussianMixture
    package var settings: Distiller.Settings
    package var samples = 2000
    /// The run's seed: the generators' training (added to the settings' seed), the evaluation
    /// noise and the exact draws derive from it.
    package var seed: UInt64 = 0
    package var log: ((String) -> Void)?
    package var onSamples: ((String, Tensor) -> Void)?

    /// Generators of `hidden` widths trained `steps` steps (batch 256, seed 3, learning rates 1e-3).
    package init(mixture: GaussianMixture, steps: Int, hidden: [Int]) {
        self.mixture = mixture
        var s = Distiller.Settings()
        s.steps = steps
        s.batch = 256
        s.seed = 3
        s.hidden = hidden
        s.generator.generatorLearningRate = 1e-3
        settings = s
    }

    package func run() throws -> [Row] {
        var rows: [Row] = []
        let (exact, _) = try mixture.sample(samples, seed: 91, stream: seed)
        let exactLogLikelihood = try mixture.averageLogLikelihood(exact)
        func record(_ name: String, _ nfe: Int, _ x: Tensor) throws {
            let cov = try mixture.modeCoverage(x)
            let sw2 = try slicedWasserstein2(x, exact, seed: 4 &+ seed)
            let gap = try mixture.averageLogLikelihood(x) - exactLogLikelihood
            rows.append(Row(method: name, nfe: nfe, slicedW2: sw2, logLikelihoodGap: gap, modesCovered: cov.coveredModes, modes: cov.modeCount,
                            highQualityFraction: cov.highQualityFraction))
            log?(String(format: "%-28@ NFE %2d  SW2 %.4f  log-lik gap %+.3f  modes %d/%d  in-mode %.3f", name as NSString, nfe, sw2, gap,
                        cov.coveredModes, cov.modeCount, cov.highQualityFraction))
            onSamples?(name, x)
        }
        let teacher = TrainedModel(exact: mixture)
        var rng = Philox(seed: 17, stream: seed)
        let noise = try rng.normal([samples, mixture.dimension])
        try record("exact samples (another draw)", 0, try mixture.sample(samples, seed: 92, stream: seed).samples)
        for (name, nfe, kind) in [("teacher ddim", 1, SamplerKind.ddim), ("teacher dpmpp-2m", 4, .dpmpp2M), ("teacher heun", 35, .heun)] {
            let r = try teacher.sample(fromUnitNoise: noise, plan: SamplingPlan(sampler: kind, nfe: nfe))
            try record(name, r.evaluations, r.sample)
        }
        var seeded = settings
        seeded.seed = settings.seed &+ seed
        let distiller = try Distiller(teacher: teacher, settings: seeded)
        for method in [DistillationMethod.diffInstruct, .sds, .vsd] {
            let stage = try distiller.run(method)[0]
            try record("\(method.rawValue) (\(method.paper))", 1, try stage.model.sample(count: samples, seed: 5 &+ seed))
        }
        if settings.generator.particles == nil {
            // The particle view: SDS collapses particles onto modes, VSD spreads them.
            var particles = distiller
            particles.settings.generator.particles = samples
            for method in [DistillationMethod.sds, .vsd] {
                let stage = try particles.run(method)[0]
                guard case let .generator(g as ParticleGenerator, _) = stage.model.body else { continue }
                try record("\(method.rawValue) particles", 0, g.all.detached())
            }
        }
        return rows
    }

    /// Whether rows read back from a work folder are in range (``WorkRecord``).
    package static func areValid(_ rows: [Row]) -> Bool {
        !rows.isEmpty && rows.allSatisfy { r in
            r.nfe >= 0 && r.slicedW2.isFinite && r.slicedW2 >= 0 && r.logLikelihoodGap.isFinite && r.modes >= 1
                && (0...r.modes).contains(r.modesCovered) && (0...1).contains(r.highQualityFraction)
        }
    }

    /// The runs of one or more seeds as a markdown table (mean ± sd over the seeds; mode
    /// coverage as the range of counts).
    package static func markdown(_ runs: [[Row]]) throws -> String {
        let combined = try SeedSpread.combine(runs, key: { "\($0.method)|\($0.nfe)" }) { r in
            [r.logLikelihoodGap, Double(r.modesCovered), r.highQualityFraction, r.slicedW2]
        }
        var out = "| method | NFE | log-likelihood gap | modes covered | in-mode fraction | sliced-W2 |\n|---|---|---|---|---|---|\n"
        for (r, f) in combined {
            out += "| \(r.method) | \(r.nfe == 0 ? "—" : String(r.nfe)) | \(f[0]!.text(decimals: 3)) | \(f[1]!.countText(of: r.modes)) | "
                + "\(f[2]!.text(decimals: 3)) | \(f[3]!.text(decimals: 4)) |\n"
        }
        return out
    }
}
