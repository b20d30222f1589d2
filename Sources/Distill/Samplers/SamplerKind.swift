/// Every sampler by name (`docs/methods.md` §5): the training-free ODE and SDE solvers of
/// diffusion models and the multistep sampler of consistency models. A ``SamplingPlan`` runs
/// one on a grid within an NFE budget.
public enum SamplerKind: String, Sendable, Codable, CaseIterable {
    /// Euler on the probability-flow ODE in σ-form (Karras et al. 2022, Alg. 1 without the correction).
    case euler
    /// Heun's second-order method (Karras et al. 2022, Alg. 1).
    case heun
    /// EDM's stochastic sampler with churn (Karras et al. 2022, Alg. 2).
    case edmStochastic = "edm-stochastic"
    /// Euler ancestral (k-diffusion's `sample_euler_ancestral`).
    case eulerAncestral = "euler-ancestral"
    /// DPM-2: Euler to the geometric midpoint, then the midpoint slope (k-diffusion).
    case dpm2 = "dpm-2"
    /// Linear multistep of order 4 on σ̃ (k-diffusion's `sample_lms`).
    case lms
    /// DDIM, deterministic (Song, Meng & Ermon 2021).
    case ddim
    /// DDPM's ancestral sampler (Ho et al. 2020, Alg. 2).
    case ddpm
    /// Analytic-DPM's optimal reverse variance (Bao et al. 2022); needs samples of the data.
    case analyticDPM = "analytic-dpm"
    /// Euler–Maruyama on the reverse-time SDE (Song et al. 2021).
    case eulerMaruyama = "euler-maruyama"
    /// Predictor–corrector: Euler–Maruyama plus a Langevin corrector (Song et al. 2021, Alg. 1–3).
    case predictorCorrector = "pc"
    /// Singlestep DPM-Solver of order 1 (Lu et al. 2022).
    case dpmSolver1 = "dpm-solver-1"
    /// Singlestep DPM-Solver of order 2, orders allocated over the budget (Lu et al. 2022).
    case dpmSolver2 = "dpm-solver-2"
    /// Singlestep DPM-Solver of order 3, orders allocated over the budget (Lu et al. 2022).
    case dpmSolver3 = "dpm-solver-3"
    /// DPM-Solver-23 with adaptive steps (Lu et al. 2022, Alg. 4); the NFE is its own.
    case dpmSolverAdaptive = "dpm-solver-adaptive"
    /// DPM-Solver++(2S), singlestep (Lu et al. 2022b, Alg. 1).
    case dpmpp2S = "dpmpp-2s"
    /// DPM-Solver++(2M), multistep (Lu et al. 2022b, Alg. 2).
    case dpmpp2M = "dpmpp-2m"
    /// DPM-Solver++(3M), truly third order.
    case dpmpp3M = "dpmpp-3m"
    /// DPM-Solver++(3M) as the official code, diffusers and k-diffusion weight it (second order).
    case dpmpp3MCompatible = "dpmpp-3m-compat"
    /// SDE-DPM-Solver++(2M) (Lu et al. 2022b).
    case sdeDPMpp2M = "dpmpp-sde-2m"
    /// DEIS, exponential integrator with Adams–Bashforth order 1 (Zhang & Chen 2023).
    case deis1 = "deis-1"
    /// DEIS tAB of order 2 (Zhang & Chen 2023).
    case deis2 = "deis-2"
    /// DEIS tAB of order 3 (Zhang & Chen 2023).
    case deis3 = "deis-3"
    /// PNDM with pseudo Runge–Kutta warm-up (Liu et al. 2022).
    case pndm
    /// PLMS, diffusers' warm-up of the pseudo linear multistep method.
    case plms
    /// iPNDM: lower-order Adams–Bashforth warm-up.
    case ipndm
    /// UniPC of order 1 with the B(h) = e^h - 1 choice (Zhao et al. 2023).
    case unipc1 = "unipc-1"
    /// UniPC of order 2 (bh2).
    case unipc2 = "unipc-2"
    /// UniPC of order 3 (bh2).
    case unipc3 = "unipc-3"
    /// UniPC of order 2 with B(h) = h (bh1).
    case unipcBH1 = "unipc-2-bh1"
    /// Adaptive Dormand–Prince 5(4) on the probability-flow ODE; the NFE is its own.
    case rk45
    /// Rectified-flow Euler (Liu et al. 2022).
    case rectifiedFlowEuler = "rf-euler"
    /// Multistep consistency sampling (Song et al. 2023, Alg. 1), for consistency models only.
    case consistency

    /// The sampler called `name` (its raw value, e.g. "dpmpp-2m").
    ///
    /// - Throws: ``SamplerError/unknownSampler(name:valid:)`` listing the valid names (and the
    ///   closest one, for a typo).
    public init(name: String) throws {
        guard let k = SamplerKind(rawValue: name) else {
            throw SamplerError.unknownSampler(name: name, valid: SamplerKind.allCases.map(\.rawValue))
        }
        self = k
    }

    /// Whether it draws fresh noise while sampling.
    public var isStochastic: Bool {
        [.edmStochastic, .eulerAncestral, .ddpm, .analyticDPM, .eulerMaruyama, .predictorCorrector, .sdeDPMpp2M, .consistency].contains(self)
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

    /// Runs the sampler on `grid` (``SamplingPlan`` resolves grids and orders): `orders` are
    /// the singlestep DPM-Solvers' per-step orders, `analyticMoments` Analytic-DPM's.
    package func run(_ model: some Denoiser, from x: Tensor, grid: NoiseGrid, orders: [Int]? = nil, options: SamplerOptions = .init(),
                     analyticMoments: [Double]? = nil, dataRange: ClosedRange<Double>? = nil,
                     onStep: ((SamplerStep) -> Void)? = nil) throws -> SamplerResult {
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
                throw SamplerError.invalidOption("Analytic-DPM needs its moments (estimated from samples of the data)")
            }
            return try sampleAnalyticDPM(model, from: x, grid: grid, moments: m, dataRange: dataRange, options: o, onStep: onStep)
        case .eulerMaruyama: return try sampleEulerMaruyama(model, from: x, grid: grid, options: o, onStep: onStep)
        case .predictorCorrector: return try samplePredictorCorrector(model, from: x, grid: grid, options: o, onStep: onStep)
        case .dpmSolver1, .dpmSolver2, .dpmSolver3:
            let allocated = orders ?? Array(repeating: singlestepOrder!, count: grid.steps)
            return try sampleDPMSolver(model, from: x, grid: grid, orders: allocated, options: o, onStep: onStep)
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
        case .rk45: return try sampleRK45(model, from: x, grid: grid, labels: o.labels)
        case .rectifiedFlowEuler: return try sampleRectifiedFlowEuler(model, from: x, grid: grid, options: o, onStep: onStep)
        case .consistency:
            throw SamplerError.invalidOption("the consistency sampler needs a consistency model")
        }
    }
}
