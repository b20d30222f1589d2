import Distill
import Foundation
import Testing

/// A single Gaussian N(μ, v·I) as a denoiser built from traced tensor ops: its prediction
/// carries gradient back to the state it is given, so a surrogate that lost its stop-gradient
/// would hand the teacher's (or the fake's) Jacobian on to the generator. `mixture` is the same
/// Gaussian for the exact scores in Double.
struct TracedGaussianDenoiser: Denoiser {
    let mean: [Float]
    let variance: Float

    var mixture: GaussianMixture {
        try! GaussianMixture(weights: [1], means: [mean.map(Double.init)], variances: [mean.map { _ in Double(variance) }])
    }

    func predict(_ x: Tensor, at levels: NoiseLevels, labels: [Int]?) throws -> Prediction {
        let n = x.shape[0], v = Double(variance)
        func column(_ f: (Double, Double) -> Double) throws -> Tensor {
            try Tensor(shape: [n, 1], scalars: zip(levels.alpha, levels.sigma).map { Float(f($0, $1)) })
        }
        let a = try column { a, _ in a }
        let gain = try column { a, s in a * v / (a * a * v + s * s) }
        let mu = try Tensor(shape: [1, mean.count], scalars: mean)
        let data = try mu + gain * (x - a * mu)                          // E[x0 | x] of one Gaussian
        let noise = try (x - a * data) * column { _, s in 1 / s }
        return Prediction(data: data, noise: noise)
    }
}

/// The D2G objectives (`docs/methods.md` §7) through the library's own loss functions: the
/// gradient each surrogate produces is compared with the method's stated gradient computed here
/// from exact mixture scores in Double, on the same random draws.
@Suite struct ScoreDistillationObjectiveTests {
    /// The draws a D2G loss makes from `rng` for a batch of `n` rows of dimension `d`: one
    /// uniform per row for the time (mapped into `range`), then the noise ε (`ScoreDistillation`
    /// draws them in this order for all three objectives).
    static func draws(_ rng: Philox, n: Int, d: Int, range: ClosedRange<Double>) throws -> (t: [Double], eps: [Double]) {
        var r = rng
        let u = try r.uniform([n]).scalars
        let eps = try r.normal([n, d]).scalars.map(Double.init)
        return (u.map { range.lowerBound + (range.upperBound - range.lowerBound) * Double($0) }, eps)
    }

    enum Objective: String, CaseIterable { case diffInstruct, sds, vsd }

    /// The stated gradient of `objective` with respect to the generated samples x (n × d, flat)
    /// for the draws (t, ε): with x_t = α·x + σ·ε, s = ∇log p_t, ε̂ = -σ·s,
    /// - Diff-Instruct: (1/n)·w·α·(s_fake - s_teacher)  (∂x_t/∂x = α),
    /// - SDS: (1/n)·w·(ε̂_teacher - ε),
    /// - VSD: (1/n)·w·(ε̂_teacher - ε̂_fake).
    static func statedGradient(_ objective: Objective, x: [Double], d: Int, t: [Double], eps: [Double], process: DiffusionProcess,
                               teacher: GaussianMixture, fake: GaussianMixture, weighting: ScoreDistillationWeighting) -> [Double] {
        let n = t.count
        var g = [Double](repeating: 0, count: x.count)
        for i in 0..<n {
            let (a, s) = (process.alpha(t[i]), process.sigma(t[i]))
            let w = weighting == .uniform ? 1 : weighting == .sigma ? s : s * s
            let xt = (0..<d).map { a * x[i * d + $0] + s * eps[i * d + $0] }
            let sT = teacher.denoiserAndScore(xt, alpha: a, sigma: s).score
            let sF = fake.denoiserAndScore(xt, alpha: a, sigma: s).score
            for j in 0..<d {
                let v: Double
                switch objective {
                case .diffInstruct: v = w * a * (sF[j] - sT[j])
                case .sds: v = w * (-s * sT[j] - eps[i * d + j])
                case .vsd: v = w * (-s * sT[j] + s * sF[j])
                }
                g[i * d + j] = v / Double(n)
            }
        }
        return g
    }

