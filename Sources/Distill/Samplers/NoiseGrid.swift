import Foundation

/// One noise level of a sampling grid: the state is x = α·x0 + σ·ε. `time` is the process
/// time when the grid came from a process (a model derives it from λ otherwise).
public struct NoiseLevel: Sendable, Equatable, Codable {
    /// The signal scale α.
    public var alpha: Double
    /// The noise scale σ (0 at the clean end).
    public var sigma: Double
    /// The process time of the level, when it came from a process.
    public var time: Double?

    /// A level x = α·x0 + σ·ε (and its process time, when known).
    public init(alpha: Double, sigma: Double, time: Double? = nil) {
        self.alpha = alpha
        self.sigma = sigma
        self.time = time
    }

    /// The clean end of a grid whose last step is a plain denoise.
    public static let clean = NoiseLevel(alpha: 1, sigma: 0)

    /// Half log-SNR λ = log(α/σ) (+∞ at σ = 0).
    package var lambda: Double { log(alpha) - log(sigma) }
    /// σ-form noise level σ̃ = σ/α (Karras et al. 2022: x̃ = x/α has noise σ̃).
    package var sigmaTilde: Double { sigma / alpha }
    package var isClean: Bool { sigma == 0 }
}

/// Errors of samplers and grids.
public enum SamplerError: Error, CustomStringConvertible, Equatable {
    /// A grid that cannot be sampled on (levels out of order, not finite, too few).
    case invalidGrid(String)
    /// A sampler name that is not one of ``SamplerKind``'s.
    case unknownSampler(name: String, valid: [String])
    /// A setting or input that does not fit the sampler or the model.
    case invalidOption(String)

    /// The error in one line.
    public var description: String {
        switch self {
        case let .invalidGrid(m): return "sampling grid: \(m)"
        case let .unknownSampler(name, valid):
            return "unknown sampler '\(name)'\(suggestion(for: name, among: valid)); valid: \(valid.joined(separator: ", "))"
        case let .invalidOption(m): return "sampler: \(m)"
        }
    }
}

