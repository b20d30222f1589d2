import Distill
import Foundation

/// The D2G evidence on an analytic mixture (`docs/methods.md` §7): one-step generators trained
/// from the exact teacher by Diff-Instruct, SDS and VSD, scored by sliced-W2 and mode coverage
/// against exact samples, next to the teacher's own samples at 1, 4 and 35 NFE. SDS's
/// mode-seeking shows as collapsed coverage.
package struct GeneratorExperiment {
    package struct Row: Sendable {
        package var method: String
        package var nfe: Int
        package var slicedW2: Double
        package var modesCovered: Int
        package var modes: Int
        package var highQualityFraction: Double
    }

    package let mixture: GaussianMixture
    package var settings: Distiller.Settings
    package var samples = 2000
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
        let (exact, _) = try mixture.sample(samples, seed: 91)
        func record(_ name: String, _ nfe: Int, _ x: Tensor) throws {
            let cov = try mixture.modeCoverage(x)
            let sw2 = try slicedWasserstein2(x, exact, seed: 4)
            rows.append(Row(method: name, nfe: nfe, slicedW2: sw2, modesCovered: cov.coveredModes, modes: cov.modeCount,
                            highQualityFraction: cov.highQualityFraction))
            log?(String(format: "%-28@ NFE %2d  SW2 %.4f  modes %d/%d  in-mode %.2f", name as NSString, nfe, sw2, cov.coveredModes, cov.modeCount, cov.highQualityFraction))
            onSamples?(name, x)
        }
        let teacher = TrainedModel(exact: mixture)
        var rng = Philox(seed: 17)
        let noise = try rng.normal([samples, mixture.dimension])
        try record("exact samples (another draw)", 0, try mixture.sample(samples, seed: 92).samples)
        for (name, nfe, kind) in [("teacher ddim", 1, SamplerKind.ddim), ("teacher dpmpp-2m", 4, .dpmpp2M), ("teacher heun", 35, .heun)] {
            let r = try teacher.sample(fromUnitNoise: noise, plan: SamplingPlan(sampler: kind, nfe: nfe))
            try record(name, r.evaluations, r.sample)
        }
        let distiller = try Distiller(teacher: teacher, settings: settings)
        for method in [DistillationMethod.diffInstruct, .sds, .vsd] {
            let stage = try distiller.run(method)[0]
            try record("\(method.rawValue) (\(method.paper))", 1, try stage.model.sample(count: samples, seed: 5))
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

    package static func markdown(_ rows: [Row]) -> String {
        var out = "| method | NFE | sliced-W2 to exact samples | modes covered | in-mode fraction |\n|---|---|---|---|---|\n"
        for r in rows {
            out += "| \(r.method) | \(r.nfe == 0 ? "—" : String(r.nfe)) | \(String(format: "%.4f", r.slicedW2)) | \(r.modesCovered)/\(r.modes) | \(String(format: "%.3f", r.highQualityFraction)) |\n"
        }
        return out
    }
}
