import Foundation
import Synchronization

/// Settings of a training run (saved in checkpoints with the model's configuration).
public struct TrainingConfiguration: Codable, Sendable, Equatable {
    public var steps: Int
    public var learningRate: LearningRateSchedule
    /// AdamW's decoupled weight decay.
    public var weightDecay: Float
    public var beta1: Float
    public var beta2: Float
    /// Clip the global gradient norm to this (nil: no clipping).
    public var gradientClip: Float?
    /// EMA decay of the weights (nil: no EMA), ramped up as min(decay, (1 + s)/(10 + s)).
    public var emaDecay: Float?
    /// Seeds every random draw: step s draws from Philox(seed, stream: s).
    public var seed: UInt64
    /// Save a checkpoint every this many steps (and at the end) when `checkpointPath` is set.
    public var checkpointEvery: Int
    public var checkpointPath: String?
    /// Append one JSON object per `logEvery` steps to this file.
    public var logPath: String?
    public var logEvery: Int

    public init(steps: Int, learningRate: LearningRateSchedule = .constant(1e-3), weightDecay: Float = 0,
                beta1: Float = 0.9, beta2: Float = 0.999, gradientClip: Float? = 1, emaDecay: Float? = 0.999,
                seed: UInt64 = 0, checkpointEvery: Int = 1000, checkpointPath: String? = nil, logPath: String? = nil,
                logEvery: Int = 100) {
        self.steps = steps
        self.learningRate = learningRate
        self.weightDecay = weightDecay
        self.beta1 = beta1
        self.beta2 = beta2
        self.gradientClip = gradientClip
        self.emaDecay = emaDecay
        self.seed = seed
        self.checkpointEvery = checkpointEvery
        self.checkpointPath = checkpointPath
        self.logPath = logPath
        self.logEvery = logEvery
    }
}

/// What the trainer reports to its progress callback.
public struct TrainingProgress: Sendable {
    public var step: Int
    public var totalSteps: Int
    /// The loss of this step, and an exponential moving average of it.
    public var loss: Float
    public var smoothedLoss: Float
    public var learningRate: Float
    public var gradientNorm: Float?
    public var stepsPerSecond: Double
    public var secondsRemaining: Double

    /// "step 1200/5000  loss 0.2311  41.3 steps/s  ETA 1:32": the progress line of long runs.
    public var line: String {
        let eta = Int(secondsRemaining.isFinite ? secondsRemaining.rounded() : 0)
        let clock = eta >= 3600 ? String(format: "%d:%02d:%02d", eta / 3600, eta / 60 % 60, eta % 60)
                                : String(format: "%d:%02d", eta / 60, eta % 60)
        return String(format: "step %d/%d  loss %.4f  %.1f steps/s  ETA %@", step, totalSteps, smoothedLoss, stepsPerSecond, clock)
    }
}

/// The outcome of ``Trainer/run(progress:loss:)``.
public struct TrainingSummary: Sendable {
    public var startStep: Int
    public var endStep: Int
    public var seconds: Double
    public var finalSmoothedLoss: Float
    /// True when the run stopped early because ``Trainer/requestStop()`` was called (e.g. on
    /// Ctrl-C); the last checkpoint was written first.
    public var interrupted: Bool
}

/// Errors of training runs.
public enum TrainingError: Error, CustomStringConvertible {
    case invalidConfiguration(String)
    case nonFiniteLoss(step: Int, value: Float)
    case checkpointMismatch(String)

    public var description: String {
        switch self {
        case let .invalidConfiguration(m): return "training: \(m)"
        case let .nonFiniteLoss(step, v): return "training: the loss became \(v) at step \(step); lower the learning rate or clip gradients"
        case let .checkpointMismatch(m): return "training: the checkpoint does not fit this run: \(m)"
        }
    }
}

/// A generic training loop for any module and loss: AdamW with a learning-rate schedule,
/// gradient clipping, an EMA of the weights, atomic checkpoints every N steps, exact resume,
/// a progress callback and a JSONL log.
///
/// Step s draws all its randomness from `Philox(seed, stream: s)`, so a run resumed from a
/// checkpoint at step k continues with the same bits as an uninterrupted run.
public final class Trainer {
    public let model: Module
    public let optimizer: Adam
    public let ema: ExponentialMovingAverage?
    public let configuration: TrainingConfiguration
    /// The model's own configuration (JSON), stored in checkpoints.
    public let modelConfiguration: String
    /// Steps completed.
    public private(set) var step = 0

    private let stopFlag = Atomic<Bool>(false)

    public init(model: Module, configuration c: TrainingConfiguration, modelConfiguration: String = "{}") throws {
        guard c.steps >= 0, c.checkpointEvery >= 1, c.logEvery >= 1 else {
            throw TrainingError.invalidConfiguration("steps must be >= 0 and checkpointEvery, logEvery >= 1")
        }
        if let clip = c.gradientClip, !(clip > 0) { throw TrainingError.invalidConfiguration("gradientClip must be positive") }
        self.model = model
        self.configuration = c
        self.modelConfiguration = modelConfiguration
        optimizer = try Adam.adamW(model, learningRate: c.learningRate.learningRate(at: 0), beta1: c.beta1, beta2: c.beta2,
                                   weightDecay: c.weightDecay)
        ema = try c.emaDecay.map { try ExponentialMovingAverage(model, decay: $0) }
    }

