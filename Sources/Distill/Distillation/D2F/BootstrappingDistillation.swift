import Foundation

/// BOOT, data-free distillation by bootstrapping (Gu et al. 2023; `docs/methods.md` §6.11). A
/// network ŷ_θ(ε, t) of the noise and the time predicts the *signal* y_t = (x_t − σ_t·ε)/α_t of
/// the teacher's deterministic trajectory from x_T = σ_T·ε. Holding the teacher's x̂ fixed over a
/// step, the Signal-ODE dy/dλ = D(α·y + σ·ε) − y integrates exactly to
/// y_s = y_t + δ·(D(x_t) − y_t), δ = 1 − σ̃_s/σ̃_t (the DDIM step in signal variables); the
/// student's prediction at s is regressed onto that step taken from its own (stop-gradient)
/// prediction at t. No data are read; ŷ_θ(ε, clean) is a one-step generator.
package enum BootstrappingDistillation {
    /// Intervals of the time grid, uniform in the process's time (Δu = 1/16; measured on the
    /// exact ring against 8, 32 and 64 in `docs/methods.md` §6.11).
    package static let defaultIntervals = 16

    /// δ = 1 − σ̃_s/σ̃_t, the signal step's size from t to the less noisy s (1 when s is clean).
    package static func delta(fromAlpha at: Double, sigma st: Double, toAlpha a: Double, sigma s: Double) -> Double {
        s == 0 ? 1 : 1 - (s / a) / (st / at)
    }

    /// The grid's pairs (t_i, s_i = t_{i−1}), i = 1…N, as times of `process` (u = i/N mapped
    /// linearly onto its range; u = 0 is the clean end), and their δ_i.
    static func grid(process p: DiffusionProcess, intervals n: Int) -> (t: [Double], s: [Double], delta: [Double]) {
        let r = p.timeRange
        let time = { (i: Int) in r.lowerBound + (r.upperBound - r.lowerBound) * Double(i) / Double(n) }
        let t = (1...n).map(time), s = (0..<n).map(time)
        let delta = (0..<n).map { i in i == 0 ? 1 : Self.delta(fromAlpha: p.alpha(t[i]), sigma: p.sigma(t[i]), toAlpha: p.alpha(s[i]), sigma: p.sigma(s[i])) }
        return (t, s, delta)
    }

    /// The loss at rows of `shape` (batch first): ε ~ N(0, I), i ~ U{1…N}, and
    /// w_i·‖ŷ_θ(ε, s_i) − sg(ŷ_t + δ_i·(D(α_t·ŷ_t + σ_t·ε) − ŷ_t))‖², ŷ_t = sg ŷ_θ(ε, t_i), averaged;
    /// w_i = δ_i⁻² over its mean on the grid (the slope error ‖(ŷ_s − ŷ_t)/δ − (D − ŷ_t)‖², scaled
    /// to mean weight 1). At the noisiest point ŷ_t is 0: the trajectory starts at x_T = σ_T·ε.
    package static func loss(student net: some ConditionalNetwork, process p: DiffusionProcess, teacher: some Denoiser, shape: [Int],
                             intervals n: Int = defaultIntervals, rng: inout Philox) throws -> Tensor {
        guard n >= 2, shape.count >= 2 else {
            throw TensorError.invalidArgument(operation: "BootstrappingDistillation", message: "needs at least 2 intervals and rows of a shape")
        }
        let (ts, ss, deltas) = grid(process: p, intervals: n)
        let mean = deltas.reduce(0) { $0 + 1 / ($1 * $1) } / Double(n)
        let idx = try rng.uniform([shape[0]]).scalars.map { min(Int(Double($0) * Double(n)), n - 1) }
        let eps = try rng.normal(shape)
        let rank = shape.count
        let t = NoiseLevels(process: p, times: idx.map { ts[$0] })
        let delta = try NoiseLevels.column(idx.map { deltas[$0] }, rank: rank)
        let target = try withoutGradient { () throws -> Tensor in
            let y = try net(eps, time: Tensor(t.time!.map { Float($0) }), labels: nil, guidance: nil)
                * NoiseLevels.column(idx.map { $0 == n - 1 ? 0 : 1 }, rank: rank)
            let x = try t.alphaTensor(rank: rank) * y + t.sigmaTensor(rank: rank) * eps
            return try y + delta * (teacher.predict(x, at: t, labels: nil).data - y)
        }
        let ys = try net(eps, time: Tensor(idx.map { Float(ss[$0]) }), labels: nil, guidance: nil)
        let w = idx.map { 1 / (deltas[$0] * deltas[$0]) / mean }
        return try ((ys - target).squared() * NoiseLevels.column(w, rank: rank)).mean()
    }
}
