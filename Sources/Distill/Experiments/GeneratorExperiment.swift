import Foundation

/// The D2G evidence on an analytic mixture (`METHODS.md` §7, issue "Diffusion-to-generator"):
/// one-step generators trained from the exact teacher by Diff-Instruct, SDS and VSD, scored by
/// sliced-W2 and mode coverage against exact samples, next to the teacher's own samples at 1,
/// 4 and 35 NFE. SDS's mode-seeking shows as collapsed coverage.
public struct GeneratorExperiment {
    public struct Row: Sendable {
        public var method: String
        public var nfe: Int
        public var slicedW2: Double
        public var modesCovered: Int
        public var modes: Int
        public var highQualityFraction: Double
    }

    public let mixture: GaussianMixture
    public var settings: GeneratorDistiller.Settings
    public var samples = 2000
    public var log: ((String) -> Void)?
    public var onSamples: ((String, Tensor) -> Void)?

    public init(mixture: GaussianMixture, settings: GeneratorDistiller.Settings = .init()) {
        self.mixture = mixture
        self.settings = settings
    }

    public func run() throws -> [Row] {
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
        let process = VPLinearProcess()
        var rng = Philox(seed: 17)
        let noise = try rng.normal([samples, mixture.dimension])
        try record("exact samples (another draw)", 0, try mixture.sample(samples, seed: 92).samples)
        for (name, steps, kind) in [("teacher ddim", 1, SamplerKind.ddim), ("teacher dpmpp-2m", 4, .dpmpp2M), ("teacher heun", 18, .heun)] {
            let grid = try NoiseGrid.karras(process, steps: steps, sigmaMin: process.sigma(1e-3) / process.alpha(1e-3))
            let r = try kind.sample(mixture, from: noise * Float(grid.levels[0].sigma), grid: grid)
            try record(name, r.evaluations, r.sample)
        }
        for method in GeneratorMethod.allCases {
            var d = GeneratorDistiller(teacher: mixture, process: process, dimension: mixture.dimension, settings: settings)
            d.progress = nil
            let (gen, _) = try d.run(method)
            var r2 = Philox(seed: 5)
            try record("\(method.rawValue) (\(method.paper))", 1, try withoutGradient { try gen.sample(samples, rng: &r2) })
        }
        if settings.particles == nil {
            // The particle view: SDS collapses particles onto modes, VSD spreads them.
            var particleSettings = settings
            particleSettings.particles = samples
            for method in [GeneratorMethod.sds, .vsd] {
                let d = GeneratorDistiller(teacher: mixture, process: process, dimension: mixture.dimension, settings: particleSettings)
                let (gen, _) = try d.run(method)
                try record("\(method.rawValue) particles", 0, (gen as! ParticleGenerator).all.detached())
            }
        }
        return rows
    }

    public static func markdown(_ rows: [Row]) -> String {
        var out = "| method | NFE | sliced-W2 to exact samples | modes covered | in-mode fraction |\n|---|---|---|---|---|\n"
        for r in rows {
            out += "| \(r.method) | \(r.nfe == 0 ? "—" : String(r.nfe)) | \(String(format: "%.4f", r.slicedW2)) | \(r.modesCovered)/\(r.modes) | \(String(format: "%.3f", r.highQualityFraction)) |\n"
        }
        return out
    }
}
