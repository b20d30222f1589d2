/// How a network embeds its scalar time (or noise-level) input.
package enum TimeEmbedding: Sendable, Codable, Equatable {
    /// Sinusoidal features of `scale`·t (Vaswani et al. 2017; Ho et al. 2020), `dim` wide.
    case sinusoidal(dim: Int, scale: Float)
    /// Random Fourier features with frequencies ~ N(0, scale²) (Tancik et al. 2020; Song et al. 2021).
    case gaussianFourier(dim: Int, scale: Float)

    package var dim: Int {
        switch self {
        case let .sinusoidal(d, _), let .gaussianFourier(d, _): return d
        }
    }

    /// The scale of the time input (sinusoidal) or of the random frequencies (Fourier).
    package var scale: Float {
        switch self {
        case let .sinusoidal(_, s), let .gaussianFourier(_, s): return s
        }
    }
}

/// A time-conditioned MLP: the workhorse score network for low-dimensional data.
///
/// Input x (B, d) and times t (B); optional class labels (B) with a null class for
/// classifier-free guidance. The time embedding (and the class embedding) are concatenated
/// to x, then hidden layers run as fused linear + activation kernels, and a final linear
/// layer maps back to d outputs (the prediction: ε, x0, v or velocity, by the caller's
/// parameterization).
public final class MLPScoreNetwork: Module {
    /// Everything that determines the architecture; saved in checkpoints.
    public struct Configuration: Sendable, Codable, Equatable {
        /// Values per data item (the input and output width).
        public var dataDimension: Int
        /// Widths of the hidden layers.
        public var hiddenWidths: [Int]
        /// Number of classes for class conditioning (nil: unconditional); label `classCount` is
        /// the null class.
        public var classCount: Int?
        package var activation: Activation
        package var timeEmbedding: TimeEmbedding
        package var classEmbeddingDim: Int
        /// Width of a sinusoidal embedding of an extra scalar input, the guidance weight w of
        /// guided distillation (Meng et al. 2023); 0: no such input.
        package var guidanceEmbeddingDim: Int

        /// An MLP of `hiddenWidths` with SiLU activations, 64 sinusoidal time features (scale
        /// 1000) and, with classes, a 32-wide class embedding.
        public init(dataDimension: Int = 2, hiddenWidths: [Int] = [256, 256, 256], classCount: Int? = nil) {
            self.init(dataDimension: dataDimension, hiddenWidths: hiddenWidths, classCount: classCount, classEmbeddingDim: 32,
                      guidanceEmbeddingDim: 0)
        }

        /// Every setting.
        package init(dataDimension: Int, hiddenWidths: [Int], classCount: Int?, classEmbeddingDim: Int, guidanceEmbeddingDim: Int,
                     activation: Activation = .silu, timeEmbedding: TimeEmbedding = .sinusoidal(dim: 64, scale: 1000)) {
            self.dataDimension = dataDimension
            self.hiddenWidths = hiddenWidths
            self.activation = activation
            self.timeEmbedding = timeEmbedding
            self.classCount = classCount
            self.classEmbeddingDim = classEmbeddingDim
            self.guidanceEmbeddingDim = guidanceEmbeddingDim
        }
    }

    /// The architecture.
    public let configuration: Configuration
    let timeEmbedding: Module & TimeEmbedder
    let classEmbedding: ClassEmbedding?
    let guidanceEmbedding: SinusoidalEmbedding?
    let layers: [Linear]

