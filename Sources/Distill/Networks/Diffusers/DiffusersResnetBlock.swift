import DistillCore

/// diffusers' `ResnetBlock2D` (the residual block of Ho et al. 2020; the scale-shift form of
/// Nichol & Dhariwal 2021), with diffusers' parameter names:
///
///     h = conv1(SiLU(norm1(x)))
///     p = time_emb_proj(SiLU(emb))
///     "default":      h = SiLU(norm2(h + p))                 p: one shift per channel
///     "scale_shift":  h = SiLU(norm2(h)·(1 + s) + b)         p = [s | b], two per channel
///     out = (shortcut(x) + conv2(dropout(h))) / output_scale_factor
///
/// The mode is `resnet_time_scale_shift`; the GroupNorms have `norm_num_groups` groups and
/// eps `norm_eps`; `shortcut` is the 1×1 `conv_shortcut` when the channel count changes,
/// else the identity; `output_scale_factor` is 1 except in the middle block
/// (`mid_block_scale_factor`). Both norms run fused with their SiLU (and the scale-shift) in
/// one kernel. The block takes SiLU(emb), computed once per network call.
package final class DiffusersResnetBlock: Module {
    package let norm1: GroupNorm
    package let conv1: Conv2d
    package let timeProjection: Linear
    package let norm2: GroupNorm
    package let conv2: Conv2d
    package let shortcut: Conv2d?
    package let scaleShift: Bool
    package let outputScaleFactor: Float
    package let dropout: Float

    package init(inChannels: Int, outChannels: Int, embeddingDim: Int, groups: Int, eps: Float, scaleShift: Bool,
                 outputScaleFactor: Float = 1, dropout: Float = 0, rng: inout Philox) throws {
        norm1 = try GroupNorm(groups: groups, channels: inChannels, eps: eps, activation: .silu)
        conv1 = try Conv2d(inChannels, outChannels, kernelSize: 3, padding: 1, rng: &rng)
        timeProjection = try Linear(embeddingDim, (scaleShift ? 2 : 1) * outChannels, rng: &rng)
        norm2 = try GroupNorm(groups: groups, channels: outChannels, eps: eps, activation: .silu)
        conv2 = try Conv2d(outChannels, outChannels, kernelSize: 3, padding: 1, rng: &rng)
        shortcut = inChannels == outChannels ? nil : try Conv2d(inChannels, outChannels, kernelSize: 1, rng: &rng)
        self.scaleShift = scaleShift
        self.outputScaleFactor = outputScaleFactor
        self.dropout = dropout
    }

    /// x (N, in, H, W), `embedding` = SiLU(emb) (N, E) → (N, out, H, W). Dropout (if any)
    /// draws its mask from `dropoutGenerator`, only in passes that record gradients.
    package func callAsFunction(_ x: Tensor, embedding: Tensor, dropoutGenerator: inout Philox) throws -> Tensor {
        var h = try conv1(norm1(x))
        let p = try timeProjection(embedding)
        if scaleShift {
            h = try norm2(h, scaleShift: p)
        } else {
            h = try norm2(h + p.reshaped([p.shape[0], p.shape[1], 1, 1]))
        }
        h = try h.trainingDropout(dropout, generator: &dropoutGenerator)
        let out = try conv2(h, adding: shortcut?(x) ?? x)
        return outputScaleFactor == 1 ? out : out / outputScaleFactor
    }

    package func visitParameters(_ visit: (String, Parameter) throws -> Void) rethrows {
        try visitChild(norm1, as: "norm1", visit)
        try visitChild(conv1, as: "conv1", visit)
        try visitChild(timeProjection, as: "time_emb_proj", visit)
        try visitChild(norm2, as: "norm2", visit)
        try visitChild(conv2, as: "conv2", visit)
        if let shortcut { try visitChild(shortcut, as: "conv_shortcut", visit) }
    }
}
