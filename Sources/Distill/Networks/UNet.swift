import DistillCore

// The diffusion U-Net: Ronneberger et al. 2015's contracting/expanding network with skip
// connections, in the form used for diffusion by Ho et al. 2020 and refined by Nichol &
// Dhariwal 2021 / Dhariwal & Nichol 2021 ("ADM"): residual blocks with GroupNorm and SiLU, the
// time embedding entering every block as a per-channel scale and shift of the second
// normalization, self-attention at chosen resolutions, and zero-initialized last layers.

/// A residual block of the diffusion U-Net (Ho et al. 2020; the scale-shift form of Dhariwal &
/// Nichol 2021):
///
///     h = conv₁(SiLU(GN₁(x)))
///     (s, b) = Linear(SiLU(emb))                    one scale and shift per channel
///     h = conv₂(dropout(SiLU(GN₂(h)·(1 + s) + b)))  conv₂ starts at zero
///     out = skip(x) + h                              skip: identity, or a 1×1 conv when the
///                                                    channel count changes
///
/// Both normalizations run fused with their activation (and the scale-shift) in one kernel.
/// The block takes SiLU(emb), computed once per network call.
package final class ResBlock: Module {
    package let norm1: GroupNorm
    package let conv1: Conv2d
    package let embeddingProjection: Linear
    package let norm2: GroupNorm
    package let conv2: Conv2d
    package let skip: Conv2d?
    /// Probability of zeroing an element before `conv2` (Srivastava et al. 2014).
    package let dropout: Float

    /// - Throws: ``TensorError`` for channel counts not divisible by `groups`, non-positive
    ///   sizes, or a dropout outside [0, 1).
    package init(inChannels: Int, outChannels: Int, embeddingDim: Int, groups: Int, dropout: Float = 0, rng: inout Philox) throws {
        guard dropout >= 0, dropout < 1 else {
            throw TensorError.invalidArgument(operation: "ResBlock", message: "dropout \(dropout) must be in [0, 1)")
        }
        norm1 = try GroupNorm(groups: groups, channels: inChannels, activation: .silu)
        conv1 = try Conv2d(inChannels, outChannels, kernelSize: 3, padding: 1, rng: &rng)
        embeddingProjection = try Linear(embeddingDim, 2 * outChannels, rng: &rng)
        norm2 = try GroupNorm(groups: groups, channels: outChannels, activation: .silu)
        conv2 = try Conv2d(outChannels, outChannels, kernelSize: 3, padding: 1, zeroInitialized: true, rng: &rng)
        skip = inChannels == outChannels ? nil : try Conv2d(inChannels, outChannels, kernelSize: 1, rng: &rng)
        self.dropout = dropout
    }

    package var inChannels: Int { conv1.inChannels }
    package var outChannels: Int { conv1.outChannels }

    /// x (N, in, H, W), `embedding` = SiLU(emb) (N, embeddingDim) → (N, out, H, W). Dropout draws
    /// its mask from `dropoutGenerator` and acts only in passes that record gradients.
    package func callAsFunction(_ x: Tensor, embedding: Tensor, dropoutGenerator: inout Philox) throws -> Tensor {
        var h = try conv1(norm1(x))
        h = try norm2(h, scaleShift: embeddingProjection(embedding))
        h = try h.trainingDropout(dropout, generator: &dropoutGenerator)
        return try conv2(h, adding: skip?(x) ?? x)
    }

    package func visitParameters(_ visit: (String, Parameter) throws -> Void) rethrows {
        try visitChild(norm1, as: "norm1", visit)
        try visitChild(conv1, as: "conv1", visit)
        try visitChild(embeddingProjection, as: "emb", visit)
        try visitChild(norm2, as: "norm2", visit)
        try visitChild(conv2, as: "conv2", visit)
        if let skip { try visitChild(skip, as: "skip", visit) }
    }
}

extension Tensor {
    /// Dropout (Srivastava et al. 2014) in passes that record gradients: each element is
    /// zeroed with probability `p` and the others scaled by 1/(1 − p), the mask drawn from
    /// `generator` (which advances). Untraced passes and p = 0 return self unchanged.
    package func trainingDropout(_ p: Float, generator: inout Philox) throws -> Tensor {
        guard p > 0, isTraced else { return self }
        var mask = try generator.uniform(shape)
        let keep = 1 / (1 - p)
        mask.withUnsafeMutableBufferPointer { m in
            for i in m.indices { m[i] = m[i] < p ? 0 : keep }
        }
        return try self * mask
    }
}

