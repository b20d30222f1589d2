/// Denoising score matching with ε-prediction (Vincent 2011; Ho et al. 2020, "simple" loss):
/// t ~ U(timeRange), ε ~ N(0, I), x_t = α(t)x0 + σ(t)ε, loss = mean ||ε̂(x_t, t) - ε||².
///
/// `predict` maps (x_t, t) to ε̂. Random draws come from `rng` (advanced), so a step is
/// reproducible bit for bit.
public func denoisingScoreMatchingLoss(x0: Tensor, process: some DiffusionProcess, rng: inout Philox,
                                       predict: (Tensor, Tensor) throws -> Tensor) throws -> Tensor {
    guard x0.rank >= 2 else {
        throw TensorError.invalidShape(operation: "denoisingScoreMatchingLoss", shape: x0.shape, expected: "[batch, ...]")
    }
    let batch = x0.shape[0]
    let range = process.timeRange
    let t = try rng.uniform([batch], low: Float(range.lowerBound), high: Float(range.upperBound))
    let eps = try rng.normal(x0.shape)
    let times = t.scalars.map(Double.init)
    let perRow = [batch] + [Int](repeating: 1, count: x0.rank - 1)
    let alpha = try Tensor(shape: perRow, scalars: times.map { Float(process.alpha($0)) })
    let sigma = try Tensor(shape: perRow, scalars: times.map { Float(process.sigma($0)) })
    let xt = try alpha * x0 + sigma * eps
    return try (predict(xt, t) - eps).squared().mean()
}
