import Foundation

// DPM-Solver++ (Lu, Zhou, Bao, Chen, Li & Zhu 2022b): exponential integrators with data
// prediction D = x̂0, h = λ_t - λ_s. Order 1: x_t = (σ_t/σ_s)x_s - α_t(e^{-h} - 1)D_s. A step
// into σ = 0 (e^{-h} = 0) is x_t = D: the data prediction already made, so it costs no NFE.

/// DPM-Solver++(2S) (Lu et al. 2022b, Alg. 1): a singlestep midpoint method, the intermediate
/// point at λ_s + h/2. NFE = 2 per step (1 for a step into σ = 0, which is the denoise).
package func sampleDPMSolverPP2S(_ model: some Denoiser, from x: Tensor, grid: NoiseGrid, options: SamplerOptions = .init(),
                                onStep: ((SamplerStep) -> Void)? = nil) throws -> SamplerResult {
    try runSampler(model, x, grid, options, onStep) { run in
        var xs = x
        let r = 0.5
        for i in 0..<grid.steps {
            let (s, t) = (grid.levels[i], grid.levels[i + 1])
            let d0 = try run.predict(xs, s).data
            if t.isClean { xs = d0 } else {
                let h = t.lambda - s.lambda
                let s1 = grid.level(atLambda: s.lambda + r * h)
                let u = try run.combine([(s1.sigma / s.sigma, xs), (-s1.alpha * expm1(-r * h), d0)])
                let d1 = try run.predict(u, s1).data
                let c = -t.alpha * expm1(-h)
                xs = try run.combine([(t.sigma / s.sigma, xs), (c * (1 - 1 / (2 * r)), d0), (c / (2 * r), d1)])
            }
            run.report(i, grid, xs, d0)
        }
        return xs
    }
}

/// DPM-Solver++(2M) (Lu et al. 2022b, Alg. 2): multistep, with r = h_prev/h,
/// D = (1 + 1/(2r))D_s - (1/(2r))D_prev in the order-1 formula; the first step is order 1, and
/// the last is order 1 when `options.lowerOrderFinal` applies or it goes into σ = 0.
/// NFE = steps (steps - 1 when the grid ends clean).
package func sampleDPMSolverPP2M(_ model: some Denoiser, from x: Tensor, grid: NoiseGrid, options: SamplerOptions = .init(),
                                onStep: ((SamplerStep) -> Void)? = nil) throws -> SamplerResult {
    try sampleDPMSolverPPMultistep(model, from: x, grid: grid, order: 2, options: options, onStep: onStep)
}

/// How the third-order term of DPM-Solver++(3M) is weighted.
package enum DPMSolverPP3MVariant: String, Sendable, Codable, CaseIterable {
    /// x_t = … - 2α_tφ₃D2: the truly third-order update (see `docs/methods.md` §5).
    case thirdOrder = "third-order"
    /// x_t = … - α_tφ₃D2, as in the official DPM-Solver code, diffusers and k-diffusion; it
    /// makes the method second order.
    case compatible
}

/// DPM-Solver++(3M): a multistep third-order update from the last three data predictions
/// (it exists only in code, not in the paper): with h = λ_t - λ₀, r₀ = h₀/h, r₁ = h₁/h,
/// D1₀ = (D₀ - D₋₁)/r₀, D1₁ = (D₋₁ - D₋₂)/r₁, D1 = D1₀ + r₀/(r₀ + r₁)(D1₀ - D1₁),
/// D2 = (D1₀ - D1₁)/(r₀ + r₁), φ₁ = e^{-h} - 1, φ₂ = φ₁/h + 1, φ₃ = φ₂/h - ½:
/// x_t = (σ_t/σ₀)x - α_tφ₁D₀ + α_tφ₂D1 - 2α_tφ₃D2 (``DPMSolverPP3MVariant/thirdOrder``).
/// Warms up with orders 1 and 2. NFE = steps (steps - 1 with a clean end).
package func sampleDPMSolverPP3M(_ model: some Denoiser, from x: Tensor, grid: NoiseGrid, variant: DPMSolverPP3MVariant = .thirdOrder,
                                options: SamplerOptions = .init(), onStep: ((SamplerStep) -> Void)? = nil) throws -> SamplerResult {
    try sampleDPMSolverPPMultistep(model, from: x, grid: grid, order: 3, variant: variant, options: options, onStep: onStep)
}

