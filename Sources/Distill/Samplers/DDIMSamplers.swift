import Foundation

/// DDIM (Song, Meng & Ermon 2021, eq. 12 and 16, for any α, σ):
/// x_s = α_s·x̂0 + √(σ_s² - c²)·ε̂ + c·z with c = η·σ_s·√(1 - e^{-2(λ_s - λ_t)}). η = 0 is the
/// probability-flow ODE's first-order solver; η = 1 is DDPM's ancestral sampler. NFE = steps.
package func sampleDDIM(_ model: some Denoiser, from x: Tensor, grid: NoiseGrid, eta: Double = 0, options: SamplerOptions = .init(),
                       onStep: ((SamplerStep) -> Void)? = nil) throws -> SamplerResult {
    guard eta >= 0 else { throw SamplerError.invalidOption("DDIM η must be >= 0; got \(eta)") }
    return try runSampler(model, x, grid, options, onStep) { run in
        var xs = x
        for i in 0..<grid.steps {
            let (t, s) = (grid.levels[i], grid.levels[i + 1])
            let p = try run.predict(xs, t)
            let c = s.isClean ? 0 : eta * s.sigma * (-expm1(-2 * (s.lambda - t.lambda))).squareRoot()
            xs = try run.combine([(s.alpha, p.data), ((s.sigma * s.sigma - c * c).squareRoot(), p.noise)], noiseStd: c)
            run.report(i, grid, xs, p.data)
        }
        return xs
    }
}

/// DDPM's ancestral sampler (Ho et al. 2020, Alg. 2), on any grid: each step samples the
/// posterior q(x_s | x_t, x̂0), whose variance σ_s²(1 - e^{-2(λ_s - λ_t)}) is DDIM's with η = 1.
package func sampleDDPM(_ model: some Denoiser, from x: Tensor, grid: NoiseGrid, options: SamplerOptions = .init(),
                       onStep: ((SamplerStep) -> Void)? = nil) throws -> SamplerResult {
    try sampleDDIM(model, from: x, grid: grid, eta: 1, options: options, onStep: onStep)
}

/// Analytic-DPM's per-level moment: Γ-term β̄ₙΓₙ = E||ε̂(xₙ)||²/d over noised data xₙ ~ qₙ
/// (Bao et al. 2022, eq. 7, estimated by Monte Carlo once per grid). One value per grid level
/// (0 for a clean level). Costs one denoiser call per noisy level on `data`.
package func analyticDPMMoments(_ model: some Denoiser, grid: NoiseGrid, data: Tensor, seed: UInt64 = 0) throws -> [Double] {
    var rng = Philox(seed: seed, stream: 0xA9A1)
    return try withoutGradient {
        try grid.levels.map { l in
            guard !l.isClean else { return 0 }
            let xn = try data * Float(l.alpha) + rng.normal(data.shape) * Float(l.sigma)
            let eps = try model.predict(xn, alpha: l.alpha, sigma: l.sigma, time: l.time).noise
            return Double(try eps.squared().mean().item())
        }
    }
}

/// Analytic-DPM (Bao, Li, Zhu & Zhang 2022, Theorem 1 with the skip-step form of §4): the
/// DDPM-posterior mean with the optimal reverse variance
/// σ*² = λ² + (√(β̄ₙ/αₙ) - √(β̄ₙ₋₁ - λ²))²·(1 - β̄ₙΓₙ), λ² the posterior variance, and on a
/// skipped grid αₙ = ᾱ_τk/ᾱ_τk-1 (here ᾱ = α², β̄ = σ²). `moments` are
/// ``analyticDPMMoments(_:grid:data:seed:)``. For data in [lo, hi] (e.g. [-1, 1]) the implied
/// per-dimension posterior variance (β̄ₙ/ᾱₙ)(1 - β̄ₙΓₙ) is clipped to [0, (hi - lo)²/4]
/// (their Theorem 2). No noise on the last step. NFE = steps.
package func sampleAnalyticDPM(_ model: some Denoiser, from x: Tensor, grid: NoiseGrid, moments: [Double],
                              dataRange: ClosedRange<Double>? = nil, options: SamplerOptions = .init(),
                              onStep: ((SamplerStep) -> Void)? = nil) throws -> SamplerResult {
    guard moments.count == grid.levels.count else {
        throw SamplerError.invalidOption("\(moments.count) Analytic-DPM moments for a grid of \(grid.levels.count) levels")
    }
    return try runSampler(model, x, grid, options, onStep) { run in
        var xs = x
        for i in 0..<grid.steps {
            let (t, s) = (grid.levels[i], grid.levels[i + 1])
            let p = try run.predict(xs, t)
            let lambda2 = s.sigma * s.sigma * -expm1(-2 * (s.lambda - t.lambda))   // posterior variance
            var residual = 1 - moments[i]                                           // 1 - β̄ₙΓₙ
            if let r = dataRange {
                let posterior = (t.sigma * t.sigma) / (t.alpha * t.alpha) * residual
                let clipped = min(max(posterior, 0), pow(r.upperBound - r.lowerBound, 2) / 4)
                residual = clipped * (t.alpha * t.alpha) / (t.sigma * t.sigma)
            }
            let gap = t.sigma * s.alpha / t.alpha - (max(s.sigma * s.sigma - lambda2, 0)).squareRoot()
            let variance = i == grid.steps - 1 || s.isClean ? 0 : lambda2 + gap * gap * max(residual, 0)
            let meanNoise = (max(s.sigma * s.sigma - lambda2, 0)).squareRoot()
            xs = try run.combine([(s.alpha, p.data), (s.isClean ? 0 : meanNoise, p.noise)], noiseStd: variance.squareRoot())
            run.report(i, grid, xs, p.data)
        }
        return xs
    }
}