/// Multi-head self-attention over the pixels of a feature map, with a residual connection
/// (Vaswani et al. 2017; as placed in the diffusion U-Net by Ho et al. 2020):
///
///     (q, k, v) = conv₁ₓ₁(GN(x))      channels split as [q | k | v], each [head₀ | head₁ | …]
///     out = x + conv₁ₓ₁(attention(q, k, v))      scale 1/√(C/heads); the out conv starts at zero
///
/// Attention runs as one fused, tiled kernel (Dao et al. 2022) over the H·W tokens.
package final class AttentionBlock: Module {
    package let norm: GroupNorm
    package let qkv: Conv2d
    package let output: Conv2d
    package let headCount: Int

    /// - Throws: ``TensorError`` unless `headCount` divides `channels` and `groups` divides it too.
    package init(channels: Int, headCount: Int, groups: Int, rng: inout Philox) throws {
        guard headCount >= 1, channels % headCount == 0 else {
            throw TensorError.invalidArgument(operation: "AttentionBlock",
                                              message: "\(channels) channels cannot be split into \(headCount) heads; the head count must divide the channel count")
        }
        norm = try GroupNorm(groups: groups, channels: channels)
        qkv = try Conv2d(channels, 3 * channels, kernelSize: 1, rng: &rng)
        output = try Conv2d(channels, channels, kernelSize: 1, zeroInitialized: true, rng: &rng)
        self.headCount = headCount
    }

    package var channels: Int { norm.channels }

    /// x (N, C, H, W) → (N, C, H, W).
    package func callAsFunction(_ x: Tensor) throws -> Tensor {
        guard x.rank == 4 else {
            throw TensorError.invalidShape(operation: "AttentionBlock", shape: x.shape, expected: "[batch, \(channels), height, width]")
        }
        let (n, c, hh, ww) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let (heads, t) = (headCount, hh * ww)
        let d = c / heads
        // (N, 3C, H, W) → (3, N, heads, T, D): q, k, v are views of one permuted copy.
        let qkvT = try qkv(norm(x)).reshaped([n, 3, heads, d, t]).permuted([1, 0, 2, 4, 3])
        let o = try Tensor.attention(q: qkvT.row(0), k: qkvT.row(1), v: qkvT.row(2))
        let merged = try o.permuted([0, 1, 3, 2]).reshaped([n, c, hh, ww])
        return try output(merged, adding: x)
    }

    package func visitParameters(_ visit: (String, Parameter) throws -> Void) rethrows {
        try visitChild(norm, as: "norm", visit)
        try visitChild(qkv, as: "qkv", visit)
        try visitChild(output, as: "proj", visit)
    }
}

/// Halves the image size: 2×2 average pooling, or a 3×3 convolution with stride 2 (padding 1).
package final class Downsample: Module {
    package let convolution: Conv2d?

    package init(channels: Int, mode: UNet.Downsampling, rng: inout Philox) throws {
        switch mode {
        case .averagePool: convolution = nil
        case .stridedConvolution: convolution = try Conv2d(channels, channels, kernelSize: 3, stride: 2, padding: 1, rng: &rng)
        }
    }

    /// x (N, C, H, W) with even H, W → (N, C, H/2, W/2).
    package func callAsFunction(_ x: Tensor) throws -> Tensor {
        if let convolution { return try convolution(x) }
        return try x.averagePool2x()
    }

    package func visitParameters(_ visit: (String, Parameter) throws -> Void) rethrows {
        if let convolution { try visitChild(convolution, as: "conv", visit) }
    }
}

/// Doubles the image size: nearest-neighbour 2× upsampling, then a 3×3 convolution (padding 1).
package final class Upsample: Module {
    package let convolution: Conv2d

    package init(channels: Int, rng: inout Philox) throws {
        convolution = try Conv2d(channels, channels, kernelSize: 3, padding: 1, rng: &rng)
    }

    /// x (N, C, H, W) → (N, C, 2H, 2W).
    package func callAsFunction(_ x: Tensor) throws -> Tensor { try convolution(x.upsampleNearest2x()) }

    package func visitParameters(_ visit: (String, Parameter) throws -> Void) rethrows {
        try visitChild(convolution, as: "conv", visit)
    }
}

