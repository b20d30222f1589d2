import Foundation

/// Variance preserving, linear β (Ho et al. 2020; Song et al. 2021, VP SDE):
/// β(t) = β0 + (β1 - β0)t, α(t) = exp(-¼t²(β1 - β0) - ½tβ0), σ = √(1 - α²), t ∈ [ε, 1].
package struct VPLinearProcess: NoiseProcess, Codable, Equatable {
    package var beta0: Double
    package var beta1: Double
    /// The smallest time (1e-3 for sampling, 1e-5 for likelihoods).
    package var epsilon: Double

    package init(beta0: Double = 0.1, beta1: Double = 20, epsilon: Double = 1e-3) {
        self.beta0 = beta0
        self.beta1 = beta1
        self.epsilon = epsilon
    }

    package var name: String { "vp-linear" }
    package var timeRange: ClosedRange<Double> { epsilon...1 }
    package func alpha(_ t: Double) -> Double { exp(logAlpha(t)) }
    package func sigma(_ t: Double) -> Double { sqrt(-expm1(2 * logAlpha(t))) }
    func logAlpha(_ t: Double) -> Double { -0.25 * t * t * (beta1 - beta0) - 0.5 * t * beta0 }
    package func logSNR(_ t: Double) -> Double { logAlpha(t) - 0.5 * log(-expm1(2 * logAlpha(t))) }
    package func driftCoefficient(_ t: Double) -> Double { -0.5 * (beta0 + (beta1 - beta0) * t) }
    package func diffusionSquared(_ t: Double) -> Double { beta0 + (beta1 - beta0) * t }

    /// Closed form: log α = -½ log(1 + e^{-2λ}) is a quadratic in t.
    package func time(forLogSNR lambda: Double) -> Double? {
        let c = 0.5 * log1p(exp(-2 * lambda))   // -log α
        let a = 0.25 * (beta1 - beta0), b = 0.5 * beta0
        let t = a == 0 ? c / b : (-b + sqrt(b * b + 4 * a * c)) / (2 * a)
        return t.isFinite && t >= 0 ? t : nil
    }
}

/// Variance preserving, cosine schedule (Nichol & Dhariwal 2021): α(t) = f(t)/f(0),
/// f(t) = cos(((t + s)/(1 + s))·π/2), s = 0.008; the continuous form stops at t_max = 0.9946
/// (where λ ≈ -5.1, as in the DPM-Solver code). With s = 0 it is progressive distillation's
/// α = cos(πt/2) (Salimans & Ho 2022; see ``progressiveDistillation()``).
package struct VPCosineProcess: NoiseProcess, Codable, Equatable {
    package var s: Double
    package var tMin: Double
    package var tMax: Double

    package init(s: Double = 0.008, tMin: Double = 1e-3, tMax: Double = 0.9946) {
        self.s = s
        self.tMin = tMin
        self.tMax = tMax
    }

    /// Progressive distillation's schedule α = cos(πt/2). The PD code clips its log-SNR
    /// log(α²/σ²) = 2λ to ±20, i.e. λ ∈ [-10, 10]: t from (2/π)·atan(e^-10) to (2/π)·atan(e^10).
    package static func progressiveDistillation() -> VPCosineProcess {
        VPCosineProcess(s: 0, tMin: 2 / Double.pi * atan(exp(-10.0)), tMax: 2 / Double.pi * atan(exp(10.0)))
    }

    package var name: String { "vp-cosine" }
    package var timeRange: ClosedRange<Double> { tMin...tMax }
    func angle(_ t: Double) -> Double { (t + s) / (1 + s) * Double.pi / 2 }
    package func alpha(_ t: Double) -> Double { cos(angle(t)) / cos(angle(0)) }
    /// σ² = 1 - α² = (cos²θ0 - cos²θ)/cos²θ0 = sin(θ - θ0)·sin(θ + θ0)/cos²θ0, written without
    /// the cancellation of 1 - α² near t = 0.
    package func sigma(_ t: Double) -> Double {
        let (th, th0) = (angle(t), angle(0))
        return sqrt(max(0, sin(th - th0) * sin(th + th0))) / cos(th0)
    }
    package func driftCoefficient(_ t: Double) -> Double { -Double.pi / (2 * (1 + s)) * tan(angle(t)) }
    /// VP: g² = -2f.
    package func diffusionSquared(_ t: Double) -> Double { -2 * driftCoefficient(t) }

    package func time(forLogSNR lambda: Double) -> Double? {
        let logAlpha = -0.5 * log1p(exp(-2 * lambda))
        let c = exp(logAlpha) * cos(angle(0))
        guard c <= 1 else { return nil }
        let t = 2 * (1 + s) / Double.pi * acos(c) - s
        return t.isFinite ? t : nil
    }
}

