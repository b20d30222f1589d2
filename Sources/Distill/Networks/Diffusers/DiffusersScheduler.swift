import Foundation
import DistillCore

/// The noise schedule of a diffusers pipeline, as its `scheduler/scheduler_config.json` states
/// it for a `DDPMScheduler` or a `DDIMScheduler` (field names in backquotes are diffusers'),
/// validated field by field and mapped onto this library's pieces (`docs/methods.md` §2.10):
///
/// - the process: the discrete DDPM schedule of `num_train_timesteps` steps whose β are spread
///   by `beta_schedule` ("linear", "scaled_linear" or "squaredcos_cap_v2") between `beta_start`
///   and `beta_end` (``DiffusionProcess/ddpm(steps:betaStart:betaEnd:schedule:)``);
/// - the parameterization: `prediction_type` "epsilon" → ε, "v_prediction" → v, "sample" → x₀;
/// - the network input: diffusers' timestep n (0…N−1), i.e. the 0-based training step
///   (``NetworkConditioning/diffusersTimestep``);
/// - the sampling steps: ``timesteps(steps:)`` reproduces `set_timesteps` (`timestep_spacing`
///   "leading", "trailing" or "linspace", plus `steps_offset`), and ``ddimLevels(steps:)`` turns
///   a DDIM run into noise levels, ending where `set_alpha_to_one` says.
///
/// Refused by name (a ``DiffusersError``): other scheduler classes, other β schedules, non-null
/// `trained_betas`, `thresholding` true and `rescale_betas_zero_snr` true. `clip_sample` is read
/// but never applied: this library's samplers do not clip x̂₀, so a pipeline that clips (the
/// default of both schedulers, with range 1) samples the same only while x̂₀ stays in range.
/// Fields that only the stochastic DDPM step uses (`variance_type`) are ignored, as are unknown
/// fields.
package struct DiffusersScheduler: Equatable, Sendable {
    /// `_class_name`: "DDPMScheduler" or "DDIMScheduler".
    package var className: String
    /// N: `num_train_timesteps`.
    package var trainSteps: Int
    /// `beta_start`.
    package var betaStart: Double
    /// `beta_end`.
    package var betaEnd: Double
    /// `beta_schedule`.
    package var betaSchedule: DDPMBetaSchedule
    /// What the UNet predicts (`prediction_type`).
    package var parameterization: Parameterization
    /// `timestep_spacing`.
    package var spacing: NoiseGrid.DiscreteSpacing
    /// `steps_offset`: added to every "leading" timestep.
    package var stepsOffset: Int
    /// `set_alpha_to_one`: DDIM's last step goes to ᾱ = 1 (a final denoise) rather than to ᾱ₀.
    package var setAlphaToOne: Bool
    /// `clip_sample` as stored; never applied (see the type's documentation).
    package var clipSample: Bool
    /// The file named in errors.
    package var file: String

    /// Largest accepted size of `scheduler_config.json`.
    static let maximumFileSize = 1 << 20

    /// Reads and validates `scheduler/scheduler_config.json`.
    ///
    /// - Throws: ``IOError`` when the file cannot be read or is not a JSON object,
    ///   ``DiffusersError`` naming the field otherwise.
    package static func read(_ path: String) throws -> DiffusersScheduler {
        try parse(DiffusersConfigReader(bytes: FileIO.read(path, maximumSize: maximumFileSize), file: path))
    }

    /// Decodes and validates scheduler config JSON text; `file` names it in errors.
    package static func decode(_ bytes: [UInt8], file: String) throws -> DiffusersScheduler {
        try parse(DiffusersConfigReader(bytes: bytes, file: file))
    }

    /// The value of `key` when it is one of `options` (keys of the returned table).
    static func choice<T>(_ r: DiffusersConfigReader, _ key: String, default def: String, _ options: [(String, T)]) throws -> T {
        let value = try r.string(key, default: def)
        guard let found = options.first(where: { $0.0 == value }) else {
            throw r.unsupported(key, options.map { "\"\($0.0)\"" }.joined(separator: ", "))
        }
        return found.1
    }

    static func parse(_ r: DiffusersConfigReader) throws -> DiffusersScheduler {
        let classes = ["DDPMScheduler", "DDIMScheduler"]
        let name = try choice(r, "_class_name", default: "", classes.map { ($0, $0) })
        let n = try r.int("num_train_timesteps", in: 2...100_000, default: 1000)
        let b0 = try r.number("beta_start", default: 0.0001, expected: "in (0, 1)") { $0 > 0 && $0 < 1 }
        let b1 = try r.number("beta_end", default: 0.02, expected: "in [beta_start, 1)") { $0 >= b0 && $0 < 1 }
        let schedule = try choice(r, "beta_schedule", default: "linear", DDPMBetaSchedule.allCases.map { ($0.rawValue, $0) })
        switch r.fields["trained_betas"] {
        case nil, .null?: break
        default: throw r.unsupported("trained_betas", "null")
        }
        let prediction = try choice(r, "prediction_type", default: "epsilon",
                                    [("epsilon", Parameterization.epsilon), ("v_prediction", .v), ("sample", .data)])
        let spacing = try choice(r, "timestep_spacing", default: "leading", NoiseGrid.DiscreteSpacing.allCases.map { ($0.rawValue, $0) })
        let offset = try r.int("steps_offset", in: 0...(n - 1), default: 0)
        if try r.bool("thresholding", default: false) { throw r.unsupported("thresholding", "false") }
        if try r.bool("rescale_betas_zero_snr", default: false) { throw r.unsupported("rescale_betas_zero_snr", "false") }
        return DiffusersScheduler(className: name, trainSteps: n, betaStart: b0, betaEnd: b1, betaSchedule: schedule,
                                  parameterization: prediction, spacing: spacing, stepsOffset: offset,
                                  setAlphaToOne: try r.bool("set_alpha_to_one", default: true),
                                  clipSample: try r.bool("clip_sample", default: true), file: r.file)
    }

    /// The discrete DDPM process of this schedule.
    package var process: DiffusionProcess {
        .ddpm(steps: trainSteps, betaStart: betaStart, betaEnd: betaEnd, schedule: betaSchedule)
    }

    /// The timesteps diffusers' `set_timesteps(steps)` picks, noisiest first (0-based training
    /// steps; numpy's round-half-to-even where it rounds).
    ///
    /// - Throws: ``SamplerError/invalidGrid(_:)`` unless 1 ≤ `steps` ≤ N and every timestep
    ///   is a training step.
    package func timesteps(steps: Int) throws -> [Int] {
        let n = trainSteps
        guard (1...n).contains(steps) else {
            throw SamplerError.invalidGrid("\(file): \(steps) sampling steps; expected 1...\(n) (num_train_timesteps)")
        }
        let offset = spacing == .leading ? stepsOffset : 0   // diffusers offsets only "leading" timesteps
        let times = spacing.trainingSteps(steps, of: n).reversed().map { $0 + offset }
        if let bad = times.first(where: { !(0..<n).contains($0) }) {
            throw SamplerError.invalidGrid("\(file): timestep \(bad) is outside the \(n) training steps (steps_offset \(stepsOffset))")
        }
        return times
    }

    /// The noise level of training step `k` (0-based): α = √ᾱ_k, at the process time (k+1)/N.
    func level(step k: Int, of process: DiffusionProcess) -> NoiseLevel {
        let t = Double(k + 1) / Double(trainSteps)
        return NoiseLevel(alpha: process.alpha(t), sigma: process.sigma(t), time: t)
    }

    /// The levels diffusers' `DDIMScheduler` steps through in `steps` steps: each timestep's
    /// level, then the level of the last step's target — ᾱ = 1 (clean) when
    /// `set_alpha_to_one`, else ᾱ₀ (left out when the last timestep is step 0 already, where
    /// that DDIM step returns its input unchanged). With η = 0, DDIM on these levels is
    /// diffusers' DDIM with `clip_sample` off.
    ///
    /// - Throws: ``SamplerError/invalidGrid(_:)`` when diffusers' DDIM would not step from one
    ///   timestep to the next (DDIM steps to t − ⌊N/steps⌋, which is not always the next
    ///   "linspace" or "trailing" timestep).
    package func ddimLevels(steps: Int) throws -> [NoiseLevel] {
        let times = try timesteps(steps: steps), stride = trainSteps / steps, p = process
        for (t, next) in zip(times, times.dropFirst()) where t - stride != next {
            throw SamplerError.invalidGrid("\(file): diffusers' DDIM steps from timestep \(t) to \(t - stride), not to the next timestep \(next) "
                                           + "(timestep_spacing \"\(spacing.rawValue)\" with \(steps) steps); expected a spacing whose timesteps are ⌊N/steps⌋ apart")
        }
        var levels = times.map { level(step: $0, of: p) }
        if setAlphaToOne {
            levels.append(.clean)
        } else if times.last! != 0 {
            levels.append(level(step: 0, of: p))
        }
        return levels
    }

    /// The plan that samples this pipeline as diffusers' DDIM pipeline does by default (50
    /// steps, η = 0). When its steps chain (``ddimLevels(steps:)``) without `steps_offset` and
    /// with `set_alpha_to_one`, that is DDIM on this library's grid of the same spacing, which
    /// then picks diffusers' timesteps, so `--nfe` or a new budget keeps the spacing; with an
    /// offset or ᾱ₀ at the end, DDIM on the explicit levels of those 50 steps. Otherwise (steps
    /// that do not chain) DDIM at 50 NFE on this library's grid of the same spacing, which is
    /// close to diffusers' run but not the same.
    package var defaultPlan: SamplingPlan {
        let steps = min(50, trainSteps)
        let spaced = SamplingPlan(sampler: .ddim, nfe: steps, spacing: SamplingPlan.Spacing(rawValue: spacing.rawValue)!, finalDenoise: setAlphaToOne)
        guard let levels = try? ddimLevels(steps: steps), levels.count >= 2, stepsOffset != 0 || !setAlphaToOne else { return spaced }
        return SamplingPlan(sampler: .ddim, levels: levels)
    }
}
