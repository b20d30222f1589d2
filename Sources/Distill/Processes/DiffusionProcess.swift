import Foundation

/// A forward noising process x_t = α(t)·x0 + σ(t)·ε, ε ~ N(0, I) (`docs/methods.md` §1).
///
/// Six processes are built in: variance preserving with a linear β schedule (``vpLinear(beta0:beta1:epsilon:)``)
/// or a cosine schedule (``vpCosine(s:tMin:tMax:)``), the discrete DDPM schedule
/// (``ddpm(steps:betaStart:betaEnd:)``), variance exploding (``ve(sigmaMin:sigmaMax:epsilon:)``), EDM's
/// σ(t) = t (``edm(sigmaMin:sigmaMax:)``) and rectified flow (``rectifiedFlow(epsilon:)``). A process is a
/// value: it is compared, encoded into model cards and rebuilt from them.
///
/// Noise grows with t for every process but rectified flow, whose t runs from noise (0) to
/// data (1); samplers never depend on the direction, only on the half log-SNR λ = log(α/σ).
public struct DiffusionProcess: Sendable, Equatable, Codable {
    /// The parameters, as stored in model cards.
    package let spec: ProcessSpec
    /// The process's functions, built once (the discrete schedule tabulates its α).
    package let curves: any NoiseProcess

    package init(_ spec: ProcessSpec) {
        self.spec = spec
        curves = spec.makeCurves()
    }

    /// Variance preserving with linear β(t) = β0 + (β1 - β0)t (Ho et al. 2020; Song et al. 2021):
    /// α(t) = exp(-¼t²(β1 - β0) - ½tβ0), σ = √(1 - α²), t ∈ [ε, 1].
    public static func vpLinear(beta0: Double = 0.1, beta1: Double = 20, epsilon: Double = 1e-3) -> DiffusionProcess {
        DiffusionProcess(.vpLinear(VPLinearProcess(beta0: beta0, beta1: beta1, epsilon: epsilon)))
    }

    /// Variance preserving with the cosine schedule of Nichol & Dhariwal 2021:
    /// α(t) = f(t)/f(0), f(t) = cos(((t + s)/(1 + s))·π/2), t ∈ [tMin, tMax]. With s = 0 it is
    /// progressive distillation's α = cos(πt/2).
    public static func vpCosine(s: Double = 0.008, tMin: Double = 1e-3, tMax: Double = 0.9946) -> DiffusionProcess {
        DiffusionProcess(.vpCosine(VPCosineProcess(s: s, tMin: tMin, tMax: tMax)))
    }

    /// The discrete DDPM schedule (Ho et al. 2020): `steps` values of β linear from `betaStart`
    /// to `betaEnd`, step i at t = i/steps, log α interpolated linearly in t between steps.
    public static func ddpm(steps: Int = 1000, betaStart: Double = 1e-4, betaEnd: Double = 0.02) -> DiffusionProcess {
        DiffusionProcess(.ddpm(steps: steps, betaStart: betaStart, betaEnd: betaEnd, schedule: nil))
    }

    /// The discrete DDPM schedule with β spread by `schedule` (diffusers' `beta_schedule`);
    /// the linear schedule is stored exactly as ``ddpm(steps:betaStart:betaEnd:)`` stores it.
    package static func ddpm(steps: Int, betaStart: Double, betaEnd: Double, schedule: DDPMBetaSchedule) -> DiffusionProcess {
        DiffusionProcess(.ddpm(steps: steps, betaStart: betaStart, betaEnd: betaEnd, schedule: schedule == .linear ? nil : schedule))
    }

    /// Variance exploding (Song et al. 2021): α = 1, σ(t) = σ_min(σ_max/σ_min)^t, t ∈ [ε, 1].
    public static func ve(sigmaMin: Double = 0.01, sigmaMax: Double = 50, epsilon: Double = 1e-5) -> DiffusionProcess {
        DiffusionProcess(.ve(VEProcess(sigmaMin: sigmaMin, sigmaMax: sigmaMax, epsilon: epsilon)))
    }

