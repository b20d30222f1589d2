import Foundation

/// How training weighs noise levels, stated as the factor on the ε-error ||ε̂ - ε||²
/// (`docs/methods.md` §3; Salimans & Ho 2022 for the x-space weightings, Karras et al. 2022 for EDM).
public enum LossWeighting: String, Sendable, Codable, CaseIterable {
    /// ||ε̂ - ε||² (Ho et al. 2020's simple loss).
    case epsilon
    /// "SNR" weighting: ||x̂0 - x0||², i.e. the ε-error × 1/SNR.
    case snr
    /// Truncated SNR, max(||x̂0 - x0||², ||ε̂ - ε||²): the ε-error × max(1, 1/SNR).
    case truncatedSNR = "truncated-snr"
    /// The v-loss ||v̂ - v||² for VP processes: the ε-error × (1 + 1/SNR).
    case v
    /// EDM's λ(σ)||D - x0||² with λ = (σ̃² + σ_d²)/(σ̃σ_d)²: the ε-error × (σ̃² + σ_d²)/σ_d².
    case edm
    /// Unit weight on the raw network output's error (e.g. flow matching's ||û - (X1 - X0)||²).
    case output

    /// The factor on the ε-error at (α, σ); nil for ``output``.
    package func epsilonWeight(alpha: Double, sigma: Double, sigmaData: Double = 0.5) -> Double? {
        let inverseSNR = (sigma * sigma) / (alpha * alpha)
        switch self {
        case .epsilon: return 1
        case .snr: return inverseSNR
        case .truncatedSNR: return max(1, inverseSNR)
        case .v: return 1 + inverseSNR
        case .edm: return (inverseSNR + sigmaData * sigmaData) / (sigmaData * sigmaData)
        case .output: return nil
        }
    }
}

extension Parameterization {
    /// κ with ||output error|| = |κ|·||ε error|| at fixed x (d(output)/dε along the data/noise
    /// split). Losses are computed on the raw output, weighted by w/κ², which equals w times
    /// the ε-error without dividing by a small σ.
    func outputPerEpsilon(alpha a: Double, sigma s: Double, sigmaData: Double) -> Double {
        switch self {
        case .epsilon: return 1
        case .data: return s / a
        case .v: return (a * a + s * s) / a
        case .score: return 1 / s
        case .edm:
            let st = s / a
            let cOut = st * sigmaData / (st * st + sigmaData * sigmaData).squareRoot()
            return st / cOut
        case .velocity: return (a + s) / a
        }
    }
}

/// How training draws noise levels.
public enum TimeSampling: Sendable, Codable, Equatable {
    /// t uniform over the process's time range.
    case uniform
    /// ln σ̃ ~ N(mean, std²) (EDM: N(-1.2, 1.2²)), mapped to the process's time through λ = -ln σ̃.
    case logNormal(mean: Double, std: Double)

    /// Draws `count` times for `process`.
    package func draw(_ count: Int, process: some NoiseProcess, rng: inout Philox) throws -> [Double] {
        switch self {
        case .uniform:
            let r = process.timeRange
            return try rng.uniform([count]).scalars.map { r.lowerBound + (r.upperBound - r.lowerBound) * Double($0) }
        case let .logNormal(mean, std):
            return try rng.normal([count]).scalars.map { z in
                let lambda = -(mean + std * Double(z))
                guard let t = process.time(forLogSNR: lambda) else {
                    throw TensorError.invalidArgument(operation: "TimeSampling.logNormal",
                                                      message: "the \(process.name) process has no time with log-SNR \(lambda)")
                }
                return t
            }
        }
    }
}

/// Denoising score matching (Vincent 2011; Song et al. 2021; Ho et al. 2020) for any model
/// and parameterization: t from `sampling`, ε ~ N(0, I), x_t = α x0 + σ ε, and
/// mean over rows of w(t)·||ε̂ - ε||² / (elements per row), computed on the raw output as
/// (w/κ²)·||out - target||² (see ``LossWeighting``). With EDM's process, parameterization,
/// conditioning, `.edm` weighting and log-normal sampling this is the EDM loss (Karras et al.
/// 2022, eq. 8); with rectified flow, `.velocity` and `.output` it is flow matching.
/// Random draws come from `rng`, so a step is reproducible bit for bit.
public func denoisingScoreMatchingLoss<N>(model: DiffusionModel<N>, x0: Tensor, labels: [Int]? = nil,
                                          weighting: LossWeighting = .epsilon, sampling: TimeSampling = .uniform,
                                          rng: inout Philox) throws -> Tensor {
    guard x0.rank >= 2 else {
        throw TensorError.invalidShape(operation: "denoisingScoreMatchingLoss", shape: x0.shape, expected: "[batch, ...]")
    }
    let batch = x0.shape[0]
    let times = try sampling.draw(batch, process: model.process, rng: &rng)
    let eps = try rng.normal(x0.shape)
    let levels = NoiseLevels(process: model.process, times: times)
    let a = try levels.alphaTensor(rank: x0.rank), s = try levels.sigmaTensor(rank: x0.rank)
    let xt = try a * x0 + s * eps
    let out = try model.output(xt, at: levels, labels: labels)
    let target = try model.parameterization.target(x0: x0, epsilon: eps, x: xt, alpha: a, sigma: s, sigmaData: model.sigmaData)
    let sd = Double(model.sigmaData)
    let rowWeights = zip(levels.alpha, levels.sigma).map { al, si -> Double in
        guard let w = weighting.epsilonWeight(alpha: al, sigma: si, sigmaData: sd) else { return 1 }
        let k = model.parameterization.outputPerEpsilon(alpha: al, sigma: si, sigmaData: sd)
        return w / (k * k)
    }
    let sq = try (out - target).squared()
    if rowWeights.allSatisfy({ $0 == 1 }) { return sq.mean() }
    return try (sq * NoiseLevels.column(rowWeights, rank: x0.rank)).mean()
}

