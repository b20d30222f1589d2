import Foundation

/// How to sample: a sampler, a grid of noise levels and a budget of network evaluations (NFE).
///
/// A plan is the one place where "20 NFE with DPM-Solver-3 on EDM's grid" becomes a list of
/// steps and per-step orders; `TrainedModel/sample(count:plan:labels:guidance:seed:data:)`,
/// ``run(_:process:from:labels:seed:data:dataRange:progress:)``, the command line, the demo
/// and the benchmarks all resolve plans here, so NFE means the same everywhere.
///
/// With a spacing (``init(sampler:nfe:spacing:finalDenoise:)``) the grid gets as many steps
/// as fit the budget: a first-order sampler takes `nfe` steps, Heun about half as many, the
/// singlestep DPM-Solvers allocate their orders as the official code does (Lu et al. 2022,
/// Appendix D.1). With explicit levels (``init(sampler:levels:)``) the grid keeps its own
/// length and the NFE follows from it; DPM-Solver's orders are then allocated over its steps.
/// Adaptive samplers (RK45, adaptive DPM-Solver) take only the grid's two ends and report the
/// NFE they used.
public struct SamplingPlan: Sendable, Codable, Equatable {
    /// How a grid is spaced between the process's noisiest and cleanest times.
    public enum Spacing: String, Sendable, Codable, CaseIterable {
        /// EDM's ρ = 7 spacing in σ̃ (Karras et al. 2022, eq. 5).
        case karras
        /// Uniform in half log-SNR λ (DPM-Solver's default).
        case logSNR = "logsnr"
        /// Uniform in time.
        case time
        /// DDIM's quadratic spacing in time, denser near the data.
        case quadratic
        /// Training steps of a discrete DDPM schedule at equal strides from step 0 (DDIM's).
        case leading
        /// Training steps of a discrete schedule counted back from the last one (Lin et al. 2024).
        case trailing
        /// Training steps of a discrete schedule rounded from an even spread.
        case linspace
    }

    /// The sampler.
    public let sampler: SamplerKind
    /// The NFE budget (nil for a plan with explicit levels).
    public let nfe: Int?
    /// How the grid is spaced (ignored with explicit levels).
    public let spacing: Spacing
    /// Whether the grid ends with a step to σ = 0 (a final denoise).
    public let finalDenoise: Bool
    /// Explicit noise levels, noisiest first, or nil.
    package let levels: [NoiseLevel]?
    /// When multistep solvers drop order on their last steps (diffusers' default).
    package var lowerOrderFinal = LowerOrderFinal.belowSteps(15)

    /// A plan that spends at most `nfe` network evaluations with `sampler` on a grid spaced by
    /// `spacing`.
    public init(sampler: SamplerKind = .dpmpp2M, nfe: Int = 20, spacing: Spacing = .karras, finalDenoise: Bool = true) {
        self.sampler = sampler
        self.nfe = nfe
        self.spacing = spacing
        self.finalDenoise = finalDenoise
        levels = nil
    }

    /// A plan on explicit noise levels (α, σ), noisiest first (the last may be clean, σ = 0).
    public init(sampler: SamplerKind, levels: [NoiseLevel]) {
        self.sampler = sampler
        nfe = nil
        spacing = .karras
        finalDenoise = levels.last?.isClean ?? false
        self.levels = levels
    }

    enum CodingKeys: String, CodingKey { case sampler, nfe, spacing, finalDenoise, levels }

    /// The largest budget a plan accepts: more evaluations than any sampler needs on these
    /// models, and few enough that a mistyped number cannot run for days.
    package static let maximumNFE = 10_000

    /// Throws unless the budget or the explicit levels make a grid.
    package func validate() throws {
        if let levels {
            guard levels.count >= 2, levels.count <= SamplingPlan.maximumNFE + 1 else {
                throw SamplerError.invalidGrid("an explicit grid needs 2 to \(SamplingPlan.maximumNFE + 1) levels; got \(levels.count)")
            }
            _ = try NoiseGrid(levels: levels)
        } else if let nfe {
            guard (1...SamplingPlan.maximumNFE).contains(nfe) else {
                throw SamplerError.invalidOption("the NFE budget must be in 1...\(SamplingPlan.maximumNFE); got \(nfe)")
            }
        } else {
            throw SamplerError.invalidOption("a plan needs an NFE budget or explicit levels")
        }
    }

