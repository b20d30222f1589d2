import Foundation

/// Noise levels, one per batch row: the state is x = α·x0 + σ·ε; `time` is the model's own
/// time for that level when known (nil: the model derives it from λ = log(α/σ)).
public struct NoiseLevels: Sendable, Equatable {
    /// Signal scales α, one per row.
    public var alpha: [Double]
    /// Noise scales σ, one per row.
    public var sigma: [Double]
    /// The model's own times of the levels, when known.
    public var time: [Double]?

    /// Levels from per-row α, σ and (optionally) times.
    public init(alpha: [Double], sigma: [Double], time: [Double]? = nil) {
        self.alpha = alpha
        self.sigma = sigma
        self.time = time
    }

    /// The same level for `batch` rows.
    package init(alpha: Double, sigma: Double, time: Double? = nil, batch: Int) {
        self.init(alpha: Array(repeating: alpha, count: batch), sigma: Array(repeating: sigma, count: batch),
                  time: time.map { Array(repeating: $0, count: batch) })
    }

    /// The levels of `process` at per-row times.
    package init(process: some NoiseProcess, times: [Double]) {
        self.init(alpha: times.map(process.alpha), sigma: times.map(process.sigma), time: times)
    }

    package var count: Int { alpha.count }

    /// α as a tensor shaped to broadcast over rows of a tensor of `rank` (e.g. [B, 1, 1, 1]).
    package func alphaTensor(rank: Int) throws -> Tensor { try Self.column(alpha, rank: rank) }
    /// σ shaped like ``alphaTensor(rank:)``.
    package func sigmaTensor(rank: Int) throws -> Tensor { try Self.column(sigma, rank: rank) }

    static func column(_ v: [Double], rank: Int) throws -> Tensor {
        try Tensor(shape: [v.count] + Array(repeating: 1, count: max(rank - 1, 0)), scalars: v.map { Float($0) })
    }
}

/// A denoiser's answer at a state: the data prediction x̂0 and the noise prediction ε̂.
public struct Prediction {
    /// The predicted clean data x̂0.
    public var data: Tensor
    /// The predicted noise ε̂.
    public var noise: Tensor

    /// A prediction of data and noise (of the state's shape).
    public init(data: Tensor, noise: Tensor) {
        self.data = data
        self.noise = noise
    }
}

/// The one view every sampler and distillation objective uses: something that predicts x0
/// and ε from a noisy state (a trained network under its parameterization, the exact
/// Gaussian-mixture teacher, a guided or distilled model).
public protocol Denoiser {
    /// Predictions at state x (rows of x are batch items) at per-row noise levels; `labels`
    /// (one per row) for class-conditional models.
    func predict(_ x: Tensor, at levels: NoiseLevels, labels: [Int]?) throws -> Prediction
}

extension Denoiser {
    /// Predictions with every row at the same level.
    public func predict(_ x: Tensor, alpha: Double, sigma: Double, time: Double? = nil, labels: [Int]? = nil) throws -> Prediction {
        try predict(x, at: NoiseLevels(alpha: alpha, sigma: sigma, time: time, batch: x.shape.first ?? 1), labels: labels)
    }
}

/// A network that maps (input, time conditioning, labels, optional guidance weight) to an
/// output of the input's shape: the MLP and the U-Net.
public protocol ConditionalNetwork: Module {
    /// The output for inputs x (rows, or images), the time input (one per row), labels (one per
    /// row, nil for none) and a guidance weight per row (nil for none); traced when the
    /// network's parameters are.
    func callAsFunction(_ x: Tensor, time: Tensor, labels: [Int]?, guidance: Tensor?) throws -> Tensor
}

extension MLPScoreNetwork: ConditionalNetwork {}

/// A type-erased network, so generic models (``DiffusionModel``, ``ConsistencyModel``) can
/// hold an `any ConditionalNetwork` chosen at run time. Its parameters are the base's, under
/// the same names.
package final class AnyNetwork: ConditionalNetwork {
    package let base: any ConditionalNetwork
    package init(_ base: any ConditionalNetwork) { self.base = base }

    package func visitParameters(_ visit: (String, Parameter) throws -> Void) rethrows {
        try base.visitParameters(visit)
    }

    package func callAsFunction(_ x: Tensor, time: Tensor, labels: [Int]?, guidance: Tensor?) throws -> Tensor {
        try base(x, time: time, labels: labels, guidance: guidance)
    }
}

