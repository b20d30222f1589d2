/// A generator: items x = g(z) from latents z, or x = g(z, u) with extra noise u for a
/// stochastic generator. Its input rows carry the latent then the noise:
/// (N, latentDimension + noiseDimension).
package protocol Generator: Module {
    /// Size of the latent z.
    var latentDimension: Int { get }
    /// Size of the extra noise input u of a stochastic generator (0: deterministic).
    var noiseDimension: Int { get }
    /// Size of a generated item.
    var dataDimension: Int { get }
    /// Generated items (N, dataDimension) from inputs (N, latentDimension + noiseDimension)
    /// (traced when the generator's parameters are).
    func generate(_ z: Tensor) throws -> Tensor
}

extension Generator {
    package var noiseDimension: Int { 0 }

    /// `count` samples from N(0, I) latents (and noise) drawn from `rng`.
    package func sample(_ count: Int, rng: inout Philox) throws -> Tensor {
        try generate(rng.normal([count, latentDimension + noiseDimension]))
    }

    /// Throws unless z is (N, latentDimension + noiseDimension).
    func checkInput(_ z: Tensor, _ name: String) throws {
        guard z.rank == 2, z.shape[1] == latentDimension + noiseDimension else {
            throw TensorError.invalidShape(operation: name, shape: z.shape,
                                           expected: noiseDimension > 0 ? "[N, \(latentDimension) latent + \(noiseDimension) noise]"
                                                                        : "[N, \(latentDimension)]")
        }
    }
}

/// An MLP generator g(z) (Luo et al. 2023 use a network initialized like the teacher; here an
/// MLP of its own). With `noiseDimension` > 0 it is stochastic: g(z, u), the noise u entering
/// as extra inputs.
package final class MLPGenerator: Generator {
    package let latentDimension: Int
    package let noiseDimension: Int
    package let dataDimension: Int
    let layers: [Linear]

    package init(latentDimension: Int, noiseDimension: Int = 0, dataDimension: Int, hidden: [Int] = [128, 128],
                activation: Activation = .silu, seed: UInt64 = 0) throws {
        guard latentDimension >= 1, dataDimension >= 1, noiseDimension >= 0 else {
            throw TensorError.invalidArgument(operation: "MLPGenerator", message: "dimensions must be positive (noise: non-negative)")
        }
        self.latentDimension = latentDimension
        self.noiseDimension = noiseDimension
        self.dataDimension = dataDimension
        var rng = Philox(seed: seed, stream: 0x6E4)
        let widths = [latentDimension + noiseDimension] + hidden
        var ls: [Linear] = []
        for i in 0..<(widths.count - 1) { ls.append(try Linear(widths[i], widths[i + 1], activation: activation, rng: &rng)) }
        ls.append(try Linear(widths.last!, dataDimension, rng: &rng))
        layers = ls
    }

    package func generate(_ z: Tensor) throws -> Tensor {
        try checkInput(z, "MLPGenerator")
        var h = z
        for l in layers { h = try l(h) }
        return h
    }

    package func visitParameters(_ visit: (String, Parameter) throws -> Void) rethrows {
        for (i, l) in layers.enumerated() { try visitChild(l, as: "layers.\(i)", visit) }
    }
}

