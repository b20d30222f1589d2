import Foundation

/// DSNO, diffusion sampling with a neural operator (Zheng et al. 2023; `docs/methods.md`
/// §6.12): a ``TrajectoryGenerator`` learns, from pairs of starting noise and teacher
/// trajectory, to predict the states at M times in one pass; the last is the sample.
package enum OperatorDistillation {
    /// The slices' times on PD's u: the DSNO code's quadratic points (3/4)², (1/2)², (1/4)², 0,
    /// which are points of a 64-step time-uniform grid.
    package static let defaultTimes: [Double] = [0.5625, 0.25, 0.0625, 0]

    /// The trajectory states' weights, the code's truncated √SNR clamp(α/σ, 1, cap) with the cap
    /// 10 for states (so the intermediate states keep a share of the loss; §6.12).
    package static func weights(process p: DiffusionProcess, times: [Double], cap: Double = 10) -> [Float] {
        times.map { u in
            let t = ProgressiveDistillation.time(u, on: p)
            return Float(u == 0 ? cap : min(max(p.alpha(t) / p.sigma(t), 1), cap))
        }
    }

    /// `count` starting states x_T = σ_T·z (z ~ N(0, I), rows of `itemShape` flattened) and the
    /// teacher's trajectory states at `times` (count, M, d). An exact mixture's states are its ODE
    /// solved from x_T to each time (Dormand–Prince at tolerance 1e-6, far below any student's
    /// error); a network teacher's are read off DPM-Solver++(2M) on the 64-step time-uniform grid of `process`, whose points the
    /// times must be. `progress` hears the trajectories done so far (mixtures, per 4096).
    package static func trajectories(teacher: some Denoiser, mixture: GaussianMixture?, process p: DiffusionProcess, times: [Double],
                                     itemShape: [Int], count: Int, seed: UInt64,
                                     progress: ((_ done: Int, _ total: Int) -> Void)? = nil) throws -> (start: Tensor, states: Tensor) {
        let d = itemShape.reduce(1, *), steps = 64
        guard times.allSatisfy({ (0...1).contains($0) && abs($0 * Double(steps) - ($0 * Double(steps)).rounded()) < 1e-9 }),
              zip(times, times.dropFirst()).allSatisfy({ $0 > $1 }) else {
            throw TrainingError.invalidConfiguration("DSNO's times \(times) must be decreasing points of a \(steps)-step grid in [0, 1]")
        }
        let grid = try ProgressiveDistillation.grid(process: p, steps: steps)
        let top = grid.levels[0]
        var rng = Philox(seed: seed, stream: 0xD5)
        let start = try rng.normal([count] + itemShape) * Float(top.sigma)
        var slices: [Tensor] = []
        if let mixture {
            // One solve along each trajectory, segment by segment (times are noisiest first), in
            // blocks of rows so that long runs report progress.
            let rows = try start.reshaped([count, d])
            var blocks = [[Tensor]](repeating: [], count: times.count)
            for first in stride(from: 0, to: count, by: 4096) {
                var (x, from) = (try rows.slice(first..<min(first + 4096, count)), (top.alpha, top.sigma))
                for (i, u) in times.enumerated() {
                    let level = grid.levels[steps - Int((u * Double(steps)).rounded())]
                    x = try mixture.solveProbabilityFlow(x, from: from, to: (level.alpha, level.sigma), tolerance: 1e-6).0
                    blocks[i].append(x)
                    from = (level.alpha, level.sigma)
                }
                progress?(min(first + 4096, count), count)
            }
            slices = try blocks.map { try Tensor.concat($0, axis: 0) }
        } else {
            let wanted = times.map { steps - Int(($0 * Double(steps)).rounded()) }
            var found: [Int: Tensor] = [:]
            _ = try SamplerKind.dpmpp2M.run(teacher, from: start, grid: grid) { step in
                if wanted.contains(step.index + 1) { found[step.index + 1] = step.state }
            }
            slices = try wanted.map { i in
                guard let s = found[i] else { throw TrainingError.invalidConfiguration("the teacher's sampler did not reach step \(i)") }
                return s
            }
        }
        let states = try slices.map { try $0.reshaped([count, 1, d]) }
        return (try start.reshaped([count, d]), try Tensor.concat(states, axis: 1))
    }

    /// (1/M)·Σ_i w_i·mean over rows and values of (Φ(x_T)_i − state_i)².
    package static func loss(student: TrajectoryGenerator, start: Tensor, states: Tensor, weights: [Float]) throws -> Tensor {
        let w = try Tensor(shape: [1, weights.count, 1], scalars: weights)
        return try ((student.trajectory(start) - states).squared() * w).mean()
    }
}
