import Foundation

/// A process with its parameters, as stored in model cards.
public enum ProcessSpec: Codable, Sendable, Equatable {
    case vpLinear(VPLinearProcess)
    case vpCosine(VPCosineProcess)
    case ddpm(steps: Int, betaStart: Double, betaEnd: Double)
    case ve(VEProcess)
    case edm(EDMProcess)
    case rectifiedFlow(RectifiedFlowProcess)

    public init(_ kind: ProcessKind) {
        switch kind {
        case .vpLinear: self = .vpLinear(VPLinearProcess())
        case .vpCosine: self = .vpCosine(VPCosineProcess())
        case .ddpm: self = .ddpm(steps: 1000, betaStart: 1e-4, betaEnd: 0.02)
        case .ve: self = .ve(VEProcess())
        case .edm: self = .edm(EDMProcess())
        case .rectifiedFlow: self = .rectifiedFlow(RectifiedFlowProcess())
        }
    }

    /// The spec of a process value (the six known processes; others fall back to VP-linear).
    public static func from(_ p: any DiffusionProcess) -> ProcessSpec {
        switch p {
        case let q as VPLinearProcess: return .vpLinear(q)
        case let q as VPCosineProcess: return .vpCosine(q)
        case let q as DiscreteDDPMProcess: return .ddpm(steps: q.steps, betaStart: q.betaStart, betaEnd: q.betaEnd)
        case let q as VEProcess: return .ve(q)
        case let q as EDMProcess: return .edm(q)
        case let q as RectifiedFlowProcess: return .rectifiedFlow(q)
        default: return .vpLinear(VPLinearProcess())
        }
    }

    /// The process itself.
    public var process: any DiffusionProcess {
        switch self {
        case let .vpLinear(p): return p
        case let .vpCosine(p): return p
        case let .ddpm(n, b0, b1): return DiscreteDDPMProcess(steps: n, betaStart: b0, betaEnd: b1)
        case let .ve(p): return p
        case let .edm(p): return p
        case let .rectifiedFlow(p): return p
        }
    }
}

/// Everything needed to rebuild a trained model from its checkpoint: stored as the
/// checkpoint's configuration JSON.
public struct ModelCard: Codable, Sendable, Equatable {
    /// The network and how its output is read.
    public enum Architecture: Codable, Sendable, Equatable {
        /// A diffusion model: MLP network, process, parameterization, conditioning.
        case mlp(MLPScoreNetwork.Configuration)
        /// A consistency model over an MLP (f = c_skip x + c_out F, σ-form).
        case consistencyMLP(MLPScoreNetwork.Configuration, sigmaMax: Double)
        /// A diffusion model over an image U-Net (``UNet``): process, parameterization and
        /// conditioning as for ``mlp(_:)``; `dataShape` is [C, H, W].
        case unet(UNet.Configuration)
        /// A consistency model over a U-Net.
        case consistencyUNet(UNet.Configuration, sigmaMax: Double)

        /// A fresh network of this architecture, initialized from `seed`.
        public func network(seed: UInt64 = 0) throws -> any ConditionalNetwork {
            switch self {
            case let .mlp(c), let .consistencyMLP(c, _): return try MLPScoreNetwork(c, seed: seed)
            case let .unet(c), let .consistencyUNet(c, _): return try UNet(c, seed: seed)
            }
        }

        /// The consistency model's T, for consistency architectures.
        public var consistencySigmaMax: Double? {
            switch self {
            case let .consistencyMLP(_, t), let .consistencyUNet(_, t): return t
            case .mlp, .unet: return nil
            }
        }

        /// The network's classes (the null class is `classCount`), if class-conditional.
        public var classCount: Int? {
            switch self {
            case let .mlp(c), let .consistencyMLP(c, _): return c.classCount
            case let .unet(c), let .consistencyUNet(c, _): return c.classCount
            }
        }

        /// The same network under consistency-model preconditioning with largest level `sigmaMax`.
        public func consistency(sigmaMax: Double) -> Architecture {
            switch self {
            case let .mlp(c), let .consistencyMLP(c, _): return .consistencyMLP(c, sigmaMax: sigmaMax)
            case let .unet(c), let .consistencyUNet(c, _): return .consistencyUNet(c, sigmaMax: sigmaMax)
            }
        }

