import Distill
import Foundation
import Testing

@Suite struct ProcessTests {
    static let processes: [any NoiseProcess] = [VPLinearProcess(), VPCosineProcess(), VPCosineProcess.progressiveDistillation(),
                                                    DiscreteDDPMProcess(), VEProcess(), EDMProcess(), RectifiedFlowProcess()]

    /// Interior times of a process (away from the ends, where one-sided formulas kick in).
    func times(_ p: any NoiseProcess) -> [Double] {
        let r = p.timeRange
        return (1...9).map { r.lowerBound + (r.upperBound - r.lowerBound) * Double($0) / 10 }
    }

    @Test func closedForms() {
        let vp = VPLinearProcess(), cos = VPCosineProcess(), ve = VEProcess(), edm = EDMProcess(), rf = RectifiedFlowProcess()
        for t in [0.01, 0.3, 0.77, 1.0] {
            #expect(abs(vp.alpha(t) - exp(-0.25 * t * t * 19.9 - 0.05 * t)) < 1e-14)
            let f = { (u: Double) in Foundation.cos((u + 0.008) / 1.008 * Double.pi / 2) }
            #expect(abs(cos.alpha(min(t, 0.99)) - f(min(t, 0.99)) / f(0)) < 1e-14)
            #expect(abs(ve.sigma(t) - 0.01 * pow(5000, t)) < 1e-12 * ve.sigma(t))
            #expect(edm.sigma(t) == t && edm.alpha(t) == 1)
            #expect(rf.alpha(t) == t && rf.sigma(t) == 1 - t)
        }
        let pd = VPCosineProcess.progressiveDistillation()
        #expect(abs(pd.alpha(0.5) - Foundation.cos(Double.pi / 4)) < 1e-14)
        #expect(abs(2 * pd.logSNR(pd.timeRange.lowerBound) - 20) < 1e-9 && abs(2 * pd.logSNR(pd.timeRange.upperBound) + 20) < 1e-9)
        // Discrete DDPM: α_i² = Π(1 - β_j) exactly at t_i = i/N.
        let ddpm = DiscreteDDPMProcess()
        var prod = 1.0
        for i in 1...1000 {
            prod *= 1 - (1e-4 + (0.02 - 1e-4) * Double(i - 1) / 999)
            if i % 97 == 0 || i == 1 || i == 1000 {
                #expect(abs(ddpm.alpha(Double(i) / 1000) - prod.squareRoot()) < 1e-12)
                #expect(abs(ddpm.alpha(step: i) - prod.squareRoot()) < 1e-12)
            }
        }
    }

