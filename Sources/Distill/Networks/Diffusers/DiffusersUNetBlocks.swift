import DistillCore

/// A level of diffusers' UNet2DModel, down or up (`DownBlock2D` / `AttnDownBlock2D`,
/// `UpBlock2D` / `AttnUpBlock2D`): residual blocks (`resnets.j`), each followed by
/// self-attention (`attentions.j`) in the attention variants, then an optional resampler:
/// a stride-2 3×3 conv (`downsamplers.0.conv`, padding `downsample_padding` = 1) on the way
/// down, nearest 2× upsampling and a 3×3 conv (`upsamplers.0.conv`) on the way up.
///
/// A down level hands every residual (or attention) output and the downsampler's output to
/// the skip stack; an up level concatenates, before each residual block, the running
/// features with the skip taken from the top of the stack (channels [features | skip]).
package final class DiffusersLevel: Module {
    package let resnets: [DiffusersResnetBlock]
    package let attentions: [DiffusersAttention]
    package let downsampler: Downsample?
    package let upsampler: Upsample?

    /// Builds level `level` (its channel layout, attention and resampling) of `config`.
    init(_ level: DiffusersUNetConfiguration.Level, down: Bool, config c: DiffusersUNetConfiguration, rng: inout Philox) throws {
        resnets = try level.resnets.map {
            try DiffusersResnetBlock(inChannels: $0.input, outChannels: $0.output, embeddingDim: c.timeEmbeddingDim, groups: c.normNumGroups,
                                     eps: c.normEps, scaleShift: c.scaleShift, dropout: c.dropout, rng: &rng)
        }
        attentions = level.attention ? try level.resnets.map {
            try DiffusersAttention(channels: $0.output, heads: c.heads($0.output), groups: c.normNumGroups, eps: c.normEps, rng: &rng)
        } : []
        let resample = level.resample
        downsampler = resample && down ? try Downsample(channels: level.channels, mode: .stridedConvolution, rng: &rng) : nil
        upsampler = resample && !down ? try Upsample(channels: level.channels, rng: &rng) : nil
    }

    /// The down pass: returns the level's output and appends its skips to `skips`.
    func down(_ x: Tensor, embedding e: Tensor, skips: inout [Tensor], dropoutGenerator: inout Philox) throws -> Tensor {
        var h = x
        for (j, resnet) in resnets.enumerated() {
            h = try resnet(h, embedding: e, dropoutGenerator: &dropoutGenerator)
            if !attentions.isEmpty { h = try attentions[j](h) }
            skips.append(h)
        }
        if let downsampler {
            h = try downsampler(h)
            skips.append(h)
        }
        return h
    }

    /// The up pass: consumes one skip per residual block from the end of `skips`.
    func up(_ x: Tensor, embedding e: Tensor, skips: inout [Tensor], dropoutGenerator: inout Philox) throws -> Tensor {
        var h = x
        for (j, resnet) in resnets.enumerated() {
            h = try resnet(Tensor.concatChannels([h, skips.removeLast()]), embedding: e, dropoutGenerator: &dropoutGenerator)
            if !attentions.isEmpty { h = try attentions[j](h) }
        }
        if let upsampler { h = try upsampler(h) }
        return h
    }

    package func visitParameters(_ visit: (String, Parameter) throws -> Void) rethrows {
        for (j, r) in resnets.enumerated() { try visitChild(r, as: "resnets.\(j)", visit) }
        for (j, a) in attentions.enumerated() { try visitChild(a, as: "attentions.\(j)", visit) }
        if let downsampler { try visitChild(downsampler, as: "downsamplers.0", visit) }
        if let upsampler { try visitChild(upsampler, as: "upsamplers.0", visit) }
    }
}

/// diffusers' `UNetMidBlock2D` with one layer: residual block, self-attention (when
/// `add_attention`; its GroupNorm as ``DiffusersUNetConfiguration`` describes), residual
/// block — every residual sum divided by `mid_block_scale_factor`.
package final class DiffusersMidBlock: Module {
    package let resnets: [DiffusersResnetBlock]
    package let attention: DiffusersAttention?

    init(config c: DiffusersUNetConfiguration, rng: inout Philox) throws {
        let ch = c.blockOutChannels[c.blockOutChannels.count - 1]
        func resnet(_ rng: inout Philox) throws -> DiffusersResnetBlock {
            try DiffusersResnetBlock(inChannels: ch, outChannels: ch, embeddingDim: c.timeEmbeddingDim, groups: c.normNumGroups, eps: c.normEps,
                                     scaleShift: c.scaleShift, outputScaleFactor: c.midBlockScaleFactor, dropout: c.dropout, rng: &rng)
        }
        let first = try resnet(&rng)
        attention = c.addAttention
            ? try DiffusersAttention(channels: ch, heads: c.heads(ch), groups: c.midAttentionGroups, eps: c.normEps,
                                     rescaleOutputFactor: c.midBlockScaleFactor, rng: &rng)
            : nil
        resnets = [first, try resnet(&rng)]
    }

    func callAsFunction(_ x: Tensor, embedding e: Tensor, dropoutGenerator: inout Philox) throws -> Tensor {
        var h = try resnets[0](x, embedding: e, dropoutGenerator: &dropoutGenerator)
        if let attention { h = try attention(h) }
        return try resnets[1](h, embedding: e, dropoutGenerator: &dropoutGenerator)
    }

    package func visitParameters(_ visit: (String, Parameter) throws -> Void) rethrows {
        for (j, r) in resnets.enumerated() { try visitChild(r, as: "resnets.\(j)", visit) }
        if let attention { try visitChild(attention, as: "attentions.0", visit) }
    }
}
