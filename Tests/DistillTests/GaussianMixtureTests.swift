import Distill
import Foundation
import Testing

@Suite struct GaussianMixtureTests {
    @Test func loadsJSONAndRejectsBadMixtures() throws {
        let good = #"{"weights": [1, 3], "means": [[0, 1], [2, 3]], "variances": [[1, 1], [0.5, 0.25]]}"#
        let m = try GaussianMixture.decode(Data(good.utf8), source: "good.json")
        #expect(m.weights == [0.25, 0.75] && m.dimension == 2 && m.componentCount == 2)
        let bad = [
            #"{"weights": [1], "means": [[0, 1]], "variances": [[-1, 1]]}"#: "variance",
            #"{"weights": [1, 1], "means": [[0, 1], [2]], "variances": [[1, 1], [1, 1]]}"#: "ragged",
            #"{"weights": [1, 1], "means": [[0, 1]], "variances": [[1, 1]]}"#: "2 weights",
            #"{"weights": [-1], "means": [[0]], "variances": [[1]]}"#: "weight",
            #"{"weights": [0], "means": [[0]], "variances": [[1]]}"#: "sum to 0",
            #"{"weights": [1], "means": [[0]]}"#: "expected JSON",
            "not json": "expected JSON",
        ]
        for (text, phrase) in bad {
            do {
                _ = try GaussianMixture.decode(Data(text.utf8), source: "bad.json")
                Issue.record("accepted \(text)")
            } catch let e as GaussianMixtureError {
                #expect(e.description.contains("bad.json") && e.description.contains(phrase), "\(e)")
            }
        }
        let dir = NSTemporaryDirectory() + "gmm-" + UUID().uuidString + ".json"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try m.write(to: dir)
        #expect(try GaussianMixture.load(dir) == m)
        #expect(throws: IOError.self) { try GaussianMixture.load("/nonexistent/g.json") }
    }

    /// The score is the gradient of the log-density: central differences, h = 1e-5
    /// (truncation ~h²·|∂³ log p| and rounding ~1e-16/h, both far below 1e-6).
    @Test func scoreIsTheGradientOfTheLogDensity() {
        let m = GaussianMixture.grid25()
        let (a, s) = (0.8, 0.3)
        for x in [[0.1, -0.4], [1.5, 2.2], [-3.0, 0.7]] {
            let (_, score) = m.denoiserAndScore(x, alpha: a, sigma: s)
            for j in 0..<2 {
                var xp = x, xm = x
                xp[j] += 1e-5
                xm[j] -= 1e-5
                let fd = (m.logDensity(xp, alpha: a, sigma: s)[0] - m.logDensity(xm, alpha: a, sigma: s)[0]) / 2e-5
                #expect(abs(score[j] - fd) < 1e-6 * max(1, abs(fd)))
            }
        }
    }

    /// E[x0 | x_t] by self-normalized importance sampling over 400k prior samples:
    /// Σ w_i x0_i / Σ w_i with w = N(x_t; αx0, σ²I). The estimate's standard error is computed
    /// from the weights (effective sample size) and the check allows 5 of them.
    @Test func denoiserMatchesMonteCarlo() throws {
        let m = GaussianMixture.ring8()
        let (a, s) = (0.8, 0.6)
        let (prior, _) = try m.sample(400_000, seed: 11)
        let p = prior.scalars.map(Double.init)
        for xt in [[1.0, 0.3], [-0.5, -1.4]] {
            var wsum = 0.0, w2 = 0.0, num = [0.0, 0.0], sq = [0.0, 0.0]
            for i in 0..<400_000 {
                let dx = xt[0] - a * p[2 * i], dy = xt[1] - a * p[2 * i + 1]
                let w = exp(-(dx * dx + dy * dy) / (2 * s * s))
                wsum += w; w2 += w * w
                for j in 0..<2 { num[j] += w * p[2 * i + j]; sq[j] += w * p[2 * i + j] * p[2 * i + j] }
            }
            let ess = wsum * wsum / w2
            let (den, _) = m.denoiserAndScore(xt, alpha: a, sigma: s)
            for j in 0..<2 {
                let mean = num[j] / wsum, variance = sq[j] / wsum - mean * mean
                let se = (variance / ess).squareRoot()
                #expect(abs(den[j] - mean) < 5 * se + 1e-9, "MC \(mean) ± \(se), exact \(den[j])")
            }
        }
    }

    @Test func dormandPrinceSolvesAKnownODE() throws {
        // dy/ds = -y·cos(s): y = y0·exp(-sin s).
        let r = try DormandPrince.integrate([2, -1], from: 0, to: 3, rtol: 1e-10, atol: 1e-12) { s, y in y.map { -$0 * cos(s) } }
        #expect(abs(r.state[0] - 2 * exp(-sin(3.0))) < 1e-8 && abs(r.state[1] + exp(-sin(3.0))) < 1e-8)
        // Backwards too.
        let b = try DormandPrince.integrate(r.state, from: 3, to: 0, rtol: 1e-10, atol: 1e-12) { s, y in y.map { -$0 * cos(s) } }
        #expect(abs(b.state[0] - 2) < 1e-8)
    }

