import Foundation

/// Progressive distillation (Salimans & Ho 2022, Alg. 2 and eq. 8–10): a student with N steps
/// learns two DDIM steps of its teacher per step; N halves each stage (1024 → … → 1).
package enum ProgressiveDistillation {
    /// The two-step target for a state z_t: two teacher DDIM steps t → t' → t'' and
    /// x̃ = (z_t'' - (σ_t''/σ_t)·z_t)/(α_t'' - (σ_t''/σ_t)·α_t), the x0 that makes one student
    /// DDIM step t → t'' land on z_t'' (eq. 10). Where t'' is the clean end (α = 1, σ = 0) the
    /// formula reduces to the teacher's x̂(z_t'), with no division by zero. Rows have their own
    /// levels.
    package static func target(teacher: some Denoiser, z: Tensor, at t: NoiseLevels, mid: NoiseLevels, end: NoiseLevels,
                              labels: [Int]? = nil) throws -> Tensor {
        let x1 = try teacher.predict(z, at: t, labels: labels).data
        let zMid = try ddimStep(z, x: x1, from: t, to: mid)
        let x2 = try teacher.predict(zMid, at: mid, labels: labels).data
        return try ddimInversion(z0: z, at: t, zEnd: ddimStep(zMid, x: x2, from: mid, to: end), end: end)
    }

    /// One DDIM step per row with the data prediction x̂: z_s = α_s·x̂ + (σ_s/σ_t)(z_t - α_t·x̂).
    package static func ddimStep(_ z: Tensor, x: Tensor, from a: NoiseLevels, to b: NoiseLevels) throws -> Tensor {
        let r = z.rank
        let rt = try NoiseLevels.column(zip(b.sigma, a.sigma).map { $0 / $1 }, rank: r)
        return try b.alphaTensor(rank: r) * x + rt * (z - a.alphaTensor(rank: r) * x)
    }

    /// The x0 that takes one DDIM step from z0 (at `t`) to zEnd (at `end`):
    /// x̃ = (z_end - (σ_end/σ_t)·z0)/(α_end - (σ_end/σ_t)·α_t); zEnd itself where `end` is clean.
    package static func ddimInversion(z0 z: Tensor, at t: NoiseLevels, zEnd: Tensor, end: NoiseLevels) throws -> Tensor {
        let r = z.rank
        let ratio = zip(end.sigma, t.sigma).map { $0 / $1 }
        let denom = try NoiseLevels.column(zip(end.alpha, zip(ratio, t.alpha)).map { $0 - $1.0 * $1.1 }, rank: r)
        return try (zEnd - NoiseLevels.column(ratio, rank: r) * z) / denom
    }

    /// The student's loss at N steps (uniform in time on `process`, which should be VP —
    /// the paper uses α = cos(πt/2), ``VPCosineProcess/progressiveDistillation()``): i ~ U{1…N},
    /// t = i/N, t' = t - ½N⁻¹, t'' = t - N⁻¹, z_t = α_t·x + σ_t·ε, and
    /// max(SNR_t, 1)·||x̃ - x̂_student(z_t)||² ("truncated SNR", eq. 9), averaged over the batch.
    /// Times u ∈ [0, 1] map linearly onto the process's range; u = 0 is taken as the clean end
    /// (α = 1, σ = 0), so the student's last step is a denoise.
    package static func loss<N>(student: DiffusionModel<N>, teacher: some Denoiser, x0: Tensor, steps n: Int,
                               labels: [Int]? = nil, rng: inout Philox) throws -> Tensor {
        let (z, t, mid, end) = try draw(process: student.process, x0: x0, steps: n, rng: &rng)
        let target = try withoutGradient { try Self.target(teacher: teacher, z: z, at: t, mid: mid, end: end, labels: labels) }
        return try truncatedSNRError(student.predict(z, at: t, labels: labels).data, target, at: t)
    }

    /// max(SNR_t, 1)·‖x̂ − x̃‖² per row, averaged over the batch and values ("truncated SNR",
    /// eq. 9): the weighting of PD and of the methods built on its rows.
    package static func truncatedSNRError(_ xhat: Tensor, _ target: Tensor, at t: NoiseLevels) throws -> Tensor {
        let w = zip(t.alpha, t.sigma).map { max($0 * $0 / ($1 * $1), 1) }
        return try ((xhat - target).squared() * NoiseLevels.column(w, rank: xhat.rank)).mean()
    }

    /// The time of `p` at u ∈ [0, 1], u mapped linearly onto its time range (u = 1 the noisiest).
    package static func time(_ u: Double, on p: DiffusionProcess) -> Double {
        p.timeRange.lowerBound + (p.timeRange.upperBound - p.timeRange.lowerBound) * u
    }

    /// The levels of `p` at per-row u, u = 0 taken as the clean end (α = 1, σ = 0).
    package static func levels(_ us: [Double], on p: DiffusionProcess) -> NoiseLevels {
        var l = NoiseLevels(process: p, times: us.map { time($0, on: p) })
        for i in us.indices where us[i] <= 1e-12 { l.alpha[i] = 1; l.sigma[i] = 0 }
        return l
    }

    /// PD's rows at N steps: i ~ U{1…N} (one uniform per row), then ε ~ N(0, I); the levels of
    /// u = i/N, u − ½N⁻¹ and u − N⁻¹ on `p` (the last clean at u = 0) and z = α·x0 + σ·ε.
    package static func draw(process p: DiffusionProcess, x0: Tensor, steps n: Int, rng: inout Philox) throws
        -> (z: Tensor, t: NoiseLevels, mid: NoiseLevels, end: NoiseLevels) {
        guard n >= 1 else { throw TensorError.invalidArgument(operation: "ProgressiveDistillation", message: "steps must be >= 1") }
        let idx = try rng.uniform([x0.shape[0]]).scalars.map { min(Int(Double($0) * Double(n)), n - 1) + 1 }
        let us = idx.map { Double($0) / Double(n) }
        let t = levels(us, on: p), mid = levels(us.map { $0 - 0.5 / Double(n) }, on: p)
        let end = levels(us.map { max($0 - 1 / Double(n), 0) }, on: p)
        let eps = try rng.normal(x0.shape)
        return (try t.alphaTensor(rank: x0.rank) * x0 + t.sigmaTensor(rank: x0.rank) * eps, t, mid, end)
    }

    /// The student's N-step sampling grid: uniform in time from the noisiest time to the clean
    /// end (the grid the loss trains it for).
    package static func grid(process: some NoiseProcess, steps n: Int) throws -> NoiseGrid {
        let r = process.timeRange
        var levels = (0..<n).map { i -> NoiseLevel in
            let t = r.upperBound - (r.upperBound - r.lowerBound) * Double(i) / Double(n)
            return NoiseLevel(alpha: process.alpha(t), sigma: process.sigma(t), time: t)
        }
        levels.append(.clean)
        return try NoiseGrid(levels: levels, process: process)
    }
}

