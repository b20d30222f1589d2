import Foundation

/// tAB-DEIS (Zhang & Chen 2023, "Fast sampling of diffusion models with exponential
/// integrator", eq. 14–15): with x̃ = x/α the ODE is dx̃ = ε̂·dσ̃ exactly, and ε̂ along the
/// step is extrapolated by the Lagrange polynomial in t through the last `order` evaluations,
/// so x_t' = (α_t'/α_t)x_t + α_t'·Σⱼ Cⱼ ε̂ⱼ with Cⱼ = ∫ ℓⱼ(τ) dσ̃(τ) by Gauss–Legendre
/// quadrature over the step. Orders ramp up as min(i + 1, order). Needs the grid's process
/// (for t); a step into σ = 0 is the denoise. NFE = steps (- 1 with a clean end).
package func sampleDEIS(_ model: some Denoiser, from x: Tensor, grid: NoiseGrid, order: Int = 3, options: SamplerOptions = .init(),
                       onStep: ((SamplerStep) -> Void)? = nil) throws -> SamplerResult {
    guard (1...3).contains(order) else { throw SamplerError.invalidOption("DEIS order \(order); expected 1...3") }
    guard let process = grid.process else { throw SamplerError.invalidGrid("tAB-DEIS needs a grid built from a process (it interpolates in t)") }
    return try runSampler(model, x, grid, options, onStep) { run in
        var xs = x
        var history: [(t: Double, eps: Tensor)] = []   // newest last
        let lowerFinal = options.lowerOrderFinal.applies(steps: grid.steps)
        for i in 0..<grid.steps {
            let (a, b) = (grid.levels[i], grid.levels[i + 1])
            let p = try run.predict(xs, a)
            if b.isClean { xs = p.data; run.report(i, grid, xs, p.data); continue }
            let (t0, t1) = (try levelTime(a, process), try levelTime(b, process))
            history.append((t0, p.noise))
            if history.count > order { history.removeFirst() }
            var k = history.count
            if lowerFinal { k = min(k, grid.steps - i) }
            let used = Array(history.suffix(k))
            let nodes = used.map { $0.t }
            var terms: [(Double, Tensor)] = [(b.alpha / a.alpha, xs)]
            for (j, e) in used.enumerated() {
                terms.append((b.alpha * deisCoefficient(process, nodes: nodes, basis: j, from: t0, to: t1), e.eps))
            }
            xs = try run.combine(terms)
            run.report(i, grid, xs, p.data)
        }
        return xs
    }
}

/// ∫ from t0 to t1 of ℓⱼ(τ)·dσ̃/dτ dτ, σ̃ = σ/α, by 8-point Gauss–Legendre (dσ̃/dτ by a central
/// difference of relative step 1e-6).
func deisCoefficient(_ p: any NoiseProcess, nodes: [Double], basis j: Int, from t0: Double, to t1: Double) -> Double {
    let gx = [-0.9602898564975363, -0.7966664774136267, -0.5255324099163290, -0.1834346424956498,
              0.1834346424956498, 0.5255324099163290, 0.7966664774136267, 0.9602898564975363]
    let gw = [0.1012285362903763, 0.2223810344533745, 0.3137066458778873, 0.3626837833783620,
              0.3626837833783620, 0.3137066458778873, 0.2223810344533745, 0.1012285362903763]
    let tilde = { (t: Double) in p.sigma(t) / p.alpha(t) }
    var sum = 0.0
    for (u, w) in zip(gx, gw) {
        let tau = 0.5 * (t1 - t0) * u + 0.5 * (t0 + t1)
        let dt = 1e-6 * max(abs(tau), 1e-3)
        let slope = (tilde(tau + dt) - tilde(tau - dt)) / (2 * dt)
        var l = 1.0
        for (k, nk) in nodes.enumerated() where k != j { l *= (tau - nk) / (nodes[j] - nk) }
        sum += w * l * slope
    }
    return 0.5 * (t1 - t0) * sum
}

/// Which warm-up the pseudo linear multistep family uses.
package enum PNDMWarmup: String, Sendable, Codable, CaseIterable {
    /// PNDM (Liu, Ren, Lin & Zhao 2022): three pseudo Runge–Kutta steps (4 NFE each).
    case pseudoRungeKutta = "prk"
    /// diffusers' PLMS: the first step repeated with (e_t + e_next)/2, then AB2 and AB3.
    case plms
    /// iPNDM: lower-order Adams–Bashforth steps (AB1, AB2, AB3) first, 1 NFE each.
    case lowerOrder = "ipndm"
}

