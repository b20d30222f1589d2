import Foundation

/// TRACT, transitive-closure time distillation (Berthelot et al. 2023; `docs/methods.md` §6.10).
/// A phase turns a teacher of T_p steps into a student of T_{p+1} steps for any ratio
/// r = T_p/T_{p+1}: from every teacher grid point inside a student segment the student learns
/// one DDIM jump to the segment's end, aimed at one teacher step followed by the jump a
/// self-teacher (a fast EMA of the student) makes from there. Two phases replace PD's log₂ T.
package enum TransitiveClosureDistillation {
    /// The phase schedule the project runs by default: 64 → 8 → 1 (the paper's two phases,
    /// with ratio 8 where its CIFAR-10 run uses 32).
    package static let defaultSchedule = [64, 8, 1]
    /// The self-teacher's EMA decay (ml-tract's `sema`).
    package static let selfTeacherDecay: Float = 0.5

    /// The evaluation EMA's decay ρ^{1/S} for S steps per phase: the weights it held at a
    /// phase's start weigh ρ at its end (ml-tract's `ema_residual`, ρ = 10⁻³).
    package static func evaluationDecay(stepsPerPhase s: Int, residual: Double = 1e-3) -> Float {
        Float(pow(residual, 1 / Double(max(s, 1))))
    }

    /// The target x̃ for states z at levels `t`: z1 = one teacher DDIM step t → mid; z2 = z1
    /// where `selfRows[i]` is false (mid is the segment end), else the self-teacher's DDIM step
    /// mid → end; x̃ = the x0 taking one student DDIM step t → end to z2 (PD's inversion).
    package static func target(teacher: some Denoiser, selfTeacher: some Denoiser, z: Tensor, at t: NoiseLevels, mid: NoiseLevels,
                               end: NoiseLevels, selfRows: [Bool], labels: [Int]? = nil) throws -> Tensor {
        let r = z.rank
        let z1 = try ProgressiveDistillation.ddimStep(z, x: teacher.predict(z, at: t, labels: labels).data, from: t, to: mid)
        var z2 = z1
        if selfRows.contains(true) {
            // Rows that skip the self-teacher are evaluated at their start level instead of
            // mid (which may be the clean end) and then discarded by the 0/1 mask, exactly.
            var at = mid
            for i in selfRows.indices where !selfRows[i] {
                at.alpha[i] = t.alpha[i]; at.sigma[i] = t.sigma[i]
                if at.time != nil { at.time![i] = t.time?[i] ?? at.time![i] }
            }
            let jumped = try ProgressiveDistillation.ddimStep(z1, x: selfTeacher.predict(z1, at: at, labels: labels).data, from: at, to: end)
            let m = try NoiseLevels.column(selfRows.map { $0 ? 1 : 0 }, rank: r)
            z2 = try jumped * m + z1 * (1 - m)
        }
        return try ProgressiveDistillation.ddimInversion(z0: z, at: t, zEnd: z2, end: end)
    }

    /// One phase's loss (u ∈ [0, 1] uniform in `student.process`'s time, u = 0 the clean end):
    /// j ~ U{1…T_{p+1}}, i ~ U{0…r−1}, u0 = j/T_{p+1} − i/T_p, u1 = u0 − 1/T_p,
    /// u2 = (j − 1)/T_{p+1}, z = α0·x + σ0·ε, and max(SNR0, 1)·‖x̂_student(z) − x̃‖² averaged
    /// over the batch (truncated SNR, as PD).
    package static func loss<N>(student: DiffusionModel<N>, teacher: some Denoiser, selfTeacher: some Denoiser, x0: Tensor,
                                teacherSteps tp: Int, studentSteps sp: Int, labels: [Int]? = nil, rng: inout Philox) throws -> Tensor {
        guard sp >= 1, tp > sp, tp % sp == 0 else {
            throw TensorError.invalidArgument(operation: "TransitiveClosureDistillation",
                                              message: "teacher steps must be a multiple of the student steps, and more; got \(tp) → \(sp)")
        }
        let batch = x0.shape[0], ratio = tp / sp, p = student.process
        func levels(_ us: [Double]) -> NoiseLevels { ProgressiveDistillation.levels(us, on: p) }
        let js = try rng.uniform([batch]).scalars.map { min(Int(Double($0) * Double(sp)), sp - 1) + 1 }
        let iz = try rng.uniform([batch]).scalars.map { min(Int(Double($0) * Double(ratio)), ratio - 1) }
        let u0 = zip(js, iz).map { Double($0 * ratio - $1) / Double(tp) }
        let u1 = zip(js, iz).map { Double($0 * ratio - $1 - 1) / Double(tp) }
        let u2 = js.map { Double($0 - 1) / Double(sp) }
        let t = levels(u0)
        let eps = try rng.normal(x0.shape)
        let z = try t.alphaTensor(rank: x0.rank) * x0 + t.sigmaTensor(rank: x0.rank) * eps
        let target = try withoutGradient {
            try Self.target(teacher: teacher, selfTeacher: selfTeacher, z: z, at: t, mid: levels(u1), end: levels(u2),
                            selfRows: iz.map { $0 < ratio - 1 }, labels: labels)
        }
        return try ProgressiveDistillation.truncatedSNRError(student.predict(z, at: t, labels: labels).data, target, at: t)
    }
}
