import Foundation

/// Rectified flow and reflow (Liu, Gong & Liu 2022, "Flow straight and fast", Alg. 1): a flow
/// v(X_t, t) trained by flow matching on independent pairs (X0 noise, X1 data) is simulated to
/// couple each X0 with its own Z1 = ODE(X0); training on those pairs (k-rectified flow)
/// straightens the paths, and a final one-step distillation fits Z1 - Z0 = v(Z0, 0).
package enum Reflow {
    /// The coupling of a flow: (Z0, Z1 = the flow's ODE map of Z0), by `sampler` on `grid` (a
    /// rectified-flow grid from t = 0 to 1; RK45 by default for an accurate map).
    package static func pairs(flow: some Denoiser, grid: NoiseGrid, sampler: SamplerKind = .rk45, shape: [Int],
                             seed: UInt64) throws -> (z0: Tensor, z1: Tensor) {
        var rng = Philox(seed: seed, stream: 0x5EF1)
        let z0 = try rng.normal(shape)
        return (z0, try sampler.run(flow, from: z0, grid: grid).sample)
    }

    /// Flow matching on given pairs: t ~ U[0, 1], X_t = t·Z1 + (1 - t)·Z0, ||v(X_t, t) - (Z1 - Z0)||²
    /// (mean over elements). With independent pairs (Z1 data) this is 1-rectified flow.
    package static func loss<N>(flow: DiffusionModel<N>, z0: Tensor, z1: Tensor, rng: inout Philox) throws -> Tensor {
        guard flow.process.underlying is RectifiedFlowProcess, flow.parameterization == .velocity else {
            throw TensorError.invalidArgument(operation: "Reflow.loss", message: "needs the rectified-flow process and the velocity parameterization")
        }
        let batch = z0.shape[0]
        let t = try rng.uniform([batch]).scalars.map { min(max(Double($0), 1e-5), 1 - 1e-5) }
        let levels = NoiseLevels(process: flow.process, times: t)
        let xt = try levels.alphaTensor(rank: z0.rank) * z1 + levels.sigmaTensor(rank: z0.rank) * z0
        return try (flow.output(xt, at: levels, labels: nil) - (z1 - z0)).squared().mean()
    }

    /// One-step distillation (their §2.3): the flow at the start level t0 (≈ 0) learns the
    /// velocity that carries the state x = σ(t0)·Z0 — where sampling from unit noise Z0 starts
    /// — to Z1 in one rectified-flow Euler step, x + (1 - α(t0))·v = Z1:
    /// ||v(x, t0) - (Z1 - x)/(1 - α(t0))||².
    package static func oneStepLoss<N>(flow: DiffusionModel<N>, z0: Tensor, z1: Tensor, start t0: Double? = nil) throws -> Tensor {
        let t = t0 ?? flow.process.noisiestTime
        let levels = NoiseLevels(process: flow.process, times: Array(repeating: t, count: z0.shape[0]))
        let x = z0 * Float(levels.sigma[0])
        let target = try (z1 - x) * Float(1 / (1 - levels.alpha[0]))
        return try (flow.output(x, at: levels, labels: nil) - target).squared().mean()
    }

    /// Straightness S = E ∫₀¹ ||(Z1 - Z0) - v(Z_t, t)||² dt along the flow's own paths
    /// (their eq. 5), by the midpoint rule over `steps` Euler steps; 0 for straight paths.
    package static func straightness(flow: some Denoiser, z0: Tensor, steps: Int = 50) throws -> Double {
        try withoutGradient {
            var x = z0
            var velocities: [Tensor] = []
            let rf = DiffusionProcess.rectifiedFlow()
            for i in 0..<steps {
                let t = (Double(i) + 0.5) / Double(steps)
                // Half step to the midpoint, evaluate, full step (midpoint method).
                let a = Double(i) / Double(steps)
                let p0 = try flow.predict(x, alpha: max(rf.alpha(a), 1e-6), sigma: rf.sigma(a))
                let xm = try x + (p0.data - p0.noise) * Float(0.5 / Double(steps))
                let pm = try flow.predict(xm, alpha: rf.alpha(t), sigma: rf.sigma(t))
                let v = try pm.data - pm.noise
                velocities.append(v)
                x = try x + v * Float(1 / Double(steps))
            }
            let chord = try x - z0
            var s = 0.0
            for v in velocities { s += Double(try (chord - v).squared().sum(axes: Array(1..<z0.rank)).mean().item()) }
            return s / Double(steps)
        }
    }
}
