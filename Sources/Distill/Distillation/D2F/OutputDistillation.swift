/// Knowledge distillation of a deterministic sampler into one step (Luhman & Luhman 2021,
/// "Knowledge distillation in iterative generative models for improved sampling speed"):
/// pairs (x_T, Φ(x_T)) from the teacher's deterministic sampler, and a student that maps
/// x_T to Φ(x_T) in one evaluation.
package enum OutputDistillation {
    /// Pairs for states of `shape` (the first dim is the count): noise x_T = σ_T·z at the grid's
    /// first level and the teacher's sample from it with a deterministic `sampler`.
    package static func pairs(teacher: some Denoiser, sampler: SamplerKind, grid: NoiseGrid, shape: [Int], seed: UInt64,
                             labels: [Int]? = nil) throws -> (noise: Tensor, targets: Tensor) {
        guard !sampler.isStochastic else {
            throw SamplerError.invalidOption("output distillation needs a deterministic teacher sampler; \(sampler.rawValue) draws noise")
        }
        var rng = Philox(seed: seed, stream: 0x4B44)
        let noise = try rng.normal(shape) * Float(grid.levels[0].sigma)
        let targets = try sampler.run(teacher, from: noise, grid: grid, options: .init(labels: labels)).sample
        return (noise, targets)
    }

    /// The student's loss ||D_student(x_T; level_T) - Φ(x_T)||² (mean over elements), the
    /// student evaluated at the grid's first level with its data prediction.
    package static func loss(student: some Denoiser, noise: Tensor, targets: Tensor, level: NoiseLevel,
                            labels: [Int]? = nil) throws -> Tensor {
        let p = try student.predict(noise, alpha: level.alpha, sigma: level.sigma, time: level.time, labels: labels)
        return try (p.data - targets).squared().mean()
    }
}
