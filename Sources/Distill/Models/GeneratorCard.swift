import Foundation

/// What rebuilds a saved one-step generator: stored as its checkpoint's configuration JSON
/// (format "distill.generator").
package struct GeneratorCard: Codable, Sendable, Equatable {
    package var format = "distill.generator"
    /// The method that trained it ("diff-instruct", "sds", "vsd").
    package var method: String
    package var latentDimension: Int
    package var dataDimension: Int
    package var hidden: [Int]
    package var particles: Int?
    /// Extra noise inputs of a stochastic MLP generator (nil: none).
    package var noiseDimension: Int?
    /// Set for a convolutional image generator.
    package var convolutional: ConvGenerator.Configuration?
    /// Set for a BOOT signal generator.
    package var signal: SignalGenerator.Configuration?
    /// Set for a DSNO trajectory generator.
    package var trajectory: TrajectoryGenerator.Configuration?
    /// How it was made (teacher, settings), for people reading the card.
    package var provenance: String?
    /// The shape of one item when it is not [dataDimension] (e.g. [1, 8, 8] for an MLP
    /// generator of images).
    package var dataShape: [Int]?

    package init(method: String, latentDimension: Int, dataDimension: Int, hidden: [Int], particles: Int? = nil,
                 noiseDimension: Int? = nil, convolutional: ConvGenerator.Configuration? = nil) {
        self.method = method
        self.latentDimension = latentDimension
        self.dataDimension = dataDimension
        self.hidden = hidden
        self.particles = particles
        self.noiseDimension = noiseDimension
        self.convolutional = convolutional
    }

    /// The shape of one generated item: [C, S, S] for a convolutional generator, [d] otherwise.
    package var itemShape: [Int] {
        if let c = convolutional { return [c.imageChannels, c.imageSize, c.imageSize] }
        return dataShape ?? [dataDimension]
    }

    /// A new generator of this architecture, initialized from `seed`.
    package func makeGenerator(seed: UInt64 = 0) throws -> any Generator {
        if let particles { return try ParticleGenerator(count: particles, dataDimension: dataDimension, seed: seed) }
        if let convolutional { return try ConvGenerator(convolutional, seed: seed) }
        if let signal { return try SignalGenerator(signal, seed: seed) }
        if let trajectory { return try TrajectoryGenerator(trajectory, seed: seed) }
        return try MLPGenerator(latentDimension: latentDimension, noiseDimension: noiseDimension ?? 0, dataDimension: dataDimension,
                                hidden: hidden, seed: seed)
    }

    package var json: String {
        let enc = JSONEncoder()
        enc.outputFormatting = [.sortedKeys]
        return String(decoding: (try? enc.encode(self)) ?? Data(), as: UTF8.self)
    }

    /// Checks sizes before a generator is built from a card read from a file: within limits,
    /// consistent, and no larger than the `storedValues` of the checkpoint.
    package func validate(source: String, storedValues: Int?) throws {
        func bad(_ field: String, _ why: String) -> ModelCardError { ModelCardError(source: source, field: field, reason: why) }
        guard format == "distill.generator" else { throw bad("format", "'\(format)'; expected 'distill.generator'") }
        let limit = 1 << 24
        guard (1...limit).contains(dataDimension) else { throw bad("dataDimension", "\(dataDimension); expected 1...\(limit)") }
        guard (1...limit).contains(latentDimension) else { throw bad("latentDimension", "\(latentDimension); expected 1...\(limit)") }
        guard (0...limit).contains(noiseDimension ?? 0) else { throw bad("noiseDimension", "\(noiseDimension ?? 0); expected 0...\(limit)") }
        if let shape = dataShape {
            guard (1...4).contains(shape.count), shape.allSatisfy({ (1...limit).contains($0) }), saturatingProduct(shape) == dataDimension else {
                throw bad("dataShape", "\(shape); expected 1 to 4 dimensions whose product is dataDimension \(dataDimension)")
            }
        }
        guard hidden.count <= 64, hidden.allSatisfy({ (1...ModelCard.maxWidth).contains($0) }) else {
            throw bad("hidden", "\(hidden); expected at most 64 widths of 1...\(ModelCard.maxWidth)")
        }
        var minimum: Int
        if let n = particles {
            guard (1...limit).contains(n) else { throw bad("particles", "\(n); expected 1...\(limit)") }
            minimum = saturatingProduct([n, dataDimension])
        } else if let c = convolutional {
            guard (2...4096).contains(c.imageSize), (1...64).contains(c.imageChannels), (1...limit).contains(c.latentDimension),
                  (1...4096).contains(c.baseChannels) else {
                throw bad("convolutional", "image \(c.imageSize), channels \(c.imageChannels), latent \(c.latentDimension), base \(c.baseChannels); out of range")
            }
            guard c.imageChannels * c.imageSize * c.imageSize == dataDimension else {
                throw bad("dataDimension", "\(dataDimension) but the convolutional generator makes \(c.imageChannels)×\(c.imageSize)×\(c.imageSize) images")
            }
            let side = c.imageSize >> c.upsamplings
            minimum = saturatingProduct([c.latentDimension, 2 * c.baseChannels, side, side])
        } else if let g = signal {
            guard g.time.isFinite, abs(g.time) <= 1e6 else { throw bad("signal.time", "\(g.time); expected a finite time") }
            guard (1...4).contains(g.itemShape.count), g.itemShape.allSatisfy({ (1...limit).contains($0) }),
                  saturatingProduct(g.itemShape) == dataDimension, latentDimension == dataDimension else {
                throw bad("signal.itemShape", "\(g.itemShape); expected a shape of dataDimension \(dataDimension) values, the latent's size")
            }
            let abad = { (field: String, why: String) in bad("signal." + field, why) }
            switch g.architecture {
            case let .mlp(c):
                try ModelCard.validate(c, abad)
                minimum = ModelCard.parameterLowerBound(c)
            case let .unet(c):
                try ModelCard.validate(c, abad)
                guard g.itemShape == [c.imageChannels, c.imageSize, c.imageSize] else {
                    throw bad("signal.itemShape", "\(g.itemShape) but the U-Net takes [\(c.imageChannels), \(c.imageSize), \(c.imageSize)]")
                }
                minimum = ModelCard.parameterLowerBound(c)
            case .consistencyMLP, .consistencyUNet:
                throw bad("signal.architecture", "a consistency model; expected an MLP or a U-Net")
            case .diffusersUNet:
                throw bad("signal.architecture", "a diffusers UNet2DModel; expected an MLP or a U-Net")
            }
            guard g.architecture.itemSize == dataDimension, g.architecture.classCount == nil else {
                throw bad("signal.architecture", "a network of \(g.architecture.itemSize) values per item\(g.architecture.classCount == nil ? "" : " with classes"); expected \(dataDimension), without classes")
            }
        } else if let g = trajectory {
            guard g.dataDimension == dataDimension, latentDimension == dataDimension else {
                throw bad("trajectory.dataDimension", "\(g.dataDimension); expected dataDimension \(dataDimension), the latent's size")
            }
            guard (1...64).contains(g.times.count), g.times.allSatisfy({ $0.isFinite && (0...1).contains($0) }) else {
                throw bad("trajectory.times", "\(g.times); expected 1 to 64 times in [0, 1]")
            }
            guard (1...(g.times.count / 2 + 1)).contains(g.modes) else {
                throw bad("trajectory.modes", "\(g.modes); expected 1...\(g.times.count / 2 + 1) for \(g.times.count) times")
            }
            guard g.startSigma.isFinite, g.startSigma > 0, g.startSigma <= 1e6 else { throw bad("trajectory.startSigma", "\(g.startSigma); expected a finite σ in (0, 1e6]") }
            guard (1...64).contains(g.hiddenWidths.count), g.hiddenWidths.allSatisfy({ (1...ModelCard.maxWidth).contains($0) }) else {
                throw bad("trajectory.hiddenWidths", "\(g.hiddenWidths); expected 1 to 64 widths of 1...\(ModelCard.maxWidth)")
            }
            let widths = [dataDimension] + g.hiddenWidths + [dataDimension]
            minimum = saturatingSum(zip(widths, widths.dropFirst()).map { saturatingProduct([$0, $1]) }
                                    + g.hiddenWidths.map { saturatingProduct([2 * g.modes, $0, $0]) })
        } else {
            guard !hidden.isEmpty else { throw bad("hidden", "an MLP generator needs at least one hidden width") }
            let widths = [latentDimension + (noiseDimension ?? 0)] + hidden + [dataDimension]
            minimum = saturatingSum(zip(widths, widths.dropFirst()).map { saturatingProduct([$0, $1]) })
        }
        guard minimum <= ModelCard.maxParameters else {
            throw bad("architecture", "a generator of at least \(minimum) parameters; at most \(ModelCard.maxParameters) are supported")
        }
        if let storedValues, minimum > storedValues {
            throw bad("architecture", "a generator of at least \(minimum) parameters, but the checkpoint holds \(storedValues) values")
        }
    }
}