/// How the β values of a discrete DDPM schedule are spread over its N training steps, as
/// diffusers' `beta_schedule` names them (`docs/methods.md` §1.4).
package enum DDPMBetaSchedule: String, Codable, Sendable, CaseIterable {
    /// β_i linear from β_start to β_end (Ho et al. 2020); diffusers' "linear".
    case linear
    /// √β_i linear from √β_start to √β_end, then squared (the latent-diffusion schedule);
    /// diffusers' "scaled_linear".
    case scaledLinear = "scaled_linear"
    /// β_i = min(1 − ᾱ(i+1/N)/ᾱ(i/N), 0.999) with ᾱ(t) = cos²((t + 0.008)/1.008 · π/2) (Nichol &
    /// Dhariwal 2021, eq. 17); β_start and β_end are not used. diffusers' "squaredcos_cap_v2".
    case squaredCosine = "squaredcos_cap_v2"

    /// The N values β_1…β_N of this schedule.
    package func betas(steps: Int, start: Double, end: Double) -> [Double] {
        func fraction(_ i: Int) -> Double { steps == 1 ? 0 : Double(i) / Double(steps - 1) }
        switch self {
        case .linear:
            return (0..<steps).map { start + (end - start) * fraction($0) }
        case .scaledLinear:
            let (a, b) = (start.squareRoot(), end.squareRoot())
            return (0..<steps).map { let r = a + (b - a) * fraction($0); return r * r }
        case .squaredCosine:
            func alphaBar(_ t: Double) -> Double { let c = cos((t + 0.008) / 1.008 * Double.pi / 2); return c * c }
            return (0..<steps).map { i in
                min(1 - alphaBar(Double(i + 1) / Double(steps)) / alphaBar(Double(i) / Double(steps)), 0.999)
            }
        }
    }
}

/// The discrete-time DDPM schedule (Ho et al. 2020): N values of β (linear from 1e-4 to 0.02
/// by default, or another ``DDPMBetaSchedule``), i = 1…N (N = 1000), ᾱ_i = Π(1 - β_j),
/// α_i = √ᾱ_i. As a continuous process, t_i = i/N and log α is interpolated linearly in t
/// between the points (as the DPM-Solver code does); t ∈ [1/N, 1]. A network trained on step
/// indices takes n = N·t - 1.
package struct DiscreteDDPMProcess: NoiseProcess, Codable, Equatable {
    package let steps: Int
    package let betaStart: Double
    package let betaEnd: Double
    /// How the β values are spread (linear unless a diffusers scheduler says otherwise).
    package let betaSchedule: DDPMBetaSchedule
    /// log α_i for i = 1…N (index 0 is step 1).
    package let logAlphas: [Double]

    package init(steps: Int = 1000, betaStart: Double = 1e-4, betaEnd: Double = 0.02, betaSchedule: DDPMBetaSchedule = .linear) {
        self.steps = steps
        self.betaStart = betaStart
        self.betaEnd = betaEnd
        self.betaSchedule = betaSchedule
        var acc = 0.0
        logAlphas = betaSchedule.betas(steps: steps, start: betaStart, end: betaEnd).map { beta in
            acc += log1p(-beta)
            return 0.5 * acc
        }
    }

    package var name: String { "ddpm" }
    package var timeRange: ClosedRange<Double> { (1 / Double(steps))...1 }

    /// Linear interpolation of log α in t (extrapolated linearly beyond the ends).
    func logAlpha(_ t: Double) -> Double {
        let x = t * Double(steps) - 1   // fractional index
        let i = min(max(Int(x.rounded(.down)), 0), steps - 2)
        let w = x - Double(i)
        return steps == 1 ? logAlphas[0] : logAlphas[i] + w * (logAlphas[i + 1] - logAlphas[i])
    }

    package func alpha(_ t: Double) -> Double { exp(logAlpha(t)) }
    package func sigma(_ t: Double) -> Double { sqrt(-expm1(2 * logAlpha(t))) }
    package func driftCoefficient(_ t: Double) -> Double {
        let x = t * Double(steps) - 1
        let i = min(max(Int(x.rounded(.down)), 0), steps - 2)
        return (logAlphas[i + 1] - logAlphas[i]) * Double(steps)
    }
    package func diffusionSquared(_ t: Double) -> Double { -2 * driftCoefficient(t) }
    package func time(forLogSNR lambda: Double) -> Double? { bisectLogSNR(self, lambda, in: timeRange) }

    /// α of training step i (1…N), exactly.
    package func alpha(step i: Int) -> Double { exp(logAlphas[i - 1]) }
}

