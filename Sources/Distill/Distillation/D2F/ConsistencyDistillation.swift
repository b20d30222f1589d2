import Foundation

/// The distance d(·,·) of consistency losses (Song et al. 2023, §3 and Song & Dhariwal 2023).
package enum ConsistencyMetric: Sendable, Equatable, Codable {
    case l2
    case l1
    /// √(||x - y||² + c²) - c, c = 0.00054·√d in the improved-CT paper.
    case pseudoHuber(c: Double)

    /// The per-row distance, averaged over the batch.
    func distance(_ a: Tensor, _ b: Tensor) throws -> Tensor {
        let axes = Array(1..<a.rank)
        switch self {
        case .l2: return try (a - b).squared().mean(axes: axes).mean()
        case .l1: return try (a - b).abs().mean(axes: axes).mean()
        case let .pseudoHuber(c):
            return try ((a - b).squared().sum(axes: axes) + Float(c * c)).sqrt().mean() - Float(c)
        }
    }
}

/// Consistency distillation (CD) and consistency training (CT) (Song, Dhariwal, Chen &
/// Sutskever 2023, Alg. 2–3): on the EDM grid t_1 = ε < … < t_N = T (ρ = 7), n ~ U{1…N-1},
/// x_{t_{n+1}} = x + t_{n+1}·z, and d(f_θ(x_{t_{n+1}}, t_{n+1}), f_θ⁻(x̂_{t_n}, t_n)) with the
/// target network θ⁻ an EMA of θ and no gradient through it. CD takes x̂_{t_n} from one ODE
/// step of the teacher (Heun or Euler); CT from the same z: x̂_{t_n} = x + t_n·z.
package enum ConsistencyDistillation {
    /// The N-point EDM grid in σ̃ from ε to T (increasing).
    package static func levels(count n: Int, epsilon: Double = 0.002, sigmaMax: Double = 80, rho: Double = 7) -> [Double] {
        (0..<n).map { i in
            let u = n == 1 ? 0 : Double(i) / Double(n - 1)
            return pow(pow(epsilon, 1 / rho) + u * (pow(sigmaMax, 1 / rho) - pow(epsilon, 1 / rho)), rho)
        }
    }

    /// The teacher's ODE solver for CD.
    package enum Solver: String, Sendable, Codable { case heun, euler }

    /// The CD loss. The teacher is any denoiser (evaluated in σ-form: α = 1, σ = t, a model
    /// trained under another process is rescaled by ``DiffusionModel``); `target` holds θ⁻.
    package static func distillationLoss<N>(student: ConsistencyModel<N>, target: ConsistencyModel<N>, teacher: some Denoiser,
                                           x0: Tensor, steps n: Int, solver: Solver = .heun, metric: ConsistencyMetric = .l2,
                                           labels: [Int]? = nil, rng: inout Philox) throws -> Tensor {
        let ts = levels(count: n, epsilon: student.epsilon, sigmaMax: student.sigmaMax)
        let batch = x0.shape[0]
        let idx = try rng.uniform([batch]).scalars.map { min(Int(Double($0) * Double(n - 1)), n - 2) }   // n - 1 in 0…N-2
        let (tn, tn1) = (idx.map { ts[$0] }, idx.map { ts[$0 + 1] })
        let z = try rng.normal(x0.shape)
        let r = x0.rank
        let xNext = try x0 + NoiseLevels.column(tn1, rank: r) * z
        let xPrev = try withoutGradient { () throws -> Tensor in
            // One teacher step from t_{n+1} to t_n on dx/dt = (x - D(x; t))/t.
            let d1 = try teacher.predict(xNext, at: NoiseLevels(alpha: Array(repeating: 1, count: batch), sigma: tn1), labels: labels).data
            let h = zip(tn, tn1).map { $0 - $1 }
            let slope1 = try (xNext - d1) / NoiseLevels.column(tn1, rank: r)
            let euler = try xNext + NoiseLevels.column(h, rank: r) * slope1
            guard solver == .heun else { return euler }
            let d2 = try teacher.predict(euler, at: NoiseLevels(alpha: Array(repeating: 1, count: batch), sigma: tn), labels: labels).data
            let slope2 = try (euler - d2) / NoiseLevels.column(tn, rank: r)
            return try xNext + NoiseLevels.column(h.map { 0.5 * $0 }, rank: r) * (slope1 + slope2)
        }
        let goal = try withoutGradient { try target(xPrev, sigma: tn, labels: labels) }
        return try metric.distance(student(xNext, sigma: tn1, labels: labels), goal)
    }

    /// The CT loss: the same z gives both points, so no teacher is needed.
    package static func trainingLoss<N>(student: ConsistencyModel<N>, target: ConsistencyModel<N>, x0: Tensor, steps n: Int,
                                       metric: ConsistencyMetric = .l2, labels: [Int]? = nil, rng: inout Philox) throws -> Tensor {
        let ts = levels(count: n, epsilon: student.epsilon, sigmaMax: student.sigmaMax)
        let batch = x0.shape[0]
        let idx = try rng.uniform([batch]).scalars.map { min(Int(Double($0) * Double(n - 1)), n - 2) }
        let (tn, tn1) = (idx.map { ts[$0] }, idx.map { ts[$0 + 1] })
        let z = try rng.normal(x0.shape)
        let r = x0.rank
        let goal = try withoutGradient { try target(x0 + NoiseLevels.column(tn, rank: r) * z, sigma: tn, labels: labels) }
        return try metric.distance(student(x0 + NoiseLevels.column(tn1, rank: r) * z, sigma: tn1, labels: labels), goal)
    }

    /// CT's discretization schedule N(k) = ⌈√(k/K·((s1 + 1)² - s0²) + s0²) - 1⌉ + 1 (paper: s0 = 2,
    /// s1 = 150 on CIFAR-10) and target EMA rate μ(k) = exp(s0·log μ0 / N(k)) (μ0 = 0.9).
    package static func trainingSchedule(step k: Int, totalSteps K: Int, s0: Double = 2, s1: Double = 150,
                                        mu0: Double = 0.9) -> (steps: Int, emaDecay: Double) {
        let frac = Double(k) / Double(max(K, 1))
        let n = Int((frac * ((s1 + 1) * (s1 + 1) - s0 * s0) + s0 * s0).squareRoot().rounded(.up) - 1) + 1
        return (n, exp(s0 * log(mu0) / Double(n)))
    }
}
