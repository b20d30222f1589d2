/// Every sampler by name, for configuration and the command line.
public enum SamplerKind: String, Sendable, Codable, CaseIterable {
    case euler, heun
    case edmStochastic = "edm-stochastic"
    case eulerAncestral = "euler-ancestral"
    case dpm2 = "dpm-2"
    case lms
    case ddim, ddpm
    case analyticDPM = "analytic-dpm"
    case eulerMaruyama = "euler-maruyama"
    case predictorCorrector = "pc"
    case dpmSolver1 = "dpm-solver-1", dpmSolver2 = "dpm-solver-2", dpmSolver3 = "dpm-solver-3"
    case dpmSolverAdaptive = "dpm-solver-adaptive"
    case dpmpp2S = "dpmpp-2s", dpmpp2M = "dpmpp-2m", dpmpp3M = "dpmpp-3m"
    case dpmpp3MCompatible = "dpmpp-3m-compat"
    case sdeDPMpp2M = "dpmpp-sde-2m"
    case deis1 = "deis-1", deis2 = "deis-2", deis3 = "deis-3"
    case pndm, plms, ipndm
    case unipc1 = "unipc-1", unipc2 = "unipc-2", unipc3 = "unipc-3"
    case unipcBH1 = "unipc-2-bh1"
    case rk45
    case rectifiedFlowEuler = "rf-euler"

    /// The sampler called `name`, or an error listing the valid names.
    public init(name: String) throws {
        guard let k = SamplerKind(rawValue: name) else {
            throw SamplerError.unknownSampler(name: name, valid: SamplerKind.allCases.map(\.rawValue))
        }
        self = k
    }

    /// Whether it draws fresh noise while sampling.
    public var isStochastic: Bool {
        [.edmStochastic, .eulerAncestral, .ddpm, .analyticDPM, .eulerMaruyama, .predictorCorrector, .sdeDPMpp2M].contains(self)
    }

    /// The global order of convergence on the probability-flow ODE that the tests verify on
    /// the analytic mixture (nil for stochastic and adaptive samplers). UniPC's corrector
    /// raises its predictor's order by one (Zhao et al. 2023, Theorem 3.1). The PNDM family
    /// averages ε̂ with fixed Adams–Bashforth weights (uniform in the step index) but feeds the
    /// average to the DDIM transfer, which integrates ε̂ against dσ̃: the two averages differ at
    /// second order, so the method is globally second order (it looks third order at moderate
    /// step counts before settling).
    public var order: Int? {
        switch self {
        case .euler, .ddim, .dpmSolver1, .deis1, .rectifiedFlowEuler: return 1
        case .heun, .dpm2, .dpmSolver2, .dpmpp2S, .dpmpp2M, .dpmpp3MCompatible, .deis2, .unipc1, .pndm, .plms, .ipndm: return 2
        case .dpmSolver3, .dpmpp3M, .deis3, .unipc2, .unipcBH1: return 3
        case .lms, .unipc3: return 4
        default: return nil
        }
    }

