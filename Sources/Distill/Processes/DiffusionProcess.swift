import Foundation

/// A forward noising process x_t = α(t)·x0 + σ(t)·ε, ε ~ N(0, I).
///
/// Notation as in `METHODS.md`: log-SNR λ(t) = log(α/σ).
public protocol DiffusionProcess: Sendable {
    /// Signal scale α(t).
    func alpha(_ t: Double) -> Double
    /// Noise scale σ(t).
    func sigma(_ t: Double) -> Double
    /// The times training draws from and samplers start at.
    var timeRange: ClosedRange<Double> { get }
}

extension DiffusionProcess {
    /// Half log-SNR λ(t) = log(α(t)/σ(t)).
    public func logSNR(_ t: Double) -> Double { Foundation.log(alpha(t) / sigma(t)) }
}

/// The variance-preserving process with a linear β schedule (Song et al. 2021, "Score-Based
/// Generative Modeling through SDEs", the VP SDE): β(t) = β0 + (β1 - β0)t,
/// α(t) = exp(-¼t²(β1 - β0) - ½tβ0), σ(t) = √(1 - α²), t ∈ [ε, 1].
public struct VPLinearProcess: DiffusionProcess, Codable, Equatable {
    public var beta0: Double
    public var beta1: Double
    public var epsilon: Double

    public init(beta0: Double = 0.1, beta1: Double = 20, epsilon: Double = 1e-3) {
        self.beta0 = beta0
        self.beta1 = beta1
        self.epsilon = epsilon
    }

    public func alpha(_ t: Double) -> Double { Foundation.exp(-0.25 * t * t * (beta1 - beta0) - 0.5 * t * beta0) }
    public func sigma(_ t: Double) -> Double { (1 - alpha(t) * alpha(t)).squareRoot() }
    public var timeRange: ClosedRange<Double> { epsilon...1 }
}
