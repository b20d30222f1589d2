import Foundation

/// A frozen classifier of clean items, the c(·) of CFD (`docs/methods.md` §6.9): class logits,
/// optionally a feature vector, both traced through their input.
package protocol DistillationClassifier {
    /// Unnormalized class scores (N, K).
    func logits(_ x: Tensor) throws -> Tensor
    /// The vector CFD's KL compares (N, F): penultimate features where the classifier has them,
    /// else the logits.
    func distillationFeatures(_ x: Tensor) throws -> Tensor
    /// The class weights π the diversity term compares the batch's mean prediction with.
    var classPrior: [Double] { get }
}

/// A mixture's exact posterior over its components, of data noised to σ_c (0: p0's own),
/// as a classifier: ℓ_k(x) = log π_k + log N(x; μ_k, Σ_k + σ_c²·I), written as two matrix
/// products, −½·(x⊙x)·A + x·B + c, so that it is differentiable in x (§6.9).
package struct MixturePosteriorClassifier: DistillationClassifier {
    let a: Tensor, b: Tensor, c: Tensor
    package let classPrior: [Double]

    package init(_ m: GaussianMixture, noise sigma: Double = 0) throws {
        let (k, d) = (m.componentCount, m.dimension)
        var a = [Float](repeating: 0, count: d * k), b = a, c = [Float](repeating: 0, count: k)
        for i in 0..<k {
            var ci = log(m.weights[i])
            for j in 0..<d {
                let v = m.variances[i][j] + sigma * sigma
                a[j * k + i] = Float(-0.5 / v)
                b[j * k + i] = Float(m.means[i][j] / v)
                ci -= 0.5 * (m.means[i][j] * m.means[i][j] / v + log(2 * Double.pi * v))
            }
            c[i] = Float(ci)
        }
        self.a = try Tensor(shape: [d, k], scalars: a)
        self.b = try Tensor(shape: [d, k], scalars: b)
        self.c = try Tensor(shape: [1, k], scalars: c)
        let total = m.weights.reduce(0, +)
        classPrior = m.weights.map { $0 / total }
    }

    package func logits(_ x: Tensor) throws -> Tensor { try x.squared().matmul(a) + x.matmul(b) + c }
    package func distillationFeatures(_ x: Tensor) throws -> Tensor { try logits(x) }
}

extension DigitClassifier: DistillationClassifier {
    package func distillationFeatures(_ x: Tensor) throws -> Tensor { try features(x) }
    package var classPrior: [Double] { Array(repeating: 1 / Double(configuration.classCount), count: configuration.classCount) }
}

/// CFD, classifier-based feature distillation (Sun et al. 2022; `docs/methods.md` §6.9):
/// progressive distillation's rows and two-teacher-step target x̃, compared through a frozen
/// classifier instead of pixel by pixel: the student's feature distribution matches the
/// teacher's sharpened by a temperature τ < 1, plus a dataset term that asks each prediction
/// to be confident and the batch's predictions to cover the classes.
package enum ClassifierFeatureDistillation {
    /// The loss's knobs (the authors' ResNet-18 setting, the only one that uses every term).
    package struct Settings: Codable, Equatable, Sendable {
        /// τ, the teacher's temperature.
        package var temperature: Float = 0.95
        /// β, the dataset term's weight (the code's `alpha`).
        package var datasetWeight: Float = 0.003
        /// γ, the entropy's share of the dataset term (the code's `beta`).
        package var entropyShare: Float = 0.75
        /// σ_c of a mixture's posterior classifier: the posterior of data noised to σ_c (0 would
        /// be p0's own, which saturates; measured in `docs/methods.md` §6.9).
        package var classifierNoise: Double = 1
        package init() {}
    }

    /// KL(softmax(teacher/τ) ‖ softmax(student)) averaged over rows; no gradient reaches the
    /// teacher's side.
    package static func sharpenedKL(teacher: Tensor, student: Tensor, temperature tau: Float) throws -> Tensor {
        let (p, logP) = try withoutGradient {
            let scaled = teacher * (1 / tau)
            return (try scaled.softmax(axis: 1), try scaled.logSoftmax(axis: 1))
        }
        return try (p * (logP - student.logSoftmax(axis: 1))).sum(axes: [1]).mean()
    }

    /// The dataset-oriented term on class logits ℓ (N, K): γ·(mean entropy of softmax(ℓ)) +
    /// (1 − γ)·KL(q̄ ‖ π), q̄ the batch's mean prediction (computed as a log-sum-exp over rows).
    package static func datasetTerm(_ logits: Tensor, prior: [Double], entropyShare g: Float) throws -> Tensor {
        let logQ = try logits.logSoftmax(axis: 1)
        let entropy = try -(logQ.exp() * logQ).sum(axes: [1]).mean()
        let logMean = try logQ.logSumExp(axis: 0) - Float(log(Double(logits.shape[0])))
        let logPrior = try Tensor(shape: [prior.count], scalars: prior.map { Float(log($0)) })
        let diversity = try (logMean.exp() * (logMean - logPrior)).sum()
        return try entropy * g + diversity * (1 - g)
    }

    /// The student's CFD loss at N steps: PD's draw and target (§6.3), then
    /// KL(softmax(c(x̃)/τ) ‖ softmax(c(x̂))) + β·dataset term(logits(x̂)), averaged over rows.
    package static func loss<N>(student: DiffusionModel<N>, teacher: some Denoiser, classifier: some DistillationClassifier,
                                x0: Tensor, steps n: Int, settings s: Settings = .init(), rng: inout Philox) throws -> Tensor {
        let (z, t, mid, end) = try ProgressiveDistillation.draw(process: student.process, x0: x0, steps: n, rng: &rng)
        let target = try withoutGradient {
            try classifier.distillationFeatures(ProgressiveDistillation.target(teacher: teacher, z: z, at: t, mid: mid, end: end))
        }
        let xhat = try student.predict(z, at: t, labels: nil).data
        let kl = try sharpenedKL(teacher: target, student: classifier.distillationFeatures(xhat), temperature: s.temperature)
        guard s.datasetWeight != 0 else { return kl }
        return try kl + datasetTerm(classifier.logits(xhat), prior: classifier.classPrior, entropyShare: s.entropyShare) * s.datasetWeight
    }
}
