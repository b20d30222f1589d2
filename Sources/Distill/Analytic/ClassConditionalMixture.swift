/// A Gaussian mixture as an exact class-conditional teacher: label k (0..<K) denoises under
/// component k alone, the null label K under the whole mixture — what classifier-free
/// guidance and guided distillation need, with every prediction exact.
package struct ClassConditionalMixture: Denoiser, Sendable {
    package let mixture: GaussianMixture
    let components: [GaussianMixture]

    package init(_ mixture: GaussianMixture) {
        self.mixture = mixture
        components = (0..<mixture.componentCount).map {
            try! GaussianMixture(weights: [1], means: [mixture.means[$0]], variances: [mixture.variances[$0]])
        }
    }

    /// The label meaning "no class".
    package var nullLabel: Int { mixture.componentCount }

    package func predict(_ x: Tensor, at levels: NoiseLevels, labels: [Int]?) throws -> Prediction {
        guard let labels else { return try mixture.predict(x, at: levels, labels: nil) }
        guard labels.count == x.shape.first, labels.allSatisfy({ (0...nullLabel).contains($0) }) else {
            throw TensorError.invalidArgument(operation: "ClassConditionalMixture", message: "needs one label in 0...\(nullLabel) per row")
        }
        // Rows grouped by label, predicted together, then put back in order.
        var data = [Float](repeating: 0, count: x.count), noise = data
        let d = x.count / max(labels.count, 1)
        for label in Set(labels) {
            let rows = labels.indices.filter { labels[$0] == label }
            let part = try Tensor.stack(rows.map { try x.row($0) })
            let lv = NoiseLevels(alpha: rows.map { levels.alpha[$0] }, sigma: rows.map { levels.sigma[$0] }, time: levels.time.map { t in rows.map { t[$0] } })
            let p = try (label == nullLabel ? mixture : components[label]).predict(part, at: lv, labels: nil)
            let (pd, pn) = (p.data.scalars, p.noise.scalars)
            for (k, r) in rows.enumerated() {
                for j in 0..<d { data[r * d + j] = pd[k * d + j]; noise[r * d + j] = pn[k * d + j] }
            }
        }
        return Prediction(data: try Tensor(shape: x.shape, scalars: data), noise: try Tensor(shape: x.shape, scalars: noise))
    }
}