    @Test func varianceRelations() {
        for p in Self.processes {
            for t in times(p) {
                let (a, s) = (p.alpha(t), p.sigma(t))
                if p is VPLinearProcess || p is VPCosineProcess || p is DiscreteDDPMProcess { #expect(abs(a * a + s * s - 1) < 1e-12, "\(p.name)") }
                if p is RectifiedFlowProcess { #expect(abs(a + s - 1) < 1e-15) }
                #expect(abs(p.logSNR(t) - log(a / s)) < 1e-9, "\(p.name)")
            }
        }
    }

    /// f = d log α/dt and g² = dσ²/dt - 2fσ² against central differences (step 1e-6: error
    /// ~1e-12·f''' plus rounding ~1e-16/1e-6 = 1e-10 relative); the discrete process is
    /// piecewise linear in log α, so it is checked inside a segment.
    @Test func driftAndDiffusionMatchFiniteDifferences() {
        for p in Self.processes {
            for t0 in times(p) {
                let t = p is DiscreteDDPMProcess ? (t0 * 1000).rounded(.down) / 1000 + 0.0005 : t0
                let h = 1e-6
                let f = (log(p.alpha(t + h)) - log(p.alpha(t - h))) / (2 * h)
                let ds2 = (pow(p.sigma(t + h), 2) - pow(p.sigma(t - h), 2)) / (2 * h)
                let g2 = ds2 - 2 * f * pow(p.sigma(t), 2)
                #expect(abs(p.driftCoefficient(t) - f) <= 1e-6 * max(1, abs(f)), "\(p.name) f at \(t)")
                #expect(abs(p.diffusionSquared(t) - g2) <= 1e-5 * max(1, abs(g2)), "\(p.name) g² at \(t)")
            }
        }
    }

    @Test func logSNRInverts() throws {
        for p in Self.processes {
            for t in times(p) {
                let back = try #require(p.time(forLogSNR: p.logSNR(t)), "\(p.name)")
                #expect(abs(back - t) <= 1e-9 * max(1, t), "\(p.name): \(t) → \(back)")
            }
            #expect(p.logSNR(p.noisiestTime) < p.logSNR(p.cleanestTime), "\(p.name)")
        }
    }

    /// The public value type: each factory is the concrete process with the same parameters
    /// (the same α, σ, f, g² and log-SNR inverse, bit for bit), each name gives its factory,
    /// JSON round-trips, and a process with unusable parameters is refused when decoded.
    @Test func diffusionProcessValuesAreTheConcreteProcesses() throws {
        let pairs: [(String, DiffusionProcess, any NoiseProcess)] = [
            ("vp-linear", .vpLinear(), VPLinearProcess()), ("vp-cosine", .vpCosine(), VPCosineProcess()), ("ddpm", .ddpm(), DiscreteDDPMProcess()),
            ("ve", .ve(), VEProcess()), ("edm", .edm(), EDMProcess()), ("rectified-flow", .rectifiedFlow(), RectifiedFlowProcess()),
        ]
        for (name, value, concrete) in pairs {
            #expect(value.name == concrete.name && value.timeRange == concrete.timeRange, "\(name)")
            for t in times(concrete) {
                #expect(value.alpha(t) == concrete.alpha(t) && value.sigma(t) == concrete.sigma(t), "\(name) at \(t)")
                #expect(value.driftCoefficient(t) == concrete.driftCoefficient(t) && value.diffusionSquared(t) == concrete.diffusionSquared(t))
                #expect(value.time(forLogSNR: value.logSNR(t)) == concrete.time(forLogSNR: concrete.logSNR(t)), "\(name) at \(t)")
            }
            #expect(try DiffusionProcess(name: name) == value)
            #expect(try JSONDecoder().decode(DiffusionProcess.self, from: JSONEncoder().encode(value)) == value, "\(name)")
        }
        #expect(DiffusionProcess.vpCosine(s: 0) != .vpCosine())
        do {
            _ = try DiffusionProcess(name: "vp-linaer")
            Issue.record("accepted an unknown process name")
        } catch let e as TrainingError {
            #expect(e.description.contains("vp-linaer") && e.description.contains("did you mean 'vp-linear'"), "\(e)")
        }
        let bad = try JSONEncoder().encode(DiffusionProcess.vpLinear(beta0: -1))
        #expect(throws: TrainingError.self) { try JSONDecoder().decode(DiffusionProcess.self, from: bad) }
    }

    @Test func odeAndSDEDrifts() throws {
        let p = VPLinearProcess()
        let x = Tensor([1, -2]), score = Tensor([0.5, 0.25])
        let ode = try p.probabilityFlowDrift(x, score: score, at: 0.5).scalars
        let sde = try p.reverseSDEDrift(x, score: score, at: 0.5).scalars
        let (f, g2) = (p.driftCoefficient(0.5), p.diffusionSquared(0.5))
        #expect(abs(Double(ode[0]) - (f * 1 - 0.5 * g2 * 0.5)) < 1e-5 && abs(Double(sde[1]) - (f * -2 - g2 * 0.25)) < 1e-5)
    }
}

@Suite struct ParameterizationTests {
    /// Converting (x0, ε) → output → (x0, ε) is exact up to Float rounding (a few ulps of the
    /// operands, so 1e-4 absolute for values of order 1 and the level ranges used).
    @Test(arguments: Parameterization.allCases)
    func roundTrips(_ p: Parameterization) throws {
        var rng = Philox(seed: 1)
        let x0 = try rng.normal([6, 3]), eps = try rng.normal([6, 3])
        for (a, s) in [(0.999, 0.045), (0.7, 0.714), (0.05, 0.9987), (1.0, 3.0), (0.3, 0.7)] {
            let at = Tensor(Float(a)), st = Tensor(Float(s))
            let x = try at * x0 + st * eps
            let out = try p.target(x0: x0, epsilon: eps, x: x, alpha: at, sigma: st)
            let (x0b, epsb) = try p.dataAndNoise(from: out, x: x, alpha: at, sigma: st)
            let scale = Float(max(1, 1 / a, s / a))
            #expect(zip(x0b.scalars, x0.scalars).allSatisfy { abs($0 - $1) <= 1e-4 * scale * (1 + abs($1)) }, "\(p) x0 at \(a), \(s)")
            #expect(zip(epsb.scalars, eps.scalars).allSatisfy { abs($0 - $1) <= 1e-4 * Float(max(1, a / s)) * (1 + abs($1)) }, "\(p) ε at \(a), \(s)")
        }
    }

    @Test func weightingsAreTheDocumentedFactors() {
        let (a, s) = (0.6, 0.8)
        let inv = s * s / (a * a)
        #expect(LossWeighting.epsilon.epsilonWeight(alpha: a, sigma: s) == 1)
        #expect(abs(LossWeighting.snr.epsilonWeight(alpha: a, sigma: s)! - inv) < 1e-15)
        #expect(abs(LossWeighting.truncatedSNR.epsilonWeight(alpha: a, sigma: s)! - max(1, inv)) < 1e-15)
        #expect(abs(LossWeighting.v.epsilonWeight(alpha: a, sigma: s)! - (1 + inv)) < 1e-15)
        #expect(abs(LossWeighting.edm.epsilonWeight(alpha: 1, sigma: 2)! - (4 + 0.25) / 0.25) < 1e-12)
        #expect(LossWeighting.output.epsilonWeight(alpha: a, sigma: s) == nil)
    }
}