    /// The ground-truth ODE is invertible: data → noise → data returns to the start (to the
    /// solver tolerance times the Lipschitz growth, 1e-6 here with tolerance 1e-9).
    @Test func probabilityFlowIsInvertible() throws {
        let m = GaussianMixture.ring8()
        let (x0, _) = try m.sample(50, seed: 3)
        let p = VPLinearProcess()
        let (noise, _) = try m.solveProbabilityFlow(x0, from: (p.alpha(0.01), p.sigma(0.01)), to: (p.alpha(1), p.sigma(1)))
        let (back, _) = try m.solveProbabilityFlow(noise, from: (p.alpha(1), p.sigma(1)), to: (p.alpha(0.01), p.sigma(0.01)))
        #expect(zip(back.scalars, x0.scalars).allSatisfy { abs($0 - $1) < 1e-5 })
    }

    /// From the noise marginal, the ground-truth ODE lands on the data distribution: the eight
    /// modes get 1/8 of the mass each (±4 binomial standard deviations for n = 4000) and every
    /// point ends within 5 std of a mode centre.
    @Test func probabilityFlowMapsNoiseToData() throws {
        let m = GaussianMixture.ring8()
        let p = VPLinearProcess()
        var rng = Philox(seed: 9)
        let n = 4000
        let xT = try rng.normal([n, 2]) * Float(p.sigma(1))   // α(1) ≈ 7e-3: the marginal is ~N(0, σ²I) up to α·2
        let (x0, _) = try m.solveProbabilityFlow(xT, from: (p.alpha(1), p.sigma(1)), to: (1, 0))
        let v = x0.scalars
        var counts = [Int](repeating: 0, count: 8)
        for i in 0..<n {
            let (x, y) = (Double(v[2 * i]), Double(v[2 * i + 1]))
            let k = (0..<8).min(by: { hypot(x - m.means[$0][0], y - m.means[$0][1]) < hypot(x - m.means[$1][0], y - m.means[$1][1]) })!
            #expect(hypot(x - m.means[k][0], y - m.means[k][1]) < 0.5)
            counts[k] += 1
        }
        let sd = (Double(n) * 0.125 * 0.875).squareRoot()
        #expect(counts.allSatisfy { abs(Double($0) - Double(n) / 8) < 4 * sd }, "\(counts)")
        // And in sliced-W2: no further from exact samples than two exact sets are from each other
        // (+0.02 for the finite tolerance and the start marginal being N(0, σ²I) only up to α·μ).
        let (exact, _) = try m.sample(n, seed: 21), (exact2, _) = try m.sample(n, seed: 22)
        let floor = try slicedWasserstein2(exact, exact2, seed: 1)
        #expect(try slicedWasserstein2(x0, exact, seed: 1) < floor + 0.02)
        let coverage = try m.modeCoverage(x0)
        #expect(coverage.coveredModes == 8 && coverage.highQualityFraction > 0.99)
    }

    @Test func likelihoodAndCoverageMetrics() throws {
        let m = GaussianMixture.ring8()
        let (x, _) = try m.sample(20_000, seed: 4)
        // E[log p0] over p0 is minus the entropy; for well-separated modes it is
        // log(1/8)... minus each Gaussian's entropy: log(1/8) - log(2πe·0.01). Separated by
        // ~15 std, the overlap correction is negligible; the Monte-Carlo error is ~0.01.
        let want = log(1.0 / 8) - log(2 * Double.pi * exp(1.0) * 0.01)
        #expect(abs(try m.averageLogLikelihood(x) - want) < 0.03)
        let cov = try m.modeCoverage(x)
        #expect(cov.coveredModes == 8 && cov.counts.reduce(0, +) == 20_000)
        #expect(abs(cov.highQualityFraction - 0.999) < 0.002)
        // Collapsed samples: everything at one mode covers 1 of 8.
        let collapsed = try Tensor.full([500, 2], 0) + Tensor([2, 0])
        #expect(try m.modeCoverage(collapsed).coveredModes == 1)
        #expect(throws: TensorError.self) { try m.averageLogLikelihood(Tensor.zeros([3, 5])) }
    }

    @Test func predictionsMatchTheDoubleFormulas() throws {
        let m = GaussianMixture.highDimensional64()
        let (x0, _) = try m.sample(3, seed: 1)
        let xt = try x0 * 0.6 + Tensor.full([3, 64], 0.1)
        let pred = try m.predict(xt, alpha: 0.6, sigma: 0.8)
        let (den, _) = m.denoiserAndScore(xt.scalars.map(Double.init), alpha: 0.6, sigma: 0.8)
        #expect(zip(pred.data.scalars, den).allSatisfy { abs(Double($0) - $1) < 1e-6 })
        // ε̂ = (x - αx̂0)/σ.
        let eps = try ((xt - pred.data * 0.6) / 0.8).scalars
        #expect(zip(pred.noise.scalars, eps).allSatisfy { abs($0 - $1) < 1e-5 })
    }
}