    /// Runs the sampler with its default settings. `analyticMoments` are needed by
    /// Analytic-DPM (``analyticDPMMoments(_:grid:data:seed:)``).
    public func sample(_ model: some Denoiser, from x: Tensor, grid: NoiseGrid, options: SamplerOptions = .init(),
                       analyticMoments: [Double]? = nil, onStep: ((SamplerStep) -> Void)? = nil) throws -> SamplerResult {
        let o = options
        switch self {
        case .euler: return try sampleEuler(model, from: x, grid: grid, options: o, onStep: onStep)
        case .heun: return try sampleHeun(model, from: x, grid: grid, options: o, onStep: onStep)
        case .edmStochastic: return try sampleEDMStochastic(model, from: x, grid: grid, options: o, onStep: onStep)
        case .eulerAncestral: return try sampleEulerAncestral(model, from: x, grid: grid, options: o, onStep: onStep)
        case .dpm2: return try sampleDPM2(model, from: x, grid: grid, options: o, onStep: onStep)
        case .lms: return try sampleLMS(model, from: x, grid: grid, options: o, onStep: onStep)
        case .ddim: return try sampleDDIM(model, from: x, grid: grid, options: o, onStep: onStep)
        case .ddpm: return try sampleDDPM(model, from: x, grid: grid, options: o, onStep: onStep)
        case .analyticDPM:
            guard let m = analyticMoments else {
                throw SamplerError.invalidOption("Analytic-DPM needs its moments (analyticDPMMoments on data samples)")
            }
            return try sampleAnalyticDPM(model, from: x, grid: grid, moments: m, options: o, onStep: onStep)
        case .eulerMaruyama: return try sampleEulerMaruyama(model, from: x, grid: grid, options: o, onStep: onStep)
        case .predictorCorrector: return try samplePredictorCorrector(model, from: x, grid: grid, options: o, onStep: onStep)
        case .dpmSolver1, .dpmSolver2, .dpmSolver3:
            let order = self == .dpmSolver1 ? 1 : self == .dpmSolver2 ? 2 : 3
            return try sampleDPMSolver(model, from: x, grid: grid, orders: Array(repeating: order, count: grid.steps), options: o, onStep: onStep)
        case .dpmSolverAdaptive: return try sampleDPMSolverAdaptive(model, from: x, grid: grid, options: o, onStep: onStep)
        case .dpmpp2S: return try sampleDPMSolverPP2S(model, from: x, grid: grid, options: o, onStep: onStep)
        case .dpmpp2M: return try sampleDPMSolverPP2M(model, from: x, grid: grid, options: o, onStep: onStep)
        case .dpmpp3M: return try sampleDPMSolverPP3M(model, from: x, grid: grid, options: o, onStep: onStep)
        case .dpmpp3MCompatible: return try sampleDPMSolverPP3M(model, from: x, grid: grid, variant: .compatible, options: o, onStep: onStep)
        case .sdeDPMpp2M: return try sampleSDEDPMSolverPP2M(model, from: x, grid: grid, options: o, onStep: onStep)
        case .deis1, .deis2, .deis3:
            let order = self == .deis1 ? 1 : self == .deis2 ? 2 : 3
            return try sampleDEIS(model, from: x, grid: grid, order: order, options: o, onStep: onStep)
        case .pndm: return try samplePNDM(model, from: x, grid: grid, warmup: .pseudoRungeKutta, options: o, onStep: onStep)
        case .plms: return try samplePNDM(model, from: x, grid: grid, warmup: .plms, options: o, onStep: onStep)
        case .ipndm: return try samplePNDM(model, from: x, grid: grid, warmup: .lowerOrder, options: o, onStep: onStep)
        case .unipc1, .unipc2, .unipc3:
            let order = self == .unipc1 ? 1 : self == .unipc2 ? 2 : 3
            return try sampleUniPC(model, from: x, grid: grid, order: order, options: o, onStep: onStep)
        case .unipcBH1: return try sampleUniPC(model, from: x, grid: grid, order: 2, variant: .bh1, options: o, onStep: onStep)
        case .rk45:
            guard let p = grid.process else { throw SamplerError.invalidGrid("RK45 needs a grid built from a process") }
            let l = grid.levels
            let end = l.last!.isClean ? l[l.count - 2] : l.last!
            let (ta, tb) = (try levelTime(l[0], p), try levelTime(end, p))
            var (out, nfe) = try sampleAdaptiveRK45(model, from: x, process: p, start: ta, end: tb, labels: o.labels)
            if l.last!.isClean {
                out = try withoutGradient { try model.predict(out, alpha: end.alpha, sigma: end.sigma, time: end.time, labels: o.labels).data }
                nfe += 1
            }
            return SamplerResult(sample: out, evaluations: nfe)
        case .rectifiedFlowEuler: return try sampleRectifiedFlowEuler(model, from: x, grid: grid, options: o, onStep: onStep)
        }
    }
}