/// How a network is fed its inputs.
package enum NetworkConditioning: String, Sendable, Codable {
    /// The network sees (x, t) with t the process time.
    case time
    /// EDM preconditioning of the inputs (Karras et al. 2022, Table 1): it sees
    /// (c_in·x̃, c_noise) with x̃ = x/α, σ̃ = σ/α, c_in = 1/√(σ̃² + σ_d²), c_noise = ¼·ln σ̃.
    case edm
    /// diffusers' convention for a discrete DDPM schedule of N steps: like ``time``, but the
    /// network sees the 0-based training-step index n = N·t − 1 (0…N−1 on the schedule's own
    /// steps, fractional in between), which is what a diffusers `UNet2DModel` takes as its
    /// timestep. Only for models whose process is the discrete DDPM schedule.
    case diffusersTimestep = "diffusers-timestep"
}

/// A trained network as a denoiser: the network, the process it was trained under, its
/// output parameterization and its input conditioning.
public struct DiffusionModel<Network: ConditionalNetwork>: Denoiser {
    /// The network.
    public let network: Network
    /// The process the network was trained under.
    public let process: DiffusionProcess
    /// What the network's output predicts.
    public let parameterization: Parameterization
    package let conditioning: NetworkConditioning
    package let sigmaData: Float
    /// The guidance weight fed to a guidance-conditioned network (nil: none).
    package let guidance: Float?

    /// A model whose network sees (x, t) with t the process time.
    public init(network: Network, process: DiffusionProcess, parameterization: Parameterization) {
        self.init(network: network, process: process, parameterization: parameterization, conditioning: .time)
    }

    /// A model with every setting: EDM input conditioning (with σ_data), a guidance weight.
    package init(network: Network, process: DiffusionProcess, parameterization: Parameterization,
                 conditioning: NetworkConditioning, sigmaData: Float = 0.5, guidance: Float? = nil) {
        self.network = network
        self.process = process
        self.parameterization = parameterization
        self.conditioning = conditioning
        self.sigmaData = sigmaData
        self.guidance = guidance
    }

    /// The same model evaluated at guidance weight w (a guidance-conditioned student).
    package func withGuidance(_ w: Float?) -> DiffusionModel {
        DiffusionModel(network: network, process: process, parameterization: parameterization, conditioning: conditioning,
                       sigmaData: sigmaData, guidance: w)
    }

    /// The raw network output at x (traced when the network's parameters are): what losses
    /// compare with ``Parameterization/target(x0:epsilon:x:alpha:sigma:sigmaData:)``. The levels
    /// must be the model process's own (as training draws them); ``predict(_:at:labels:)``
    /// accepts any (α, σ).
    package func output(_ x: Tensor, at levels: NoiseLevels, labels: [Int]?, guidance: Tensor? = nil) throws -> Tensor {
        try evaluate(x, at: levels, labels: labels, guidance: guidance).output
    }

    /// The network output for states given at arbitrary (α, σ): under time conditioning each
    /// row is rescaled to the process's own α at the same log-SNR (x_model = x·α(t)/α), and the
    /// output comes with the model-scale state and levels it refers to.
    func evaluate(_ x: Tensor, at levels: NoiseLevels, labels: [Int]?, guidance perRow: Tensor? = nil) throws -> (output: Tensor, x: Tensor, levels: NoiseLevels) {
        let w = try perRow ?? guidance.map { try Tensor.full([x.shape.first ?? 0], $0) }
        guard levels.count == x.shape.first else {
            throw TensorError.invalidArgument(operation: "DiffusionModel", message: "\(levels.count) noise levels for a batch of \(x.shape.first ?? 0)")
        }
        switch conditioning {
        case .time, .diffusersTimestep:
            // A level's own time is used only when it is this process's time for that level: levels
            // made under another process (a student's schedule asking the teacher) carry times
            // that mean something else here, and are mapped through λ like levels without time.
            let times = try levels.alpha.indices.map { i -> Double in
                let lambda = log(levels.alpha[i] / levels.sigma[i])
                if let t = levels.time?[i], abs(process.logSNR(t) - lambda) <= 1e-9 * max(1, abs(lambda)) { return t }
                guard let t = process.time(forLogSNR: lambda) else {
                    throw TensorError.invalidArgument(operation: "DiffusionModel",
                                                      message: "the \(process.name) process has no time with log-SNR \(lambda)")
                }
                return t
            }
            let own = NoiseLevels(process: process, times: times)
            let scale = zip(own.alpha, levels.alpha).map { $0 / $1 }
            let xm = scale.allSatisfy({ abs($0 - 1) < 1e-9 }) ? x : try x * NoiseLevels.column(scale, rank: x.rank)
            return (try network(xm, time: Tensor(try networkTimes(times).map { Float($0) }), labels: labels, guidance: w), xm, own)
        case .edm:
            let st = zip(levels.sigma, levels.alpha).map { $0 / $1 }
            let cIn = zip(st, levels.alpha).map { s, a in 1 / (a * (s * s + Double(sigmaData * sigmaData)).squareRoot()) }
            let cNoise = st.map { Float(0.25 * log($0)) }
            return (try network(x * NoiseLevels.column(cIn, rank: x.rank), time: Tensor(cNoise), labels: labels, guidance: w), x, levels)
        }
    }

