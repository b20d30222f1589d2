import DistillCore

/// The architecture of a diffusers `UNet2DModel`, as its `unet/config.json` states it (field
/// names in backquotes are diffusers'), validated before anything is allocated.
///
/// The network (``DiffusersUNet2D``) it describes, for levels ℓ = 0…L−1 with
/// c_ℓ = `block_out_channels[ℓ]` and E = `time_embedding_dim` (default 4·c₀):
/// - time: sinusoidal features of the timestep (width c₀; `flip_sin_to_cos`, `freq_shift`),
///   then Linear(c₀ → E), SiLU, Linear(E → E); plus a learned class embedding
///   (`num_class_embeds` rows) when the model is class-conditional;
/// - `conv_in`: 3×3 conv to c₀ (after x ↦ 2x − 1 when `center_input_sample`);
/// - down: per level, `layers_per_block` residual blocks to c_ℓ, each followed by attention in
///   an `AttnDownBlock2D`, then (except at the last level) a stride-2 3×3 conv;
/// - middle (`mid_block_type` "UNetMidBlock2D", or null for none): residual block,
///   attention (if `add_attention`), residual block, all scaled by `mid_block_scale_factor`;
/// - up: per level from the last, `layers_per_block` + 1 residual blocks, each taking the
///   channel concatenation of the running features and the most recent unused skip, each
///   followed by attention in an `AttnUpBlock2D`, then (except at level 0) nearest 2×
///   upsampling and a 3×3 conv;
/// - out: GroupNorm, SiLU, 3×3 conv to `out_channels`.
///
/// Every GroupNorm has `norm_num_groups` groups and eps `norm_eps`, except the middle
/// attention's, which has `attn_norm_num_groups` groups when set, and exists only in the
/// "default" `resnet_time_scale_shift` when it is not. Attention splits c channels into
/// c / `attention_head_dim` heads (one head when that field is null).
///
/// Not implemented (a ``DiffusersError/unsupported(file:field:found:supported:)`` names the
/// field): `time_embedding_type` "fourier" or "learned", `class_embed_type` "timestep" or
/// "identity", `act_fn` other than "silu"/"swish", `downsample_type` / `upsample_type`
/// "resnet", `downsample_padding` 0, `resnet_time_scale_shift` "spatial", block types other
/// than DownBlock2D, AttnDownBlock2D, UpBlock2D, AttnUpBlock2D (also with diffusers'
/// "UNetRes" prefix), and non-square `sample_size`.
///
/// Required fields: `sample_size`, `in_channels`, `out_channels`, `block_out_channels`,
/// `down_block_types`, `up_block_types`, `layers_per_block`. Every other field, when absent,
/// takes the default of diffusers' `UNet2DModel.__init__`, as diffusers' `from_config` does
/// for configs written before the field existed. Unknown fields are ignored (as diffusers does).
package struct DiffusersUNetConfiguration: Equatable, Sendable, Codable {
    /// A block of the contracting path (`down_block_types`).
    package enum DownBlock: String, Sendable, Codable {
        /// `DownBlock2D`: residual blocks only.
        case plain = "DownBlock2D"
        /// `AttnDownBlock2D`: each residual block followed by self-attention.
        case attention = "AttnDownBlock2D"
    }

    /// A block of the expanding path (`up_block_types`).
    package enum UpBlock: String, Sendable, Codable {
        /// `UpBlock2D`: residual blocks only.
        case plain = "UpBlock2D"
        /// `AttnUpBlock2D`: each residual block followed by self-attention.
        case attention = "AttnUpBlock2D"
    }

    /// `sample_size`: the side of the square images the model was made for.
    package var sampleSize: Int
    /// `in_channels`.
    package var inChannels: Int
    /// `out_channels`.
    package var outChannels: Int
    /// `center_input_sample`: feed 2x − 1 instead of x.
    package var centerInputSample: Bool
    /// `flip_sin_to_cos`: timestep features ordered [cos, sin] instead of [sin, cos].
    package var flipSinToCos: Bool
    /// `freq_shift`: frequencies exp(−ln(10⁴)·i / (c₀/2 − freq_shift)), i < c₀/2.
    package var freqShift: Double
    /// E: `time_embedding_dim`, or 4·`block_out_channels[0]` when that is null.
    package var timeEmbeddingDim: Int
    /// `down_block_types`, one per level.
    package var downBlockTypes: [DownBlock]
    /// `up_block_types`, one per level, from the lowest resolution up.
    package var upBlockTypes: [UpBlock]
    /// Whether there is a middle block (`mid_block_type` "UNetMidBlock2D" rather than null).
    package var hasMidBlock: Bool
    /// `block_out_channels`: c_ℓ per level.
    package var blockOutChannels: [Int]
    /// `layers_per_block`: residual blocks per down level (one more per up level).
    package var layersPerBlock: Int
    /// `mid_block_scale_factor`: the middle block's residual sums are divided by it.
    package var midBlockScaleFactor: Float
    /// `dropout` in the residual blocks (applied only in passes that record gradients).
    package var dropout: Float
    /// `attention_head_dim`; nil: one head spanning the channels.
    package var attentionHeadDim: Int?
    /// `norm_num_groups`.
    package var normNumGroups: Int
    /// `attn_norm_num_groups`: the middle attention's GroupNorm groups when set.
    package var attnNormNumGroups: Int?
    /// `norm_eps`: the eps of every GroupNorm.
    package var normEps: Float
    /// `resnet_time_scale_shift` == "scale_shift" (else "default").
    package var scaleShift: Bool
    /// `add_attention`: whether the middle block has attention.
    package var addAttention: Bool
    /// `num_class_embeds`: classes of a class-conditional model, nil for none.
    package var numClassEmbeds: Int?

    /// The file named in errors of configurations built in code.
    static let inCode = "<configuration>"

    /// Largest accepted size of `config.json`.
    static let maximumFileSize = 1 << 20
    /// Largest channel count, embedding width or class count accepted from a config.
    static let maximumWidth = 1 << 20

    /// Reads and validates `unet/config.json`.
    ///
    /// - Throws: ``IOError`` when the file cannot be read or is not a JSON object,
    ///   ``DiffusersError`` naming the field otherwise.
    package static func read(_ path: String) throws -> DiffusersUNetConfiguration {
        try parse(DiffusersConfigReader(bytes: FileIO.read(path, maximumSize: maximumFileSize), file: path))
    }

    /// Decodes and validates config JSON text; `file` names it in errors.
    package static func decode(_ bytes: [UInt8], file: String) throws -> DiffusersUNetConfiguration {
        try parse(DiffusersConfigReader(bytes: bytes, file: file))
    }

    static func parse(_ r: DiffusersConfigReader) throws -> DiffusersUNetConfiguration {
        func require(_ key: String, _ value: String?, in supported: [String]) throws {
            guard let value, supported.contains(value) else {
                throw r.unsupported(key, supported.map { "\"\($0)\"" }.joined(separator: ", "))
            }
        }
        if let name = try r.string("_class_name", default: nil), name != "UNet2DModel" {
            throw r.unsupported("_class_name", "\"UNet2DModel\"")
        }
        try require("time_embedding_type", r.string("time_embedding_type", default: "positional"), in: ["positional"])
        try require("act_fn", r.string("act_fn", default: "silu"), in: ["silu", "swish"])
        try require("downsample_type", r.string("downsample_type", default: "conv"), in: ["conv"])
        try require("upsample_type", r.string("upsample_type", default: "conv"), in: ["conv"])
        if try r.string("class_embed_type", default: nil) != nil { throw r.unsupported("class_embed_type", "null") }
        let shift = try r.string("resnet_time_scale_shift", default: "default")
        try require("resnet_time_scale_shift", shift, in: ["default", "scale_shift"])
        guard try r.int("downsample_padding", in: 0...Int(Int32.max), default: 1) == 1 else {
            throw r.unsupported("downsample_padding", "1")
        }
        let mid = try r.string("mid_block_type", default: "UNetMidBlock2D")
        if mid != nil { try require("mid_block_type", mid, in: ["UNetMidBlock2D"]) }
        _ = try r.optionalInt("num_train_timesteps", in: 1...Int(Int32.max))   // used only by "learned" embeddings

        let width = 1...maximumWidth
        let channels = try r.array("block_out_channels", expected: "a non-empty array of at most 64 integers in 1...\(maximumWidth)") { v in
            v.integer.flatMap { width.contains($0) ? $0 : nil }
        }
        func blockTypes<T: RawRepresentable>(_ key: String, _ type: T.Type) throws -> [T] where T.RawValue == String {
            let names = try r.array(key, expected: "a non-empty array of block type names") { v -> String? in
                guard case let .string(s) = v else { return nil }
                return s
            }
            return try names.map { name in
                // diffusers strips a "UNetRes" prefix before looking a type up.
                let plain = name.hasPrefix("UNetRes") ? String(name.dropFirst(7)) : name
                guard let t = T(rawValue: plain) else {
                    throw DiffusersError.unsupported(file: r.file, field: key, found: "\"\(name)\"",
                                                     supported: key == "down_block_types" ? "\"DownBlock2D\", \"AttnDownBlock2D\""
                                                         : "\"UpBlock2D\", \"AttnUpBlock2D\"")
                }
                return t
            }
        }
        let sampleSize: Int
        if case let .array(sides)? = r.fields["sample_size"] {
            guard sides.count == 2, let h = sides[0].integer, let w = sides[1].integer, (1...65536).contains(h) else {
                throw r.invalid("sample_size", "an integer in 1...65536 or a pair [h, w] of them")
            }
            guard h == w else { throw r.unsupported("sample_size", "square samples (one integer, or [s, s])") }
            sampleSize = h
        } else {
            sampleSize = try r.int("sample_size", in: 1...65536)
        }
        let config = DiffusersUNetConfiguration(
            sampleSize: sampleSize,
            inChannels: try r.int("in_channels", in: width),
            outChannels: try r.int("out_channels", in: width),
            centerInputSample: try r.bool("center_input_sample", default: false),
            flipSinToCos: try r.bool("flip_sin_to_cos", default: true),
            freqShift: try r.number("freq_shift", default: 0, expected: "finite") { _ in true },
            timeEmbeddingDim: try r.optionalInt("time_embedding_dim", in: width) ?? 4 * channels[0],
            downBlockTypes: try blockTypes("down_block_types", DownBlock.self),
            upBlockTypes: try blockTypes("up_block_types", UpBlock.self),
            hasMidBlock: mid != nil,
            blockOutChannels: channels,
            layersPerBlock: try r.int("layers_per_block", in: 1...64),
            midBlockScaleFactor: Float(try r.number("mid_block_scale_factor", default: 1, expected: "positive") { $0 > 0 }),
            dropout: Float(try r.number("dropout", default: 0, expected: "in [0, 1)") { $0 >= 0 && $0 < 1 }),
            attentionHeadDim: r.fields["attention_head_dim"] == nil ? 8 : try r.optionalInt("attention_head_dim", in: width),
            normNumGroups: try r.int("norm_num_groups", in: width, default: 32),
            attnNormNumGroups: try r.optionalInt("attn_norm_num_groups", in: width),
            normEps: Float(try r.number("norm_eps", default: 1e-5, expected: "positive") { $0 > 0 }),
            scaleShift: shift == "scale_shift",
            addAttention: try r.bool("add_attention", default: true),
            numClassEmbeds: try r.optionalInt("num_class_embeds", in: 1...(1 << 24)))
        try config.validate(file: r.file)
        return config
    }

    /// Channels of one residual block.
    struct ResnetChannels: Equatable {
        let input: Int
        let output: Int
    }

    /// One level of the down or up path: its residual blocks, whether each is followed by
    /// attention, and whether the level ends with a resampler.
    struct Level {
        let resnets: [ResnetChannels]
        let attention: Bool
        let resample: Bool
        var channels: Int { resnets.last!.output }
    }

    /// The down levels, following `get_down_block` in diffusers' UNet2DModel: level ℓ maps
    /// c_{ℓ−1} (c₀ at ℓ = 0) to c_ℓ.
    var downLevels: [Level] {
        let c = blockOutChannels, last = c.count - 1
        return c.indices.map { i in
            let input = c[max(i - 1, 0)]
            let resnets = (0..<layersPerBlock).map { j in ResnetChannels(input: j == 0 ? input : c[i], output: c[i]) }
            return Level(resnets: resnets, attention: downBlockTypes[i] == .attention, resample: i != last)
        }
    }

    /// The up levels, from the lowest resolution: level i (resolution index L−1−i) has
    /// `layers_per_block` + 1 blocks; block j takes the running features (the previous
    /// level's channels for j = 0, else this level's) concatenated with a skip (the next
    /// level's channels for the last block, else this level's).
    var upLevels: [Level] {
        let r = Array(blockOutChannels.reversed()), last = r.count - 1
        return r.indices.map { i in
            let (prev, out, skipIn) = (r[max(i - 1, 0)], r[i], r[min(i + 1, last)])
            let resnets = (0...layersPerBlock).map { j in
                ResnetChannels(input: (j == 0 ? prev : out) + (j == layersPerBlock ? skipIn : out), output: out)
            }
            return Level(resnets: resnets, attention: upBlockTypes[i] == .attention, resample: i != last)
        }
    }

    /// The middle attention's GroupNorm groups (nil: no GroupNorm), as diffusers'
    /// UNetMidBlock2D chooses them.
    package var midAttentionGroups: Int? { attnNormNumGroups ?? (scaleShift ? nil : normNumGroups) }
    /// Whether the middle block has attention.
    var hasMidAttention: Bool { hasMidBlock && addAttention }

    /// Attention heads over `channels` channels.
    func heads(_ channels: Int) -> Int { attentionHeadDim.map { channels / $0 } ?? 1 }

    /// Throws a ``DiffusersError`` naming the field (in `file`) that makes this configuration
    /// invalid, if any.
    package func validate(file: String = inCode) throws {
        func invalid(_ field: String, _ found: String, _ expected: String) -> DiffusersError {
            .invalidField(file: file, field: field, found: found, expected: expected)
        }
        let levels = blockOutChannels.count
        let width = 1...Self.maximumWidth
        for (key, value) in [("sample_size", sampleSize), ("in_channels", inChannels), ("out_channels", outChannels),
                             ("time_embedding_dim", timeEmbeddingDim), ("layers_per_block", layersPerBlock),
                             ("norm_num_groups", normNumGroups)] where !width.contains(value) {
            throw invalid(key, "\(value)", "an integer in 1...\(Self.maximumWidth)")
        }
        guard (1...64).contains(levels), blockOutChannels.allSatisfy(width.contains) else {
            throw invalid("block_out_channels", "\(blockOutChannels)", "1 to 64 integers in 1...\(Self.maximumWidth)")
        }
        for (key, count) in [("down_block_types", downBlockTypes.count), ("up_block_types", upBlockTypes.count)] where count != levels {
            throw invalid(key, "\(count) block types", "\(levels), one per entry of block_out_channels")
        }
        let factor = 1 << (levels - 1)
        guard sampleSize % factor == 0 else {
            throw invalid("sample_size", "\(sampleSize)", "a multiple of \(factor) (2^(levels − 1)) for \(levels) levels")
        }
        let half = blockOutChannels[0] / 2
        guard half >= 1, Double(half) - freqShift > 0 else {
            throw invalid("freq_shift", "\(freqShift) with \(blockOutChannels[0]) timestep features",
                          "block_out_channels[0] >= 2 and freq_shift < block_out_channels[0] / 2")
        }
        guard midBlockScaleFactor.isFinite, midBlockScaleFactor > 0, normEps.isFinite, normEps > 0, dropout >= 0, dropout < 1 else {
            throw invalid("mid_block_scale_factor", "\(midBlockScaleFactor) (norm_eps \(normEps), dropout \(dropout))",
                          "mid_block_scale_factor > 0, norm_eps > 0, dropout in [0, 1)")
        }
        if let k = numClassEmbeds, !(1...(1 << 24)).contains(k) { throw invalid("num_class_embeds", "\(k)", "null or 1...\(1 << 24)") }
        // Every GroupNorm, with where it is.
        var normalized: [(Int, String)] = [(blockOutChannels[0], "conv_norm_out")]
        var attended: [(Int, String)] = []
        for (path, levels) in [("down_blocks", downLevels), ("up_blocks", upLevels)] {
            for (i, level) in levels.enumerated() {
                for (j, r) in level.resnets.enumerated() {
                    normalized += [(r.input, "\(path).\(i).resnets.\(j).norm1"), (r.output, "\(path).\(i).resnets.\(j).norm2")]
                    if level.attention { attended.append((r.output, "\(path).\(i).attentions.\(j)")) }
                }
            }
        }
        let c = blockOutChannels[levels - 1]
        if hasMidBlock { normalized.append((c, "mid_block.resnets")) }
        if hasMidAttention { attended.append((c, "mid_block.attentions.0")) }
        normalized += attended.map { ($0.0, $0.1 + ".group_norm") }
        for (ch, at) in normalized where ch % normNumGroups != 0 {
            throw invalid("norm_num_groups", "\(normNumGroups)", "a divisor of every normalized channel count; \(at) has \(ch) channels")
        }
        if hasMidAttention, let g = attnNormNumGroups, c % g != 0 {
            throw invalid("attn_norm_num_groups", "\(g)", "null or a divisor of the middle block's \(c) channels")
        }
        if let d = attentionHeadDim, let (ch, at) = attended.first(where: { $0.0 % d != 0 }) {
            throw invalid("attention_head_dim", "\(d)", "a divisor of every attention block's channel count; \(at) has \(ch) channels")
        }
    }

    /// The number of parameters of the network, computed without building it (as a Double,
    /// so that no size can overflow).
    package var parameterCount: Double {
        let e = Double(timeEmbeddingDim), c0 = Double(blockOutChannels[0])
        func conv(_ i: Int, _ o: Int, _ k: Double) -> Double { Double(i) * Double(o) * k * k + Double(o) }
        func resnet(_ r: ResnetChannels) -> Double {
            let (i, o) = (Double(r.input), Double(r.output))
            return 2 * i + conv(r.input, r.output, 3) + (scaleShift ? 2 : 1) * (e * o + o) + 2 * o + conv(r.output, r.output, 3)
                + (r.input == r.output ? 0 : conv(r.input, r.output, 1))
        }
        func attention(_ c: Int, norm: Bool) -> Double { 4 * (Double(c) * Double(c) + Double(c)) + (norm ? 2 * Double(c) : 0) }
        var total = c0 * e + e + e * e + e + Double(numClassEmbeds ?? 0) * e + conv(inChannels, blockOutChannels[0], 3)
            + 2 * c0 + conv(blockOutChannels[0], outChannels, 3)
        for level in downLevels + upLevels {
            for r in level.resnets { total += resnet(r) + (level.attention ? attention(r.output, norm: true) : 0) }
            if level.resample { total += conv(level.channels, level.channels, 3) }
        }
        let c = blockOutChannels[blockOutChannels.count - 1]
        if hasMidBlock { total += 2 * resnet(ResnetChannels(input: c, output: c)) }
        if hasMidAttention { total += attention(c, norm: midAttentionGroups != nil) }
        return total
    }
}
