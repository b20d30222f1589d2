import Foundation

/// DSNO's operator as an MLP (`docs/methods.md` §6.12): from x_T = σ_T·z it predicts the states
/// of the ODE trajectory at M times in one pass. x_T is lifted by a linear layer and copied to
/// the M slices; each hidden layer adds a per-slice embedding of the slice's time, applies SiLU
/// and then a residual ``TemporalFourierLayer`` along the slices; a last linear layer gives the
/// M states. The last slice (the clean end) is the generator's sample.
package final class TrajectoryGenerator: Generator {
    /// What a card stores to rebuild it.
    package struct Configuration: Codable, Sendable, Equatable {
        package var dataDimension: Int
        package var hiddenWidths: [Int]
        /// The slices' times on PD's time variable u ∈ [0, 1], noisiest first, the last 0.
        package var times: [Double]
        /// Fourier modes kept along the slices.
        package var modes: Int
        /// σ_T of the starting level: the trajectory starts at x_T = σ_T·z.
        package var startSigma: Double

        package init(dataDimension: Int, hiddenWidths: [Int], times: [Double], modes: Int = 2, startSigma: Double) {
            self.dataDimension = dataDimension
            self.hiddenWidths = hiddenWidths
            self.times = times
            self.modes = modes
            self.startSigma = startSigma
        }
    }

    package let configuration: Configuration
    let lift: Linear, layers: [Linear], timeLayers: [Linear], fourier: [TemporalFourierLayer], output: Linear
    let embedding: SinusoidalEmbedding
    package var latentDimension: Int { configuration.dataDimension }
    package var dataDimension: Int { configuration.dataDimension }

    package init(_ c: Configuration, seed: UInt64 = 0) throws {
        guard !c.hiddenWidths.isEmpty, c.times.count >= 1 else {
            throw TensorError.invalidArgument(operation: "TrajectoryGenerator", message: "needs hidden widths and at least one time")
        }
        configuration = c
        var rng = Philox(seed: seed, stream: 0xD5)
        embedding = try SinusoidalEmbedding(dim: 64)
        lift = try Linear(c.dataDimension, c.hiddenWidths[0], rng: &rng)
        var (ls, ts, fs) = ([Linear](), [Linear](), [TemporalFourierLayer]())
        for (i, w) in c.hiddenWidths.enumerated() {
            ls.append(try Linear(i == 0 ? w : c.hiddenWidths[i - 1], w, rng: &rng))
            ts.append(try Linear(embedding.dim, w, rng: &rng))
            fs.append(try TemporalFourierLayer(channels: w, times: c.times.count, modes: c.modes, rng: &rng))
        }
        (layers, timeLayers, fourier) = (ls, ts, fs)
        output = try Linear(c.hiddenWidths.last!, c.dataDimension, rng: &rng)
    }

    /// The predicted states (N, M, d) of the trajectories from x_T (N, d).
    package func trajectory(_ xT: Tensor) throws -> Tensor {
        let (n, m) = (xT.shape[0], configuration.times.count)
        let emb = try embedding(Tensor(configuration.times.map { Float($0) }))                  // (M, 64)
        let width = configuration.hiddenWidths[0]
        var h = try lift(xT).reshaped([n, 1, width]).broadcast(to: [n, m, width])
        for i in layers.indices {
            let w = configuration.hiddenWidths[i]
            h = try (layers[i](h) + timeLayers[i](emb).reshaped([1, m, w])).silu()
            h = try fourier[i](h)
        }
        return try output(h)
    }

    package func generate(_ z: Tensor) throws -> Tensor {
        try checkInput(z, "TrajectoryGenerator")
        let n = z.shape[0], m = configuration.times.count
        return try trajectory(z * Float(configuration.startSigma)).slice((m - 1)..<m, axis: 1).reshaped([n, dataDimension])
    }

    package func visitParameters(_ visit: (String, Parameter) throws -> Void) rethrows {
        try visitChild(embedding, as: "embedding", visit)
        try visitChild(lift, as: "lift", visit)
        for i in layers.indices {
            try visitChild(layers[i], as: "layers.\(i)", visit)
            try visitChild(timeLayers[i], as: "time.\(i)", visit)
            try visitChild(fourier[i], as: "fourier.\(i)", visit)
        }
        try visitChild(output, as: "output", visit)
    }
}
