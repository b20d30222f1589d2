import Foundation

/// Sinusoidal embedding of a scalar such as a diffusion time (Vaswani et al. 2017; used for
/// noise levels by Ho et al. 2020): [sin(s·t·ω_k), cos(s·t·ω_k)], ω_k = 10000^(-k/H),
/// k < H = dim/2. The scale s maps the caller's time range to the usual one (1000 for t in [0, 1]).
/// The frequencies are fixed (a frozen parameter, saved with the model).
package final class SinusoidalEmbedding: Module {
    package let frequencies: Parameter

    package init(dim: Int, scale: Float = 1000, maxPeriod: Double = 10000) throws {
        guard dim >= 2, dim % 2 == 0 else {
            throw TensorError.invalidArgument(operation: "SinusoidalEmbedding", message: "dim \(dim) must be even and >= 2")
        }
        let h = dim / 2
        let f = (0..<h).map { Float(Double(scale) * Foundation.exp(-Foundation.log(maxPeriod) * Double($0) / Double(h))) }
        frequencies = Parameter(Tensor(f), trainable: false)
    }

    package var dim: Int { 2 * frequencies.value.count }

    /// t of shape [B] or [B, 1] → [B, dim].
    package func callAsFunction(_ t: Tensor) throws -> Tensor { try t.fourierFeatures(frequencies: frequencies.value) }

    package func visitParameters(_ visit: (String, Parameter) throws -> Void) rethrows {
        try visit("frequencies", frequencies)
    }
}

/// Random Fourier features of a scalar (Tancik et al. 2020; Song et al. 2021 for noise
/// levels): [sin(2π w_k t), cos(2π w_k t)], w_k ~ N(0, scale²) drawn once and frozen.
package final class GaussianFourierEmbedding: Module {
    package let frequencies: Parameter

    package init(dim: Int, scale: Float = 16, rng: inout Philox) throws {
        guard dim >= 2, dim % 2 == 0 else {
            throw TensorError.invalidArgument(operation: "GaussianFourierEmbedding", message: "dim \(dim) must be even and >= 2")
        }
        frequencies = Parameter(try rng.normal([dim / 2], std: 2 * Float.pi * scale), trainable: false)
    }

    package var dim: Int { 2 * frequencies.value.count }

    package func callAsFunction(_ t: Tensor) throws -> Tensor { try t.fourierFeatures(frequencies: frequencies.value) }

    package func visitParameters(_ visit: (String, Parameter) throws -> Void) rethrows {
        try visit("frequencies", frequencies)
    }
}

/// A learned embedding per class, plus one extra "null" class (index `classCount`) that
/// stands for "no label" — for classifier-free guidance (Ho & Salimans 2022).
package final class ClassEmbedding: Module {
    package let table: Parameter
    package let classCount: Int

    package init(classCount: Int, dim: Int, rng: inout Philox) throws {
        guard classCount >= 1, dim >= 1 else {
            throw TensorError.invalidArgument(operation: "ClassEmbedding", message: "needs classCount >= 1 and dim >= 1")
        }
        self.classCount = classCount
        table = Parameter(try rng.normal([classCount + 1, dim]))
    }

    /// The null class's index.
    package var nullClass: Int { classCount }
    package var dim: Int { table.value.shape[1] }

    /// Labels in 0...classCount (classCount = null) → [B, dim].
    package func callAsFunction(_ labels: [Int]) throws -> Tensor { try table.value.gatherRows(labels) }

    package func visitParameters(_ visit: (String, Parameter) throws -> Void) rethrows {
        try visit("table", table)
    }
}