    /// EDM (Karras et al. 2022): α = 1, σ(t) = t, t ∈ [σ_min, σ_max].
    public static func edm(sigmaMin: Double = 0.002, sigmaMax: Double = 80) -> DiffusionProcess {
        DiffusionProcess(.edm(EDMProcess(sigmaMin: sigmaMin, sigmaMax: sigmaMax)))
    }

    /// Rectified flow (Liu et al. 2022): α = t, σ = 1 - t, t ∈ [ε, 1 - ε], from noise to data.
    public static func rectifiedFlow(epsilon: Double = 1e-3) -> DiffusionProcess {
        DiffusionProcess(.rectifiedFlow(RectifiedFlowProcess(epsilon: epsilon)))
    }

    /// The process called `name` (one of `names`) with its default parameters.
    ///
    /// - Throws: ``TrainingError/invalidConfiguration(_:)`` naming the valid names.
    public init(name: String) throws {
        switch name {
        case "vp-linear": self = .vpLinear()
        case "vp-cosine": self = .vpCosine()
        case "ddpm": self = .ddpm()
        case "ve": self = .ve()
        case "edm": self = .edm()
        case "rectified-flow": self = .rectifiedFlow()
        default:
            throw TrainingError.invalidConfiguration("unknown process '\(name)'; valid: \(DiffusionProcess.names.joined(separator: ", "))"
                                                     + suggestion(for: name, among: DiffusionProcess.names))
        }
    }

    /// The names ``init(name:)`` accepts.
    package static let names = ["vp-linear", "vp-cosine", "ddpm", "ve", "edm", "rectified-flow"]

    /// A short name ("vp-linear", "vp-cosine", …).
    public var name: String { curves.name }

    /// The signal scale α(t).
    public func alpha(_ t: Double) -> Double { curves.alpha(t) }

    /// The noise scale σ(t).
    public func sigma(_ t: Double) -> Double { curves.sigma(t) }

    /// The half log-SNR λ(t) = log(α(t)/σ(t)).
    package func logSNR(_ t: Double) -> Double { curves.logSNR(t) }

    /// The time whose half log-SNR is `lambda`, or nil outside the process's range.
    package func time(forLogSNR lambda: Double) -> Double? { curves.time(forLogSNR: lambda) }

    /// The times training draws from; sampling starts at the noisiest end.
    public var timeRange: ClosedRange<Double> { curves.timeRange }

    /// Equal kinds with equal parameters.
    public static func == (a: DiffusionProcess, b: DiffusionProcess) -> Bool { a.spec == b.spec }

    /// Decodes a process's kind and parameters and validates them (a model card's process).
    public init(from decoder: Decoder) throws {
        let spec = try ProcessSpec(from: decoder)
        try spec.validate()
        self.init(spec)
    }

    /// Encodes the process's kind and parameters.
    public func encode(to encoder: Encoder) throws { try spec.encode(to: encoder) }

    /// Throws unless the parameters describe a usable process (finite, ordered, in range).
    package func validate() throws { try spec.validate() }
}

/// The internal protocol is satisfied by forwarding, so code written against ``NoiseProcess``
/// takes a ``DiffusionProcess`` as it is.
extension DiffusionProcess: NoiseProcess {
    package func driftCoefficient(_ t: Double) -> Double { curves.driftCoefficient(t) }
    package func diffusionSquared(_ t: Double) -> Double { curves.diffusionSquared(t) }
    package var underlying: any NoiseProcess { curves }
}