    /// This plan with some settings replaced (nil keeps this plan's): a new budget or spacing
    /// turns a plan with explicit levels into a spaced one; a new sampler keeps the levels.
    package func replacing(sampler: SamplerKind? = nil, nfe: Int? = nil, spacing: Spacing? = nil, finalDenoise: Bool? = nil) -> SamplingPlan {
        if let levels, nfe == nil, spacing == nil, finalDenoise == nil {
            var plan = SamplingPlan(sampler: sampler ?? self.sampler, levels: levels)
            plan.lowerOrderFinal = lowerOrderFinal
            return plan
        }
        var plan = SamplingPlan(sampler: sampler ?? self.sampler, nfe: nfe ?? self.nfe ?? levels.map { $0.count - 1 } ?? 20,
                                spacing: spacing ?? self.spacing, finalDenoise: finalDenoise ?? self.finalDenoise)
        plan.lowerOrderFinal = lowerOrderFinal
        return plan
    }

    /// Explicit levels from JSON text `[[alpha, sigma], …]`, noisiest first: every number
    /// finite, at most ``maximumNFE`` + 1 levels, a valid grid. `source` names the file in errors.
    package static func levels(fromJSON bytes: [UInt8], source: String) throws -> [NoiseLevel] {
        guard bytes.count <= 1 << 20 else { throw SamplerError.invalidGrid("\(source): a grid file of \(bytes.count) bytes; at most 1 MiB") }
        guard let pairs = try? JSONSerialization.jsonObject(with: Data(bytes)) as? [[Double]], pairs.allSatisfy({ $0.count == 2 }) else {
            throw SamplerError.invalidGrid("\(source): expected a JSON list of [alpha, sigma] pairs, noisiest first")
        }
        let levels = pairs.map { NoiseLevel(alpha: $0[0], sigma: $0[1]) }
        do { try SamplingPlan(sampler: .ddim, levels: levels).validate() } catch { throw SamplerError.invalidGrid("\(source): \(error)") }
        return levels
    }

    // MARK: - Resolution

    /// The grid and, for the singlestep DPM-Solvers, one order per step, for a model trained
    /// under `process`.
    package func resolve(process: some NoiseProcess) throws -> (grid: NoiseGrid, orders: [Int]?) {
        try validate()
        guard sampler != .consistency else {
            throw SamplerError.invalidOption("the consistency sampler needs a consistency model")
        }
        if let levels {
            let grid = try NoiseGrid(levels: levels, process: process)
            return (grid, try singlestepOrders(forSteps: grid.steps, cleanEnd: grid.levels.last!.isClean))
        }
        let budget = nfe!
        let clean = finalDenoise
        if let order = sampler.singlestepOrder {
            // The official allocation spends the budget on the noisy steps; a final denoise costs 1.
            let noisyBudget = clean ? budget - 1 : budget
            guard noisyBudget >= 1 else {
                throw SamplerError.invalidOption("\(sampler.rawValue) with a final denoise needs at least 2 NFE; got \(budget)")
            }
            let orders = try dpmSolverSinglestepOrders(nfe: noisyBudget, order: order)
            let grid = try makeGrid(process: process, steps: orders.count + (clean ? 1 : 0))
            return (grid, orders + (clean ? [1] : []))
        }
        let steps = sampler.steps(forBudget: budget, cleanEnd: clean)
        if let least = sampler.evaluations(steps: steps, cleanEnd: clean), least > budget {
            throw SamplerError.invalidOption("\(sampler.rawValue) needs at least \(least) NFE for one step\(clean ? "" : " without a final denoise"); the budget is \(budget)")
        }
        return (try makeGrid(process: process, steps: steps), nil)
    }

    /// Orders for a grid of fixed length: the official allocation of the largest budget whose
    /// allocation has exactly the grid's noisy step count (e.g. [3, …, 3, 2] for order 3), and
    /// order 1 for a final denoise.
    func singlestepOrders(forSteps steps: Int, cleanEnd: Bool) throws -> [Int]? {
        guard let order = sampler.singlestepOrder else { return nil }
        let noisy = cleanEnd ? steps - 1 : steps
        guard noisy >= 1 else { return [1] }
        var best: [Int] = Array(repeating: 1, count: noisy)
        for budget in noisy...(3 * noisy + 3) {
            let o = try dpmSolverSinglestepOrders(nfe: budget, order: order)
            if o.count == noisy { best = o }
            if o.count > noisy { break }
        }
        return best + (cleanEnd ? [1] : [])
    }