/// A sampling grid: noise levels from the noisiest to the cleanest, strictly decreasing in
/// σ̃ = σ/α; only the last may be clean (σ = 0, a final denoise). Samplers step from level i
/// to level i+1. Grids come from a process (time-uniform, time-quadratic, log-SNR-uniform,
/// EDM's ρ-spacing, discrete DDPM spacings) or from explicit (α, σ) pairs.
package struct NoiseGrid: Sendable {
    package let levels: [NoiseLevel]
    /// The process intermediate levels come from (singlestep solvers, RK45); nil for an
    /// explicit grid, whose intermediate levels interpolate log α linearly in λ.
    package let process: (any NoiseProcess)?

    /// A validated grid.
    package init(levels: [NoiseLevel], process: (any NoiseProcess)? = nil) throws {
        guard levels.count >= 2 else { throw SamplerError.invalidGrid("needs at least 2 levels (1 step); got \(levels.count)") }
        for (i, l) in levels.enumerated() {
            guard l.alpha > 0, l.alpha.isFinite, l.sigma >= 0, l.sigma.isFinite else {
                throw SamplerError.invalidGrid("level \(i) has α = \(l.alpha), σ = \(l.sigma); expected α > 0 and σ ≥ 0, finite")
            }
            if l.isClean && i != levels.count - 1 {
                throw SamplerError.invalidGrid("level \(i) is clean (σ = 0); only the last level may be")
            }
            if i > 0, !(l.sigmaTilde < levels[i - 1].sigmaTilde) {
                throw SamplerError.invalidGrid("σ/α must strictly decrease from noisiest to cleanest; level \(i) has \(l.sigmaTilde) after \(levels[i - 1].sigmaTilde)")
            }
        }
        self.levels = levels
        self.process = process
    }

    /// Number of steps (levels - 1).
    package var steps: Int { levels.count - 1 }

    /// The level at half log-SNR λ (between grid levels): from the process when there is one,
    /// else log α interpolated linearly in λ over the grid and σ = α·e^{-λ}.
    package func level(atLambda lambda: Double) -> NoiseLevel {
        if let p = process, let t = p.time(forLogSNR: lambda) {
            return NoiseLevel(alpha: p.alpha(t), sigma: p.sigma(t), time: t)
        }
        let noisy = levels.filter { !$0.isClean }
        var logAlpha = log(noisy[0].alpha)
        if let j = noisy.indices.dropFirst().first(where: { noisy[$0].lambda >= lambda }) {
            let (a, b) = (noisy[j - 1], noisy[j])
            let w = (lambda - a.lambda) / (b.lambda - a.lambda)
            logAlpha = log(a.alpha) + w * (log(b.alpha) - log(a.alpha))
        } else if let last = noisy.last, lambda > last.lambda {
            logAlpha = log(last.alpha)
        }
        let alpha = exp(logAlpha)
        return NoiseLevel(alpha: alpha, sigma: alpha * exp(-lambda))
    }

    // MARK: - Grids from a process

    static func fromTimes(_ times: [Double], process: some NoiseProcess, finalDenoise: Bool) throws -> NoiseGrid {
        var levels = times.map { NoiseLevel(alpha: process.alpha($0), sigma: process.sigma($0), time: $0) }
        if finalDenoise { levels.append(.clean) }
        return try NoiseGrid(levels: levels, process: process)
    }

    static func ends(_ process: some NoiseProcess, _ start: Double?, _ end: Double?) -> (Double, Double) {
        (start ?? process.noisiestTime, end ?? process.cleanestTime)
    }

    static func checkSteps(_ steps: Int) throws {
        guard steps >= 1 else { throw SamplerError.invalidGrid("needs at least 1 step; got \(steps)") }
    }

    /// `steps` steps uniform in time from `start` (default: the noisiest time) to `end`
    /// (default: the cleanest); with `finalDenoise` one more step to σ = 0.
    package static func timeUniform(_ process: some NoiseProcess, steps: Int, start: Double? = nil, end: Double? = nil,
                                   finalDenoise: Bool = false) throws -> NoiseGrid {
        try checkSteps(steps)
        let (a, b) = ends(process, start, end)
        return try fromTimes((0...steps).map { a + (b - a) * Double($0) / Double(steps) }, process: process, finalDenoise: finalDenoise)
    }

    /// DDIM's quadratic spacing (Song, Meng & Ermon 2021): t = end + (start - end)·u², u uniform
    /// from 1 to 0, so steps are denser near the data.
    package static func timeQuadratic(_ process: some NoiseProcess, steps: Int, start: Double? = nil, end: Double? = nil,
                                     finalDenoise: Bool = false) throws -> NoiseGrid {
        try checkSteps(steps)
        let (a, b) = ends(process, start, end)
        return try fromTimes((0...steps).map { i in
            let u = 1 - Double(i) / Double(steps)
            return b + (a - b) * u * u
        }, process: process, finalDenoise: finalDenoise)
    }

    /// Uniform in half log-SNR λ (DPM-Solver's default, Lu et al. 2022).
    package static func logSNRUniform(_ process: some NoiseProcess, steps: Int, start: Double? = nil, end: Double? = nil,
                                     finalDenoise: Bool = false) throws -> NoiseGrid {
        try checkSteps(steps)
        let (a, b) = ends(process, start, end)
        let (la, lb) = (process.logSNR(a), process.logSNR(b))
        let times = try (0...steps).map { i -> Double in
            let lambda = la + (lb - la) * Double(i) / Double(steps)
            guard let t = i == 0 ? a : (i == steps ? b : process.time(forLogSNR: lambda)) else {
                throw SamplerError.invalidGrid("the \(process.name) process has no time for log-SNR \(lambda)")
            }
            return t
        }
        return try fromTimes(times, process: process, finalDenoise: finalDenoise)
    }

    /// EDM's ρ-spacing (Karras et al. 2022, eq. 5): σ̃_i = (σ̃max^{1/ρ} + i/(N-1)·(σ̃min^{1/ρ} - σ̃max^{1/ρ}))^ρ
    /// for i < N, then σ = 0 (EDM's grid ends with a denoise: `finalDenoise` true by default).
    /// σ̃ limits default to the process's range; levels map to time through λ = -log σ̃.
    package static func karras(_ process: some NoiseProcess, steps: Int, sigmaMin: Double? = nil, sigmaMax: Double? = nil,
                              rho: Double = 7, finalDenoise: Bool = true) throws -> NoiseGrid {
        try checkSteps(steps)
        let points = finalDenoise ? steps : steps + 1
        let tilde = { (t: Double) in process.sigma(t) / process.alpha(t) }
        let hi = sigmaMax ?? tilde(process.noisiestTime), lo = sigmaMin ?? tilde(process.cleanestTime)
        guard hi > lo, lo > 0 else { throw SamplerError.invalidGrid("σ̃ range [\(lo), \(hi)] is empty") }
        let times = try (0..<points).map { i -> Double in
            let u = points == 1 ? 0 : Double(i) / Double(points - 1)
            let s = pow(pow(hi, 1 / rho) + u * (pow(lo, 1 / rho) - pow(hi, 1 / rho)), rho)
            guard let t = process.time(forLogSNR: -log(s)) else {
                throw SamplerError.invalidGrid("σ̃ = \(s) is outside the \(process.name) process")
            }
            return t
        }
        return try fromTimes(times, process: process, finalDenoise: finalDenoise)
    }

    /// How a discrete schedule's training steps are picked for a shorter sampling run
    /// (the conventions of DDIM / diffusers; Lin et al. 2024 for "trailing").
    package enum DiscreteSpacing: String, Sendable, CaseIterable, Codable {
        case leading, trailing, linspace

        /// The `count` 0-based training steps of an `n`-step schedule this spacing picks, in
        /// increasing order (`docs/methods.md` §1.8), rounding halves to even as numpy does in
        /// diffusers' `set_timesteps` (e.g. "trailing" with 16 of 1000 steps has 811, not 812).
        package func trainingSteps(_ count: Int, of n: Int) -> [Int] {
            switch self {
            case .leading: return (0..<count).map { $0 * (n / count) }
            case .trailing:
                let ratio = Double(n) / Double(count)
                return (0..<count).reversed().map { Int((Double(n) - Double($0) * ratio).rounded(.toNearestOrEven)) - 1 }
            case .linspace:
                return (0..<count).map { Int((Double($0) * Double(n - 1) / Double(max(count - 1, 1))).rounded(.toNearestOrEven)) }
            }
        }
    }

    /// `steps` of the discrete DDPM schedule's N training steps (1-based indices, each at
    /// t = i/N), from the noisiest chosen one down to the least noisy; with `finalDenoise` a
    /// last step to σ = 0.
    package static func discrete(_ process: DiscreteDDPMProcess, steps: Int, spacing: DiscreteSpacing,
                                finalDenoise: Bool = true) throws -> NoiseGrid {
        try checkSteps(steps)
        let n = process.steps
        guard steps <= n else { throw SamplerError.invalidGrid("\(steps) steps but the schedule has \(n)") }
        let indices = spacing.trainingSteps(steps, of: n)   // 0-based training indices, increasing
        let times = indices.reversed().map { Double($0 + 1) / Double(n) }
        return try fromTimes(Array(times), process: process, finalDenoise: finalDenoise)
    }

    /// A grid of explicit (α, σ) pairs, noisiest first (any published schedule).
    package static func explicit(_ pairs: [(alpha: Double, sigma: Double)], process: (any NoiseProcess)? = nil) throws -> NoiseGrid {
        try NoiseGrid(levels: pairs.map { NoiseLevel(alpha: $0.alpha, sigma: $0.sigma) }, process: process)
    }
}
