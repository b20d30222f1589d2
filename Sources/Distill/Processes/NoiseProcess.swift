import Foundation

/// A forward noising process x_t = α(t)·x0 + σ(t)·ε, ε ~ N(0, I) (`docs/methods.md` §1).
///
/// Every process gives α, σ, the half log-SNR λ = log(α/σ) and, where it exists, its inverse;
/// the drift coefficient f(t) = d log α/dt and squared diffusion g²(t) = dσ²/dt - 2fσ² of the
/// SDE dx = f x dt + g dw (Song et al. 2021, eq. 5); and from them the reverse-SDE and
/// probability-flow-ODE drifts. Noise grows with t for every process except rectified flow,
/// whose t runs from noise (0) to data (1).
package protocol NoiseProcess: Sendable {
    /// Signal scale α(t).
    func alpha(_ t: Double) -> Double
    /// Noise scale σ(t).
    func sigma(_ t: Double) -> Double
    /// The times training draws from; samplers start at the noisiest end.
    var timeRange: ClosedRange<Double> { get }
    /// d log α / dt.
    func driftCoefficient(_ t: Double) -> Double
    /// g²(t) = dσ²/dt - 2 f σ².
    func diffusionSquared(_ t: Double) -> Double
    /// The time with half log-SNR λ, when the process can invert it (nil outside its range).
    func time(forLogSNR lambda: Double) -> Double?
    /// A short name ("vp-linear", ...).
    var name: String { get }
    /// The built-in process type behind a wrapper (``DiffusionProcess`` forwards to one).
    var underlying: any NoiseProcess { get }
}

extension NoiseProcess {
    package var underlying: any NoiseProcess { self }

    /// Half log-SNR λ(t) = log(α(t)/σ(t)).
    package func logSNR(_ t: Double) -> Double { Foundation.log(alpha(t)) - Foundation.log(sigma(t)) }

    /// Signal-to-noise ratio α²/σ².
    package func snr(_ t: Double) -> Double { Foundation.exp(2 * logSNR(t)) }

    /// The time at the noisiest end of `timeRange` (where sampling starts).
    package var noisiestTime: Double { isDenoisingForward ? timeRange.lowerBound : timeRange.upperBound }

    /// The time at the cleanest end of `timeRange`.
    package var cleanestTime: Double { isDenoisingForward ? timeRange.upperBound : timeRange.lowerBound }

    /// True when t runs from noise to data (rectified flow), false when it runs from data to noise.
    package var isDenoisingForward: Bool { logSNR(timeRange.upperBound) > logSNR(timeRange.lowerBound) }

    /// Reverse-time SDE drift f(t)x - g²(t)·score (Anderson 1982; Song et al. 2021, eq. 6).
    package func reverseSDEDrift(_ x: Tensor, score: Tensor, at t: Double) throws -> Tensor {
        try x * Float(driftCoefficient(t)) - score * Float(diffusionSquared(t))
    }

    /// Probability-flow ODE drift f(t)x - ½g²(t)·score (Song et al. 2021, eq. 13).
    package func probabilityFlowDrift(_ x: Tensor, score: Tensor, at t: Double) throws -> Tensor {
        try x * Float(driftCoefficient(t)) - score * Float(0.5 * diffusionSquared(t))
    }
}

/// Solves λ(t) = target for a monotone λ on [a, b] by bisection (to double precision).
func bisectLogSNR(_ process: some NoiseProcess, _ target: Double, in range: ClosedRange<Double>) -> Double? {
    var (a, b) = (range.lowerBound, range.upperBound)
    let (la, lb) = (process.logSNR(a), process.logSNR(b))
    guard min(la, lb) <= target, target <= max(la, lb) else { return nil }
    let increasing = lb > la
    for _ in 0..<200 {
        let m = 0.5 * (a + b)
        if (process.logSNR(m) < target) == increasing { a = m } else { b = m }
        if b - a <= 1e-15 * max(1, abs(m)) { break }
    }
    return 0.5 * (a + b)
}