    /// The library's loss for `objective`, its gradient with respect to x, and the draws it made.
    static func libraryGradient(_ objective: Objective, x: Tensor, teacher: some Denoiser, fake: some Denoiser, process: DiffusionProcess,
                                weighting: ScoreDistillationWeighting, range: ClosedRange<Double>, seed: UInt64) throws -> [Double] {
        var rng = Philox(seed: seed, stream: 4)
        let (_, grad) = try valueWithGradient(at: x) { x in
            switch objective {
            case .diffInstruct:
                return try ScoreDistillation.diffInstructLoss(generated: x, teacher: teacher, fake: fake, process: process, weighting: weighting,
                                                              timeRange: range, rng: &rng)
            case .sds:
                return try ScoreDistillation.sdsLoss(generated: x, teacher: teacher, process: process, weighting: weighting, timeRange: range,
                                                     rng: &rng)
            case .vsd:
                return try ScoreDistillation.vsdLoss(generated: x, teacher: teacher, fake: fake, process: process, weighting: weighting,
                                                     timeRange: range, rng: &rng)
            }
        }
        return grad.scalars.map(Double.init)
    }

    /// max |library - stated| relative to the RMS of the stated gradient.
    static func relativeError(_ lib: [Double], _ stated: [Double]) -> Double {
        let rms = (stated.reduce(0) { $0 + $1 * $1 } / Double(stated.count)).squareRoot()
        return zip(lib, stated).map { abs($0 - $1) }.max()! / rms
    }

    /// Per generated sample, each objective's surrogate gradient is the stated one, for every
    /// weighting, with a multimodal teacher (the ring) and a fake of another shape (two
    /// anisotropic Gaussians), times over the default range [0.02, 0.98] and 256 rows.
    ///
    /// Measured: max error ≤ 2e-5 of the gradient's RMS (Float32 arithmetic in the surrogate
    /// against Double here; the scores reach ~100 at t = 0.02). The bound 1e-3 is 50× that and
    /// 500× below what a halved weight, a dropped α, a sign or a swapped teacher/fake produce
    /// (errors of order 1).
    @Test func surrogateGradientsAreTheStatedGradients() throws {
        let teacher = GaussianMixture.ring8()
        let fake = try GaussianMixture(weights: [1, 2], means: [[1.5, 0.5], [-1, 1]], variances: [[0.2, 0.1], [0.1, 0.3]])
        let process = DiffusionProcess.vpLinear()
        let (n, d, range) = (256, 2, 0.02...0.98)
        let x = try fake.sample(n, seed: 21).samples
        for objective in Objective.allCases {
            for weighting in ScoreDistillationWeighting.allCases {
                let seed: UInt64 = 31
                let lib = try Self.libraryGradient(objective, x: x, teacher: teacher, fake: fake, process: process, weighting: weighting,
                                                   range: range, seed: seed)
                let (t, eps) = try Self.draws(Philox(seed: seed, stream: 4), n: n, d: d, range: range)
                let stated = Self.statedGradient(objective, x: x.scalars.map(Double.init), d: d, t: t, eps: eps, process: process,
                                                 teacher: teacher, fake: fake, weighting: weighting)
                let err = Self.relativeError(lib, stated)
                #expect(err < 1e-3, "\(objective) \(weighting.rawValue): max error \(err) of the gradient's RMS")
            }
        }
    }