/// The diffusion U-Net score network for images (Ronneberger et al. 2015; Ho et al. 2020;
/// Dhariwal & Nichol 2021), conforming to ``ConditionalNetwork``: x (N, C, S, S), per-row
/// times, optional class labels (with a null class for classifier-free guidance, Ho & Salimans
/// 2022) and an optional guidance weight w (for guided distillation, Meng et al. 2023) →
/// an output of x's shape.
///
/// Layout, for levels ℓ = 0…L−1 at resolutions S, S/2, …, S/2^(L−1) with c_ℓ = base·mult[ℓ]:
/// - embedding: emb = MLP(time features) + class embedding + Linear(guidance features), the MLP
///   Linear(d_t → E), SiLU, Linear(E → E) with E = `embeddingDim`; the blocks take SiLU(emb);
/// - input: 3×3 conv from the image channels to `base`;
/// - down: per level, `blocksPerLevel` × [ResBlock → c_ℓ, AttentionBlock if the resolution is
///   listed], then a Downsample (except after the last level); every block output is kept
///   for a skip connection;
/// - middle: ResBlock, AttentionBlock (if `middleAttention`), ResBlock;
/// - up: per level from the last, (`blocksPerLevel` + 1) × [channel concat with the next skip,
///   ResBlock → c_ℓ, AttentionBlock if listed], then an Upsample (except at level 0);
/// - output: GroupNorm + SiLU, 3×3 conv to the image channels (starting at zero).
///
/// The image size must be divisible by 2^(L−1) (the U-Net halves it L−1 times and doubles it
/// back); 28×28 images work with up to 3 levels (28 → 14 → 7). Pad the images (e.g. 28 → 32)
/// to use more levels.
public final class UNet: Module, ConditionalNetwork {
    /// How the U-Net halves the image size between levels.
    package enum Downsampling: String, Sendable, Codable, Equatable {
        /// 2×2 average pooling (no parameters).
        case averagePool
        /// A 3×3 convolution with stride 2 (as ADM's `conv_resample`).
        case stridedConvolution
    }

    /// Everything that determines the architecture; saved in model cards.
    public struct Configuration: Sendable, Codable, Equatable {
        /// Side of the square input images, in pixels.
        public var imageSize: Int
        /// Channels of the input (and output) images.
        public var imageChannels: Int
        /// Channels at the first level.
        public var baseChannels: Int
        /// Level ℓ has baseChannels·channelMultipliers[ℓ] channels; one level per entry.
        public var channelMultipliers: [Int]
        /// Residual blocks per level on the way down (one more on the way up).
        public var blocksPerLevel: Int
        /// Resolutions (image sides in pixels, e.g. [7]) whose blocks get self-attention.
        public var attentionResolutions: [Int]
        /// Whether the middle block has self-attention.
        package var middleAttention: Bool
        /// Attention heads (must divide the channel count where attention is used).
        public var headCount: Int
        /// GroupNorm groups (must divide every normalized channel count).
        public var groups: Int
        /// Features of the time (noise-level) input.
        package var timeEmbedding: TimeEmbedding
        /// Width E of the embedding every residual block receives.
        package var embeddingDim: Int
        /// Classes for class conditioning (nil: unconditional); label `classCount` is the null class.
        public var classCount: Int?
        /// Width of the sinusoidal features of the guidance weight w (0: no guidance input).
        package var guidanceEmbeddingDim: Int
        /// Dropout probability inside the residual blocks (applied only while training).
        public var dropout: Float
        package var downsampling: Downsampling

        /// Defaults: a small ADM-style U-Net for 28×28 one-channel images — 3 levels (28, 14, 7)
        /// of 32·[1, 2, 2] channels, 2 blocks per level, attention at 7×7 and in the middle with 4
        /// heads, GroupNorm with 8 groups, a sinusoidal time embedding of `baseChannels` features
        /// (scale 1000 for t ∈ [0, 1]) and a block embedding of 4·`baseChannels`,
        /// strided-convolution downsampling.
        public init(imageSize: Int = 28, imageChannels: Int = 1, baseChannels: Int = 32, channelMultipliers: [Int] = [1, 2, 2],
                    blocksPerLevel: Int = 2, attentionResolutions: [Int] = [7], headCount: Int = 4, groups: Int = 8,
                    classCount: Int? = nil, dropout: Float = 0) {
            self.init(imageSize: imageSize, imageChannels: imageChannels, baseChannels: baseChannels, channelMultipliers: channelMultipliers,
                      blocksPerLevel: blocksPerLevel, attentionResolutions: attentionResolutions, middleAttention: true, headCount: headCount,
                      groups: groups, timeEmbedding: nil, embeddingDim: nil, classCount: classCount, guidanceEmbeddingDim: 0, dropout: dropout,
                      downsampling: .stridedConvolution)
        }

