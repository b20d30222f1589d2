import Foundation

/// The one-step generator a BOOT run makes (`docs/methods.md` §6.11): a network of the noise and
/// the time, ŷ_θ(z, t), read at the clean end: x0 = ŷ_θ(z, t_clean).
package final class SignalGenerator: Generator {
    /// What a card stores to rebuild it.
    package struct Configuration: Codable, Sendable, Equatable {
        /// The network (an MLP or a U-Net without classes).
        package var architecture: ModelCard.Architecture
        /// The shape of one item (the network reads and writes items flattened, as samplers keep
        /// them).
        package var itemShape: [Int]
        /// The network time of the clean end.
        package var time: Double

        package init(architecture: ModelCard.Architecture, itemShape: [Int], time: Double) {
            self.architecture = architecture
            self.itemShape = itemShape
            self.time = time
        }
    }

    package let configuration: Configuration
    let network: any ConditionalNetwork
    package var latentDimension: Int { dataDimension }
    package var dataDimension: Int { configuration.itemShape.reduce(1, *) }

    /// A fresh generator initialized from `seed`.
    package convenience init(_ c: Configuration, seed: UInt64 = 0) throws {
        self.init(c, network: try c.architecture.network(seed: seed))
    }

    /// A generator over a trained network of `c`'s architecture.
    package init(_ c: Configuration, network: any ConditionalNetwork) {
        configuration = c
        self.network = network
    }

    package func generate(_ z: Tensor) throws -> Tensor {
        try checkInput(z, "SignalGenerator")
        let n = z.shape[0]
        return try network(z, time: Tensor.full([n], Float(configuration.time)), labels: nil, guidance: nil)
    }

    package func visitParameters(_ visit: (String, Parameter) throws -> Void) rethrows {
        try network.visitParameters(visit)
    }
}