func sampleDPMSolverPPMultistep(_ model: some Denoiser, from x: Tensor, grid: NoiseGrid, order: Int,
                                variant: DPMSolverPP3MVariant = .thirdOrder, options: SamplerOptions,
                                onStep: ((SamplerStep) -> Void)?) throws -> SamplerResult {
    try runSampler(model, x, grid, options, onStep) { run in
        var xs = x
        var history: [(lambda: Double, d: Tensor)] = []   // newest last
        let lowerFinal = options.lowerOrderFinal.applies(steps: grid.steps)
        for i in 0..<grid.steps {
            let (s, t) = (grid.levels[i], grid.levels[i + 1])
            let d0 = try run.predict(xs, s).data
            history.append((s.lambda, d0))
            if history.count > 3 { history.removeFirst() }
            if t.isClean { xs = d0; run.report(i, grid, xs, d0); continue }
            let remaining = grid.steps - i
            var k = min(order, history.count)
            if lowerFinal { k = min(k, remaining) }
            let h = t.lambda - s.lambda
            let phi1 = expm1(-h)
            var terms: [(Double, Tensor)] = [(t.sigma / s.sigma, xs)]
            switch k {
            case 1:
                terms.append((-t.alpha * phi1, d0))
            case 2:
                let r = (s.lambda - history[history.count - 2].lambda) / h
                let prev = history[history.count - 2].d
                terms += [(-t.alpha * phi1 * (1 + 1 / (2 * r)), d0), (t.alpha * phi1 / (2 * r), prev)]
            default:
                let (dm1, dm2) = (history[history.count - 2], history[history.count - 3])
                let r0 = (s.lambda - dm1.lambda) / h, r1 = (dm1.lambda - dm2.lambda) / h
                let phi2 = phi1 / h + 1, phi3 = phi2 / h - 0.5
                let w3 = variant == .thirdOrder ? 2.0 : 1.0
                // D1₀ = (D₀ - D₋₁)/r₀, D1₁ = (D₋₁ - D₋₂)/r₁ as coefficient vectors on (D₀, D₋₁, D₋₂).
                let d10 = [1 / r0, -1 / r0, 0], d11 = [0, 1 / r1, -1 / r1]
                let d1 = (0..<3).map { d10[$0] + r0 / (r0 + r1) * (d10[$0] - d11[$0]) }
                let d2 = (0..<3).map { (d10[$0] - d11[$0]) / (r0 + r1) }
                let c = (0..<3).map { j in
                    (j == 0 ? -t.alpha * phi1 : 0) + t.alpha * phi2 * d1[j] - w3 * t.alpha * phi3 * d2[j]
                }
                terms += [(c[0], d0), (c[1], dm1.d), (c[2], dm2.d)]
            }
            xs = try run.combine(terms)
            run.report(i, grid, xs, d0)
        }
        return xs
    }
}

/// How SDE-DPM-Solver++(2M) weighs its first-order correction.
package enum SDEDPMSolverVariant: String, Sendable, Codable, CaseIterable {
    /// ½α_t(1 - e^{-2h})·D1.
    case midpoint
    /// α_t((1 - e^{-2h})/(-2h) + 1)·D1.
    case heun
}

/// SDE-DPM-Solver++(2M) (Lu et al. 2022b, §4; the SDE variant of their code), with
/// D1 = (D₀ - D_prev)/r, r = h_prev/h:
/// x_t = (σ_t/σ₀)e^{-h}x + α_t(1 - e^{-2h})D₀ + ½α_t(1 - e^{-2h})D1 + σ_t√(1 - e^{-2h})·z
/// (midpoint variant). The first step (and a lower-order final step) drops D1; a step into
/// σ = 0 is the denoise. NFE = steps (steps - 1 with a clean end).
package func sampleSDEDPMSolverPP2M(_ model: some Denoiser, from x: Tensor, grid: NoiseGrid, variant: SDEDPMSolverVariant = .midpoint,
                                   options: SamplerOptions = .init(), onStep: ((SamplerStep) -> Void)? = nil) throws -> SamplerResult {
    try runSampler(model, x, grid, options, onStep) { run in
        var xs = x
        var previous: (lambda: Double, d: Tensor)?
        let lowerFinal = options.lowerOrderFinal.applies(steps: grid.steps)
        for i in 0..<grid.steps {
            let (s, t) = (grid.levels[i], grid.levels[i + 1])
            let d0 = try run.predict(xs, s).data
            defer { previous = (s.lambda, d0) }
            if t.isClean { xs = d0; run.report(i, grid, xs, d0); continue }
            let h = t.lambda - s.lambda
            let e2 = -expm1(-2 * h)   // 1 - e^{-2h}
            var terms: [(Double, Tensor)] = [(t.sigma / s.sigma * exp(-h), xs), (t.alpha * e2, d0)]
            if let p = previous, !(lowerFinal && i == grid.steps - 1) {
                let r = (s.lambda - p.lambda) / h
                let w = variant == .midpoint ? 0.5 * t.alpha * e2 : t.alpha * (e2 / (-2 * h) + 1)
                terms += [(w / r, d0), (-w / r, p.d)]
            }
            xs = try run.combine(terms, noiseStd: t.sigma * e2.squareRoot())
            run.report(i, grid, xs, d0)
        }
        return xs
    }
}
