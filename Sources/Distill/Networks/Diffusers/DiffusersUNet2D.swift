import Foundation
import DistillCore

/// diffusers' `UNet2DModel` (the DDPM U-Net of Ho et al. 2020 as diffusers implements it),
/// built from this library's differentiable ops, so it runs forward and backward: a
/// pretrained diffusers pipeline as a teacher, and students of the same architecture.
///
/// Its parameters are named exactly as the keys of diffusers'
/// `unet/diffusion_pytorch_model.safetensors` (`conv_in.weight`,
/// `down_blocks.0.resnets.0.conv1.weight`, `mid_block.attentions.0.to_q.bias`, …) with
/// diffusers' shapes, so ``load(from:)`` reads a folder without any conversion. The layout
/// is described under ``DiffusersUNetConfiguration``.
///
/// As a ``ConditionalNetwork`` it takes images x (N, `in_channels`, H, W) with H and W
/// multiples of 2^(levels − 1) (or rows of `in_channels`·S·S values, S = `sample_size`,
/// returned as rows), the time input as diffusers' timestep values (one Float per row; any
/// real value, e.g. 0…999 for a 1000-step DDPM schedule), and, for a class-conditional model,
/// one label per row in 0..<`num_class_embeds`. It returns what the model predicts (ε,
/// x₀ or v, as its scheduler's `prediction_type` says), with `out_channels` channels.
package final class DiffusersUNet2D: Module, ConditionalNetwork {
    package let configuration: DiffusersUNetConfiguration
    let timeFeatures: DiffusersTimestepFeatures
    let timeEmbedding: DiffusersTimestepEmbedding
    let classEmbedding: DiffusersClassEmbedding?
    let convIn: Conv2d
    let downBlocks: [DiffusersLevel]
    let midBlock: DiffusersMidBlock?
    let upBlocks: [DiffusersLevel]
    let convNormOut: GroupNorm
    let convOut: Conv2d
    /// Where dropout masks come from (only used when `dropout` > 0, in traced passes).
    package var dropoutGenerator: Philox

    /// The network of `configuration` with PyTorch's default initialization drawn from `seed`
    /// (U(±1/√fan-in) weights and biases, GroupNorm scale 1 and shift 0, N(0, 1) class rows).
    ///
    /// - Throws: ``DiffusersError`` for an invalid configuration.
    package init(_ configuration: DiffusersUNetConfiguration, seed: UInt64 = 0) throws {
        let c = configuration
        try c.validate()
        self.configuration = c
        var rng = Philox(seed: seed)
        dropoutGenerator = Philox(seed: seed, stream: 0x6472_6F70)
        let c0 = c.blockOutChannels[0]
        timeFeatures = DiffusersTimestepFeatures(width: c0, flipSinToCos: c.flipSinToCos, freqShift: c.freqShift)
        timeEmbedding = try DiffusersTimestepEmbedding(features: c0, width: c.timeEmbeddingDim, rng: &rng)
        classEmbedding = try c.numClassEmbeds.map { try DiffusersClassEmbedding(classes: $0, width: c.timeEmbeddingDim, rng: &rng) }
        convIn = try Conv2d(c.inChannels, c0, kernelSize: 3, padding: 1, rng: &rng)
        downBlocks = try c.downLevels.map { try DiffusersLevel($0, down: true, config: c, rng: &rng) }
        midBlock = c.hasMidBlock ? try DiffusersMidBlock(config: c, rng: &rng) : nil
        upBlocks = try c.upLevels.map { try DiffusersLevel($0, down: false, config: c, rng: &rng) }
        convNormOut = try GroupNorm(groups: c.normNumGroups, channels: c0, eps: c.normEps, activation: .silu)
        convOut = try Conv2d(c0, c.outChannels, kernelSize: 3, padding: 1, rng: &rng)
    }

    /// The prediction for x at diffusers timesteps `time` (one per row); `labels` for a
    /// class-conditional model; `guidance` must be nil (a UNet2DModel has no guidance input).
    ///
    /// - Throws: ``TensorError`` for inputs of the wrong shape, missing, unexpected or
    ///   out-of-range labels, or a guidance input.
    package func callAsFunction(_ x: Tensor, time: Tensor, labels: [Int]?, guidance: Tensor?) throws -> Tensor {
        let c = configuration, op = "DiffusersUNet2D"
        let s = c.sampleSize, pixels = c.inChannels * s * s
        if x.rank == 2, x.shape[1] == pixels {
            let n = x.shape[0]
            return try self(x.reshaped([n, c.inChannels, s, s]), time: time, labels: labels, guidance: guidance)
                .reshaped([n, c.outChannels * s * s])
        }
        let factor = 1 << (c.blockOutChannels.count - 1)
        guard x.rank == 4, x.shape[1] == c.inChannels, x.shape[2] % factor == 0, x.shape[3] % factor == 0, x.shape[2] > 0, x.shape[3] > 0 else {
            throw TensorError.invalidShape(operation: op, shape: x.shape,
                                           expected: "[batch, \(c.inChannels), height, width] with sides multiples of \(factor), or [batch, \(pixels)]")
        }
        let n = x.shape[0]
        guard time.count == n else {
            throw TensorError.shapeMismatch(operation: op, lhs: x.shape, rhs: time.shape, expected: "one timestep per image")
        }
        guard guidance == nil else {
            throw TensorError.invalidArgument(operation: op, message: "a diffusers UNet2DModel has no guidance input")
        }
        var emb = try timeEmbedding(timeFeatures(time))
        if let classEmbedding {
            guard let labels, labels.count == n else {
                throw TensorError.invalidArgument(operation: op,
                                                  message: "this class-conditional UNet2DModel needs one label per image in 0..<\(classEmbedding.classes)")
            }
            emb = try emb + classEmbedding(labels)
        } else if labels != nil {
            throw TensorError.invalidArgument(operation: op, message: "labels given to a UNet2DModel without num_class_embeds")
        }
        let e = emb.silu()

        var h = try convIn(c.centerInputSample ? x.affine(scale: 2, shift: -1) : x)
        var skips = [h]
        for block in downBlocks { h = try block.down(h, embedding: e, skips: &skips, dropoutGenerator: &dropoutGenerator) }
        if let midBlock { h = try midBlock(h, embedding: e, dropoutGenerator: &dropoutGenerator) }
        for block in upBlocks { h = try block.up(h, embedding: e, skips: &skips, dropoutGenerator: &dropoutGenerator) }
        return try convOut(convNormOut(h))
    }

    /// Every parameter under its diffusers name, in a fixed order.
    package func visitParameters(_ visit: (String, Parameter) throws -> Void) rethrows {
        try visitChild(timeEmbedding, as: "time_embedding", visit)
        if let classEmbedding { try visitChild(classEmbedding, as: "class_embedding", visit) }
        try visitChild(convIn, as: "conv_in", visit)
        for (i, b) in downBlocks.enumerated() { try visitChild(b, as: "down_blocks.\(i)", visit) }
        if let midBlock { try visitChild(midBlock, as: "mid_block", visit) }
        for (i, b) in upBlocks.enumerated() { try visitChild(b, as: "up_blocks.\(i)", visit) }
        try visitChild(convNormOut, as: "conv_norm_out", visit)
        try visitChild(convOut, as: "conv_out", visit)
    }
}
