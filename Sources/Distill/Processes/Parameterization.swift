/// What a network's output predicts (`docs/methods.md` §2). All convert to each other exactly,
/// given the state x = α·x0 + σ·ε.
public enum Parameterization: String, Sendable, Codable, CaseIterable {
    /// The noise ε (Ho et al. 2020).
    case epsilon
    /// The data x0 (a denoiser D).
    case data
    /// v = α·ε - σ·x0 (Salimans & Ho 2022); inverted exactly for any (α, σ):
    /// x0 = (αx - σv)/(α² + σ²), ε = (σx + αv)/(α² + σ²).
    case v
    /// The score ∇log p = -ε/σ.
    case score
    /// EDM's F with D = c_skip·x̃ + c_out·F, x̃ = x/α, σ̃ = σ/α, c_skip = σ_d²/(σ̃² + σ_d²),
    /// c_out = σ̃σ_d/√(σ̃² + σ_d²) (Karras et al. 2022, Table 1).
    case edm
    /// Flow velocity u = x0 - ε (rectified flow's X1 - X0); x0 = (x + σu)/(α + σ),
    /// ε = (x - αu)/(α + σ).
    case velocity

    /// (x0, ε) from a raw network output. `alpha` and `sigma` broadcast against x (scalars or
    /// one per row, shaped [B, 1, ...]).
    package func dataAndNoise(from out: Tensor, x: Tensor, alpha a: Tensor, sigma s: Tensor,
                             sigmaData: Float = 0.5) throws -> (x0: Tensor, epsilon: Tensor) {
        switch self {
        case .epsilon:
            return (try (x - s * out) / a, out)
        case .data:
            return (out, try (x - a * out) / s)
        case .v:
            let norm = try a * a + s * s
            return (try (a * x - s * out) / norm, try (s * x + a * out) / norm)
        case .score:
            let eps = try -(s * out)
            return (try (x - s * eps) / a, eps)
        case .edm:
            let (skip, outScale) = try Parameterization.edmScalings(alpha: a, sigma: s, sigmaData: sigmaData)
            let x0 = try skip * (x / a) + outScale * out
            return (x0, try (x - a * x0) / s)
        case .velocity:
            let denom = try a + s
            return (try (x + s * out) / denom, try (x - a * out) / denom)
        }
    }

    /// The raw output this parameterization would need to give (x0, ε): the training target.
    package func target(x0: Tensor, epsilon: Tensor, x: Tensor, alpha a: Tensor, sigma s: Tensor,
                       sigmaData: Float = 0.5) throws -> Tensor {
        switch self {
        case .epsilon: return epsilon
        case .data: return x0
        case .v: return try a * epsilon - s * x0
        case .score: return try -(epsilon / s)
        case .edm:
            let (skip, outScale) = try Parameterization.edmScalings(alpha: a, sigma: s, sigmaData: sigmaData)
            return try (x0 - skip * (x / a)) / outScale
        case .velocity: return try x0 - epsilon
        }
    }

    /// EDM's c_skip and c_out at σ̃ = σ/α.
    static func edmScalings(alpha a: Tensor, sigma s: Tensor, sigmaData: Float) throws -> (skip: Tensor, out: Tensor) {
        let st = try s / a
        let sd2 = sigmaData * sigmaData
        let denom = st.squared() + sd2
        return (denom.reciprocal() * sd2, try st * sigmaData / denom.sqrt())
    }
}
