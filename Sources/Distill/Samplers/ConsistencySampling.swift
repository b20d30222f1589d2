import Foundation

/// Multistep consistency sampling (Song, Dhariwal, Chen & Sutskever 2023, Alg. 1) on a σ-form
/// grid T = σ̃₀ > σ̃₁ > … > σ̃ₖ₋₁ > 0: x̂0 = f(x, σ̃₀) from the state x = T·z, then for each
/// later level τ the sample is re-noised, x = x̂0 + √(τ² - ε²)·z, and denoised again,
/// x̂0 = f(x, τ). NFE = k (one per noisy level); the noise comes from Philox(seed, stream 0xC0).
package func sampleConsistency(_ model: some ConsistencyFunction, from x: Tensor, grid: NoiseGrid, labels: [Int]?, seed: UInt64,
                       progress: ((Int, Int) -> Void)?) throws -> SamplerResult {
    guard grid.levels.last!.isClean else { throw SamplerError.invalidGrid("a consistency grid ends at σ = 0") }
    if let labels, labels.count != x.shape.first { throw SamplerError.invalidOption("\(labels.count) labels for a batch of \(x.shape.first ?? 0)") }
    return try withoutGradient {
        let n = x.shape[0]
        var rng = Philox(seed: seed, stream: 0xC0)
        var state = x
        var x0 = x
        for i in 0..<grid.steps {
            let level = grid.levels[i].sigma
            if i > 0 {
                state = try Tensor.linearCombination([(1, x0)], noiseStd: Float((level * level - model.epsilon * model.epsilon).squareRoot()),
                                                     noise: &rng)
            }
            x0 = try model(state, sigma: Array(repeating: level, count: n), labels: labels)
            progress?(i + 1, grid.steps)
            if grid.levels[i + 1].isClean { break }
        }
        return SamplerResult(sample: x0, evaluations: grid.steps)
    }
}