    /// A grid of `steps` steps spaced by ``spacing`` over the process's time range.
    func makeGrid(process: some NoiseProcess, steps: Int) throws -> NoiseGrid {
        let clean = finalDenoise
        let noisy = clean ? steps - 1 : steps   // steps between noisy levels
        switch spacing {
        case .karras:
            return try .karras(process, steps: steps, finalDenoise: clean)
        case .leading, .trailing, .linspace:
            guard let ddpm = process.underlying as? DiscreteDDPMProcess else {
                throw SamplerError.invalidGrid("the \(spacing.rawValue) spacing needs a model trained with the discrete ddpm process")
            }
            // `discrete` picks one training step per level; with a final denoise the last step goes to σ = 0.
            return try .discrete(ddpm, steps: clean ? steps : steps + 1, spacing: NoiseGrid.DiscreteSpacing(rawValue: spacing.rawValue)!,
                                 finalDenoise: clean)
        case .logSNR, .time, .quadratic:
            if noisy == 0 {
                let t = process.noisiestTime
                return try NoiseGrid(levels: [NoiseLevel(alpha: process.alpha(t), sigma: process.sigma(t), time: t), .clean], process: process)
            }
            switch spacing {
            case .logSNR: return try .logSNRUniform(process, steps: noisy, finalDenoise: clean)
            case .time: return try .timeUniform(process, steps: noisy, finalDenoise: clean)
            default: return try .timeQuadratic(process, steps: noisy, finalDenoise: clean)
            }
        }
    }

    /// The σ-form grid of a consistency model (levels with α = 1, σ = σ̃): the sample starts at
    /// the largest level T and is re-noised to each later level (Song et al. 2023, Alg. 1). A
    /// budget of k NFE takes the k - 1 inner points of EDM's ρ = 7 grid of k + 1 points from T
    /// down to ε; explicit levels are used as given (a clean end is added when missing).
    package func consistencyGrid(epsilon: Double, sigmaMax: Double) throws -> NoiseGrid {
        try validate()
        guard sampler == .consistency else {
            throw SamplerError.invalidOption("a consistency model samples with the consistency sampler (Song et al. 2023, Alg. 1), not \(sampler.rawValue)")
        }
        if let levels {
            let sigmaForm = levels.map { $0.isClean ? NoiseLevel.clean : NoiseLevel(alpha: 1, sigma: $0.sigmaTilde) }
            let grid = try NoiseGrid(levels: sigmaForm.last!.isClean ? sigmaForm : sigmaForm + [.clean])
            guard grid.levels[0].sigma <= sigmaMax * (1 + 1e-9) else {
                throw SamplerError.invalidGrid("a consistency model starts at most at σ̃ = T = \(sigmaMax); the grid starts at \(grid.levels[0].sigma)")
            }
            if let inner = grid.levels.dropFirst().first(where: { !$0.isClean && $0.sigma <= epsilon }) {
                throw SamplerError.invalidGrid("consistency re-noising levels must lie above ε = \(epsilon); got \(inner.sigma)")
            }
            return grid
        }
        let k = nfe!
        let points = ConsistencyDistillation.levels(count: k + 1, epsilon: epsilon, sigmaMax: sigmaMax).reversed()
        let noisy = points.dropLast().map { NoiseLevel(alpha: 1, sigma: $0) }
        return try NoiseGrid(levels: Array(noisy) + [.clean])
    }

    // MARK: - Running

    /// Samples `denoiser`, a model trained under `process`, from the state `x` at the grid's
    /// first level (for seeded noise z, x = σ₀·z with σ₀ = `startingNoiseScale(process:)`).
    ///
    /// - Parameters:
    ///   - denoiser: the model (a consistency model needs the consistency sampler, and only it).
    ///   - process: the process the model was trained under.
    ///   - x: the initial state (rows), at the grid's first level.
    ///   - labels: one class label per row for a class-conditional model.
    ///   - seed: the seed of the noise that stochastic samplers draw on the way.
    ///   - data: samples of the data (rows), which Analytic-DPM needs for its moments.
    ///   - dataRange: the range every data value lies in, when known: Analytic-DPM clips its
    ///     variance with it (Bao et al. 2022, Theorem 2); nil for unbounded data.
    ///   - progress: called after each step with (steps done, steps in all).
    /// - Returns: the sample and the NFE it took.
    /// - Throws: ``SamplerError`` for a plan that does not fit the model or its process.
    public func run(_ denoiser: some Denoiser, process: DiffusionProcess, from x: Tensor, labels: [Int]? = nil, seed: UInt64 = 0,
                    data: Tensor? = nil, dataRange: ClosedRange<Double>? = nil,
                    progress: ((Int, Int) -> Void)? = nil) throws -> SamplerResult {
        if sampler == .consistency {
            guard let model = denoiser as? any ConsistencyFunction else {
                throw SamplerError.invalidOption("the consistency sampler needs a consistency model")
            }
            let grid = try consistencyGrid(epsilon: model.epsilon, sigmaMax: model.sigmaMax)
            return try sampleConsistency(model, from: x, grid: grid, labels: labels, seed: seed, progress: progress)
        }
        if denoiser is any ConsistencyFunction {
            throw SamplerError.invalidOption("a consistency model samples with the consistency sampler (Song et al. 2023, Alg. 1), not \(sampler.rawValue)")
        }
        let (grid, orders) = try resolve(process: process)
        var moments: [Double]?
        if sampler == .analyticDPM {
            guard let data else {
                throw SamplerError.invalidOption("Analytic-DPM needs samples of the data to estimate its moments (Bao et al. 2022, eq. 7)")
            }
            moments = try analyticDPMMoments(denoiser, grid: grid, data: data)
        }
        let options = SamplerOptions(labels: labels, seed: seed, lowerOrderFinal: lowerOrderFinal)
        return try sampler.run(denoiser, from: x, grid: grid, orders: orders, options: options, analyticMoments: moments,
                               dataRange: dataRange, onStep: progress.map { report in { report($0.index + 1, grid.steps) } })
    }

