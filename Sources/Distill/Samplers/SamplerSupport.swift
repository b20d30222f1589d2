/// When multistep and high-order solvers drop to a lower order on their final steps; the
/// published codes differ (official DPM-Solver: when steps < 10; diffusers: steps < 15 or a
/// final σ = 0; official UniPC: always).
package enum LowerOrderFinal: Sendable, Equatable {
    case never
    case always
    /// When the grid has fewer than this many steps.
    case belowSteps(Int)

    func applies(steps: Int) -> Bool {
        switch self {
        case .never: return false
        case .always: return true
        case let .belowSteps(n): return steps < n
        }
    }
}

/// Settings shared by every sampler.
package struct SamplerOptions: Sendable {
    /// Class labels, one per row, for class-conditional models (with ``GuidedDenoiser`` for
    /// classifier-free guidance).
    package var labels: [Int]?
    /// Seed of the stochastic samplers' noise: Philox(seed, stream: `noiseStream`).
    package var seed: UInt64
    package var noiseStream: UInt64
    package var lowerOrderFinal: LowerOrderFinal

    package init(labels: [Int]? = nil, seed: UInt64 = 0, noiseStream: UInt64 = 0x5EED, lowerOrderFinal: LowerOrderFinal = .belowSteps(15)) {
        self.labels = labels
        self.seed = seed
        self.noiseStream = noiseStream
        self.lowerOrderFinal = lowerOrderFinal
    }
}

/// What a sampler reports after each step.
package struct SamplerStep {
    /// Step index (0-based) and the levels it went between.
    package var index: Int
    package var from: NoiseLevel
    package var to: NoiseLevel
    /// The state after the step (x = α·x0 + σ·ε form).
    package var state: Tensor
    /// The data prediction the step used last, when it made one.
    package var denoised: Tensor?
}

/// A sample and the number of denoiser evaluations (NFE) it took.
public struct SamplerResult {
    /// The samples.
    public var sample: Tensor
    /// The network evaluations (NFE) they took.
    public var evaluations: Int
}

/// The shared machinery of the samplers: denoiser calls (counted, without gradients), σ-form
/// scaling, the fused update kernel and the noise stream.
struct SamplerRun<D: Denoiser> {
    let model: D
    let options: SamplerOptions
    let onStep: ((SamplerStep) -> Void)?
    let shape: [Int]
    private(set) var evaluations = 0
    var noise: Philox

    init(_ model: D, shape: [Int], options: SamplerOptions, onStep: ((SamplerStep) -> Void)?) throws {
        guard let batch = shape.first, batch > 0 else {
            throw SamplerError.invalidOption("the initial state needs a batch dimension; got shape \(shape)")
        }
        if let labels = options.labels, labels.count != batch {
            throw SamplerError.invalidOption("\(labels.count) labels for a batch of \(batch)")
        }
        self.model = model
        self.options = options
        self.onStep = onStep
        self.shape = shape
        noise = Philox(seed: options.seed, stream: options.noiseStream)
    }

    /// The denoiser at VP-form state x and one level for the whole batch (one NFE).
    mutating func predict(_ x: Tensor, _ level: NoiseLevel) throws -> Prediction {
        evaluations += 1
        return try model.predict(x, at: NoiseLevels(alpha: level.alpha, sigma: level.sigma, time: level.time, batch: shape[0]),
                                 labels: options.labels)
    }

    /// x̂0 from a σ-form state x̃ = x/α (one NFE).
    mutating func denoise(sigmaForm xt: Tensor, _ level: NoiseLevel) throws -> Tensor {
        try predict(xt * Float(level.alpha), level).data
    }

    /// Σ cₖ·tₖ + noiseStd·z in one fused kernel pass; z comes from the run's noise stream.
    mutating func combine(_ terms: [(Double, Tensor)], noiseStd: Double = 0) throws -> Tensor {
        try Tensor.linearCombination(terms.map { (Float($0.0), $0.1) }, noiseStd: Float(noiseStd), noise: &noise)
    }

    /// Fresh standard normal noise of the state's shape.
    mutating func normal() throws -> Tensor { try noise.normal(shape) }

    func report(_ index: Int, _ grid: NoiseGrid, _ state: Tensor, _ denoised: Tensor?) {
        onStep?(SamplerStep(index: index, from: grid.levels[index], to: grid.levels[index + 1], state: state, denoised: denoised))
    }

    func result(_ x: Tensor) -> SamplerResult { SamplerResult(sample: x, evaluations: evaluations) }
}

/// Checks the initial state against the grid and runs the sampler body without gradients.
func runSampler<D: Denoiser>(_ model: D, _ x: Tensor, _ grid: NoiseGrid, _ options: SamplerOptions,
                             _ onStep: ((SamplerStep) -> Void)?,
                             _ body: (inout SamplerRun<D>) throws -> Tensor) throws -> SamplerResult {
    guard !grid.levels[0].isClean else { throw SamplerError.invalidGrid("the first level must be noisy") }
    var run = try SamplerRun(model, shape: x.shape, options: options, onStep: onStep)
    let out = try withoutGradient { try body(&run) }
    return run.result(out)
}
