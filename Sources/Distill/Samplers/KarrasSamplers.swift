import Foundation

// Samplers that work in σ-form, x̃ = x/α with noise σ̃ = σ/α, on the ODE
// dx̃/dσ̃ = (x̃ - D(x̃; σ̃))/σ̃ (Karras et al. 2022, eq. 4). They take and return VP-form states
// like every sampler: x̃ = x/α at the start, x = α·x̃ at the end.

/// Euler on the probability-flow ODE in σ-form (Karras et al. 2022, Alg. 1 without the
/// correction). Identical to DDIM with η = 0. NFE = steps.
package func sampleEuler(_ model: some Denoiser, from x: Tensor, grid: NoiseGrid, options: SamplerOptions = .init(),
                        onStep: ((SamplerStep) -> Void)? = nil) throws -> SamplerResult {
    try runSampler(model, x, grid, options, onStep) { run in
        let l = grid.levels
        var xt = x * Float(1 / l[0].alpha)
        for i in 0..<grid.steps {
            let (s, sn) = (l[i].sigmaTilde, l[i + 1].sigmaTilde)
            let d0 = try run.denoise(sigmaForm: xt, l[i])
            xt = try run.combine([(sn / s, xt), (1 - sn / s, d0)])          // x̃ + (σ̃n - σ̃)(x̃ - D)/σ̃
            run.report(i, grid, xt * Float(l[i + 1].alpha), d0)
        }
        return xt * Float(l[grid.steps].alpha)
    }
}

/// Heun's second-order method on the probability-flow ODE (Karras et al. 2022, Alg. 1): an
/// Euler step, then the trapezoidal correction with the slope at its end, except on a final
/// step to σ = 0. NFE = 2·steps - 1 when the grid ends clean, else 2·steps.
package func sampleHeun(_ model: some Denoiser, from x: Tensor, grid: NoiseGrid, options: SamplerOptions = .init(),
                       onStep: ((SamplerStep) -> Void)? = nil) throws -> SamplerResult {
    try runSampler(model, x, grid, options, onStep) { run in
        let l = grid.levels
        var xt = x * Float(1 / l[0].alpha)
        for i in 0..<grid.steps {
            let d0 = try run.denoise(sigmaForm: xt, l[i])
            (xt, _) = try heunStep(&run, xt, d0, from: l[i], to: l[i + 1])
            run.report(i, grid, xt * Float(l[i + 1].alpha), d0)
        }
        return xt * Float(l[grid.steps].alpha)
    }
}

/// One Heun step in σ-form from `a` (where D(x̃) = d0) to `b`; Euler when b is clean.
func heunStep<D>(_ run: inout SamplerRun<D>, _ xt: Tensor, _ d0: Tensor, from a: NoiseLevel, to b: NoiseLevel) throws -> (Tensor, Tensor?) {
    let (s, sn) = (a.sigmaTilde, b.sigmaTilde)
    let euler = try run.combine([(sn / s, xt), (1 - sn / s, d0)])
    if b.isClean { return (euler, nil) }
    let d1 = try run.denoise(sigmaForm: euler, b)
    let h = sn - s
    // x̃ + h/2·[(x̃ - D0)/σ̃ + (x̃' - D1)/σ̃n]
    let next = try run.combine([(1 + h / (2 * s), xt), (-h / (2 * s), d0), (h / (2 * sn), euler), (-h / (2 * sn), d1)])
    return (next, d1)
}

/// EDM's stochastic sampler (Karras et al. 2022, Alg. 2): at each level inside
/// [sTmin, sTmax] the noise is first raised by γ = min(sChurn/N, √2 - 1) with fresh noise
/// scaled by sNoise, then a Heun step follows. NFE as Heun.
package func sampleEDMStochastic(_ model: some Denoiser, from x: Tensor, grid: NoiseGrid, sChurn: Double = 40,
                                sTmin: Double = 0.05, sTmax: Double = 50, sNoise: Double = 1.003,
                                options: SamplerOptions = .init(), onStep: ((SamplerStep) -> Void)? = nil) throws -> SamplerResult {
    try runSampler(model, x, grid, options, onStep) { run in
        let l = grid.levels
        var xt = x * Float(1 / l[0].alpha)
        for i in 0..<grid.steps {
            let s = l[i].sigmaTilde
            let gamma = (sTmin...sTmax).contains(s) ? min(sChurn / Double(grid.steps), 2.0.squareRoot() - 1) : 0
            var level = l[i]
            if gamma > 0 {
                let raised = s * (1 + gamma)
                level = grid.level(atLambda: -log(raised))
                xt = try run.combine([(1, xt)], noiseStd: (raised * raised - s * s).squareRoot() * sNoise)
            }
            let d0 = try run.denoise(sigmaForm: xt, level)
            (xt, _) = try heunStep(&run, xt, d0, from: level, to: l[i + 1])
            run.report(i, grid, xt * Float(l[i + 1].alpha), d0)
        }
        return xt * Float(l[grid.steps].alpha)
    }
}