        /// The same network with a guidance-weight input of `dim` sinusoidal features (0: none).
        public func withGuidanceInput(_ dim: Int) -> Architecture {
            switch self {
            case var .mlp(c): c.guidanceEmbeddingDim = dim; return .mlp(c)
            case var .consistencyMLP(c, t): c.guidanceEmbeddingDim = dim; return .consistencyMLP(c, sigmaMax: t)
            case var .unet(c): c.guidanceEmbeddingDim = dim; return .unet(c)
            case var .consistencyUNet(c, t): c.guidanceEmbeddingDim = dim; return .consistencyUNet(c, sigmaMax: t)
            }
        }
    }

    public var format = "distill.model"
    public var architecture: Architecture
    public var process: ProcessSpec
    public var parameterization: Parameterization
    public var conditioning: NetworkConditioning
    public var sigmaData: Float
    /// Shape of one data item ([d] for vectors, [C, H, W] for images).
    public var dataShape: [Int]
    /// Where the training data came from (e.g. "8gaussians", "digits8x8", "gmm:ring8").
    public var dataSource: String
    public var classCount: Int?
    /// How it was made ("trained with dsm", "distilled with pd from …").
    public var provenance: String
    /// Consistency architectures only: true when the network is read as a diffusion model
    /// under this card's process, parameterization and conditioning
    /// (``ConsistencyModel/DenoiserForm``); nil or false: Song et al.'s preconditioned form.
    public var consistencyReadsDenoiser: Bool?

    public init(architecture: Architecture, process: ProcessSpec, parameterization: Parameterization,
                conditioning: NetworkConditioning = .time, sigmaData: Float = 0.5, dataShape: [Int], dataSource: String,
                classCount: Int? = nil, provenance: String = "") {
        self.architecture = architecture
        self.process = process
        self.parameterization = parameterization
        self.conditioning = conditioning
        self.sigmaData = sigmaData
        self.dataShape = dataShape
        self.dataSource = dataSource
        self.classCount = classCount
        self.provenance = provenance
    }

    public var json: String {
        let enc = JSONEncoder()
        enc.outputFormatting = [.sortedKeys]
        return String(decoding: (try? enc.encode(self)) ?? Data(), as: UTF8.self)
    }
}

/// A model loaded from a checkpoint with its card: usable as a denoiser by every sampler.
public struct SavedModel {
    public let card: ModelCard
    /// The network with its loaded weights (an ``MLPScoreNetwork`` or a ``UNet``).
    public let network: any ConditionalNetwork
    public let denoiser: any Denoiser
    public let checkpoint: Checkpoint

    /// Reads a checkpoint written with a model card and rebuilds the model, with its EMA
    /// weights when the checkpoint has them (`preferEMA`).
    public static func load(_ path: String, preferEMA: Bool = true) throws -> SavedModel {
        let ck = try Checkpoint.read(from: path)
        let card: ModelCard
        do { card = try JSONDecoder().decode(ModelCard.self, from: Data(ck.config.utf8)) } catch {
            throw IOError.corrupt(path: path, detail: "the checkpoint has no readable model card (\(error))")
        }
        let weights = preferEMA ? (ck.ema ?? ck.model) : ck.model
        let net = try card.architecture.network()
        try net.load(weights)
        let model = denoiser(net, card: card)
        return SavedModel(card: card, network: net, denoiser: model, checkpoint: ck)
    }

    /// The card's view of a network: a consistency model or a diffusion model.
    private static func denoiser(_ net: some ConditionalNetwork, card: ModelCard) -> any Denoiser {
        if let sigmaMax = card.architecture.consistencySigmaMax {
            let form = card.consistencyReadsDenoiser == true
                ? ConsistencyModel<AnyNetwork>.DenoiserForm(process: card.process, parameterization: card.parameterization,
                                                            conditioning: card.conditioning) : nil
            return ConsistencyModel(network: AnyNetwork(net), sigmaData: Double(card.sigmaData), sigmaMax: sigmaMax, denoiserForm: form)
        }
        return DiffusionModel(network: net, process: card.process.process, parameterization: card.parameterization,
                              conditioning: card.conditioning, sigmaData: card.sigmaData)
    }
}