        /// Every setting (`middleAttention`, the embeddings and `downsampling` too).
        package init(imageSize: Int, imageChannels: Int, baseChannels: Int, channelMultipliers: [Int], blocksPerLevel: Int,
                     attentionResolutions: [Int], middleAttention: Bool, headCount: Int, groups: Int, timeEmbedding: TimeEmbedding?,
                     embeddingDim: Int?, classCount: Int?, guidanceEmbeddingDim: Int, dropout: Float, downsampling: Downsampling) {
            self.imageSize = imageSize
            self.imageChannels = imageChannels
            self.baseChannels = baseChannels
            self.channelMultipliers = channelMultipliers
            self.blocksPerLevel = blocksPerLevel
            self.attentionResolutions = attentionResolutions
            self.middleAttention = middleAttention
            self.headCount = headCount
            self.groups = groups
            self.timeEmbedding = timeEmbedding ?? .sinusoidal(dim: max(2, baseChannels + baseChannels % 2), scale: 1000)
            self.embeddingDim = embeddingDim ?? 4 * baseChannels
            self.classCount = classCount
            self.guidanceEmbeddingDim = guidanceEmbeddingDim
            self.dropout = dropout
            self.downsampling = downsampling
        }

        /// The image sides of the levels, from the input's down to the lowest.
        package var resolutions: [Int] {
            (0..<channelMultipliers.count).map { imageSize >> $0 }
        }

        /// Throws a ``TensorError`` saying what is wrong with this configuration, if anything.
        package func validate() throws {
            let op = "UNet"
            let levels = channelMultipliers.count
            guard levels >= 1, channelMultipliers.allSatisfy({ $0 >= 1 }), baseChannels >= 1, blocksPerLevel >= 1, imageChannels >= 1 else {
                throw TensorError.invalidArgument(operation: op,
                                                  message: "needs at least one level, positive channel multipliers, baseChannels >= 1, blocksPerLevel >= 1 and imageChannels >= 1")
            }
            guard levels <= 16 else {
                throw TensorError.invalidArgument(operation: op, message: "\(levels) levels is too many (at most 16)")
            }
            let factor = 1 << (levels - 1)
            guard imageSize >= factor, imageSize % factor == 0 else {
                let below = imageSize / factor * factor, above = (imageSize / factor + 1) * factor
                var fits = 1
                while fits < levels, imageSize % (1 << fits) == 0, imageSize >= 1 << fits { fits += 1 }
                throw TensorError.invalidArgument(operation: op, message:
                    "image size \(imageSize) cannot be halved \(levels - 1) times for \(levels) levels; sizes divisible by \(factor) work (e.g. "
                    + (below >= factor ? "\(below) or \(above)" : "\(above)")
                    + "): pad the images to one of them or use at most \(fits) level\(fits == 1 ? "" : "s")")
            }
            let res = resolutions
            if let bad = attentionResolutions.first(where: { !res.contains($0) }) {
                throw TensorError.invalidArgument(operation: op,
                                                  message: "attention resolution \(bad) is not one of the U-Net's resolutions \(res)")
            }
            guard groups >= 1 else { throw TensorError.invalidArgument(operation: op, message: "groups \(groups) must be >= 1") }
            for (ch, what) in normalizedChannelCounts() where ch % groups != 0 {
                throw TensorError.invalidArgument(operation: op,
                                                  message: "\(what) has \(ch) channels, not divisible by the \(groups) GroupNorm groups; choose groups dividing baseChannels (\(baseChannels))")
            }
            guard headCount >= 1 else { throw TensorError.invalidArgument(operation: op, message: "headCount \(headCount) must be >= 1") }
            for (level, m) in channelMultipliers.enumerated()
            where attentionResolutions.contains(res[level]) || (middleAttention && level == levels - 1) {
                let ch = baseChannels * m
                guard ch % headCount == 0 else {
                    throw TensorError.invalidArgument(operation: op,
                                                      message: "attention at level \(level) has \(ch) channels, not divisible by \(headCount) heads")
                }
            }
            guard timeEmbedding.dim >= 2, timeEmbedding.dim % 2 == 0, embeddingDim >= 1 else {
                throw TensorError.invalidArgument(operation: op, message: "the time embedding width must be even and >= 2, embeddingDim >= 1")
            }
            if let k = classCount, k < 1 { throw TensorError.invalidArgument(operation: op, message: "classCount \(k) must be >= 1") }
            guard guidanceEmbeddingDim == 0 || (guidanceEmbeddingDim >= 2 && guidanceEmbeddingDim % 2 == 0) else {
                throw TensorError.invalidArgument(operation: op, message: "guidanceEmbeddingDim \(guidanceEmbeddingDim) must be 0 or even and >= 2")
            }
            guard dropout >= 0, dropout < 1 else {
                throw TensorError.invalidArgument(operation: op, message: "dropout \(dropout) must be in [0, 1)")
            }
        }

