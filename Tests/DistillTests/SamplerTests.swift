import Distill
import Foundation
import Testing

/// A smooth four-mode mixture: its probability-flow ODE is well resolved by 16–256 steps, so
/// error ratios show each solver's asymptotic order before Float32 rounding (~1e-6) takes over.
let orderMixture = try! GaussianMixture(weights: [1, 1, 1, 1], means: [[1, 1], [-1, 1], [1, -1], [-1, -1]],
                                        variances: Array(repeating: [0.09, 0.09], count: 4))

extension SamplerKind {
    /// The samplers of diffusion models: every kind but the consistency sampler (which needs a
    /// consistency model).
    static let diffusionSamplers = allCases.filter { $0 != .consistency }
}

@Suite struct SamplerOrderTests {
    static let deterministic = SamplerKind.allCases.filter { $0.order != nil }

    /// Error against the ground-truth ODE solution (Dormand–Prince, tolerance 1e-9) from the
    /// same 256 noise draws, for N = 16…256 steps on a log-SNR-uniform grid from t = 1 to
    /// t = 0.05. The order is the slope of log(error) against log(N) between the last two
    /// refinements whose errors stay above 1.5e-6 (Float32 rounding of the ~1-sized states,
    /// accumulated over hundreds of steps, flattens the curve near 6e-7). Multistep methods approach their order
    /// from below as N grows, so the band is [p - 0.4, p + 0.45]: the bands of consecutive orders
    /// do not overlap, so e.g. the second-order DPM-Solver++(3M) "compatible" variant (≈ 2.05)
    /// cannot pass as third order, nor the true 3M (≈ 3.1) as second.
    @Test(arguments: deterministic)
    func convergesAtItsOrder(_ kind: SamplerKind) throws {
        let p = VPLinearProcess()
        var rng = Philox(seed: 1)
        let xT = try rng.normal([256, 2]) * Float(p.sigma(1))
        let end = 0.05
        let (truth, _) = try orderMixture.solveProbabilityFlow(xT, from: (p.alpha(1), p.sigma(1)), to: (p.alpha(end), p.sigma(end)))
        var points: [(Double, Double)] = []
        for n in [16, 32, 64, 128, 256] {
            let grid = try NoiseGrid.logSNRUniform(p, steps: n, start: 1, end: end)
            let r = try kind.run(orderMixture, from: xT, grid: grid, options: .init(lowerOrderFinal: .never))
            let mse = zip(r.sample.scalars, truth.scalars).reduce(0.0) { $0 + Double($1.0 - $1.1) * Double($1.0 - $1.1) } / Double(truth.count)
            points.append((log(Double(n)), log(mse.squareRoot())))
        }
        let used = Array(points.filter { $0.1 > log(1.5e-6) }.suffix(2))
        try #require(used.count == 2, "\(kind.rawValue): errors reached the rounding floor too early: \(points.map { exp($0.1) })")
        let slope = -(used[1].1 - used[0].1) / (used[1].0 - used[0].0)
        let order = Double(kind.order!)
        #expect(slope >= order - 0.4 && slope <= order + 0.45,
                "\(kind.rawValue): observed order \(slope), expected \(order); errors \(points.map { exp($0.1) })")
    }
}

@Suite struct SamplerBehaviourTests {
    let p = VPLinearProcess()

    func noise(_ n: Int, seed: UInt64 = 3) throws -> Tensor {
        var rng = Philox(seed: seed)
        return try rng.normal([n, 2]) * Float(p.sigma(1))
    }

    // Stochastic samplers in distribution, and whether their noise matters: StochasticSamplerTests.

    /// Analytic-DPM clips its variance only when given a data range (Bao et al. 2022, Theorem
    /// 2): called directly or through ``SamplerKind/run``, by default it does not; the range
    /// [-1, 1] — narrower than this mixture's (modes at ±1 with std 0.3, per-coordinate
    /// variance 1.09 > 1) — clips the noisiest steps and changes the samples.
    @Test func analyticDPMClipsOnlyWithADataRange() throws {
        let grid = try NoiseGrid.timeUniform(p, steps: 20, start: 1, end: 1e-3, finalDenoise: true)
        let moments = try analyticDPMMoments(orderMixture, grid: grid, data: orderMixture.sample(2000, seed: 11).samples)
        let x = try noise(500)
        func viaKind(_ range: ClosedRange<Double>?) throws -> [Float] {
            try SamplerKind.analyticDPM.run(orderMixture, from: x, grid: grid, options: .init(seed: 5), analyticMoments: moments,
                                            dataRange: range).sample.scalars
        }
        let direct = try sampleAnalyticDPM(orderMixture, from: x, grid: grid, moments: moments, options: .init(seed: 5)).sample.scalars
        #expect(firstBitMismatch(direct, try viaKind(nil)) == nil)
        #expect(firstBitMismatch(direct, try viaKind(-1...1)) != nil)
    }