/// Variance exploding (Song & Ermon 2019; Song et al. 2021, VE SDE): α = 1,
/// σ(t) = σ_min(σ_max/σ_min)^t, t ∈ [ε, 1]; images use σ_min = 0.01, σ_max = 50.
package struct VEProcess: NoiseProcess, Codable, Equatable {
    package var sigmaMin: Double
    package var sigmaMax: Double
    package var epsilon: Double

    package init(sigmaMin: Double = 0.01, sigmaMax: Double = 50, epsilon: Double = 1e-5) {
        self.sigmaMin = sigmaMin
        self.sigmaMax = sigmaMax
        self.epsilon = epsilon
    }

    package var name: String { "ve" }
    package var timeRange: ClosedRange<Double> { epsilon...1 }
    package func alpha(_ t: Double) -> Double { 1 }
    package func sigma(_ t: Double) -> Double { sigmaMin * pow(sigmaMax / sigmaMin, t) }
    package func driftCoefficient(_ t: Double) -> Double { 0 }
    package func diffusionSquared(_ t: Double) -> Double { 2 * pow(sigma(t), 2) * log(sigmaMax / sigmaMin) }
    package func time(forLogSNR lambda: Double) -> Double? {
        let t = (-lambda - log(sigmaMin)) / log(sigmaMax / sigmaMin)
        return t.isFinite ? t : nil
    }
}

/// EDM (Karras et al. 2022): α = 1, σ(t) = t, t ∈ [σ_min, σ_max] = [0.002, 80]; training draws
/// ln σ ~ N(P_mean, P_std²) = N(-1.2, 1.2²) (see ``EDMLoss``).
package struct EDMProcess: NoiseProcess, Codable, Equatable {
    package var sigmaMin: Double
    package var sigmaMax: Double
    package var sigmaData: Double

    package init(sigmaMin: Double = 0.002, sigmaMax: Double = 80, sigmaData: Double = 0.5) {
        self.sigmaMin = sigmaMin
        self.sigmaMax = sigmaMax
        self.sigmaData = sigmaData
    }

    package var name: String { "edm" }
    package var timeRange: ClosedRange<Double> { sigmaMin...sigmaMax }
    package func alpha(_ t: Double) -> Double { 1 }
    package func sigma(_ t: Double) -> Double { t }
    package func driftCoefficient(_ t: Double) -> Double { 0 }
    package func diffusionSquared(_ t: Double) -> Double { 2 * t }
    package func time(forLogSNR lambda: Double) -> Double? { exp(-lambda) }
}

/// Rectified flow / flow matching (Liu et al. 2022; Lipman et al. 2023): X_t = t·X1 + (1-t)·X0
/// with X0 noise and X1 data, i.e. α = t, σ = 1 - t; t runs from noise (0) to data (1), so
/// f = 1/t and g² = -2(1-t)/t (negative: the SDE form is written for the forward direction of
/// t, which here removes noise; samplers only use the ODE). Training and sampling use
/// t ∈ [ε, 1 - ε], away from the pure-noise end (α = 0) and the clean end (σ = 0).
package struct RectifiedFlowProcess: NoiseProcess, Codable, Equatable {
    package var epsilon: Double

    package init(epsilon: Double = 1e-3) { self.epsilon = epsilon }

    package var name: String { "rectified-flow" }
    package var timeRange: ClosedRange<Double> { epsilon...(1 - epsilon) }
    package func alpha(_ t: Double) -> Double { t }
    package func sigma(_ t: Double) -> Double { 1 - t }
    package func driftCoefficient(_ t: Double) -> Double { 1 / t }
    package func diffusionSquared(_ t: Double) -> Double { -2 * (1 - t) / t }
    package func time(forLogSNR lambda: Double) -> Double? { 1 / (1 + exp(-lambda)) }
}