        /// The channel count of every GroupNorm, with where it is.
        func normalizedChannelCounts() -> [(Int, String)] {
            var out: [(Int, String)] = []
            var skips = [baseChannels]
            var ch = baseChannels
            for (level, m) in channelMultipliers.enumerated() {
                for _ in 0..<blocksPerLevel {
                    out.append((ch, "a down block input at level \(level)"))
                    ch = baseChannels * m
                    skips.append(ch)
                }
                if level != channelMultipliers.count - 1 { skips.append(ch) }
            }
            out.append((ch, "the middle block"))
            for (level, m) in channelMultipliers.enumerated().reversed() {
                for _ in 0...blocksPerLevel {
                    out.append((ch + skips.removeLast(), "an up block input (with its skip connection) at level \(level)"))
                    ch = baseChannels * m
                }
            }
            out.append((ch, "the output normalization"))
            return out
        }
    }

    /// A step of the contracting path.
    enum DownStep {
        case block(ResBlock, AttentionBlock?)
        case downsample(Downsample)
    }

    /// The architecture.
    public let configuration: Configuration
    let timeFeatures: Module & TimeEmbedder
    let timeMLP: [Linear]
    let classEmbedding: ClassEmbedding?
    let guidanceFeatures: SinusoidalEmbedding?
    let guidanceProjection: Linear?
    let inputConv: Conv2d
    let down: [DownStep]
    let middle: (ResBlock, AttentionBlock?, ResBlock)
    /// Per level from the last: its blocks, then its upsampler (nil at level 0).
    let up: [(blocks: [(ResBlock, AttentionBlock?)], upsample: Upsample?)]
    let outputNorm: GroupNorm
    let outputConv: Conv2d
    /// Where dropout masks come from (advanced by each mask drawn; only used when dropout > 0).
    package var dropoutGenerator: Philox