    /// Builds the network with weights drawn from `seed`.
    public init(_ configuration: Configuration, seed: UInt64 = 0) throws {
        let c = configuration
        guard c.dataDimension >= 1, !c.hiddenWidths.isEmpty, c.hiddenWidths.allSatisfy({ $0 >= 1 }) else {
            throw TensorError.invalidArgument(operation: "MLPScoreNetwork",
                                              message: "needs dataDimension >= 1 and at least one positive hidden width")
        }
        self.configuration = c
        var rng = Philox(seed: seed)
        switch c.timeEmbedding {
        case let .sinusoidal(dim, scale): timeEmbedding = try SinusoidalEmbedding(dim: dim, scale: scale)
        case let .gaussianFourier(dim, scale): timeEmbedding = try GaussianFourierEmbedding(dim: dim, scale: scale, rng: &rng)
        }
        classEmbedding = try c.classCount.map { try ClassEmbedding(classCount: $0, dim: c.classEmbeddingDim, rng: &rng) }
        guidanceEmbedding = c.guidanceEmbeddingDim > 0 ? try SinusoidalEmbedding(dim: c.guidanceEmbeddingDim, scale: 100) : nil
        var widths = [c.dataDimension + c.timeEmbedding.dim + (c.classCount == nil ? 0 : c.classEmbeddingDim) + c.guidanceEmbeddingDim]
        widths += c.hiddenWidths
        var layers: [Linear] = []
        for i in 0..<(widths.count - 1) {
            layers.append(try Linear(widths[i], widths[i + 1], activation: c.activation, rng: &rng))
        }
        layers.append(try Linear(widths.last!, c.dataDimension, rng: &rng))
        self.layers = layers
    }

    /// The prediction for x (B, d) at times t (B); `labels` (B) in 0...classCount (classCount
    /// is the null class) for a class-conditional network, nil meaning the null class for all;
    /// `guidance` (B) the guidance weight for a network built with a guidance input.
    public func callAsFunction(_ x: Tensor, time t: Tensor, labels: [Int]? = nil, guidance: Tensor? = nil) throws -> Tensor {
        let d = configuration.dataDimension
        guard x.rank == 2, x.shape[1] == d else {
            throw TensorError.invalidShape(operation: "MLPScoreNetwork", shape: x.shape, expected: "[batch, \(d)]")
        }
        guard t.count == x.shape[0] else {
            throw TensorError.shapeMismatch(operation: "MLPScoreNetwork", lhs: x.shape, rhs: t.shape, expected: "one time per row of x")
        }
        var parts = [x, try timeEmbedding.embed(t.reshaped([x.shape[0]]))]
        if let ce = classEmbedding {
            // No labels: the null class (the unconditional model of label-dropout training).
            let labels = labels ?? Array(repeating: ce.nullClass, count: x.shape[0])
            guard labels.count == x.shape[0] else {
                throw TensorError.invalidArgument(operation: "MLPScoreNetwork", message: "a class-conditional network needs one label per row")
            }
            parts.append(try ce(labels))
        } else if labels != nil {
            throw TensorError.invalidArgument(operation: "MLPScoreNetwork", message: "labels given to an unconditional network")
        }
        if let ge = guidanceEmbedding {
            guard let guidance, guidance.count == x.shape[0] else {
                throw TensorError.invalidArgument(operation: "MLPScoreNetwork", message: "a guidance-conditioned network needs one guidance weight per row")
            }
            parts.append(try ge(guidance.reshaped([x.shape[0]])))
        } else if guidance != nil {
            throw TensorError.invalidArgument(operation: "MLPScoreNetwork", message: "guidance given to a network without a guidance input")
        }
        var h = try Tensor.concat(parts, axis: 1)
        for layer in layers { h = try layer(h) }
        return h
    }

    /// Every parameter with its checkpoint name, in a fixed order.
    public func visitParameters(_ visit: (String, Parameter) throws -> Void) rethrows {
        try visitChild(timeEmbedding, as: "time_embedding", visit)
        if let classEmbedding { try visitChild(classEmbedding, as: "class_embedding", visit) }
        if let guidanceEmbedding { try visitChild(guidanceEmbedding, as: "guidance_embedding", visit) }
        for (i, layer) in layers.enumerated() { try visitChild(layer, as: "layers.\(i)", visit) }
    }
}

/// A module that embeds a batch of scalars.
protocol TimeEmbedder {
    func embed(_ t: Tensor) throws -> Tensor
}

extension SinusoidalEmbedding: TimeEmbedder {
    func embed(_ t: Tensor) throws -> Tensor { try self(t) }
}

extension GaussianFourierEmbedding: TimeEmbedder {
    func embed(_ t: Tensor) throws -> Tensor { try self(t) }
}
