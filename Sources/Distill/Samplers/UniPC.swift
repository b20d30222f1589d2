import Foundation

/// UniPC's B(h) choice (Zhao, Bai, Rao, Zhou & Lu 2023, §3.3).
package enum UniPCVariant: String, Sendable, Codable, CaseIterable {
    /// B(h) = h (here hh = -h).
    case bh1
    /// B(h) = e^h - 1.
    case bh2
}

/// UniPC (Zhao et al. 2023): a unified multistep predictor (UniP) and corrector (UniC) with
/// data prediction, following the official `multistep_uni_pc_bh_update`. With history newest
/// first, r_k = (λ_prev_k - λ₀)/h and D_k = (m_prev_k - m₀)/r_k; at hh = -h, B = hh (bh1) or
/// e^hh - 1 (bh2), R[i][k] = r_k^i and b_i = i!·φ_{i+1}(hh)/B computed by the official
/// recursion; the predictor solves the system without its last row/column (ρ = ½ at order 2),
/// the corrector appends r = 1 for the new point (ρ = ½ at order 1):
/// x_t = (σ_t/σ₀)x - α_t(e^{hh} - 1)m₀ - α_t·B·Σρ_k D_k (+ ρ_last·(m_t - m₀) in the corrector).
/// m_t is evaluated at the uncorrected x_t and becomes the next history entry, so the
/// corrector costs no NFE; no corrector on the last step. Orders ramp up during warm-up;
/// the last steps drop order when `options.lowerOrderFinal` applies. A step into σ = 0 is
/// the denoise. NFE = steps (- 1 with a clean end).
package func sampleUniPC(_ model: some Denoiser, from x: Tensor, grid: NoiseGrid, order: Int = 2, variant: UniPCVariant = .bh2,
                        corrector: Bool = true, options: SamplerOptions = .init(),
                        onStep: ((SamplerStep) -> Void)? = nil) throws -> SamplerResult {
    guard (1...3).contains(order) else { throw SamplerError.invalidOption("UniPC order \(order); expected 1...3") }
    return try runSampler(model, x, grid, options, onStep) { run in
        var xs = x
        var history: [(lambda: Double, m: Tensor)] = []   // newest first
        var m0 = try run.predict(xs, grid.levels[0]).data
        let lowerFinal = options.lowerOrderFinal.applies(steps: grid.steps)
        for i in 0..<grid.steps {
            let (s, t) = (grid.levels[i], grid.levels[i + 1])
            history.insert((s.lambda, m0), at: 0)
            if history.count > order { history.removeLast() }
            if t.isClean { xs = m0; run.report(i, grid, xs, m0); continue }
            var k = min(order, i + 1)
            if lowerFinal { k = min(k, grid.steps - i) }
            let h = t.lambda - s.lambda, hh = -h
            let hPhi1 = expm1(hh)
            let bh = variant == .bh1 ? hh : hPhi1
            // r_k and D_k (as (weight on m_prev_k, weight on m₀)) for the k - 1 previous points.
            var rks: [Double] = []
            for j in 1..<k { rks.append((history[j].lambda - s.lambda) / h) }
            rks.append(1)
            var bvec: [Double] = []
            var hPhiK = hPhi1 / hh - 1
            var factorial = 1.0
            for n in 1...k {
                bvec.append(hPhiK * factorial / bh)
                factorial *= Double(n + 1)
                hPhiK = hPhiK / hh - 1 / factorial
            }
            let base: [(Double, Tensor)] = [(t.sigma / s.sigma, xs), (-t.alpha * hPhi1, m0)]
            // Predictor.
            var pred = base
            if k >= 2 {
                let rhoP = k == 2 ? [0.5] : solveLinear((0..<(k - 1)).map { row in (0..<(k - 1)).map { pow(rks[$0], Double(row)) } },
                                                         Array(bvec.prefix(k - 1)))
                for j in 0..<(k - 1) {
                    let w = -t.alpha * bh * rhoP[j] / rks[j]       // on D_j = (m_prev_j - m₀)/r_j
                    pred += [(w, history[j + 1].m), (-w, m0)]
                }
            }
            let xPred = try run.combine(pred)
            let last = i == grid.steps - 1
            let mt = last ? nil : try run.predict(xPred, t).data
            if corrector, let mt {
                let rhoC = k == 1 ? [0.5] : solveLinear((0..<k).map { row in (0..<k).map { pow(rks[$0], Double(row)) } }, bvec)
                var corr = base
                for j in 0..<(k - 1) {
                    let w = -t.alpha * bh * rhoC[j] / rks[j]
                    corr += [(w, history[j + 1].m), (-w, m0)]
                }
                let wLast = -t.alpha * bh * rhoC[k - 1]
                corr += [(wLast, mt), (-wLast, m0)]
                xs = try run.combine(corr)
            } else {
                xs = xPred
            }
            if let mt { m0 = mt }
            run.report(i, grid, xs, m0)
        }
        return xs
    }
}

/// Solves the small dense system A·x = b by Gaussian elimination with partial pivoting.
func solveLinear(_ a: [[Double]], _ b: [Double]) -> [Double] {
    var m = a, v = b
    let n = v.count
    for c in 0..<n {
        let p = (c..<n).max(by: { abs(m[$0][c]) < abs(m[$1][c]) })!
        m.swapAt(c, p)
        v.swapAt(c, p)
        for r in (c + 1)..<n {
            let f = m[r][c] / m[c][c]
            for k in c..<n { m[r][k] -= f * m[c][k] }
            v[r] -= f * v[c]
        }
    }
    var x = [Double](repeating: 0, count: n)
    for r in stride(from: n - 1, through: 0, by: -1) {
        var s = v[r]
        for k in (r + 1)..<n { s -= m[r][k] * x[k] }
        x[r] = s / m[r][r]
    }
    return x
}