/// Euler ancestral (k-diffusion's `sample_euler_ancestral`): an Euler step down to
/// σ_down, then fresh noise of std σ_up, with σ_up = min(σn, η·√(σn²(σ² - σn²)/σ²)) and
/// σ_down = √(σn² - σ_up²) (in σ-form). NFE = steps.
package func sampleEulerAncestral(_ model: some Denoiser, from x: Tensor, grid: NoiseGrid, eta: Double = 1,
                                 options: SamplerOptions = .init(), onStep: ((SamplerStep) -> Void)? = nil) throws -> SamplerResult {
    try runSampler(model, x, grid, options, onStep) { run in
        let l = grid.levels
        var xt = x * Float(1 / l[0].alpha)
        for i in 0..<grid.steps {
            let (s, sn) = (l[i].sigmaTilde, l[i + 1].sigmaTilde)
            let up = min(sn, eta * (sn * sn * (s * s - sn * sn) / (s * s)).squareRoot())
            let down = (sn * sn - up * up).squareRoot()
            let d0 = try run.denoise(sigmaForm: xt, l[i])
            xt = try run.combine([(down / s, xt), (1 - down / s, d0)], noiseStd: up)
            run.report(i, grid, xt * Float(l[i + 1].alpha), d0)
        }
        return xt * Float(l[grid.steps].alpha)
    }
}

/// DPM-2 (k-diffusion's `sample_dpm_2`, after Lu et al. 2022): Euler to the geometric
/// midpoint √(σ̃σ̃n), then the full step with the midpoint's slope; a plain Euler step into
/// σ = 0. NFE = 2·steps - 1 with a clean end.
package func sampleDPM2(_ model: some Denoiser, from x: Tensor, grid: NoiseGrid, options: SamplerOptions = .init(),
                       onStep: ((SamplerStep) -> Void)? = nil) throws -> SamplerResult {
    try runSampler(model, x, grid, options, onStep) { run in
        let l = grid.levels
        var xt = x * Float(1 / l[0].alpha)
        for i in 0..<grid.steps {
            let (s, sn) = (l[i].sigmaTilde, l[i + 1].sigmaTilde)
            let d0 = try run.denoise(sigmaForm: xt, l[i])
            if l[i + 1].isClean {
                xt = d0
            } else {
                let mid = (s * sn).squareRoot()
                let xm = try run.combine([(mid / s, xt), (1 - mid / s, d0)])
                let dm = try run.denoise(sigmaForm: xm, grid.level(atLambda: -log(mid)))
                xt = try run.combine([(1, xt), ((sn - s) / mid, xm), (-(sn - s) / mid, dm)])   // x̃ + (σ̃n - σ̃)(x̃m - Dm)/σ̃m
            }
            run.report(i, grid, xt * Float(l[i + 1].alpha), d0)
        }
        return xt * Float(l[grid.steps].alpha)
    }
}

/// Linear multistep (k-diffusion's `sample_lms`): x̃ += Σⱼ cⱼ·dⱼ over the last `order` slopes
/// d = (x̃ - D)/σ̃, cⱼ = ∫ from σ̃ᵢ to σ̃ᵢ₊₁ of the Lagrange basis polynomial of node j over those
/// σ̃'s (exact Gauss–Legendre quadrature); the order ramps up as min(i + 1, order). NFE = steps.
package func sampleLMS(_ model: some Denoiser, from x: Tensor, grid: NoiseGrid, order: Int = 4, options: SamplerOptions = .init(),
                      onStep: ((SamplerStep) -> Void)? = nil) throws -> SamplerResult {
    guard (1...4).contains(order) else { throw SamplerError.invalidOption("LMS order \(order); expected 1...4") }
    return try runSampler(model, x, grid, options, onStep) { run in
        let l = grid.levels
        var xt = x * Float(1 / l[0].alpha)
        var slopes: [(sigma: Double, d: Tensor)] = []   // d = (x̃ - D)/σ̃, newest last
        for i in 0..<grid.steps {
            let d0 = try run.denoise(sigmaForm: xt, l[i])
            let s = l[i].sigmaTilde
            slopes.append((s, try run.combine([(1 / s, xt), (-1 / s, d0)])))
            if slopes.count > order { slopes.removeFirst() }
            let nodes = slopes.map(\.sigma)
            var terms: [(Double, Tensor)] = [(1, xt)]
            for (j, slope) in slopes.enumerated() {
                terms.append((lagrangeIntegral(nodes: nodes, basis: j, from: s, to: l[i + 1].sigmaTilde), slope.d))
            }
            xt = try run.combine(terms)
            run.report(i, grid, xt * Float(l[i + 1].alpha), d0)
        }
        return xt * Float(l[grid.steps].alpha)
    }
}

/// ∫ₐᵇ ℓⱼ(τ) dτ for the Lagrange basis polynomial ℓⱼ over `nodes` (degree ≤ 3 here), by
/// 4-point Gauss–Legendre quadrature (exact up to degree 7).
func lagrangeIntegral(nodes: [Double], basis j: Int, from a: Double, to b: Double) -> Double {
    let gx = [-0.8611363115940526, -0.3399810435848563, 0.3399810435848563, 0.8611363115940526]
    let gw = [0.3478548451374538, 0.6521451548625461, 0.6521451548625461, 0.3478548451374538]
    var sum = 0.0
    for (u, w) in zip(gx, gw) {
        let tau = 0.5 * (b - a) * u + 0.5 * (a + b)
        var p = 1.0
        for (k, nk) in nodes.enumerated() where k != j { p *= (tau - nk) / (nodes[j] - nk) }
        sum += w * p
    }
    return 0.5 * (b - a) * sum
}