/// Pseudo numerical methods (Liu et al. 2022, "PNDM"): ε̂ combined by the 4th-order Adams–
/// Bashforth rule e' = (55e₀ - 59e₋₁ + 37e₋₂ - 9e₋₃)/24 and fed to the DDIM transfer
/// φ(x, e', t → t') = α_t'·(x - σ_t e')/α_t + σ_t'·e'; `warmup` picks how the first three steps
/// are taken. A step into σ = 0 is the denoise with the combined ε̂.
package func samplePNDM(_ model: some Denoiser, from x: Tensor, grid: NoiseGrid, warmup: PNDMWarmup = .pseudoRungeKutta,
                       options: SamplerOptions = .init(), onStep: ((SamplerStep) -> Void)? = nil) throws -> SamplerResult {
    try runSampler(model, x, grid, options, onStep) { run in
        var xs = x
        var eps: [Tensor] = []   // newest last
        func transfer(_ run: inout SamplerRun<some Denoiser>, _ x: Tensor, _ e: [(Double, Tensor)], _ a: NoiseLevel, _ b: NoiseLevel) throws -> Tensor {
            // α_b(x - σ_a e)/α_a + σ_b e with e = Σ w e_k.
            let k = b.sigma - b.alpha * a.sigma / a.alpha
            return try run.combine([(b.alpha / a.alpha, x)] + e.map { (k * $0.0, $0.1) })
        }
        for i in 0..<grid.steps {
            let (a, b) = (grid.levels[i], grid.levels[i + 1])
            let e0 = try run.predict(xs, a).noise
            eps.append(e0)
            if eps.count > 4 { eps.removeFirst() }
            let n = eps.count
            var combo: [(Double, Tensor)]
            if n >= 4 {
                combo = [(55.0 / 24, eps[3]), (-59.0 / 24, eps[2]), (37.0 / 24, eps[1]), (-9.0 / 24, eps[0])]
            } else {
                switch warmup {
                case .pseudoRungeKutta where !b.isClean:
                    let mid = midLevel(grid, a, b)
                    let x1 = try transfer(&run, xs, [(1, e0)], a, mid)
                    let e2 = try run.predict(x1, mid).noise
                    let x2 = try transfer(&run, xs, [(1, e2)], a, mid)
                    let e3 = try run.predict(x2, mid).noise
                    let x3 = try transfer(&run, xs, [(1, e3)], a, b)
                    let e4 = try run.predict(x3, b).noise
                    combo = [(1.0 / 6, e0), (2.0 / 6, e2), (2.0 / 6, e3), (1.0 / 6, e4)]
                case .plms where n == 1 && !b.isClean:
                    let xn = try transfer(&run, xs, [(1, e0)], a, b)
                    let e1 = try run.predict(xn, b).noise
                    combo = [(0.5, e0), (0.5, e1)]
                default:
                    combo = n == 1 ? [(1, eps[0])]
                        : n == 2 ? [(1.5, eps[1]), (-0.5, eps[0])]
                        : [(23.0 / 12, eps[2]), (-16.0 / 12, eps[1]), (5.0 / 12, eps[0])]
                }
            }
            xs = try transfer(&run, xs, combo, a, b)
            run.report(i, grid, xs, nil)
        }
        return xs
    }
}

/// The level halfway between two grid levels: in time when the grid has a process, else in λ.
func midLevel(_ grid: NoiseGrid, _ a: NoiseLevel, _ b: NoiseLevel) -> NoiseLevel {
    if let p = grid.process, let ta = a.time ?? p.time(forLogSNR: a.lambda), let tb = b.time ?? p.time(forLogSNR: b.lambda) {
        let t = 0.5 * (ta + tb)
        return NoiseLevel(alpha: p.alpha(t), sigma: p.sigma(t), time: t)
    }
    return grid.level(atLambda: 0.5 * (a.lambda + b.lambda))
}

/// Rectified-flow Euler (Liu, Gong & Liu 2022): x_t' = x_t + (t' - t)·û with û = x̂0 - ε̂ the
/// predicted velocity; written with the grid's (α, σ) as x + (α' - α)x̂0 + (σ' - σ)ε̂, which is
/// that update for α = t, σ = 1 - t and a first-order step along (α, σ) for other processes.
/// NFE = steps.
package func sampleRectifiedFlowEuler(_ model: some Denoiser, from x: Tensor, grid: NoiseGrid, options: SamplerOptions = .init(),
                                     onStep: ((SamplerStep) -> Void)? = nil) throws -> SamplerResult {
    try runSampler(model, x, grid, options, onStep) { run in
        var xs = x
        for i in 0..<grid.steps {
            let (a, b) = (grid.levels[i], grid.levels[i + 1])
            let p = try run.predict(xs, a)
            xs = try run.combine([(1, xs), (b.alpha - a.alpha, p.data), (b.sigma - a.sigma, p.noise)])
            run.report(i, grid, xs, p.data)
        }
        return xs
    }
}
