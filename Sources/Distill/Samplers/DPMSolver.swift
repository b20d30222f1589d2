import Foundation

/// The official DPM-Solver step allocation for a budget of `nfe` evaluations (Lu et al.
/// 2022, Appendix; their code): order 3 → K = nfe/3 + 1 outer steps with orders
/// [3,…,3,2,1] (nfe % 3 == 0), [3,…,3,1] (== 1) or [3,…,3,2] (== 2); order 2 → [2,…,2] for an
/// even budget, [2,…,2,1] for an odd one; order 1 → nfe steps of order 1.
package func dpmSolverSinglestepOrders(nfe: Int, order: Int) throws -> [Int] {
    guard nfe >= 1, (1...3).contains(order) else { throw SamplerError.invalidOption("DPM-Solver needs nfe >= 1 and order 1...3") }
    switch order {
    case 3:
        let k = nfe / 3 + 1
        switch nfe % 3 {
        case 0: return k >= 2 ? Array(repeating: 3, count: k - 2) + [2, 1] : [1]
        case 1: return Array(repeating: 3, count: k - 1) + [1]
        default: return Array(repeating: 3, count: k - 1) + [2]
        }
    case 2:
        return nfe % 2 == 0 ? Array(repeating: 2, count: nfe / 2) : Array(repeating: 2, count: nfe / 2) + [1]
    default:
        return Array(repeating: 1, count: nfe)
    }
}

/// Singlestep DPM-Solver with noise prediction (Lu, Zhou, Bao, Chen, Li & Zhu 2022, Alg. 1–2,
/// eq. 3.7 and Appendix B), h = λ_t - λ_s:
/// order 1 x_t = (α_t/α_s)x_s - σ_t(e^h - 1)ε̂_s (= DDIM);
/// order 2 (r1 = ½) through u at λ_s + r1·h;
/// order 3 (r1 = ⅓, r2 = ⅔) through u1 and u2.
/// `orders` gives each grid step's order (see ``dpmSolverSinglestepOrders(nfe:order:)``); a
/// step into σ = 0 is a plain denoise. NFE = Σ orders (a final denoise costs 1).
package func sampleDPMSolver(_ model: some Denoiser, from x: Tensor, grid: NoiseGrid, orders: [Int], options: SamplerOptions = .init(),
                            onStep: ((SamplerStep) -> Void)? = nil) throws -> SamplerResult {
    guard orders.count == grid.steps, orders.allSatisfy({ (1...3).contains($0) }) else {
        throw SamplerError.invalidGrid("DPM-Solver needs one order in 1...3 per grid step: \(orders.count) orders for \(grid.steps) steps")
    }
    return try runSampler(model, x, grid, options, onStep) { run in
        var xs = x
        for i in 0..<grid.steps {
            let (s, t) = (grid.levels[i], grid.levels[i + 1])
            let ps = try run.predict(xs, s)
            if t.isClean {
                xs = ps.data
            } else {
                xs = try dpmSolverStep(&run, grid, xs, ps.noise, from: s, to: t, order: orders[i])
            }
            run.report(i, grid, xs, ps.data)
        }
        return xs
    }
}

/// One DPM-Solver step of `order` from s (where ε̂ = eps) to t.
func dpmSolverStep<D>(_ run: inout SamplerRun<D>, _ grid: NoiseGrid, _ xs: Tensor, _ eps: Tensor,
                      from s: NoiseLevel, to t: NoiseLevel, order: Int, r1: Double? = nil) throws -> Tensor {
    let h = t.lambda - s.lambda
    // (α_b/α_s)x_s - σ_b(e^{r h} - 1)ε̂_s for a level b at λ_s + r h.
    func firstOrder(_ b: NoiseLevel, _ r: Double) -> [(Double, Tensor)] {
        [(b.alpha / s.alpha, xs), (-b.sigma * expm1(r * h), eps)]
    }
    switch order {
    case 1:
        return try run.combine(firstOrder(t, 1))
    case 2:
        let r = r1 ?? 0.5
        let s1 = grid.level(atLambda: s.lambda + r * h)
        let u = try run.combine(firstOrder(s1, r))
        let e1 = try run.predict(u, s1).noise
        let c = -(t.sigma / (2 * r)) * expm1(h)
        return try run.combine(firstOrder(t, 1) + [(c, e1), (-c, eps)])
    default:
        let (ra, rb) = (1.0 / 3, 2.0 / 3)
        let s1 = grid.level(atLambda: s.lambda + ra * h), s2 = grid.level(atLambda: s.lambda + rb * h)
        let u1 = try run.combine(firstOrder(s1, ra))
        let e1 = try run.predict(u1, s1).noise
        let c2 = -(s2.sigma * rb / ra) * (expm1(rb * h) / (rb * h) - 1)          // on D1 = ε̂(u1) - ε̂_s
        let u2 = try run.combine(firstOrder(s2, rb) + [(c2, e1), (-c2, eps)])
        let e2 = try run.predict(u2, s2).noise
        let c = -(t.sigma / rb) * (expm1(h) / h - 1)                              // on ε̂(u2) - ε̂_s
        return try run.combine(firstOrder(t, 1) + [(c, e2), (-c, eps)])
    }
}

