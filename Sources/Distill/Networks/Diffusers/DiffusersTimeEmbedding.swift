import Foundation
import DistillCore

/// diffusers' sinusoidal timestep features (`Timesteps`, `get_timestep_embedding`), the
/// DDPM embedding of Ho et al. 2020 with diffusers' two options: for width d, H = ⌊d/2⌋,
///
///     f_i = exp(−ln(10000)·i / (H − freq_shift)),   i = 0…H−1
///     features(t) = [sin(t·f), cos(t·f)]   ([cos, sin] when flip_sin_to_cos), zero-padded to d
///
/// for any real timestep t (fractional ones included). The frequencies are computed in
/// Float32 in the same order of operations as diffusers (the exponent rounded to Float32
/// before the exponential), so that t·f_i agrees to the last bit for t up to 1000. They
/// are constants, not parameters: diffusers' weights do not hold them.
package struct DiffusersTimestepFeatures {
    package let width: Int
    package let flipSinToCos: Bool
    /// f_i, i < ⌊width/2⌋.
    package let frequencies: Tensor

    package init(width: Int, flipSinToCos: Bool, freqShift: Double) {
        let half = width / 2
        let lnPeriod = Float(-Foundation.log(10000.0)), divisor = Float(Double(half) - freqShift)
        frequencies = Tensor((0..<half).map { i in Float(Foundation.exp(Double(lnPeriod * Float(i) / divisor))) })
        self.width = width
        self.flipSinToCos = flipSinToCos
    }

    /// t (N) → (N, width).
    package func callAsFunction(_ t: Tensor) throws -> Tensor {
        let n = t.count, half = frequencies.count
        var features = try t.reshaped([n]).fourierFeatures(frequencies: frequencies)   // [sin | cos]
        if flipSinToCos {
            features = try Tensor.concat([features.slice(half..<(2 * half), axis: 1), features.slice(0..<half, axis: 1)], axis: 1)
        }
        if width % 2 == 1 { features = try Tensor.concat([features, Tensor.zeros([n, 1])], axis: 1) }
        return features
    }
}

/// diffusers' `TimestepEmbedding`: the MLP from timestep features to the embedding every
/// residual block receives, `linear_2(SiLU(linear_1(features)))` (Ho et al. 2020); its
/// parameters are `linear_1.*` and `linear_2.*`.
package final class DiffusersTimestepEmbedding: Module {
    package let linear1: Linear
    package let linear2: Linear

    package init(features: Int, width: Int, rng: inout Philox) throws {
        linear1 = try Linear(features, width, activation: .silu, rng: &rng)
        linear2 = try Linear(width, width, rng: &rng)
    }

    /// (N, features) → (N, width).
    package func callAsFunction(_ x: Tensor) throws -> Tensor { try linear2(linear1(x)) }

    package func visitParameters(_ visit: (String, Parameter) throws -> Void) rethrows {
        try visitChild(linear1, as: "linear_1", visit)
        try visitChild(linear2, as: "linear_2", visit)
    }
}

/// A learned row per class (PyTorch's `nn.Embedding`, diffusers' `class_embedding` when
/// `num_class_embeds` is set), added to the time embedding. Unlike the project's
/// `ClassEmbedding` it has no null class: labels must lie in 0..<`num_class_embeds`.
package final class DiffusersClassEmbedding: Module {
    /// (classes, width), named `weight` as in PyTorch.
    package let weight: Parameter

    package init(classes: Int, width: Int, rng: inout Philox) throws {
        weight = Parameter(try rng.normal([classes, width]))
    }

    package var classes: Int { weight.value.shape[0] }

    /// Labels in 0..<classes → (N, width).
    package func callAsFunction(_ labels: [Int]) throws -> Tensor { try weight.value.gatherRows(labels) }

    package func visitParameters(_ visit: (String, Parameter) throws -> Void) rethrows {
        try visit("weight", weight)
    }
}