    /// NFE counts equal the denoiser calls, and match each sampler's formula.
    @Test func evaluationCountsAreExact() throws {
        let n = 10
        let clean = try NoiseGrid.logSNRUniform(p, steps: n - 1, start: 1, end: 1e-3, finalDenoise: true)   // 10 steps, last to σ = 0
        let (data, _) = try orderMixture.sample(200, seed: 1)
        let moments = try analyticDPMMoments(orderMixture, grid: clean, data: data)
        let expected: [SamplerKind: Int] = [
            .euler: n, .ddim: n, .ddpm: n, .analyticDPM: n, .eulerAncestral: n, .lms: n, .eulerMaruyama: n, .rectifiedFlowEuler: n,
            .heun: 2 * n - 1, .edmStochastic: 2 * n - 1, .dpm2: 2 * n - 1, .dpmpp2S: 2 * n - 1,
            .predictorCorrector: 2 * n - 1, .dpmSolver2: 2 * n - 1, .dpmSolver3: 3 * n - 2, .dpmSolver1: n,
            .dpmpp2M: n, .dpmpp3M: n, .dpmpp3MCompatible: n, .sdeDPMpp2M: n, .deis1: n, .deis2: n, .deis3: n,
            .ipndm: n, .plms: n + 1, .pndm: n + 9, .unipc1: n, .unipc2: n, .unipc3: n, .unipcBH1: n,
        ]
        for kind in SamplerKind.diffusionSamplers where kind != .rk45 && kind != .dpmSolverAdaptive {
            let c = CountingDenoiser(orderMixture)
            let r = try kind.run(c, from: noise(8), grid: clean, analyticMoments: moments)
            #expect(r.evaluations == c.calls, "\(kind.rawValue) reports \(r.evaluations) NFE for \(c.calls) calls")
            if let e = expected[kind] { #expect(c.calls == e, "\(kind.rawValue): \(c.calls) calls, expected \(e)") }
            #expect(r.sample.scalars.allSatisfy { $0.isFinite }, "\(kind.rawValue)")
        }
        for kind in [SamplerKind.rk45, .dpmSolverAdaptive] {
            let c = CountingDenoiser(orderMixture)
            let r = try kind.run(c, from: noise(8), grid: clean)
            #expect(r.evaluations == c.calls && c.calls > 0, "\(kind.rawValue)")
        }
    }

    @Test func samplesAreIdenticalForOneAndTwoThreads() throws {
        let grid = try NoiseGrid.karras(p, steps: 12)
        for kind in SamplerKind.diffusionSamplers where kind != .analyticDPM {
            let old = Runtime.threadCount
            Runtime.threadCount = 1
            let one = try kind.run(orderMixture, from: noise(40_000), grid: grid, options: .init(seed: 9)).sample
            Runtime.threadCount = 2
            let two = try kind.run(orderMixture, from: noise(40_000), grid: grid, options: .init(seed: 9)).sample
            Runtime.threadCount = old
            let mismatch = firstBitMismatch(one.scalars, two.scalars)
            #expect(mismatch == nil, "\(kind.rawValue): first difference at \(String(describing: mismatch))")
        }
    }

    @Test func badNamesAndGridsGiveClearErrors() throws {
        do {
            _ = try SamplerKind(name: "dpm-solver-9")
            Issue.record("accepted an unknown sampler")
        } catch let e as SamplerError {
            #expect(e.description.contains("dpm-solver-9") && e.description.contains("dpmpp-2m") && e.description.contains("unipc-3"))
        }
        #expect(throws: SamplerError.self) { try NoiseGrid.explicit([(1, 0.5), (1, 0.7)]) }                 // not decreasing
        #expect(throws: SamplerError.self) { try NoiseGrid.explicit([(1, 0.5)]) }                           // one level
        #expect(throws: SamplerError.self) { try NoiseGrid.explicit([(1, 0.5), (1, 0), (1, 0)]) }           // clean in the middle
        #expect(throws: SamplerError.self) { try NoiseGrid.explicit([(-1, 0.5), (1, 0.1)]) }
        #expect(throws: SamplerError.self) { try NoiseGrid.timeUniform(p, steps: 0) }
        let g = try NoiseGrid.logSNRUniform(p, steps: 4)
        #expect(throws: SamplerError.self) { try sampleDPMSolver(orderMixture, from: noise(4), grid: g, orders: [3, 3]) }   // wrong length
        #expect(throws: SamplerError.self) { try sampleLMS(orderMixture, from: noise(4), grid: g, order: 7) }
        #expect(throws: SamplerError.self) { try sampleDDIM(orderMixture, from: noise(4), grid: g, options: .init(labels: [1])) }
        let explicitGrid = try NoiseGrid.explicit([(0.1, 0.99), (0.9, 0.43)])
        #expect(throws: SamplerError.self) { try sampleEulerMaruyama(orderMixture, from: noise(4), grid: explicitGrid) }    // needs f, g²
        #expect(throws: SamplerError.self) { try SamplerKind.analyticDPM.run(orderMixture, from: noise(4), grid: g) }
    }

    /// Every sampler runs on an explicit (α, σ) grid and on EDM's, reaching the data region.
    @Test func everySamplerRunsOnEveryGrid() throws {
        let ddpm = DiscreteDDPMProcess()
        let grids: [NoiseGrid] = [
            try .explicit((0...10).map { i in let t = 1 - 0.099 * Double(i); return (p.alpha(t), p.sigma(t)) }),
            try .karras(EDMProcess(), steps: 10),
            try .discrete(ddpm, steps: 10, spacing: .trailing),
            try .timeQuadratic(p, steps: 10, finalDenoise: true),
        ]
        for (gi, grid) in grids.enumerated() {
            let x = try noise(64) * Float(grid.levels[0].sigma / p.sigma(1))
            for kind in SamplerKind.diffusionSamplers {
                if grid.process == nil && [.eulerMaruyama, .predictorCorrector, .deis1, .deis2, .deis3, .rk45].contains(kind) { continue }
                if grid.process is EDMProcess && [.eulerMaruyama, .predictorCorrector].contains(kind) == false && kind == .analyticDPM { continue }
                var moments: [Double]?
                if kind == .analyticDPM {
                    moments = try analyticDPMMoments(orderMixture, grid: grid, data: orderMixture.sample(100, seed: 1).samples)
                }
                let out = try kind.run(orderMixture, from: x, grid: grid, analyticMoments: moments)
                #expect(out.sample.scalars.allSatisfy { $0.isFinite && abs($0) < 10 }, "\(kind.rawValue) on grid \(gi)")
            }
        }
    }

    /// Classifier-free guidance wraps any denoiser: here a class-conditional mixture whose
    /// label k selects component k (the null label: the whole mixture). Guided sampling works
    /// with every sampler and, at w = 3, every sample ends nearest to its own class's mode.
    @Test func guidanceWorksWithEverySampler() throws {
        struct ByComponent: Denoiser {
            let m: GaussianMixture
            func predict(_ x: Tensor, at levels: NoiseLevels, labels: [Int]?) throws -> Prediction {
                guard let labels else { return try m.predict(x, at: levels, labels: nil) }
                var rows: [Tensor] = []
                var noises: [Tensor] = []
                for (i, l) in labels.enumerated() {
                    let part = l < m.componentCount
                        ? try GaussianMixture(weights: [1], means: [m.means[l]], variances: [m.variances[l]]) : m
                    let one = NoiseLevels(alpha: [levels.alpha[i]], sigma: [levels.sigma[i]], time: levels.time.map { [$0[i]] })
                    let p = try part.predict(x.slice(i..<(i + 1)), at: one, labels: nil)
                    rows.append(p.data)
                    noises.append(p.noise)
                }
                return Prediction(data: try Tensor.concat(rows), noise: try Tensor.concat(noises))
            }
        }
        let guided = GuidedDenoiser(ByComponent(m: orderMixture), guidance: 3, nullLabel: 4)
        let grid = try NoiseGrid.logSNRUniform(p, steps: 20, start: 1, end: 1e-3, finalDenoise: true)
        let labels = (0..<16).map { $0 % 4 }
        for kind in SamplerKind.diffusionSamplers where kind != .analyticDPM {
            let out = try kind.run(guided, from: noise(16), grid: grid, options: .init(labels: labels, seed: 2)).sample.scalars
            for (i, l) in labels.enumerated() {
                let d = orderMixture.means.map { hypot(Double(out[2 * i]) - $0[0], Double(out[2 * i + 1]) - $0[1]) }
                #expect(d.indices.min(by: { d[$0] < d[$1] }) == l, "\(kind.rawValue): row \(i) of class \(l) ended at distances \(d)")
            }
        }
    }
}