/// Flow matching / rectified flow (Liu et al. 2022; Lipman et al. 2023): t ~ U[0, 1],
/// X0 ~ N(0, I), X_t = t·X1 + (1-t)·X0, loss ||û(X_t, t) - (X1 - X0)||² (mean over elements).
/// The model must use the rectified-flow process and the velocity parameterization.
public func flowMatchingLoss<N>(model: DiffusionModel<N>, data x1: Tensor, labels: [Int]? = nil,
                                rng: inout Philox) throws -> Tensor {
    guard model.process.underlying is RectifiedFlowProcess, model.parameterization == .velocity else {
        throw TensorError.invalidArgument(operation: "flowMatchingLoss",
                                          message: "needs the rectified-flow process and the velocity parameterization")
    }
    return try denoisingScoreMatchingLoss(model: model, x0: x1, labels: labels, weighting: .output, rng: &rng)
}

/// Explicit score matching against a known score (Hyvärinen 2005; the Fisher divergence
/// ½E||s_θ(x_t) - ∇log p_t(x_t)||²), with x_t drawn from the exact mixture's p_t at uniform
/// times and the sum over dimensions averaged over rows; weighted by σ² (λ(t) = σ², which
/// makes it ½||ε̂ - ε*||² with ε* = -σ∇log p_t). Only possible where the true score is known:
/// used to validate training.
public func explicitScoreMatchingLoss(model: some Denoiser, mixture: GaussianMixture, batch: Int,
                                      process: DiffusionProcess, rng: inout Philox) throws -> Tensor {
    let (x0, _) = try mixture.sample(batch, seed: rng.seed, stream: rng.stream ^ 0xE5A1 &+ rng.offset)
    rng.offset += UInt64(batch)
    let times = try TimeSampling.uniform.draw(batch, process: process, rng: &rng)
    let levels = NoiseLevels(process: process, times: times)
    let eps = try rng.normal(x0.shape)
    let xt = try levels.alphaTensor(rank: 2) * x0 + levels.sigmaTensor(rank: 2) * eps
    let xs = xt.scalars.map(Double.init), d = mixture.dimension
    var trueEps = [Float](repeating: 0, count: xs.count)
    for i in 0..<batch {
        let (_, score) = mixture.denoiserAndScore(Array(xs[(i * d)..<((i + 1) * d)]), alpha: levels.alpha[i], sigma: levels.sigma[i])
        for j in 0..<d { trueEps[i * d + j] = Float(-levels.sigma[i] * score[j]) }
    }
    let pred = try model.predict(xt, at: levels, labels: nil)
    return try (pred.noise - Tensor(shape: xt.shape, scalars: trueEps)).squared().sum() * (0.5 / Float(batch))
}

/// Sliced score matching (Song, Garg, Shi & Ermon 2019) on noised data at uniform times:
/// E_v E_x [vᵀ∇_x(vᵀs_θ(x)) + ½(vᵀs_θ(x))²], v ~ N(0, I), the directional derivative taken
/// by a central difference of step h = `relativeStep`·σ(t) along v; weighted by σ(t)² so every
/// level contributes on the ε scale. Needs no knowledge of the noise that made x.
public func slicedScoreMatchingLoss(model: some Denoiser, process: DiffusionProcess, x0: Tensor,
                                    relativeStep: Double = 1e-2, rng: inout Philox) throws -> Tensor {
    let batch = x0.shape[0]
    let times = try TimeSampling.uniform.draw(batch, process: process, rng: &rng)
    let levels = NoiseLevels(process: process, times: times)
    let a = try levels.alphaTensor(rank: x0.rank), s = try levels.sigmaTensor(rank: x0.rank)
    let x = try a * x0 + s * rng.normal(x0.shape)
    let v = try rng.normal(x0.shape)
    let h = s * Float(relativeStep)
    func score(_ y: Tensor) throws -> Tensor { try -(model.predict(y, at: levels, labels: nil).noise / s) }
    let reduceAxes = Array(1..<x0.rank)
    func project(_ t: Tensor) throws -> Tensor { try (t * v).sum(axes: reduceAxes) }
    let sv = try project(score(x))
    let plus = try project(score(x + h * v)), minus = try project(score(x - h * v))
    let hRow = try h.reshaped([batch])
    let divergence = try (plus - minus) / (hRow * 2)
    let weight = try s.reshaped([batch]).squared()
    return try ((divergence + sv.squared() * 0.5) * weight).mean()
}

/// Classifier-free guidance training's label dropout (Ho & Salimans 2022): each label is
/// replaced by `nullLabel` with probability `probability` (draws from `rng`).
package func dropLabels(_ labels: [Int], probability: Double, nullLabel: Int, rng: inout Philox) throws -> [Int] {
    let u = try rng.uniform([labels.count]).scalars
    return zip(labels, u).map { Double($1) < probability ? nullLabel : $0 }
}
