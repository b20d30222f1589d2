import DistillCore

/// diffusers' spatial self-attention block (`Attention` as built by AttnDownBlock2D,
/// AttnUpBlock2D and UNetMidBlock2D: `residual_connection`, biased projections), over the
/// H·W pixels of a feature map with c channels (Vaswani et al. 2017; Ho et al. 2020):
///
///     u = group_norm(x)                  (or u = x when the block has no GroupNorm)
///     q, k, v = to_q(u), to_k(u), to_v(u)          per pixel, c → c
///     o = softmax(q·kᵀ / √d)·v           per head: heads = c / attention_head_dim, d = c / heads
///     out = (to_out.0(o) + x) / rescale_output_factor
///
/// A head's channels are contiguous (channel = head·d + i), as diffusers reshapes them.
/// `rescale_output_factor` is `mid_block_scale_factor` in the middle block and 1 elsewhere.
/// The three projections run as one 1×1 convolution with their weights stacked, the
/// attention as the fused tiled kernel (Dao et al. 2022), and the output projection with the
/// residual added in the same op. Parameters keep diffusers' (c, c) Linear shapes.
package final class DiffusersAttention: Module {
    package let groupNorm: GroupNorm?
    package let query: Linear
    package let key: Linear
    package let value: Linear
    package let output: Linear
    package let heads: Int
    package let rescaleOutputFactor: Float

    /// - Throws: ``TensorError`` unless `heads` divides `channels` (and `groups`, if any, too).
    package init(channels: Int, heads: Int, groups: Int?, eps: Float, rescaleOutputFactor: Float = 1, rng: inout Philox) throws {
        guard heads >= 1, channels % heads == 0 else {
            throw TensorError.invalidArgument(operation: "DiffusersAttention",
                                              message: "\(channels) channels cannot be split into \(heads) heads")
        }
        groupNorm = try groups.map { try GroupNorm(groups: $0, channels: channels, eps: eps) }
        query = try Linear(channels, channels, rng: &rng)
        key = try Linear(channels, channels, rng: &rng)
        value = try Linear(channels, channels, rng: &rng)
        output = try Linear(channels, channels, rng: &rng)
        self.heads = heads
        self.rescaleOutputFactor = rescaleOutputFactor
    }

    package var channels: Int { query.outFeatures }

    /// x (N, c, H, W) → (N, c, H, W).
    package func callAsFunction(_ x: Tensor) throws -> Tensor {
        let c = channels
        guard x.rank == 4, x.shape[1] == c else {
            throw TensorError.invalidShape(operation: "DiffusersAttention", shape: x.shape, expected: "[batch, \(c), height, width]")
        }
        let (n, hh, ww) = (x.shape[0], x.shape[2], x.shape[3])
        let (t, d) = (hh * ww, c / heads)
        let u = try groupNorm?(x) ?? x
        let stacked = try Tensor.concat([query, key, value].map(\.weight.value)).reshaped([3 * c, c, 1, 1])
        let bias = try Tensor.concat([query, key, value].map { $0.bias!.value })
        // (N, 3c, H, W) → (3, N, heads, T, d): q, k, v are rows of one permuted copy.
        let qkv = try u.conv2d(weight: stacked, bias: bias).reshaped([n, 3, heads, d, t]).permuted([1, 0, 2, 4, 3])
        let o = try Tensor.attention(q: qkv.row(0), k: qkv.row(1), v: qkv.row(2))
        let merged = try o.permuted([0, 1, 3, 2]).reshaped([n, c, hh, ww])
        let out = try merged.conv2d(weight: output.weight.value.reshaped([c, c, 1, 1]), bias: output.bias?.value, residual: x)
        return rescaleOutputFactor == 1 ? out : out / rescaleOutputFactor
    }

    package func visitParameters(_ visit: (String, Parameter) throws -> Void) rethrows {
        if let groupNorm { try visitChild(groupNorm, as: "group_norm", visit) }
        try visitChild(query, as: "to_q", visit)
        try visitChild(key, as: "to_k", visit)
        try visitChild(value, as: "to_v", visit)
        try visitChild(output, as: "to_out.0", visit)
    }
}
