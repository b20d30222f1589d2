import Distill
import Foundation
import Testing

@Suite struct LossTests {
    /// The loss is computed on the raw output with weight w/κ²; recomputing it from the
    /// converted ε̂ with weight w (an independent path through `dataAndNoise`) must agree, for
    /// every parameterization and weighting. Same draws: the same Philox stream is replayed.
    @Test(arguments: Parameterization.allCases)
    func weightedLossMatchesTheEpsilonForm(_ p: Parameterization) throws {
        let net = try MLPScoreNetwork(.init(hiddenWidths: [16]), seed: 3)
        let process: DiffusionProcess = p == .velocity ? .rectifiedFlow() : .vpCosine()
        let model = DiffusionModel(network: net, process: process, parameterization: p)
        let x0 = try ToyDataset.twoMoons.sample(64, seed: 1)
        for w in LossWeighting.allCases where w != .output {
            var rng = Philox(seed: 9)
            let loss = try denoisingScoreMatchingLoss(model: model, x0: x0, weighting: w, rng: &rng).item()
            var replay = Philox(seed: 9)
            let times = try TimeSampling.uniform.draw(64, process: process, rng: &replay)
            let eps = try replay.normal(x0.shape)
            let levels = NoiseLevels(process: process, times: times)
            let xt = try levels.alphaTensor(rank: 2) * x0 + levels.sigmaTensor(rank: 2) * eps
            let pred = try model.predict(xt, at: levels, labels: nil)
            let perRow = try (pred.noise - eps).squared().mean(axes: [1]).scalars
            let manual = zip(perRow, levels.alpha.indices).reduce(0.0) { acc, e in
                acc + Double(e.0) * w.epsilonWeight(alpha: levels.alpha[e.1], sigma: levels.sigma[e.1])!
            } / 64
            #expect(abs(Double(loss) - manual) <= 1e-3 * max(1, abs(manual)), "\(p) \(w): \(loss) vs \(manual)")
        }
    }

    /// With EDM's process, preconditioning and weighting, λ(σ)·c_out² = 1: the loss is the
    /// plain mean squared error of F (Karras et al. 2022, §5).
    @Test func edmLossIsUnweightedInF() throws {
        let net = try MLPScoreNetwork(.init(hiddenWidths: [16]), seed: 4)
        let edm = DiffusionProcess.edm()
        let model = DiffusionModel(network: net, process: edm, parameterization: .edm, conditioning: .edm)
        let x0 = try ToyDataset.eightGaussians.sample(32, seed: 2)
        var rng = Philox(seed: 5)
        let loss = try denoisingScoreMatchingLoss(model: model, x0: x0, weighting: .edm, sampling: .logNormal(mean: -1.2, std: 1.2), rng: &rng)
        var replay = Philox(seed: 5)
        let times = try TimeSampling.logNormal(mean: -1.2, std: 1.2).draw(32, process: edm, rng: &replay)
        let eps = try replay.normal(x0.shape)
        let levels = NoiseLevels(process: edm, times: times)
        let xt = try x0 + levels.sigmaTensor(rank: 2) * eps
        let out = try model.output(xt, at: levels, labels: nil)
        let target = try Parameterization.edm.target(x0: x0, epsilon: eps, x: xt, alpha: levels.alphaTensor(rank: 2), sigma: levels.sigmaTensor(rank: 2))
        let plain = try (out - target).squared().mean().item()
        #expect(abs(try loss.item() - plain) <= 1e-5 * max(1, plain))
    }

    @Test func flowMatchingNeedsItsSetting() throws {
        let net = try MLPScoreNetwork(.init(hiddenWidths: [8]), seed: 1)
        var rng = Philox(seed: 1)
        let wrong = DiffusionModel(network: net, process: .vpLinear(), parameterization: .velocity)
        #expect(throws: TensorError.self) { try flowMatchingLoss(model: wrong, data: Tensor.zeros([4, 2]), rng: &rng) }
        let right = DiffusionModel(network: net, process: .rectifiedFlow(), parameterization: .velocity)
        #expect(try flowMatchingLoss(model: right, data: ToyDataset.twoMoons.sample(16, seed: 0), rng: &rng).item() > 0)
    }

    /// Sliced score matching equals the Fisher divergence up to a constant (Song et al. 2019,
    /// eq. 6), so the exact score scores lower than a wrong one (the ring turned by 22.5°, its
    /// modes 0.78 away from the true ones), by more than the Monte-Carlo noise of 16k points
    /// (the same x and v for both: the difference's noise is far below 0.01).
    @Test func slicedScoreMatchingPrefersTheTrueScore() throws {
        let truth = GaussianMixture.ring8()
        let turned = truth.means.map { m in [m[0] * cos(Double.pi / 8) - m[1] * sin(Double.pi / 8), m[0] * sin(Double.pi / 8) + m[1] * cos(Double.pi / 8)] }
        let wrong = try GaussianMixture(weights: truth.weights, means: turned, variances: truth.variances)
        let process = DiffusionProcess.vpLinear()
        let (x0, _) = try truth.sample(16_384, seed: 3)
        var r1 = Philox(seed: 4), r2 = Philox(seed: 4)
        let good = try slicedScoreMatchingLoss(model: truth, process: process, x0: x0, rng: &r1).item()
        let bad = try slicedScoreMatchingLoss(model: wrong, process: process, x0: x0, rng: &r2).item()
        #expect(good < bad - 0.01, "exact \(good) vs wrong \(bad)")
    }

    @Test func labelDropoutRate() throws {
        var rng = Philox(seed: 1)
        let dropped = try dropLabels(Array(repeating: 3, count: 20_000), probability: 0.15, nullLabel: 10, rng: &rng)
        let rate = Double(dropped.filter { $0 == 10 }.count) / 20_000
        #expect(abs(rate - 0.15) < 0.012)   // 5 binomial standard deviations
        #expect(Set(dropped) == [3, 10])
    }
}
