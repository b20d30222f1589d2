/// An implicit generator x0 = g_θ(z) for diffusion-to-generator distillation (`METHODS.md` §7).
public protocol Generator: Module {
    /// Size of the latent z.
    var latentDimension: Int { get }
    /// Size of a generated item.
    var dataDimension: Int { get }
    /// Generated items (N, dataDimension) from latents (N, latentDimension) (traced when the
    /// generator's parameters are).
    func generate(_ z: Tensor) throws -> Tensor
}

extension Generator {
    /// `count` samples from N(0, I) latents drawn from `rng`.
    public func sample(_ count: Int, rng: inout Philox) throws -> Tensor {
        try generate(rng.normal([count, latentDimension]))
    }
}

/// An MLP generator g(z) (Luo et al. 2023 use a network initialized like the teacher; here an
/// MLP of its own). With `noiseDimension` > 0 it is stochastic: g(z, u) with extra standard
/// normal noise u drawn inside ``generate(_:)`` from the latent's own stream (the latent then
/// carries latent + noise columns).
public final class MLPGenerator: Generator {
    public let latentDimension: Int
    public let dataDimension: Int
    let layers: [Linear]

    public init(latentDimension: Int, dataDimension: Int, hidden: [Int] = [128, 128], activation: Activation = .silu, seed: UInt64 = 0) throws {
        guard latentDimension >= 1, dataDimension >= 1 else {
            throw TensorError.invalidArgument(operation: "MLPGenerator", message: "dimensions must be positive")
        }
        self.latentDimension = latentDimension
        self.dataDimension = dataDimension
        var rng = Philox(seed: seed, stream: 0x6E4)
        let widths = [latentDimension] + hidden
        var ls: [Linear] = []
        for i in 0..<(widths.count - 1) { ls.append(try Linear(widths[i], widths[i + 1], activation: activation, rng: &rng)) }
        ls.append(try Linear(widths.last!, dataDimension, rng: &rng))
        layers = ls
    }

    public func generate(_ z: Tensor) throws -> Tensor {
        guard z.rank == 2, z.shape[1] == latentDimension else {
            throw TensorError.invalidShape(operation: "MLPGenerator", shape: z.shape, expected: "[N, \(latentDimension)]")
        }
        var h = z
        for l in layers { h = try l(h) }
        return h
    }

    public func visitParameters(_ visit: (String, Parameter) throws -> Void) rethrows {
        for (i, l) in layers.enumerated() { try visitChild(l, as: "layers.\(i)", visit) }
    }
}

/// A set of particles optimized directly (the particle view of SDS and VSD, Wang et al. 2023):
/// `generate` returns the particles picked by the latent's first column (an index), so the
/// same API serves; ``all`` gives every particle.
public final class ParticleGenerator: Generator {
    public let particles: Parameter
    public var latentDimension: Int { 1 }
    public var dataDimension: Int { particles.value.shape[1] }

    /// `count` particles of dimension `d`, initialized N(0, std²).
    public init(count: Int, dataDimension d: Int, std: Float = 1, seed: UInt64 = 0) throws {
        var rng = Philox(seed: seed, stream: 0x9A7)
        particles = Parameter(try rng.normal([count, d], std: std))
    }

    /// Every particle (traced).
    public var all: Tensor { particles.value }

    /// The particles at indices ⌊u·count⌋ for u = Φ-uniformized first latent column.
    public func generate(_ z: Tensor) throws -> Tensor {
        let n = particles.value.shape[0]
        let idx = z.scalars.enumerated().filter { $0.offset % max(z.shape.last ?? 1, 1) == 0 }.map { v -> Int in
            let u = 0.5 * (1 + erf(Double(v.element) / 2.0.squareRoot()))
            return min(Int(u * Double(n)), n - 1)
        }
        return try particles.value.gatherRows(idx)
    }

    public func visitParameters(_ visit: (String, Parameter) throws -> Void) rethrows {
        try visit("particles", particles)
    }
}

import Foundation
