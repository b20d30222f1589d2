import Foundation

/// Everything needed to rebuild a diffusion or consistency model from its checkpoint, stored
/// as the checkpoint's configuration JSON (format "distill.model"). A card read from a file is
/// validated as a whole (``validate(source:storedValues:)``) before any network is built.
package struct ModelCard: Codable, Sendable, Equatable {
    /// The network and how its output is read.
    package enum Architecture: Codable, Sendable, Equatable {
        /// A diffusion model: MLP network, process, parameterization, conditioning.
        case mlp(MLPScoreNetwork.Configuration)
        /// A consistency model over an MLP (f = c_skip x + c_out F, σ-form).
        case consistencyMLP(MLPScoreNetwork.Configuration, sigmaMax: Double)
        /// A diffusion model over an image U-Net; `dataShape` is [C, H, W].
        case unet(UNet.Configuration)
        /// A consistency model over a U-Net.
        case consistencyUNet(UNet.Configuration, sigmaMax: Double)
        /// A diffusion model over diffusers' `UNet2DModel` (a pipeline folder's `unet/`, or a
        /// checkpoint of one); `dataShape` is [`in_channels`, `sample_size`, `sample_size`].
        case diffusersUNet(DiffusersUNetConfiguration)

        /// A fresh network of this architecture, initialized from `seed`.
        package func network(seed: UInt64 = 0) throws -> any ConditionalNetwork {
            switch self {
            case let .mlp(c), let .consistencyMLP(c, _): return try MLPScoreNetwork(c, seed: seed)
            case let .unet(c), let .consistencyUNet(c, _): return try UNet(c, seed: seed)
            case let .diffusersUNet(c): return try DiffusersUNet2D(c, seed: seed)
            }
        }

        /// The consistency model's T, for consistency architectures.
        package var consistencySigmaMax: Double? {
            switch self {
            case let .consistencyMLP(_, t), let .consistencyUNet(_, t): return t
            case .mlp, .unet, .diffusersUNet: return nil
            }
        }

        /// The network's classes (the null class is `classCount`), if class-conditional.
        package var classCount: Int? {
            switch self {
            case let .mlp(c), let .consistencyMLP(c, _): return c.classCount
            case let .unet(c), let .consistencyUNet(c, _): return c.classCount
            case let .diffusersUNet(c): return c.numClassEmbeds
            }
        }

        /// Whether the network takes a guidance weight as an input (a guided-distillation student).
        package var hasGuidanceInput: Bool {
            switch self {
            case let .mlp(c), let .consistencyMLP(c, _): return c.guidanceEmbeddingDim > 0
            case let .unet(c), let .consistencyUNet(c, _): return c.guidanceEmbeddingDim > 0
            case .diffusersUNet: return false
            }
        }

        /// The same network under consistency-model preconditioning with largest level `sigmaMax`
        /// (a diffusers UNet stays a diffusion network).
        package func consistency(sigmaMax: Double) -> Architecture {
            switch self {
            case .diffusersUNet: return self
            case let .mlp(c), let .consistencyMLP(c, _): return .consistencyMLP(c, sigmaMax: sigmaMax)
            case let .unet(c), let .consistencyUNet(c, _): return .consistencyUNet(c, sigmaMax: sigmaMax)
            }
        }

        /// The same network with a guidance-weight input of `dim` sinusoidal features (0: none).
        /// A diffusers UNet has no guidance input and is returned as it is.
        package func withGuidanceInput(_ dim: Int) -> Architecture {
            switch self {
            case .diffusersUNet: return self
            case var .mlp(c): c.guidanceEmbeddingDim = dim; return .mlp(c)
            case .consistencyMLP(var c, let t): c.guidanceEmbeddingDim = dim; return .consistencyMLP(c, sigmaMax: t)
            case var .unet(c): c.guidanceEmbeddingDim = dim; return .unet(c)
            case .consistencyUNet(var c, let t): c.guidanceEmbeddingDim = dim; return .consistencyUNet(c, sigmaMax: t)
            }
        }

        /// Values per data item the network takes.
        var itemSize: Int {
            switch self {
            case let .mlp(c), let .consistencyMLP(c, _): return c.dataDimension
            case let .unet(c), let .consistencyUNet(c, _): return c.imageChannels * c.imageSize * c.imageSize
            case let .diffusersUNet(c): return c.inChannels * c.sampleSize * c.sampleSize
            }
        }
    }

    package var format = "distill.model"
    package var architecture: Architecture
    package var process: DiffusionProcess
    package var parameterization: Parameterization
    package var conditioning: NetworkConditioning
    package var sigmaData: Float
    /// Shape of one data item ([d] for vectors, [C, H, W] for images).
    package var dataShape: [Int]
    /// The name of the training data (e.g. "8gaussians", "digits"); a label, never opened.
    package var dataSource: String
    package var classCount: Int?
    /// How it was made ("denoising score matching …", "pd (Salimans & Ho 2022): …").
    package var provenance: String
    /// Consistency architectures only: true when the network is read as a diffusion model
    /// under this card's process, parameterization and conditioning
    /// (``ConsistencyModel/DenoiserForm``); nil or false: Song et al.'s preconditioned form.
    package var consistencyReadsDenoiser: Bool?
    /// How the model is meant to be sampled (a distilled student's own sampler, grid and NFE);
    /// nil: the library's default plan.
    package var plan: SamplingPlan?
    /// The guidance weight a guided student samples at unless told otherwise.
    package var guidance: Float?
    /// [lower, upper]: every value of the training data lies in this range (images in
    /// [-1, 1]); nil when the data are unbounded. Analytic-DPM clips its variance with it.
    package var dataRange: [Double]?

    package init(architecture: Architecture, process: DiffusionProcess, parameterization: Parameterization,
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

    /// The card as JSON with sorted keys (the same card always gives the same bytes).
    package var json: String {
        let enc = JSONEncoder()
        enc.outputFormatting = [.sortedKeys]
        return String(decoding: (try? enc.encode(self)) ?? Data(), as: UTF8.self)
    }

    /// The data range as a closed range, when there is one.
    package var dataBounds: ClosedRange<Double>? {
        guard let r = dataRange, r.count == 2 else { return nil }
        return r[0]...r[1]
    }

    /// Checks the whole card before anything is built from it: sizes within limits that keep
    /// the network affordable, parameters finite and in range, shapes consistent with each
    /// other, and a network no larger than the `storedValues` the checkpoint actually holds.
    /// Throws ``ModelCardError`` naming `source` and the field at fault.
    package func validate(source: String, storedValues: Int?) throws {
        func bad(_ field: String, _ why: String) -> ModelCardError { ModelCardError(source: source, field: field, reason: why) }
        guard format == "distill.model" else { throw bad("format", "'\(format)'; expected 'distill.model'") }
        do { try process.validate() } catch { throw bad("process", "\(error)") }
        guard sigmaData.isFinite, sigmaData > 0, sigmaData <= 1e4 else { throw bad("sigmaData", "\(sigmaData); expected a positive finite value") }
        guard (1...4).contains(dataShape.count), dataShape.allSatisfy({ (1...(1 << 20)).contains($0) }) else {
            throw bad("dataShape", "\(dataShape); expected 1 to 4 dimensions of 1...\(1 << 20)")
        }
        let items = dataShape.reduce(1) { $0.multipliedReportingOverflow(by: $1).overflow ? Int.max : $0 * $1 }
        guard items <= 1 << 24 else { throw bad("dataShape", "\(dataShape) has \(items) values per item; at most \(1 << 24)") }
        if let k = classCount, !(1...ModelCard.maxClasses).contains(k) { throw bad("classCount", "\(k); expected 1...\(ModelCard.maxClasses)") }
        guard architecture.classCount == classCount else {
            throw bad("classCount", "\(classCount.map(String.init) ?? "none") but the network has \(architecture.classCount.map(String.init) ?? "none")")
        }
        if let t = architecture.consistencySigmaMax, !(t.isFinite && t > 0.002 && t <= 1e6) {
            throw bad("architecture.sigmaMax", "\(t); expected a finite T in (0.002, 1e6]")
        }
        if let r = dataRange, !(r.count == 2 && r.allSatisfy(\.isFinite) && r[0] < r[1]) {
            throw bad("dataRange", "\(r); expected [lower, upper] with lower < upper, finite")
        }
        if let g = guidance, !(g.isFinite && abs(g) <= 1000) { throw bad("guidance", "\(g); expected a finite weight of at most 1000") }
        if let plan { do { try plan.validate() } catch { throw bad("plan", "\(error)") } }
        let minimum: Int
        switch architecture {
        case let .mlp(c), let .consistencyMLP(c, _):
            try Self.validate(c, bad)
            minimum = Self.parameterLowerBound(c)
        case let .unet(c), let .consistencyUNet(c, _):
            try Self.validate(c, bad)
            guard dataShape == [c.imageChannels, c.imageSize, c.imageSize] else {
                throw bad("dataShape", "\(dataShape) but the U-Net takes [\(c.imageChannels), \(c.imageSize), \(c.imageSize)]")
            }
            minimum = Self.parameterLowerBound(c)
        case let .diffusersUNet(c):
            do { try c.validate(file: source) } catch { throw bad("architecture", "\(error)") }
            guard c.outChannels == c.inChannels, dataShape == [c.inChannels, c.sampleSize, c.sampleSize] else {
                throw bad("dataShape", "\(dataShape) for a UNet2DModel of \(c.inChannels) input and \(c.outChannels) output channels at side \(c.sampleSize); "
                          + "expected [\(c.inChannels), \(c.sampleSize), \(c.sampleSize)] and as many output channels as input channels")
            }
            minimum = Int(min(c.parameterCount, Double(Int.max / 2)))
        }
        guard architecture.itemSize == items else {
            throw bad("dataShape", "\(dataShape) has \(items) values per item but the network takes \(architecture.itemSize)")
        }
        guard minimum <= ModelCard.maxParameters else {
            throw bad("architecture", "a network of at least \(minimum) parameters; at most \(ModelCard.maxParameters) are supported")
        }
        if let storedValues, minimum > storedValues {
            throw bad("architecture", "a network of at least \(minimum) parameters, but the checkpoint holds \(storedValues) values")
        }
    }

    /// Limits on what a card may ask for.
    static let maxClasses = 100_000
    static let maxParameters = 1 << 30
    static let maxWidth = 1 << 16

    static func validate(_ c: MLPScoreNetwork.Configuration, _ bad: (String, String) -> ModelCardError) throws {
        guard (1...(1 << 24)).contains(c.dataDimension) else { throw bad("architecture.dataDimension", "\(c.dataDimension); expected 1...\(1 << 24)") }
        guard (1...64).contains(c.hiddenWidths.count), c.hiddenWidths.allSatisfy({ (1...maxWidth).contains($0) }) else {
            throw bad("architecture.hiddenWidths", "\(c.hiddenWidths); expected 1 to 64 widths of 1...\(maxWidth)")
        }
        guard (2...maxWidth).contains(c.timeEmbedding.dim), c.timeEmbedding.dim % 2 == 0, c.timeEmbedding.scale.isFinite else {
            throw bad("architecture.timeEmbedding", "width \(c.timeEmbedding.dim); expected an even width in 2...\(maxWidth) and a finite scale")
        }
        guard (0...maxWidth).contains(c.guidanceEmbeddingDim), c.guidanceEmbeddingDim % 2 == 0,
              (1...maxWidth).contains(c.classEmbeddingDim) else {
            throw bad("architecture", "embedding widths \(c.classEmbeddingDim) (class), \(c.guidanceEmbeddingDim) (guidance); expected 1...\(maxWidth), the guidance width even")
        }
        if let k = c.classCount, !(1...maxClasses).contains(k) { throw bad("architecture.classCount", "\(k); expected 1...\(maxClasses)") }
    }

    static func validate(_ c: UNet.Configuration, _ bad: (String, String) -> ModelCardError) throws {
        guard (2...4096).contains(c.imageSize) else { throw bad("architecture.imageSize", "\(c.imageSize); expected 2...4096") }
        guard (1...64).contains(c.imageChannels) else { throw bad("architecture.imageChannels", "\(c.imageChannels); expected 1...64") }
        guard (1...4096).contains(c.baseChannels) else { throw bad("architecture.baseChannels", "\(c.baseChannels); expected 1...4096") }
        guard (1...8).contains(c.channelMultipliers.count), c.channelMultipliers.allSatisfy({ (1...64).contains($0) }) else {
            throw bad("architecture.channelMultipliers", "\(c.channelMultipliers); expected 1 to 8 multipliers of 1...64")
        }
        guard (1...16).contains(c.blocksPerLevel) else { throw bad("architecture.blocksPerLevel", "\(c.blocksPerLevel); expected 1...16") }
        guard (1...256).contains(c.headCount), (1...1024).contains(c.groups) else {
            throw bad("architecture", "\(c.headCount) heads, \(c.groups) groups; expected 1...256 heads and 1...1024 groups")
        }
        guard c.attentionResolutions.count <= 16, c.attentionResolutions.allSatisfy({ (1...4096).contains($0) }) else {
            throw bad("architecture.attentionResolutions", "\(c.attentionResolutions); expected at most 16 sides of 1...4096")
        }
        guard (2...maxWidth).contains(c.timeEmbedding.dim), c.timeEmbedding.dim % 2 == 0, c.timeEmbedding.scale.isFinite,
              (1...maxWidth).contains(c.embeddingDim), (0...maxWidth).contains(c.guidanceEmbeddingDim), c.guidanceEmbeddingDim % 2 == 0 else {
            throw bad("architecture", "embedding widths time \(c.timeEmbedding.dim), block \(c.embeddingDim), guidance \(c.guidanceEmbeddingDim); expected even widths in 2...\(maxWidth)")
        }
        guard c.dropout.isFinite, c.dropout >= 0, c.dropout < 1 else { throw bad("architecture.dropout", "\(c.dropout); expected [0, 1)") }
        if let k = c.classCount, !(1...maxClasses).contains(k) { throw bad("architecture.classCount", "\(k); expected 1...\(maxClasses)") }
    }

    /// Parameters an MLP of this configuration has at least (its weight matrices).
    static func parameterLowerBound(_ c: MLPScoreNetwork.Configuration) -> Int {
        let widths = [c.dataDimension] + c.hiddenWidths + [c.dataDimension]
        return saturatingSum(zip(widths, widths.dropFirst()).map { saturatingProduct([$0, $1]) })
    }

    /// Parameters a U-Net of this configuration has at least: the 3×3 kernels of its two
    /// convolutions per residual block (down and up paths and the middle).
    static func parameterLowerBound(_ c: UNet.Configuration) -> Int {
        let channels = c.channelMultipliers.map { saturatingProduct([c.baseChannels, $0]) }
        var total = saturatingProduct([9, c.imageChannels, c.baseChannels])
        for ch in channels {
            total = saturatingSum([total, saturatingProduct([2 * c.blocksPerLevel + 1, 2, 9, ch, ch])])
        }
        return saturatingSum([total, saturatingProduct([4, 9, channels.last!, channels.last!])])
    }
}

/// The sum and product that stop at Int.max instead of overflowing.
func saturatingSum(_ values: [Int]) -> Int {
    values.reduce(0) { let (s, o) = $0.addingReportingOverflow($1); return o ? Int.max : s }
}

func saturatingProduct(_ values: [Int]) -> Int {
    values.reduce(1) { let (p, o) = $0.multipliedReportingOverflow(by: $1); return o ? Int.max : p }
}

/// A model card (or generator card) that cannot be used: the file, the field and why.
public struct ModelCardError: Error, CustomStringConvertible {
    /// The file the card came from.
    public let source: String
    /// The field at fault ("architecture.hiddenWidths", "process", …).
    public let field: String
    /// What was wrong and what was expected.
    public let reason: String

    /// One line: the file, the field and what was expected.
    public var description: String { "\(source): model card field '\(field)': \(reason)" }
}