/// Euler–Maruyama on the reverse-time SDE dx = [f(t)x - g²(t)∇log p_t] dt + g(t) dw̄ (Song et
/// al. 2021, eq. 6), with ∇log p = -ε̂/σ evaluated at each step's start; no noise on the last
/// step, and a last step to σ = 0 is a plain denoise. Needs the grid's process (f, g²).
/// NFE = steps.
package func sampleEulerMaruyama(_ model: some Denoiser, from x: Tensor, grid: NoiseGrid, options: SamplerOptions = .init(),
                                onStep: ((SamplerStep) -> Void)? = nil) throws -> SamplerResult {
    let process = try sdeProcess(grid)
    return try runSampler(model, x, grid, options, onStep) { run in
        var xs = x
        for i in 0..<grid.steps {
            let (a, b) = (grid.levels[i], grid.levels[i + 1])
            let p = try run.predict(xs, a)
            if b.isClean { xs = p.data } else {
                let (t, tn) = (try levelTime(a, process), try levelTime(b, process))
                let dt = tn - t, f = process.driftCoefficient(t), g2 = process.diffusionSquared(t)
                let last = i == grid.steps - 1
                // x + [f x + g² ε̂/σ]·dt + √(g²|dt|)·z
                xs = try run.combine([(1 + f * dt, xs), (g2 / a.sigma * dt, p.noise)], noiseStd: last ? 0 : (g2 * abs(dt)).squareRoot())
            }
            run.report(i, grid, xs, p.data)
        }
        return xs
    }
}

/// Predictor–corrector sampling (Song et al. 2021, Alg. 1–3): an Euler–Maruyama predictor,
/// then `correctorSteps` Langevin steps at the new level with step size
/// 2·a·(snr·||z||/||∇log p||)² (per-row norms averaged over the batch; a = αₙ²/αₙ₊₁² for
/// VP-like grids, 1 for α ≡ 1). The last step ends on the corrector's mean. NFE =
/// steps·(1 + correctorSteps) (no corrector after a final denoise).
package func samplePredictorCorrector(_ model: some Denoiser, from x: Tensor, grid: NoiseGrid, snr: Double = 0.16,
                                     correctorSteps: Int = 1, options: SamplerOptions = .init(),
                                     onStep: ((SamplerStep) -> Void)? = nil) throws -> SamplerResult {
    guard correctorSteps >= 0, snr > 0 else { throw SamplerError.invalidOption("needs correctorSteps >= 0 and snr > 0") }
    let process = try sdeProcess(grid)
    return try runSampler(model, x, grid, options, onStep) { run in
        var xs = x
        var lastPrediction: Tensor?
        for i in 0..<grid.steps {
            let (a, b) = (grid.levels[i], grid.levels[i + 1])
            let p = try run.predict(xs, a)
            lastPrediction = p.data
            if b.isClean { xs = p.data; run.report(i, grid, xs, p.data); continue }
            let (t, tn) = (try levelTime(a, process), try levelTime(b, process))
            let dt = tn - t, f = process.driftCoefficient(t), g2 = process.diffusionSquared(t)
            xs = try run.combine([(1 + f * dt, xs), (g2 / a.sigma * dt, p.noise)], noiseStd: (g2 * abs(dt)).squareRoot())
            let stepScale = abs(b.alpha - 1) < 1e-12 && abs(a.alpha - 1) < 1e-12 ? 1 : min(1, (a.alpha * a.alpha) / (b.alpha * b.alpha))
            for c in 0..<correctorSteps {
                let q = try run.predict(xs, b)
                lastPrediction = q.data
                let score = q.noise * Float(-1 / b.sigma)
                let z = try run.normal()
                let eps = 2 * stepScale * pow(snr * (try rowNormMean(z)) / max(try rowNormMean(score), 1e-12), 2)
                let final = i == grid.steps - 1 && c == correctorSteps - 1
                xs = try run.combine([(1, xs), (eps, score), (final ? 0 : (2 * eps).squareRoot(), z)])
            }
            run.report(i, grid, xs, lastPrediction)
        }
        return xs
    }
}

/// The grid's process, which SDE samplers need for f and g².
func sdeProcess(_ grid: NoiseGrid) throws -> any NoiseProcess {
    guard let p = grid.process else { throw SamplerError.invalidGrid("this sampler needs a grid built from a process (for f and g²)") }
    guard !(p.underlying is RectifiedFlowProcess) else {
        throw SamplerError.invalidGrid("rectified flow has no reverse-time SDE here; use an ODE sampler")
    }
    return p
}

/// A level's time in `process` (from the level, or through λ).
func levelTime(_ l: NoiseLevel, _ process: any NoiseProcess) throws -> Double {
    if let t = l.time { return t }
    guard let t = process.time(forLogSNR: l.lambda) else { throw SamplerError.invalidGrid("no time for log-SNR \(l.lambda) in \(process.name)") }
    return t
}

/// The mean over rows of each row's Euclidean norm.
func rowNormMean(_ t: Tensor) throws -> Double {
    let per = try t.squared().sum(axes: Array(1..<t.rank)).sqrt()
    return Double(try per.mean().item())
}