/// Guided distillation, stage one (Meng, Rombach, Gao, Kingma, Ermon, Ho & Salimans 2023,
/// "On distillation of guided diffusion models", eq. 4–5): a student conditioned on the
/// guidance weight w matches the guided teacher, (1 + w)·x̂_c(z_t) - w·x̂(z_t), with
/// w ~ U[wMin, wMax] per row and t uniform. Stage two is ``ProgressiveDistillation`` of
/// that student at fixed w (``DiffusionModel/withGuidance(_:)``).
package enum GuidedDistillation {
    package static func loss<N>(student: DiffusionModel<N>, teacher: some Denoiser, x0: Tensor, labels: [Int], nullLabel: Int,
                               guidance range: ClosedRange<Float>, rng: inout Philox) throws -> Tensor {
        let batch = x0.shape[0]
        let times = try TimeSampling.uniform.draw(batch, process: student.process, rng: &rng)
        let t = NoiseLevels(process: student.process, times: times)
        let w = try rng.uniform([batch], low: range.lowerBound, high: range.upperBound)
        let z = try t.alphaTensor(rank: x0.rank) * x0 + t.sigmaTensor(rank: x0.rank) * rng.normal(x0.shape)
        let target = try withoutGradient { () throws -> Tensor in
            let cond = try teacher.predict(z, at: t, labels: labels).data
            let uncond = try teacher.predict(z, at: t, labels: Array(repeating: nullLabel, count: batch)).data
            let wc = try w.reshaped([batch] + Array(repeating: 1, count: x0.rank - 1))
            return try cond + wc * (cond - uncond)
        }
        let (out, xm, own) = try student.evaluate(z, at: t, labels: labels, guidance: w)
        let xhat = try student.parameterization.dataAndNoise(from: out, x: xm, alpha: own.alphaTensor(rank: x0.rank),
                                                             sigma: own.sigmaTensor(rank: x0.rank), sigmaData: student.sigmaData).x0
        return try ProgressiveDistillation.truncatedSNRError(xhat, target, at: t)
    }
}