/// A small convolutional image generator (DCGAN-like, Radford et al. 2016): the latent is
/// projected to a (2C, S/2ᵏ, S/2ᵏ) map, then k nearest-neighbour upsamplings each followed by
/// a 3×3 convolution, GroupNorm and SiLU (2C then C channels), and a 3×3 convolution to the
/// image channels; k = 1 for images up to 16 pixels, 2 above. A stochastic one adds a noise
/// map u (one value per output pixel) with a learned per-channel scale before the last
/// convolution (the noise injection of StyleGAN, Karras et al. 2019).
package final class ConvGenerator: Generator {
    package struct Configuration: Codable, Sendable, Equatable {
        package var imageSize: Int
        package var imageChannels: Int
        package var latentDimension: Int
        package var baseChannels: Int
        package var stochastic: Bool
        package init(imageSize: Int, imageChannels: Int = 1, latentDimension: Int = 64, baseChannels: Int = 32, stochastic: Bool = false) {
            self.imageSize = imageSize
            self.imageChannels = imageChannels
            self.latentDimension = latentDimension
            self.baseChannels = baseChannels
            self.stochastic = stochastic
        }
        /// Upsamplings between the projected map and the image.
        package var upsamplings: Int { imageSize <= 16 ? 1 : 2 }
    }

    package let configuration: Configuration
    let projection: Linear
    let projectionNorm: GroupNorm
    let stages: [(Conv2d, GroupNorm)]
    let noiseScale: Parameter?
    let output: Conv2d

    package var latentDimension: Int { configuration.latentDimension }
    package var noiseDimension: Int { configuration.stochastic ? configuration.imageSize * configuration.imageSize : 0 }
    package var dataDimension: Int { configuration.imageChannels * configuration.imageSize * configuration.imageSize }

    package init(_ c: Configuration, seed: UInt64 = 0) throws {
        let k = c.upsamplings
        guard c.imageSize >= 2, c.imageSize % (1 << k) == 0, c.imageChannels >= 1, c.latentDimension >= 1, c.baseChannels >= 1 else {
            throw TensorError.invalidArgument(operation: "ConvGenerator", message:
                "image size \(c.imageSize) must be divisible by \(1 << k) (sizes up to 16 are upsampled once, larger ones twice); channels, latent and baseChannels must be positive")
        }
        configuration = c
        var rng = Philox(seed: seed, stream: 0xC09)
        let top = 2 * c.baseChannels, side = c.imageSize >> k
        projection = try Linear(c.latentDimension, top * side * side, rng: &rng)
        let groups = { (ch: Int) in [8, 4, 2, 1].first { ch % $0 == 0 }! }
        projectionNorm = try GroupNorm(groups: groups(top), channels: top, activation: .silu)
        var stages: [(Conv2d, GroupNorm)] = []
        var ch = top
        for level in 0..<k {
            let next = level == k - 1 ? c.baseChannels : top
            stages.append((try Conv2d(ch, next, kernelSize: 3, padding: 1, rng: &rng),
                           try GroupNorm(groups: groups(next), channels: next, activation: .silu)))
            ch = next
        }
        self.stages = stages
        noiseScale = c.stochastic ? Parameter(try Tensor.full([1, ch, 1, 1], 0.1)) : nil
        output = try Conv2d(ch, c.imageChannels, kernelSize: 3, padding: 1, rng: &rng)
    }

    package func generate(_ z: Tensor) throws -> Tensor {
        try checkInput(z, "ConvGenerator")
        let c = configuration, n = z.shape[0], side = c.imageSize >> c.upsamplings
        let latent = c.stochastic ? try z.slice(0..<c.latentDimension, axis: 1) : z
        var h = try projectionNorm(projection(latent).reshaped([n, 2 * c.baseChannels, side, side]))
        for (conv, norm) in stages { h = try norm(conv(h.upsampleNearest2x())) }
        if let noiseScale {
            let u = try z.slice(c.latentDimension..<(c.latentDimension + noiseDimension), axis: 1).reshaped([n, 1, c.imageSize, c.imageSize])
            h = try h + u * noiseScale.value
        }
        return try output(h).reshaped([n, dataDimension])
    }

    package func visitParameters(_ visit: (String, Parameter) throws -> Void) rethrows {
        try visitChild(projection, as: "projection", visit)
        try visitChild(projectionNorm, as: "projection_norm", visit)
        for (i, (conv, norm)) in stages.enumerated() {
            try visitChild(conv, as: "stages.\(i).conv", visit)
            try visitChild(norm, as: "stages.\(i).norm", visit)
        }
        if let noiseScale { try visit("noise_scale", noiseScale) }
        try visitChild(output, as: "output", visit)
    }
}

/// A set of particles optimized directly (the particle view of SDS and VSD, Wang et al. 2023):
/// `generate` returns the particles picked by the latent's first column (an index), so the
/// same API serves; ``all`` gives every particle.
package final class ParticleGenerator: Generator {
    package let particles: Parameter
    package var latentDimension: Int { 1 }
    package var dataDimension: Int { particles.value.shape[1] }

    /// `count` particles of dimension `d`, initialized N(0, std²).
    package init(count: Int, dataDimension d: Int, std: Float = 1, seed: UInt64 = 0) throws {
        var rng = Philox(seed: seed, stream: 0x9A7)
        particles = Parameter(try rng.normal([count, d], std: std))
    }

    /// Every particle (traced).
    package var all: Tensor { particles.value }

    /// The particles at indices ⌊u·count⌋ for u = Φ-uniformized first latent column.
    package func generate(_ z: Tensor) throws -> Tensor {
        let n = particles.value.shape[0]
        let idx = z.scalars.enumerated().filter { $0.offset % max(z.shape.last ?? 1, 1) == 0 }.map { v -> Int in
            let u = 0.5 * (1 + erf(Double(v.element) / 2.0.squareRoot()))
            return min(Int(u * Double(n)), n - 1)
        }
        return try particles.value.gatherRows(idx)
    }

    package func visitParameters(_ visit: (String, Parameter) throws -> Void) rethrows {
        try visit("particles", particles)
    }
}

import Foundation