    /// Builds the network with weights drawn from `seed`.
    ///
    /// - Throws: `TensorError` naming the problem for an invalid configuration (an image size
    ///   the levels cannot halve, group or head counts that do not divide the channels, an
    ///   attention resolution the network does not have, ...).
    public init(_ configuration: Configuration, seed: UInt64 = 0) throws {
        let c = configuration
        try c.validate()
        self.configuration = c
        var rng = Philox(seed: seed)
        dropoutGenerator = Philox(seed: seed, stream: 0x6472_6F70)
        switch c.timeEmbedding {
        case let .sinusoidal(dim, scale): timeFeatures = try SinusoidalEmbedding(dim: dim, scale: scale)
        case let .gaussianFourier(dim, scale): timeFeatures = try GaussianFourierEmbedding(dim: dim, scale: scale, rng: &rng)
        }
        let e = c.embeddingDim
        timeMLP = [try Linear(c.timeEmbedding.dim, e, activation: .silu, rng: &rng), try Linear(e, e, rng: &rng)]
        classEmbedding = try c.classCount.map { try ClassEmbedding(classCount: $0, dim: e, rng: &rng) }
        if c.guidanceEmbeddingDim > 0 {
            guidanceFeatures = try SinusoidalEmbedding(dim: c.guidanceEmbeddingDim, scale: 100)
            guidanceProjection = try Linear(c.guidanceEmbeddingDim, e, rng: &rng)
        } else {
            guidanceFeatures = nil
            guidanceProjection = nil
        }
        let res = c.resolutions, levels = c.channelMultipliers.count
        let p = c.dropout
        inputConv = try Conv2d(c.imageChannels, c.baseChannels, kernelSize: 3, padding: 1, rng: &rng)
        var skips = [c.baseChannels]
        var ch = c.baseChannels
        var down: [DownStep] = []
        for (level, m) in c.channelMultipliers.enumerated() {
            for _ in 0..<c.blocksPerLevel {
                let block = try ResBlock(inChannels: ch, outChannels: c.baseChannels * m, embeddingDim: e, groups: c.groups, dropout: p, rng: &rng)
                ch = c.baseChannels * m
                let attn = c.attentionResolutions.contains(res[level])
                    ? try AttentionBlock(channels: ch, headCount: c.headCount, groups: c.groups, rng: &rng) : nil
                down.append(.block(block, attn))
                skips.append(ch)
            }
            if level != levels - 1 {
                down.append(.downsample(try Downsample(channels: ch, mode: c.downsampling, rng: &rng)))
                skips.append(ch)
            }
        }
        self.down = down
        middle = (try ResBlock(inChannels: ch, outChannels: ch, embeddingDim: e, groups: c.groups, dropout: p, rng: &rng),
                  c.middleAttention ? try AttentionBlock(channels: ch, headCount: c.headCount, groups: c.groups, rng: &rng) : nil,
                  try ResBlock(inChannels: ch, outChannels: ch, embeddingDim: e, groups: c.groups, dropout: p, rng: &rng))
        var up: [(blocks: [(ResBlock, AttentionBlock?)], upsample: Upsample?)] = []
        for (level, m) in c.channelMultipliers.enumerated().reversed() {
            var blocks: [(ResBlock, AttentionBlock?)] = []
            for _ in 0...c.blocksPerLevel {
                let block = try ResBlock(inChannels: ch + skips.removeLast(), outChannels: c.baseChannels * m, embeddingDim: e,
                                         groups: c.groups, dropout: p, rng: &rng)
                ch = c.baseChannels * m
                let attn = c.attentionResolutions.contains(res[level])
                    ? try AttentionBlock(channels: ch, headCount: c.headCount, groups: c.groups, rng: &rng) : nil
                blocks.append((block, attn))
            }
            up.append((blocks, level > 0 ? try Upsample(channels: ch, rng: &rng) : nil))
        }
        self.up = up
        outputNorm = try GroupNorm(groups: c.groups, channels: ch, activation: .silu)
        outputConv = try Conv2d(ch, c.imageChannels, kernelSize: 3, padding: 1, zeroInitialized: true, rng: &rng)
    }