/// Adaptive-step DPM-Solver (Lu et al. 2022, Alg. 4): DPM-Solver-12 (order 1 against order 2)
/// or -23 (order 2 with r1 = ⅓ against order 3), sharing their evaluations; a step in λ is
/// accepted when E = max over rows of RMS((x_high - x_low)/δ) ≤ 1 with
/// δ = max(atol, rtol·max(|x_low|, |x_prev|)), and h ← θ·h·E^(-1/order). Runs from the grid's
/// first level to its last noisy level (then denoises if the grid ends clean). The defaults
/// are the paper's for data in [-1, 1]. NFE is whatever the error control needs.
package func sampleDPMSolverAdaptive(_ model: some Denoiser, from x: Tensor, grid: NoiseGrid, order: Int = 3,
                                    rtol: Double = 0.05, atol: Double = 0.0078, theta: Double = 0.9, initialStep: Double = 0.05,
                                    options: SamplerOptions = .init(), onStep: ((SamplerStep) -> Void)? = nil) throws -> SamplerResult {
    guard order == 2 || order == 3 else { throw SamplerError.invalidOption("adaptive DPM-Solver order must be 2 (-12) or 3 (-23)") }
    return try runSampler(model, x, grid, options, onStep) { run in
        let start = grid.levels[0]
        let endLevel = grid.levels.last!.isClean ? grid.levels[grid.steps - 1] : grid.levels[grid.steps]
        var xs = x, lambda = start.lambda, h = initialStep
        var level = start
        var step = 0
        var ps = try run.predict(xs, level)   // reused across rejected attempts
        while endLevel.lambda - lambda > 1e-10 {
            h = min(h, endLevel.lambda - lambda)
            let target = grid.level(atLambda: lambda + h)
            let low: Tensor, high: Tensor
            if order == 2 {
                low = try dpmSolverStep(&run, grid, xs, ps.noise, from: level, to: target, order: 1)
                high = try dpmSolverStep(&run, grid, xs, ps.noise, from: level, to: target, order: 2)
            } else {
                low = try dpmSolverStep(&run, grid, xs, ps.noise, from: level, to: target, order: 2, r1: 1.0 / 3)
                high = try dpmSolverStep(&run, grid, xs, ps.noise, from: level, to: target, order: 3)
            }
            let e = try adaptiveError(low: low, high: high, previous: xs, rtol: rtol, atol: atol)
            if e <= 1 {
                onStep?(SamplerStep(index: step, from: level, to: target, state: high, denoised: ps.data))
                xs = high
                lambda += h
                level = target
                step += 1
                if endLevel.lambda - lambda > 1e-10 || grid.levels.last!.isClean { ps = try run.predict(xs, level) }
            }
            h = min(theta * h * pow(max(e, 1e-10), -1 / Double(order)), endLevel.lambda - lambda)
        }
        if grid.levels.last!.isClean { xs = ps.data }
        return xs
    }
}

/// max over rows of RMS((high - low)/δ), δ = max(atol, rtol·max(|low|, |previous|)).
func adaptiveError(low: Tensor, high: Tensor, previous: Tensor, rtol: Double, atol: Double) throws -> Double {
    let (l, hgh, p) = (low.scalars, high.scalars, previous.scalars)
    let rows = low.shape[0], per = low.count / rows
    var worst = 0.0
    for r in 0..<rows {
        var acc = 0.0
        for j in (r * per)..<((r + 1) * per) {
            let delta = max(atol, rtol * max(abs(Double(l[j])), abs(Double(p[j]))))
            let e = Double(hgh[j] - l[j]) / delta
            acc += e * e
        }
        worst = max(worst, (acc / Double(per)).squareRoot())
    }
    return worst
}
