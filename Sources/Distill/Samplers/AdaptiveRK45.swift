import Foundation

/// Probability-flow ODE sampling with adaptive Dormand–Prince 5(4) steps (Dormand & Prince
/// 1980; the RK45 sampler of Song et al. 2021), in the process-independent σ-form
/// dx̃/d(log σ̃) = x̃ - D(x̃; σ̃), x̃ = x/α, σ̃ = σ/α (Karras et al. 2022, eq. 4).
///
/// Starts from the state x at time `t0` of `process` and returns the state at `t1` (same
/// VP-form scaling), with the number of denoiser evaluations (NFE). Intermediate levels use
/// the process's time for λ = -log σ̃. The accuracy reference among samplers, and the sampler
/// of rectified flows.
package func sampleAdaptiveRK45(_ model: some Denoiser, from x: Tensor, process: some NoiseProcess,
                               start t0: Double, end t1: Double, tolerance: Double = 1e-5,
                               labels: [Int]? = nil) throws -> (sample: Tensor, evaluations: Int) {
    let (a0, s0) = (process.alpha(t0), process.sigma(t0))
    let (a1, s1) = (process.alpha(t1), process.sigma(t1))
    guard a0 > 0, a1 > 0, s0 > 0 else {
        throw TensorError.invalidArgument(operation: "sampleAdaptiveRK45", message: "needs α > 0 at both ends and σ > 0 at the start")
    }
    let shape = x.shape, batch = shape.first ?? 1
    let y0 = x.scalars.map { Double($0) / a0 }
    let result = try withoutGradient {
        try DormandPrince.integrate(y0, from: log(s0 / a0), to: log(max(s1 / a1, 1e-7)), rtol: tolerance, atol: tolerance) { s, y in
            let lambda = -s
            guard let t = process.time(forLogSNR: lambda) else {
                throw TensorError.invalidArgument(operation: "sampleAdaptiveRK45", message: "no time with log-SNR \(lambda) in \(process.name)")
            }
            let (a, sg) = (process.alpha(t), process.sigma(t))
            let state = try Tensor(shape: shape, scalars: y.map { Float($0 * a) })
            let d = try model.predict(state, at: NoiseLevels(alpha: a, sigma: sg, time: t, batch: batch), labels: labels).data
            return zip(y, d.scalars).map { $0 - Double($1) }
        }
    }
    return (try Tensor(shape: shape, scalars: result.state.map { Float($0 * a1) }), result.evaluations)
}

/// RK45 over a grid: from its first level to its last noisy level, then the final denoise
/// when the grid ends clean (1 more NFE).
func sampleRK45(_ model: some Denoiser, from x: Tensor, grid: NoiseGrid, labels: [Int]?) throws -> SamplerResult {
    guard let p = grid.process else { throw SamplerError.invalidGrid("RK45 needs a grid built from a process") }
    let l = grid.levels
    let end = l.last!.isClean ? l[l.count - 2] : l.last!
    guard l.count >= (l.last!.isClean ? 3 : 2) else {
        throw SamplerError.invalidGrid("RK45 needs a grid with a noisy level after its first one")
    }
    let (ta, tb) = (try levelTime(l[0], p), try levelTime(end, p))
    var (out, nfe) = try sampleAdaptiveRK45(model, from: x, process: p, start: ta, end: tb, labels: labels)
    if l.last!.isClean {
        out = try withoutGradient { try model.predict(out, alpha: end.alpha, sigma: end.sigma, time: end.time, labels: labels).data }
        nfe += 1
    }
    return SamplerResult(sample: out, evaluations: nfe)
}