    /// σ₀, the noise scale of the first level of the grid this plan makes for `process`: seeded
    /// standard normal noise z starts sampling as x = σ₀·z.
    package func startingNoiseScale(process: DiffusionProcess) throws -> Double {
        try startingLevel(process: process).sigma
    }

    /// The first level of the grid this plan makes for `process`.
    package func startingLevel(process: DiffusionProcess) throws -> NoiseLevel {
        try resolve(process: process).grid.levels[0]
    }

    /// The NFE the plan spends on a model trained under `process`, or nil for adaptive
    /// samplers (whose NFE depends on the model).
    public func evaluations(process: DiffusionProcess) throws -> Int? {
        let (grid, orders) = try resolve(process: process)
        return sampler.evaluations(steps: grid.steps, cleanEnd: grid.levels.last!.isClean, orders: orders)
    }
}

extension SamplerKind {
    /// The order of a singlestep DPM-Solver (its steps' orders are allocated by budget), nil
    /// for every other sampler.
    var singlestepOrder: Int? {
        switch self {
        case .dpmSolver1: return 1
        case .dpmSolver2: return 2
        case .dpmSolver3: return 3
        default: return nil
        }
    }

    /// The NFE of a grid of `steps` steps (the last into σ = 0 when `cleanEnd`), or nil for
    /// the adaptive samplers. `orders` are the singlestep DPM-Solvers' per-step orders.
    package func evaluations(steps k: Int, cleanEnd: Bool, orders: [Int]? = nil) -> Int? {
        let c = cleanEnd ? 1 : 0
        switch self {
        case .euler, .eulerAncestral, .lms, .ddim, .ddpm, .analyticDPM, .eulerMaruyama, .rectifiedFlowEuler,
             .dpmpp2M, .dpmpp3M, .dpmpp3MCompatible, .sdeDPMpp2M, .deis1, .deis2, .deis3, .ipndm,
             .unipc1, .unipc2, .unipc3, .unipcBH1, .consistency:
            return k
        case .heun, .edmStochastic, .dpm2, .dpmpp2S, .predictorCorrector:
            return 2 * k - c
        case .dpmSolver1, .dpmSolver2, .dpmSolver3:
            return (orders ?? Array(repeating: singlestepOrder!, count: k)).dropLast(c).reduce(c, +)   // a step into σ = 0 is a plain denoise
        case .pndm:
            // Three pseudo Runge–Kutta warm-up steps of 4 NFE each (1 for a step into σ = 0).
            let warmup = min(k, 3)
            return k + 3 * warmup - (cleanEnd && k <= 3 ? 3 : 0)
        case .plms:
            // The first step evaluates twice (once when it is a step into σ = 0).
            return k + (cleanEnd && k == 1 ? 0 : 1)
        case .rk45, .dpmSolverAdaptive:
            return nil
        }
    }

    /// The most steps whose NFE stays within `budget` (at least one step). Adaptive samplers
    /// use only the grid's ends: one noisy step (and the final denoise).
    func steps(forBudget budget: Int, cleanEnd: Bool) -> Int {
        guard evaluations(steps: 1, cleanEnd: cleanEnd) != nil else { return cleanEnd ? 2 : 1 }
        var k = 1
        while k < budget, let next = evaluations(steps: k + 1, cleanEnd: cleanEnd), next <= budget { k += 1 }
        return k
    }
}