    /// The stop-gradient: with a teacher and a fake whose predictions are traced (differentiable
    /// in their input), the surrogates' gradients are still the stated ones — nothing flows
    /// through ε̂_teacher or ε̂_fake. Through the public wrappers (w = σ², t in [0.02, 0.98]) and
    /// a generator's parameters: x = a ⊙ z + b, so ∂L/∂b = Σ_rows g and ∂L/∂a = Σ_rows g ⊙ z.
    ///
    /// Measured: error ≤ 1e-5 of the gradient's norm; without the stop-gradient the teacher's
    /// Jacobian adds σ/(α²v + σ²)-sized terms, an error of order 1. Bound 1e-3.
    @Test func noGradientFlowsThroughTheScores() throws {
        let teacher = TracedGaussianDenoiser(mean: [1, -0.5], variance: 0.3)
        let fake = TracedGaussianDenoiser(mean: [-0.5, 0.8], variance: 0.6)
        let process = DiffusionProcess.vpLinear()
        let (n, d) = (256, 2)
        let gen = AffineGenerator(a: [0.7, 1.3], b: [0.4, -0.2])
        var zr = Philox(seed: 8)
        let z = try zr.normal([n, d])
        let x = try gen.generate(z)
        for objective in Objective.allCases {
            let seed: UInt64 = 17
            var rng = Philox(seed: seed)
            try gen.valueWithGradient {
                let x = try gen.generate(z)
                switch objective {
                case .diffInstruct: return try diffInstructLoss(generated: x, teacher: teacher, fake: fake, process: process, rng: &rng)
                case .sds: return try sdsLoss(generated: x, teacher: teacher, process: process, rng: &rng)
                case .vsd: return try vsdLoss(generated: x, teacher: teacher, fake: fake, process: process, rng: &rng)
                }
            }
            let (t, eps) = try Self.draws(Philox(seed: seed), n: n, d: d, range: 0.02...0.98)
            let g = Self.statedGradient(objective, x: x.scalars.map(Double.init), d: d, t: t, eps: eps, process: process,
                                        teacher: teacher.mixture, fake: fake.mixture, weighting: .sigmaSquared)
            let zs = z.scalars.map(Double.init)
            let statedB = (0..<d).map { j in (0..<n).reduce(0.0) { $0 + g[$1 * d + j] } }
            let statedA = (0..<d).map { j in (0..<n).reduce(0.0) { $0 + g[$1 * d + j] * zs[$1 * d + j] } }
            let lib = (try #require(gen.a.grad).scalars + (try #require(gen.b.grad)).scalars).map(Double.init)
            let stated = statedA + statedB
            let norm = stated.reduce(0) { $0 + $1 * $1 }.squareRoot()
            let err = zip(lib, stated).map { abs($0 - $1) }.max()! / norm
            #expect(err < 1e-3, "\(objective): ∂L/∂(a, b) library \(lib), stated \(stated)")
            gen.zeroGradients()
        }
    }

    /// Diff-Instruct's and VSD's surrogates are gradients of a KL divergence, and SDS's of an
    /// expected log-density (Poole et al. 2022, App. A.4): at one level t with w = 1 and a fake
    /// that is the generator's exact score, for x = a ⊙ z + b,
    /// - Diff-Instruct: ∇θ KL(q_θ,t ‖ p_t) (Luo et al. 2023),
    /// - VSD: (σ/α)·∇θ KL(q_θ,t ‖ p_t),
    /// - SDS: (σ/α)·∇θ E[-log p_t(α·x + σ·ε)] (the entropy of N(α·x, σ²) does not depend on θ).
    /// The right sides are Monte-Carlo estimates on the draws the library made (common random
    /// numbers), differentiated by central differences. Only the score-of-parameter term of the
    /// KL (mean zero, ~1/√N: 0.2% at N = 200 000) and, for SDS, the mean of ε (the same size)
    /// separate the two; measured differences are below 0.5% + 0.002, bound 2% + 0.01.
    @Test func surrogatesAreGradientsOfTheirDivergences() throws {
        let teacher = GaussianMixture.ring8()
        let (a0, b0) = ([0.7, 1.3], [0.4, -0.2])
        let gen = AffineGenerator(a: a0.map(Float.init), b: b0.map(Float.init))
        let (n, t) = (200_000, 0.3)
        let process = DiffusionProcess.vpLinear()
        let (alpha, sigma) = (process.alpha(t), process.sigma(t))
        var zr = Philox(seed: 5)
        let z = try zr.normal([n, 2]).scalars.map(Double.init)
        let zt = try Tensor(shape: [n, 2], scalars: z.map(Float.init))
        let seed: UInt64 = 6
        let (_, eps) = try Self.draws(Philox(seed: seed), n: n, d: 2, range: t...t)
        // Monte-Carlo divergences on the fixed draws, as functions of (a, b).
        func states(_ a: [Double], _ b: [Double]) -> [Double] {
            (0..<(2 * n)).map { i in alpha * (a[i % 2] * z[i] + b[i % 2]) + sigma * eps[i] }
        }
        func kl(_ a: [Double], _ b: [Double]) throws -> Double {
            let q = try GaussianMixture(weights: [1], means: [b], variances: [a.map { $0 * $0 }])
            let xt = states(a, b)
            let lq = q.logDensity(xt, alpha: alpha, sigma: sigma), lp = teacher.logDensity(xt, alpha: alpha, sigma: sigma)
            return zip(lq, lp).reduce(0.0) { $0 + $1.0 - $1.1 } / Double(n)
        }
        func negativeLogDensity(_ a: [Double], _ b: [Double]) -> Double {
            -teacher.logDensity(states(a, b), alpha: alpha, sigma: sigma).reduce(0, +) / Double(n)
        }
        let h = 1e-3
        func centralDifferences(_ f: ([Double], [Double]) throws -> Double) rethrows -> [Double] {
            var out: [Double] = []
            for (which, j) in [(0, 0), (0, 1), (1, 0), (1, 1)] {
                var (ap, am, bp, bm) = (a0, a0, b0, b0)
                if which == 0 { ap[j] += h; am[j] -= h } else { bp[j] += h; bm[j] -= h }
                out.append((try f(ap, bp) - f(am, bm)) / (2 * h))
            }
            return out
        }
        let dKL = try centralDifferences(kl), dNLL = centralDifferences(negativeLogDensity)
        let fake = gen.asMixture
        for objective in Objective.allCases {
            var rng = Philox(seed: seed)
            try gen.valueWithGradient {
                let x = try gen.generate(zt)
                switch objective {
                case .diffInstruct:
                    return try ScoreDistillation.diffInstructLoss(generated: x, teacher: teacher, fake: fake, process: process,
                                                                  weighting: .uniform, timeRange: t...t, rng: &rng)
                case .sds:
                    return try ScoreDistillation.sdsLoss(generated: x, teacher: teacher, process: process, weighting: .uniform,
                                                         timeRange: t...t, rng: &rng)
                case .vsd:
                    return try ScoreDistillation.vsdLoss(generated: x, teacher: teacher, fake: fake, process: process, weighting: .uniform,
                                                         timeRange: t...t, rng: &rng)
                }
            }
            let lib = (try #require(gen.a.grad).scalars + (try #require(gen.b.grad)).scalars).map(Double.init)
            let expected = objective == .diffInstruct ? dKL : (objective == .vsd ? dKL : dNLL).map { $0 * sigma / alpha }
            for (l, e) in zip(lib, expected) {
                #expect(abs(l - e) <= 0.02 * abs(e) + 0.01, "\(objective): surrogate gradient \(lib), finite differences \(expected)")
            }
            gen.zeroGradients()
        }
    }

    /// The fake score's loss is denoising score matching on the generator's samples held
    /// constant: the same value as ``denoisingScoreMatchingLoss`` on the same draws, a gradient
    /// for the fake's parameters and none for the generated samples.
    @Test func fakeScoreLossIsDSMOnDetachedSamples() throws {
        let net = try MLPScoreNetwork(.init(hiddenWidths: [16, 16]), seed: 2)
        let fake = DiffusionModel(network: net, process: .vpLinear(), parameterization: .epsilon)
        let x = try GaussianMixture.ring8().sample(64, seed: 3).samples
        var r1 = Philox(seed: 9), r2 = Philox(seed: 9)
        let (value, gx) = try valueWithGradient(at: x) { x in try fakeScoreLoss(fake: fake, generated: x, rng: &r1) }
        let dsm = try withoutGradient { try denoisingScoreMatchingLoss(model: fake, x0: x, rng: &r2) }
        #expect(try value.item() == dsm.item() && r1 == r2)
        #expect(gx.scalars.allSatisfy { $0 == 0 })
        var r3 = Philox(seed: 9)
        try net.valueWithGradient { try fakeScoreLoss(fake: fake, generated: x, rng: &r3) }
        #expect(net.trainableParameters.contains { p in p.grad.map { $0.scalars.contains { $0 != 0 } } ?? false })
    }
}