    /// The time input the network is fed for process times `times`: the times themselves, or
    /// under ``NetworkConditioning/diffusersTimestep`` the training-step indices N·t − 1.
    func networkTimes(_ times: [Double]) throws -> [Double] {
        guard conditioning == .diffusersTimestep else { return times }
        guard let ddpm = process.underlying as? DiscreteDDPMProcess else {
            throw TensorError.invalidArgument(operation: "DiffusionModel",
                                              message: "diffusers timesteps need the discrete ddpm process; the model's is \(process.name)")
        }
        return times.map { $0 * Double(ddpm.steps) - 1 }
    }

    /// The data and noise predictions at each row's level (``Denoiser``).
    public func predict(_ x: Tensor, at levels: NoiseLevels, labels: [Int]?) throws -> Prediction {
        let (out, xm, own) = try evaluate(x, at: levels, labels: labels)
        let (x0, eps) = try parameterization.dataAndNoise(from: out, x: xm, alpha: own.alphaTensor(rank: x.rank),
                                                           sigma: own.sigmaTensor(rank: x.rank), sigmaData: sigmaData)
        return Prediction(data: x0, noise: eps)   // both independent of the state's scaling
    }
}

/// A type-erased denoiser, for wrapping `any Denoiser` in generic transforms such as
/// ``GuidedDenoiser``.
package struct AnyDenoiser: Denoiser {
    package let base: any Denoiser
    package init(_ base: any Denoiser) { self.base = base }
    /// The data and noise predictions at each row's level (``Denoiser``).
    public func predict(_ x: Tensor, at levels: NoiseLevels, labels: [Int]?) throws -> Prediction {
        try base.predict(x, at: levels, labels: labels)
    }
}

/// A class-conditional denoiser held to one class: calls without labels get `label` for every
/// row (e.g. a teacher that must always answer for one class).
package struct FixedLabelDenoiser<Base: Denoiser>: Denoiser {
    package let base: Base
    package let label: Int
    package init(_ base: Base, label: Int) {
        self.base = base
        self.label = label
    }
    /// The data and noise predictions at each row's level (``Denoiser``).
    public func predict(_ x: Tensor, at levels: NoiseLevels, labels: [Int]?) throws -> Prediction {
        try base.predict(x, at: levels, labels: labels ?? Array(repeating: label, count: x.shape.first ?? 0))
    }
}

/// Classifier-free guidance as a denoiser transform (Ho & Salimans 2022):
/// ε̃ = (1 + w)·ε̂(x, c) - w·ε̂(x, ∅), and the same combination of the data predictions (the
/// conversions are affine in the prediction at fixed x, α, σ). Both branches run as one
/// batch of twice the size.
package struct GuidedDenoiser<Base: Denoiser>: Denoiser {
    package let base: Base
    package let guidance: Float
    /// The label that means "no condition".
    package let nullLabel: Int

    package init(_ base: Base, guidance: Float, nullLabel: Int) {
        self.base = base
        self.guidance = guidance
        self.nullLabel = nullLabel
    }

    /// The data and noise predictions at each row's level (``Denoiser``).
    public func predict(_ x: Tensor, at levels: NoiseLevels, labels: [Int]?) throws -> Prediction {
        guard let labels else {
            throw TensorError.invalidArgument(operation: "GuidedDenoiser", message: "classifier-free guidance needs class labels")
        }
        let n = x.shape[0]
        let both = try Tensor.concat([x, x])
        let doubled = NoiseLevels(alpha: levels.alpha + levels.alpha, sigma: levels.sigma + levels.sigma,
                                  time: levels.time.map { $0 + $0 })
        let p = try base.predict(both, at: doubled, labels: labels + Array(repeating: nullLabel, count: n))
        func mix(_ t: Tensor) throws -> Tensor {
            try t.slice(0..<n) * (1 + guidance) - t.slice(n..<(2 * n)) * guidance
        }
        return Prediction(data: try mix(p.data), noise: try mix(p.noise))
    }
}
