import Foundation

// The distillation objectives as plain functions, for training loops of one's own (the
// ``Distiller`` runs them in its stages). Each returns a scalar loss whose gradient is the
// method's; teachers and targets are evaluated without gradients. `docs/methods.md` §6–§7
// gives the math.

/// Output (knowledge) distillation, Luhman & Luhman 2021: ||D_student(x_T; T) - Φ(x_T)||²
/// (mean over elements) for the teacher's deterministic samples Φ(x_T) of the states
/// `noise` at `level`.
public func outputDistillationLoss(student: some Denoiser, noise: Tensor, targets: Tensor, level: NoiseLevel,
                                   labels: [Int]? = nil) throws -> Tensor {
    try OutputDistillation.loss(student: student, noise: noise, targets: targets, level: level, labels: labels)
}

/// Progressive distillation, Salimans & Ho 2022, Alg. 2 and eq. 8–10: the student with `steps`
/// steps learns two of the teacher's DDIM steps per step, with truncated-SNR weighting.
public func progressiveDistillationLoss<N>(student: DiffusionModel<N>, teacher: some Denoiser, x0: Tensor, steps: Int,
                                           labels: [Int]? = nil, rng: inout Philox) throws -> Tensor {
    try ProgressiveDistillation.loss(student: student, teacher: teacher, x0: x0, steps: steps, labels: labels, rng: &rng)
}

/// Guided distillation, stage one, Meng et al. 2023, eq. 4–5: a guidance-conditioned student
/// matches the classifier-free-guided teacher (1 + w)·x̂_c - w·x̂ at w uniform in `guidance`.
public func guidedDistillationLoss<N>(student: DiffusionModel<N>, teacher: some Denoiser, x0: Tensor, labels: [Int], nullLabel: Int,
                                      guidance: ClosedRange<Float>, rng: inout Philox) throws -> Tensor {
    try GuidedDistillation.loss(student: student, teacher: teacher, x0: x0, labels: labels, nullLabel: nullLabel, guidance: guidance, rng: &rng)
}

/// Consistency distillation, Song et al. 2023, Alg. 2: d(f_θ(x_{t_{n+1}}), f_θ⁻(x̂_{t_n})) on an
/// EDM grid of `steps` levels, x̂_{t_n} one Heun step of the teacher's ODE, θ⁻ = `target`,
/// squared-L2 distance.
public func consistencyDistillationLoss<N>(student: ConsistencyModel<N>, target: ConsistencyModel<N>, teacher: some Denoiser, x0: Tensor,
                                           steps: Int, labels: [Int]? = nil, rng: inout Philox) throws -> Tensor {
    try ConsistencyDistillation.distillationLoss(student: student, target: target, teacher: teacher, x0: x0, steps: steps, labels: labels,
                                                 rng: &rng)
}

/// Consistency training, Song et al. 2023, Alg. 3: as ``consistencyDistillationLoss(student:target:teacher:x0:steps:labels:rng:)``
/// with both points made from the same noise, so no teacher is needed.
public func consistencyTrainingLoss<N>(student: ConsistencyModel<N>, target: ConsistencyModel<N>, x0: Tensor, steps: Int,
                                       labels: [Int]? = nil, rng: inout Philox) throws -> Tensor {
    try ConsistencyDistillation.trainingLoss(student: student, target: target, x0: x0, steps: steps, labels: labels, rng: &rng)
}

/// Rectified flow on given pairs, Liu et al. 2022, eq. 1: ||v(X_t, t) - (Z1 - Z0)||² at
/// t ~ U[0, 1], X_t = t·Z1 + (1 - t)·Z0; `flow` is a velocity model under the rectified-flow
/// process. With the teacher's (noise, sample) pairs this is reflow.
public func reflowLoss<N>(flow: DiffusionModel<N>, z0: Tensor, z1: Tensor, rng: inout Philox) throws -> Tensor {
    try Reflow.loss(flow: flow, z0: z0, z1: z1, rng: &rng)
}

/// One-step distillation of a flow, Liu et al. 2022, §2.3: the flow at its first level learns
/// to carry the starting state of noise Z0 to Z1 in one Euler step.
public func oneStepReflowLoss<N>(flow: DiffusionModel<N>, z0: Tensor, z1: Tensor) throws -> Tensor {
    try Reflow.oneStepLoss(flow: flow, z0: z0, z1: z1)
}

/// Diff-Instruct's generator loss, Luo et al. 2023, eq. 3.3 and Alg. 1: a surrogate whose
/// gradient is E w(t)(s_fake - s_teacher)ᵀ∂x_t/∂θ for generated samples `generated`
/// (traced), with w = σ² and t uniform in [0.02, 0.98].
public func diffInstructLoss(generated: Tensor, teacher: some Denoiser, fake: some Denoiser, process: DiffusionProcess,
                             labels: [Int]? = nil, rng: inout Philox) throws -> Tensor {
    try ScoreDistillation.diffInstructLoss(generated: generated, teacher: teacher, fake: fake, process: process, timeRange: 0.02...0.98,
                                           labels: labels, rng: &rng)
}

/// Score distillation sampling, Poole et al. 2022, eq. 3: a surrogate whose gradient is
/// E w(t)(ε̂_teacher(x_t) - ε)·∂x/∂θ, w = σ², t uniform in [0.02, 0.98].
public func sdsLoss(generated: Tensor, teacher: some Denoiser, process: DiffusionProcess, labels: [Int]? = nil,
                    rng: inout Philox) throws -> Tensor {
    try ScoreDistillation.sdsLoss(generated: generated, teacher: teacher, process: process, timeRange: 0.02...0.98, labels: labels, rng: &rng)
}

/// Variational score distillation, Wang et al. 2023, eq. 9: SDS with the sampled noise replaced
/// by a fake noise predictor of the generator's own samples.
public func vsdLoss(generated: Tensor, teacher: some Denoiser, fake: some Denoiser, process: DiffusionProcess, labels: [Int]? = nil,
                    rng: inout Philox) throws -> Tensor {
    try ScoreDistillation.vsdLoss(generated: generated, teacher: teacher, fake: fake, process: process, timeRange: 0.02...0.98,
                                  labels: labels, rng: &rng)
}

/// The fake score network's loss (Diff-Instruct, VSD): denoising score matching on the
/// generator's current samples (detached).
public func fakeScoreLoss<N>(fake: DiffusionModel<N>, generated: Tensor, labels: [Int]? = nil, rng: inout Philox) throws -> Tensor {
    try ScoreDistillation.fakeScoreLoss(fake: fake, generated: generated, labels: labels, rng: &rng)
}