    /// Asks a running ``run(progress:loss:)`` to stop after the current step (safe from any
    /// thread, e.g. a signal handler's task); the run saves a checkpoint before returning.
    public func requestStop() { stopFlag.store(true, ordering: .relaxed) }

    /// The run's state as a checkpoint.
    public func checkpoint() -> Checkpoint {
        let trainingJSON = (try? JSONEncoder().encode(configuration)).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
        return Checkpoint(model: model, optimizer: optimizer, ema: ema, step: step, config: modelConfiguration,
                          extra: ["training": trainingJSON])
    }

    /// Writes the checkpoint atomically.
    public func saveCheckpoint(to path: String) throws { try checkpoint().write(to: path) }

    /// Restores model, optimizer, EMA and step from a checkpoint of this run.
    public func resume(from path: String) throws {
        let ck = try Checkpoint.read(from: path)
        if (ema == nil) != (ck.ema == nil) {
            throw TrainingError.checkpointMismatch(ema == nil ? "it has EMA weights but this run has no EMA" : "it has no EMA weights")
        }
        try ck.restore(model: model, optimizer: optimizer, ema: ema)
        step = ck.step
    }

    /// Trains from the current step to `configuration.steps`. `loss(step, rng)` builds the
    /// scalar loss for a step from `rng` = Philox(seed, stream: step).
    @discardableResult
    public func run(progress: ((TrainingProgress) -> Void)? = nil,
                    loss: (_ step: Int, _ rng: inout Philox) throws -> Tensor) throws -> TrainingSummary {
        let c = configuration
        let start = step, t0 = Date()
        var smoothed = Float.nan
        let log = try c.logPath.map { try JSONLLog(path: $0) }
        var interrupted = false
        while step < c.steps {
            if stopFlag.load(ordering: .relaxed) { interrupted = true; break }
            let lr = c.learningRate.learningRate(at: step)
            optimizer.learningRate = lr
            var rng = Philox(seed: c.seed, stream: UInt64(step))
            let s = step
            let value = try model.valueWithGradient { try loss(s, &rng) }
            guard value.isFinite else { throw TrainingError.nonFiniteLoss(step: step, value: value) }
            let norm = c.gradientClip.map { clipGradientNorm(model.parameters, maxNorm: $0) }
            try optimizer.update()
            // EMA warm-up: decay min(d, (1 + s)/(10 + s)), so early averages are not dominated by
            // the random initialization (the usual ramp, e.g. in TensorFlow's EMA with num_updates).
            if let ema { try ema.update(from: model, decay: min(ema.decay, Float(1 + step) / Float(10 + step))) }
            step += 1
            smoothed = smoothed.isNaN ? value : 0.98 * smoothed + 0.02 * value
            let elapsed = Date().timeIntervalSince(t0)
            let rate = Double(step - start) / max(elapsed, 1e-9)
            let p = TrainingProgress(step: step, totalSteps: c.steps, loss: value, smoothedLoss: smoothed, learningRate: lr,
                                     gradientNorm: norm, stepsPerSecond: rate, secondsRemaining: Double(c.steps - step) / rate)
            progress?(p)
            if step % c.logEvery == 0 || step == c.steps { try log?.append(p, elapsed: elapsed) }
            if let path = c.checkpointPath, step % c.checkpointEvery == 0 || step == c.steps {
                try saveCheckpoint(to: path)
            }
        }
        if interrupted, let path = c.checkpointPath { try saveCheckpoint(to: path) }
        return TrainingSummary(startStep: start, endStep: step, seconds: Date().timeIntervalSince(t0),
                               finalSmoothedLoss: smoothed, interrupted: interrupted)
    }
}

/// An append-only JSON-lines log (one object per line, flushed per line).
final class JSONLLog {
    let handle: FileHandle
    let path: String

    init(path: String) throws {
        self.path = path
        if !FileManager.default.fileExists(atPath: path) {
            guard FileManager.default.createFile(atPath: path, contents: nil) else {
                throw IOError.writeFailed(path: path, reason: "cannot create the log file")
            }
        }
        guard let h = FileHandle(forWritingAtPath: path) else { throw IOError.writeFailed(path: path, reason: "cannot open the log file") }
        h.seekToEndOfFile()
        handle = h
    }

    deinit { try? handle.close() }

    func append(_ p: TrainingProgress, elapsed: Double) throws {
        var obj: [String: Any] = ["step": p.step, "loss": Double(p.loss), "smoothed_loss": Double(p.smoothedLoss),
                                  "lr": Double(p.learningRate), "steps_per_second": p.stepsPerSecond, "elapsed": elapsed]
        if let g = p.gradientNorm { obj["grad_norm"] = Double(g) }
        var line = try JSONSerialization.data(withJSONObject: obj, options: [.sortedKeys])
        line.append(UInt8(ascii: "\n"))
        do { try handle.write(contentsOf: line) } catch {
            throw IOError.writeFailed(path: path, reason: "\(error)")
        }
    }
}