/// A process with its parameters, as model cards store it (the JSON form of
/// ``DiffusionProcess``).
package enum ProcessSpec: Codable, Sendable, Equatable {
    case vpLinear(VPLinearProcess)
    case vpCosine(VPCosineProcess)
    /// `schedule` nil is the linear schedule (and keeps the card's JSON as it was before other
    /// schedules existed, so older cards decode unchanged).
    case ddpm(steps: Int, betaStart: Double, betaEnd: Double, schedule: DDPMBetaSchedule?)
    case ve(VEProcess)
    case edm(EDMProcess)
    case rectifiedFlow(RectifiedFlowProcess)

    /// The spec of one of the built-in process types (nil for any other type).
    package init?(_ p: any NoiseProcess) {
        switch p {
        case let q as DiffusionProcess: self = q.spec
        case let q as VPLinearProcess: self = .vpLinear(q)
        case let q as VPCosineProcess: self = .vpCosine(q)
        case let q as DiscreteDDPMProcess: self = .ddpm(steps: q.steps, betaStart: q.betaStart, betaEnd: q.betaEnd,
                                                             schedule: q.betaSchedule == .linear ? nil : q.betaSchedule)
        case let q as VEProcess: self = .ve(q)
        case let q as EDMProcess: self = .edm(q)
        case let q as RectifiedFlowProcess: self = .rectifiedFlow(q)
        default: return nil
        }
    }

    func makeCurves() -> any NoiseProcess {
        switch self {
        case let .vpLinear(p): return p
        case let .vpCosine(p): return p
        case let .ddpm(n, b0, b1, schedule):
            return DiscreteDDPMProcess(steps: max(n, 1), betaStart: b0, betaEnd: b1, betaSchedule: schedule ?? .linear)
        case let .ve(p): return p
        case let .edm(p): return p
        case let .rectifiedFlow(p): return p
        }
    }

    /// Checks every parameter: finite, in range and ordered, so that α and σ are finite and
    /// positive on the whole time range (a model card from a hostile file must not build a
    /// process that divides by zero or allocates without bound).
    func validate() throws {
        func bad(_ what: String) -> TrainingError { .invalidConfiguration("process: \(what)") }
        func finite(_ values: Double...) -> Bool { values.allSatisfy(\.isFinite) }
        switch self {
        case let .vpLinear(p):
            guard finite(p.beta0, p.beta1, p.epsilon), p.beta0 > 0, p.beta1 >= p.beta0, p.beta1 <= 1e4,
                  p.epsilon > 0, p.epsilon < 1 else {
                throw bad("vp-linear needs 0 < β0 ≤ β1 ≤ 1e4 and 0 < ε < 1; got β0 = \(p.beta0), β1 = \(p.beta1), ε = \(p.epsilon)")
            }
        case let .vpCosine(p):
            guard finite(p.s, p.tMin, p.tMax), p.s >= 0, p.s <= 1, p.tMin > 0, p.tMin < p.tMax, p.tMax < 1 else {
                throw bad("vp-cosine needs 0 ≤ s ≤ 1 and 0 < tMin < tMax < 1; got s = \(p.s), tMin = \(p.tMin), tMax = \(p.tMax)")
            }
        case let .ddpm(n, b0, b1, _):
            guard (2...100_000).contains(n), finite(b0, b1), b0 > 0, b0 <= b1, b1 < 1 else {
                throw bad("ddpm needs 2 ≤ steps ≤ 100000 and 0 < βstart ≤ βend < 1; got steps = \(n), βstart = \(b0), βend = \(b1)")
            }
        case let .ve(p):
            guard finite(p.sigmaMin, p.sigmaMax, p.epsilon), p.sigmaMin > 0, p.sigmaMin < p.sigmaMax, p.sigmaMax <= 1e6,
                  p.epsilon > 0, p.epsilon < 1 else {
                throw bad("ve needs 0 < σmin < σmax ≤ 1e6 and 0 < ε < 1; got σmin = \(p.sigmaMin), σmax = \(p.sigmaMax), ε = \(p.epsilon)")
            }
        case let .edm(p):
            guard finite(p.sigmaMin, p.sigmaMax), p.sigmaMin > 0, p.sigmaMin < p.sigmaMax, p.sigmaMax <= 1e6 else {
                throw bad("edm needs 0 < σmin < σmax ≤ 1e6; got σmin = \(p.sigmaMin), σmax = \(p.sigmaMax)")
            }
        case let .rectifiedFlow(p):
            guard p.epsilon.isFinite, p.epsilon > 0, p.epsilon < 0.5 else {
                throw bad("rectified-flow needs 0 < ε < 0.5; got ε = \(p.epsilon)")
            }
        }
    }
}