    /// The prediction for images x (N, C, S, S) at times `time` (N); `labels` (N) in
    /// 0...classCount (classCount is the null class; nil: the null class for all) for a
    /// class-conditional network;
    /// `guidance` (N) the guidance weight for a network built with a guidance input.
    /// Flattened images (N, C·S·S), as samplers and distillers keep them, are taken too and
    /// give flattened predictions.
    ///
    /// - Throws: `TensorError` when x is neither (N, imageChannels, imageSize, imageSize) nor
    ///   its flattened form, the times are not one per image, or labels / guidance are missing
    ///   or unexpected.
    public func callAsFunction(_ x: Tensor, time t: Tensor, labels: [Int]? = nil, guidance: Tensor? = nil) throws -> Tensor {
        let c = configuration
        let pixels = c.imageChannels * c.imageSize * c.imageSize
        if x.rank == 2, x.shape[1] == pixels {
            let n = x.shape[0]
            return try self(x.reshaped([n, c.imageChannels, c.imageSize, c.imageSize]), time: t, labels: labels, guidance: guidance)
                .reshaped([n, pixels])
        }
        guard x.rank == 4, x.shape[1] == c.imageChannels, x.shape[2] == c.imageSize, x.shape[3] == c.imageSize else {
            var hint = ""
            if x.rank == 4, x.shape[1] == c.imageChannels {
                hint = "; this U-Net was built for \(c.imageSize)×\(c.imageSize) images (sizes it can take are multiples of "
                    + "\(1 << (c.channelMultipliers.count - 1)); build it with that imageSize, or pad the images)"
            }
            throw TensorError.invalidShape(operation: "UNet", shape: x.shape,
                                           expected: "[batch, \(c.imageChannels), \(c.imageSize), \(c.imageSize)] or [batch, \(pixels)]\(hint)")
        }
        let n = x.shape[0]
        guard t.count == n else {
            throw TensorError.shapeMismatch(operation: "UNet", lhs: x.shape, rhs: t.shape, expected: "one time per image")
        }
        var emb = try timeMLP[1](timeMLP[0](timeFeatures.embed(t.reshaped([n]))))
        if let ce = classEmbedding {
            // No labels: the null class (the unconditional model of label-dropout training).
            let labels = labels ?? Array(repeating: ce.nullClass, count: n)
            guard labels.count == n else {
                throw TensorError.invalidArgument(operation: "UNet", message: "a class-conditional network needs one label per image")
            }
            emb = try emb + ce(labels)
        } else if labels != nil {
            throw TensorError.invalidArgument(operation: "UNet", message: "labels given to an unconditional network")
        }
        if let gf = guidanceFeatures, let gp = guidanceProjection {
            guard let guidance, guidance.count == n else {
                throw TensorError.invalidArgument(operation: "UNet", message: "a guidance-conditioned network needs one guidance weight per image")
            }
            emb = try emb + gp(gf(guidance.reshaped([n])))
        } else if guidance != nil {
            throw TensorError.invalidArgument(operation: "UNet", message: "guidance given to a network without a guidance input")
        }
        let e = emb.silu()

        var h = try inputConv(x)
        var skips = [h]
        for step in down {
            switch step {
            case let .block(res, attn):
                h = try res(h, embedding: e, dropoutGenerator: &dropoutGenerator)
                if let attn { h = try attn(h) }
            case let .downsample(d):
                h = try d(h)
            }
            skips.append(h)
        }
        h = try middle.0(h, embedding: e, dropoutGenerator: &dropoutGenerator)
        if let attn = middle.1 { h = try attn(h) }
        h = try middle.2(h, embedding: e, dropoutGenerator: &dropoutGenerator)
        for level in up {
            for (res, attn) in level.blocks {
                h = try res(Tensor.concatChannels([h, skips.removeLast()]), embedding: e, dropoutGenerator: &dropoutGenerator)
                if let attn { h = try attn(h) }
            }
            if let u = level.upsample { h = try u(h) }
        }
        return try outputConv(outputNorm(h))
    }

    /// Every parameter with its checkpoint name, in a fixed order.
    public func visitParameters(_ visit: (String, Parameter) throws -> Void) rethrows {
        try visitChild(timeFeatures, as: "time_embedding", visit)
        for (i, l) in timeMLP.enumerated() { try visitChild(l, as: "time_mlp.\(i)", visit) }
        if let classEmbedding { try visitChild(classEmbedding, as: "class_embedding", visit) }
        if let guidanceFeatures { try visitChild(guidanceFeatures, as: "guidance_embedding", visit) }
        if let guidanceProjection { try visitChild(guidanceProjection, as: "guidance_projection", visit) }
        try visitChild(inputConv, as: "input_conv", visit)
        for (i, step) in down.enumerated() {
            switch step {
            case let .block(res, attn):
                try visitChild(res, as: "down.\(i).res", visit)
                if let attn { try visitChild(attn, as: "down.\(i).attn", visit) }
            case let .downsample(d):
                try visitChild(d, as: "down.\(i).downsample", visit)
            }
        }
        try visitChild(middle.0, as: "middle.res1", visit)
        if let attn = middle.1 { try visitChild(attn, as: "middle.attn", visit) }
        try visitChild(middle.2, as: "middle.res2", visit)
        for (li, level) in up.enumerated() {
            for (bi, (res, attn)) in level.blocks.enumerated() {
                try visitChild(res, as: "up.\(li).\(bi).res", visit)
                if let attn { try visitChild(attn, as: "up.\(li).\(bi).attn", visit) }
            }
            if let u = level.upsample { try visitChild(u, as: "up.\(li).upsample", visit) }
        }
        try visitChild(outputNorm, as: "out_norm", visit)
        try visitChild(outputConv, as: "out_conv", visit)
    }
}
