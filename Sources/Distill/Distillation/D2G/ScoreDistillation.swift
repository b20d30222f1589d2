import Foundation

/// How diffusion-to-generator objectives weigh noise levels: the factor w(t) on the score
/// (Diff-Instruct) or noise-prediction (SDS, VSD) difference.
package enum ScoreDistillationWeighting: String, Sendable, Codable, CaseIterable {
    case uniform
    case sigma
    /// w = σ²: for Diff-Instruct this is the official EDM-form code's sg(D_fake - D_teacher)·x0.
    case sigmaSquared = "sigma-squared"

    func factor(alpha: Double, sigma: Double) -> Double {
        switch self {
        case .uniform: return 1
        case .sigma: return sigma
        case .sigmaSquared: return sigma * sigma
        }
    }
}

/// Diffusion-to-generator objectives (`docs/methods.md` §7): a generator is trained from a frozen
/// teacher's scores alone, through surrogate losses whose gradients are the methods' stated
/// gradients (the teacher and the fake score are evaluated without gradient).
package enum ScoreDistillation {
    /// Noise levels for one step: t uniform in `range` (a sub-range of the process's times).
    static func levels(_ n: Int, process: some NoiseProcess, range: ClosedRange<Double>?, rng: inout Philox) throws -> NoiseLevels {
        let r = range ?? process.timeRange
        let t = try rng.uniform([n]).scalars.map { r.lowerBound + (r.upperBound - r.lowerBound) * Double($0) }
        return NoiseLevels(process: process, times: t)
    }

    /// Diff-Instruct's generator loss (Luo, Hu, Zhang, Sun, Li & Zhang 2023, eq. 3.3 and
    /// Alg. 1): with x = g_θ(z) (traced), x_t = α_t·x + σ_t·ε and scores s = -ε̂/σ, the surrogate
    /// mean over rows of w(t)·Σⱼ sg(s_fake(x_t) - s_teacher(x_t))ⱼ·x_t,ⱼ, whose gradient is the
    /// integral-KL gradient E w(t)(s_fake - s_teacher)ᵀ∂x_t/∂θ — including α_t = ∂x_t/∂x.
    package static func diffInstructLoss(generated x: Tensor, teacher: some Denoiser, fake: some Denoiser, process: some NoiseProcess,
                                        weighting: ScoreDistillationWeighting = .sigmaSquared, timeRange: ClosedRange<Double>? = nil,
                                        labels: [Int]? = nil, rng: inout Philox) throws -> Tensor {
        let n = x.shape[0]
        let lv = try levels(n, process: process, range: timeRange, rng: &rng)
        let xt = try lv.alphaTensor(rank: x.rank) * x + lv.sigmaTensor(rank: x.rank) * rng.normal(x.shape)
        let direction = try withoutGradient { () throws -> Tensor in
            let xd = xt.detached()
            let et = try teacher.predict(xd, at: lv, labels: labels).noise, ef = try fake.predict(xd, at: lv, labels: labels).noise
            // s_fake - s_teacher = (ε̂_teacher - ε̂_fake)/σ, times w(t).
            let w = zip(lv.alpha, lv.sigma).map { weighting.factor(alpha: $0, sigma: $1) / $1 }
            return try (et - ef) * NoiseLevels.column(w, rank: x.rank)
        }
        return try (direction * xt).sum() * (1 / Float(n))
    }

    /// Score distillation sampling (Poole, Jain, Barron & Mildenhall 2022, eq. 3): the surrogate
    /// mean over rows of Σⱼ sg(w(t)(ε̂_teacher(x_t) - ε))ⱼ·xⱼ, whose gradient is
    /// E w(t)(ε̂ - ε)∂x/∂θ — the teacher's Jacobian dropped. A guided teacher
    /// (``GuidedDenoiser``) gives its classifier-free guidance.
    package static func sdsLoss(generated x: Tensor, teacher: some Denoiser, process: some NoiseProcess,
                               weighting: ScoreDistillationWeighting = .sigmaSquared, timeRange: ClosedRange<Double>? = nil,
                               labels: [Int]? = nil, rng: inout Philox) throws -> Tensor {
        try noiseSurrogate(x, teacher: teacher, process: process, weighting: weighting, timeRange: timeRange, labels: labels,
                           rng: &rng) { _, _, eps in eps }
    }

    /// Variational score distillation (Wang, Lu, Wang, Bao, Li, Su & Zhu 2023, eq. 9): SDS with
    /// the sampled noise ε replaced by a fake noise predictor ε̂_φ trained on the generator's
    /// own samples: surrogate mean Σ sg(w(t)(ε̂_teacher(x_t) - ε̂_φ(x_t)))·x.
    package static func vsdLoss(generated x: Tensor, teacher: some Denoiser, fake: some Denoiser, process: some NoiseProcess,
                               weighting: ScoreDistillationWeighting = .sigmaSquared, timeRange: ClosedRange<Double>? = nil,
                               labels: [Int]? = nil, rng: inout Philox) throws -> Tensor {
        try noiseSurrogate(x, teacher: teacher, process: process, weighting: weighting, timeRange: timeRange, labels: labels,
                           rng: &rng) { xt, lv, _ in try fake.predict(xt, at: lv, labels: labels).noise }
    }

    /// SDS and VSD's shared surrogate: mean over rows of Σ sg(w(t)(ε̂_teacher(x_t) - b))·x with
    /// x_t = α_t·x + σ_t·ε and b = `baseline`(x_t, levels, ε).
    static func noiseSurrogate(_ x: Tensor, teacher: some Denoiser, process: some NoiseProcess, weighting: ScoreDistillationWeighting,
                               timeRange: ClosedRange<Double>?, labels: [Int]?, rng: inout Philox,
                               baseline: (Tensor, NoiseLevels, Tensor) throws -> Tensor) throws -> Tensor {
        let n = x.shape[0]
        let lv = try levels(n, process: process, range: timeRange, rng: &rng)
        let eps = try rng.normal(x.shape)
        let direction = try withoutGradient { () throws -> Tensor in
            let xt = try lv.alphaTensor(rank: x.rank) * x.detached() + lv.sigmaTensor(rank: x.rank) * eps
            let et = try teacher.predict(xt, at: lv, labels: labels).noise
            return try (et - baseline(xt, lv, eps)) * NoiseLevels.column(zip(lv.alpha, lv.sigma).map { weighting.factor(alpha: $0, sigma: $1) },
                                                                          rank: x.rank)
        }
        return try (direction * x).sum() * (1 / Float(n))
    }

    /// The fake score's update (Diff-Instruct, VSD): denoising score matching on the
    /// generator's samples, held constant.
    package static func fakeScoreLoss<N>(fake: DiffusionModel<N>, generated x: Tensor, labels: [Int]? = nil, rng: inout Philox) throws -> Tensor {
        try denoisingScoreMatchingLoss(model: fake, x0: x.detached(), labels: labels, rng: &rng)
    }
}
