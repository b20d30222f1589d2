import Foundation
import Synchronization

/// Settings of a training run that decide its result (saved in its checkpoints and compared
/// on resume).
public struct TrainingConfiguration: Sendable, Codable, Equatable {
    /// Optimizer steps in all.
    public var steps: Int
    /// The learning rate as a function of the step.
    public var learningRate: LearningRateSchedule
    /// AdamW's decoupled weight decay.
    public var weightDecay: Float
    /// Clip the global gradient norm to this (nil: no clipping).
    public var gradientClip: Float?
    /// EMA decay of the weights (nil: no EMA), ramped up as min(decay, (1 + s)/(10 + s)).
    public var emaDecay: Float?
    /// Seeds every random draw: step s draws from Philox(seed, stream: s).
    public var seed: UInt64
    /// Save a checkpoint every this many steps (and at the end, and when stopped).
    public var checkpointEvery: Int
    /// Append a line to the log every this many steps (and at the end).
    package var logEvery: Int
    package var beta1: Float = 0.9
    package var beta2: Float = 0.999

    /// Settings for a run of `steps` steps; the defaults are AdamW without weight decay, a
    /// constant learning rate of 1e-3, clipping at norm 1 and an EMA of decay 0.999.
    public init(steps: Int, learningRate: LearningRateSchedule = .constant(1e-3), weightDecay: Float = 0, gradientClip: Float? = 1,
                emaDecay: Float? = 0.999, seed: UInt64 = 0, checkpointEvery: Int = 1000) {
        self.init(steps: steps, learningRate: learningRate, weightDecay: weightDecay, gradientClip: gradientClip, emaDecay: emaDecay,
                  seed: seed, checkpointEvery: checkpointEvery, logEvery: 100)
    }

    /// Every setting, the log's interval too.
    package init(steps: Int, learningRate: LearningRateSchedule, weightDecay: Float = 0, gradientClip: Float?, emaDecay: Float?,
                 seed: UInt64, checkpointEvery: Int, logEvery: Int) {
        self.steps = steps
        self.learningRate = learningRate
        self.weightDecay = weightDecay
        self.gradientClip = gradientClip
        self.emaDecay = emaDecay
        self.seed = seed
        self.checkpointEvery = checkpointEvery
        self.logEvery = logEvery
    }

    /// Throws unless every number is usable (finite, in range).
    package func validate() throws {
        func bad(_ m: String) -> TrainingError { .invalidConfiguration(m) }
        guard (0...100_000_000).contains(steps) else { throw bad("steps must be in 0...100000000; got \(steps)") }
        guard checkpointEvery >= 1, logEvery >= 1 else { throw bad("checkpointEvery and logEvery must be at least 1") }
        if let c = gradientClip, !(c.isFinite && c > 0) { throw bad("the gradient clip must be positive and finite; got \(c)") }
        if let d = emaDecay, !(d.isFinite && d >= 0 && d < 1) { throw bad("the EMA decay must be in [0, 1); got \(d)") }
        guard weightDecay.isFinite, weightDecay >= 0, weightDecay < 1 else { throw bad("the weight decay must be in [0, 1); got \(weightDecay)") }
        try learningRate.validate()
    }
}

extension LearningRateSchedule {
    func validate() throws {
        func ok(_ x: Float) -> Bool { x.isFinite && x >= 0 && x <= 10 }
        switch self {
        case let .constant(lr):
            guard ok(lr), lr > 0 else { throw TrainingError.invalidConfiguration("the learning rate must be in (0, 10]; got \(lr)") }
        case let .warmupCosine(peak, warmup, total, minimum):
            guard ok(peak), peak > 0, ok(minimum), minimum <= peak, warmup >= 0, total >= 0 else {
                throw TrainingError.invalidConfiguration("the learning rate must be in (0, 10] with 0 ≤ minimum ≤ peak; got peak \(peak), minimum \(minimum)")
            }
        }
    }
}

/// What the trainer reports after each step.
public struct TrainingProgress: Sendable {
    /// Steps done, and in all.
    public var step: Int
    /// The run's total steps.
    public var totalSteps: Int
    /// The loss of this step.
    public var loss: Float
    /// An exponential moving average of the loss (factor 0.98).
    public var smoothedLoss: Float
    /// The learning rate of this step.
    public var learningRate: Float
    /// The gradient norm before clipping.
    package var gradientNorm: Float?
    /// Steps per second since the run (or resume) started.
    public var stepsPerSecond: Double
    /// The estimated time to the end.
    public var secondsRemaining: Double

    /// "step 1200/5000  loss 0.2311  41.3 steps/s  ETA 1:32": the progress line of long runs.
    package var line: String {
        let eta = Int(secondsRemaining.isFinite ? secondsRemaining.rounded() : 0)
        let clock = eta >= 3600 ? String(format: "%d:%02d:%02d", eta / 3600, eta / 60 % 60, eta % 60)
                                : String(format: "%d:%02d", eta / 60, eta % 60)
        return String(format: "step %d/%d  loss %.4f  %.1f steps/s  ETA %@", step, totalSteps, smoothedLoss, stepsPerSecond, clock)
    }
}

/// The outcome of a training run.
public struct TrainingSummary: Sendable {
    /// The step the run started from (non-zero after a resume).
    public var startStep: Int
    /// The step it ended at.
    public var endStep: Int
    /// Wall-clock seconds.
    public var seconds: Double
    /// The smoothed loss at the end.
    public var finalSmoothedLoss: Float
    /// True when the run stopped early (``Trainer/requestStop()``, e.g. on Ctrl-C) after
    /// saving its checkpoint.
    public var interrupted: Bool
}

/// Errors of training runs.
public enum TrainingError: Error, CustomStringConvertible {
    /// A setting that cannot work, with what was expected.
    case invalidConfiguration(String)
    /// The loss became NaN or infinite.
    case nonFiniteLoss(step: Int, value: Float)
    /// A checkpoint that does not belong to this run (other settings or another model).
    case checkpointMismatch(String)
    /// The run was stopped; its state was saved to the checkpoint named.
    case interrupted(checkpoint: String)

    /// One line saying what went wrong.
    public var description: String {
        switch self {
        case let .invalidConfiguration(m): return "training: \(m)"
        case let .nonFiniteLoss(step, v): return "training: the loss became \(v) at step \(step); lower the learning rate or clip gradients"
        case let .checkpointMismatch(m): return "training: the checkpoint does not fit this run: \(m)"
        case let .interrupted(path): return "training: interrupted; the running stage is saved in \(path)"
        }
    }
}

/// The one training loop: every model this package trains — diffusion models, every
/// distillation stage, one-step generators and their fake-score networks, the feature
/// classifier — runs through it, so all get the same AdamW steps, schedules, clipping, EMA,
/// atomic checkpoints, bit-exact resume, stop requests and JSONL log.
///
/// Step s draws all its randomness from `Philox(seed, stream: s)`, so a run resumed from a
/// checkpoint at step k continues with the same bits as an uninterrupted run; resuming
/// checks that the checkpoint was written by a run with the same settings.
///
/// ```swift
/// let trainer = try Trainer(model: network, configuration: .init(steps: 2000, seed: 1))
/// try trainer.run(checkpoint: "out/model.safetensors") { step, rng in
///     try denoisingScoreMatchingLoss(model: model, x0: batch(step), rng: &rng)
/// }
/// ```
public final class Trainer {
    /// One module with its own optimizer, learning-rate schedule, clipping and EMA.
    package final class Part {
        package let name: String
        package let module: Module
        package let optimizer: Adam
        package let schedule: LearningRateSchedule
        package let clip: Float?
        package let ema: ExponentialMovingAverage?
        /// The EMA decay at a step (nil: the warm-up ramp min(decay, (1 + s)/(10 + s))).
        package let emaDecay: ((Int) -> Float)?

        package init(name: String, module: Module, optimizer: Adam, schedule: LearningRateSchedule, clip: Float?,
                     ema: ExponentialMovingAverage?, emaDecay: ((Int) -> Float)? = nil) {
            self.name = name
            self.module = module
            self.optimizer = optimizer
            self.schedule = schedule
            self.clip = clip
            self.ema = ema
            self.emaDecay = emaDecay
        }
    }

    /// What a step body uses: the step's random numbers and the updates of the run's parts.
    package struct Step {
        package let index: Int
        package var rng: Philox
        let trainer: Trainer

        /// One optimizer step of the part called `name` on the loss `loss` builds (gradients,
        /// clipping, the update, the EMA). Returns the loss.
        @discardableResult
        package mutating func update(_ name: String, _ loss: (inout Philox) throws -> Tensor) throws -> Float {
            guard let part = trainer.parts.first(where: { $0.name == name }) else {
                throw TrainingError.invalidConfiguration("no trained part called '\(name)'")
            }
            return try trainer.update(part, step: index) { try loss(&rng) }
        }
    }

    /// The trained module (the first part).
    public var model: Module { parts[0].module }
    /// The settings.
    public let configuration: TrainingConfiguration
    /// The JSON model card stored in checkpoints (so a checkpoint loads as a ``TrainedModel``).
    package let card: String
    /// Settings outside ``configuration`` that decide the result (data, batch, method, …),
    /// stored in checkpoints and compared on resume, by name.
    package var identity: [String: String] = [:]
    /// Steps completed.
    public private(set) var step = 0
    package private(set) var parts: [Part]

    private let stopFlag = Atomic<Bool>(false)
    private var gradientNorm: Float?

    /// A run training `model` with AdamW under `configuration`; `card` is stored in its
    /// checkpoints.
    ///
    /// - Throws: ``TrainingError/invalidConfiguration(_:)`` for unusable settings.
    public convenience init(model: Module, configuration: TrainingConfiguration) throws {
        try self.init(model: model, configuration: configuration, card: "{}")
    }

    package init(model: Module, configuration c: TrainingConfiguration, card: String, emaDecay: ((Int) -> Float)? = nil) throws {
        try c.validate()
        configuration = c
        self.card = card
        let optimizer = try Adam.adamW(model, learningRate: c.learningRate.learningRate(at: 0), beta1: c.beta1, beta2: c.beta2,
                                       weightDecay: c.weightDecay)
        let ema = try c.emaDecay.map { try ExponentialMovingAverage(model, decay: $0) }
        parts = [Part(name: "model", module: model, optimizer: optimizer, schedule: c.learningRate, clip: c.gradientClip, ema: ema,
                      emaDecay: emaDecay)]
    }

    /// A run of several parts (the first is the model; others, e.g. a fake score network, are
    /// updated by name from a step body), each with its own optimizer.
    package init(parts: [Part], configuration c: TrainingConfiguration, card: String) throws {
        try c.validate()
        guard !parts.isEmpty, Set(parts.map(\.name)).count == parts.count else {
            throw TrainingError.invalidConfiguration("a run needs parts with distinct names")
        }
        configuration = c
        self.card = card
        self.parts = parts
    }

    /// Asks a running ``run(checkpoint:log:progress:loss:)`` to stop after the current step
    /// (safe from any thread, e.g. a signal handler's task); the run saves its checkpoint
    /// before returning.
    public func requestStop() { stopFlag.store(true, ordering: .relaxed) }

    package var isStopRequested: Bool { stopFlag.load(ordering: .relaxed) }

    // MARK: - Checkpoints

    /// The run's state as a checkpoint.
    package func checkpoint() throws -> Checkpoint {
        let main = parts[0]
        var ck = Checkpoint(model: main.module, optimizer: main.optimizer, ema: main.ema, step: step, config: card,
                            extra: ["training": try Trainer.json(configuration), "identity": try Trainer.json(identity)])
        for part in parts.dropFirst() {
            for (k, v) in part.module.stateDictionary() { ck.auxiliary["\(part.name)/model/\(k)"] = v }
            for (k, v) in part.optimizer.stateTensors() { ck.auxiliary["\(part.name)/optim/\(k)"] = v }
            ck.extra["optimizer.\(part.name)"] = try Trainer.json(part.optimizer.stateScalars())
        }
        return ck
    }

    /// Writes the run's state atomically.
    package func save(to path: String) throws { try checkpoint().write(to: path) }

    /// Restores every part, the optimizers, the EMA and the step from a checkpoint of this run.
    ///
    /// - Throws: ``TrainingError/checkpointMismatch(_:)`` naming the setting that differs
    ///   when the checkpoint was written by a run with other settings.
    public func resume(from path: String) throws {
        let ck = try Checkpoint.read(from: path)
        let stored = try ck.extra["training"].map { try JSONDecoder().decode(TrainingConfiguration.self, from: Data($0.utf8)) }
        if let stored { try Trainer.compare(stored, configuration) }
        let storedIdentity = try ck.extra["identity"].map { try JSONDecoder().decode([String: String].self, from: Data($0.utf8)) } ?? [:]
        for key in Set(storedIdentity.keys).union(identity.keys).sorted() where storedIdentity[key] != identity[key] {
            throw TrainingError.checkpointMismatch("\(key) was \(storedIdentity[key] ?? "unset") when the checkpoint was written; this run has \(identity[key] ?? "unset")")
        }
        guard ck.step <= configuration.steps else {
            throw TrainingError.checkpointMismatch("it is at step \(ck.step), past this run's \(configuration.steps) steps")
        }
        let main = parts[0]
        if (main.ema == nil) != (ck.ema == nil) {
            throw TrainingError.checkpointMismatch(main.ema == nil ? "it has EMA weights but this run has no EMA" : "it has no EMA weights")
        }
        try ck.restore(model: main.module, optimizer: main.optimizer, ema: main.ema)
        for part in parts.dropFirst() {
            func group(_ kind: String) -> [String: Tensor] {
                let prefix = "\(part.name)/\(kind)/"
                return Dictionary(uniqueKeysWithValues: ck.auxiliary.filter { $0.key.hasPrefix(prefix) }.map { (String($0.key.dropFirst(prefix.count)), $0.value) })
            }
            try part.module.load(group("model"))
            let scalars = try ck.extra["optimizer.\(part.name)"].map { try JSONDecoder().decode([String: String].self, from: Data($0.utf8)) } ?? [:]
            try part.optimizer.loadState(tensors: group("optim"), scalars: scalars)
        }
        step = ck.step
    }

    /// Names the first setting that differs between a stored configuration and this run's.
    static func compare(_ stored: TrainingConfiguration, _ run: TrainingConfiguration) throws {
        func differ(_ name: String, _ a: Any, _ b: Any) throws -> Never {
            throw TrainingError.checkpointMismatch("\(name) was \(a) when the checkpoint was written; this run has \(b)")
        }
        if stored.steps != run.steps { try differ("steps", stored.steps, run.steps) }
        if stored.learningRate != run.learningRate { try differ("the learning rate", stored.learningRate, run.learningRate) }
        if stored.seed != run.seed { try differ("the seed", stored.seed, run.seed) }
        if stored.weightDecay != run.weightDecay { try differ("the weight decay", stored.weightDecay, run.weightDecay) }
        if stored.gradientClip != run.gradientClip { try differ("the gradient clip", stored.gradientClip as Any, run.gradientClip as Any) }
        if stored.emaDecay != run.emaDecay { try differ("the EMA decay", stored.emaDecay as Any, run.emaDecay as Any) }
        if stored.beta1 != run.beta1 || stored.beta2 != run.beta2 { try differ("Adam's betas", (stored.beta1, stored.beta2), (run.beta1, run.beta2)) }
    }

    static func json<T: Encodable>(_ value: T) throws -> String {
        let enc = JSONEncoder()
        enc.outputFormatting = [.sortedKeys]
        return String(decoding: try enc.encode(value), as: UTF8.self)
    }

    // MARK: - The loop

    /// Trains from the current step to ``TrainingConfiguration/steps``: `loss(step, rng)` builds
    /// the scalar loss of a step from `rng` = Philox(seed, stream: step).
    ///
    /// - Parameters:
    ///   - checkpoint: where the run's state is written, atomically, every
    ///     ``TrainingConfiguration/checkpointEvery`` steps, at the end and when stopped.
    ///   - log: a JSON-lines log (one object per `TrainingConfiguration/logEvery` steps);
    ///     a fresh run starts it anew, a resumed one keeps the lines up to its step.
    ///   - progress: called after every step.
    ///   - loss: the step's scalar loss from the step index and its random numbers.
    /// - Returns: the summary; ``TrainingSummary/interrupted`` when stopped early.
    @discardableResult
    public func run(checkpoint: String? = nil, log: String? = nil, progress: ((TrainingProgress) -> Void)? = nil,
                    loss: (_ step: Int, _ rng: inout Philox) throws -> Tensor) throws -> TrainingSummary {
        try runSteps(checkpoint: checkpoint, log: log, progress: progress) { step in
            let index = step.index
            return try step.update("model") { rng in try loss(index, &rng) }
        }
    }

    /// The loop behind ``run(checkpoint:log:progress:loss:)`` for runs with several parts:
    /// `body` makes the step's updates and returns the loss to report.
    package func runSteps(checkpoint: String?, log: String?, progress: ((TrainingProgress) -> Void)?,
                          body: (inout Step) throws -> Float) throws -> TrainingSummary {
        let c = configuration
        // What a killed run left half-written in the checkpoint's folder goes first.
        if let checkpoint { FileIO.removeStaleTemporaryFiles(in: FileIO.directory(of: checkpoint)) }
        let start = step, t0 = Date()
        var smoothed = Float.nan
        let logFile = try log.map { try TrainingLog(path: $0, keepingStepsUpTo: step) }
        var interrupted = false
        while step < c.steps {
            if isStopRequested { interrupted = true; break }
            var context = Step(index: step, rng: Philox(seed: c.seed, stream: UInt64(step)), trainer: self)
            gradientNorm = nil
            let value = try body(&context)
            step += 1
            smoothed = smoothed.isNaN ? value : 0.98 * smoothed + 0.02 * value
            let elapsed = Date().timeIntervalSince(t0)
            let rate = Double(step - start) / max(elapsed, 1e-9)
            let p = TrainingProgress(step: step, totalSteps: c.steps, loss: value, smoothedLoss: smoothed,
                                     learningRate: parts[0].schedule.learningRate(at: step - 1), gradientNorm: gradientNorm,
                                     stepsPerSecond: rate, secondsRemaining: Double(c.steps - step) / rate)
            progress?(p)
            if step % c.logEvery == 0 || step == c.steps { try logFile?.append(p, elapsed: elapsed) }
            if let checkpoint, step % c.checkpointEvery == 0 || step == c.steps { try save(to: checkpoint) }
        }
        if interrupted, let checkpoint { try save(to: checkpoint) }
        return TrainingSummary(startStep: start, endStep: step, seconds: Date().timeIntervalSince(t0),
                               finalSmoothedLoss: smoothed, interrupted: interrupted)
    }

    /// One update of `part`: gradients of the loss, a finite-loss check, clipping, the
    /// optimizer step at the schedule's rate, the EMA.
    func update(_ part: Part, step s: Int, _ loss: () throws -> Tensor) throws -> Float {
        part.optimizer.learningRate = part.schedule.learningRate(at: s)
        let value = try part.module.valueWithGradient(loss)
        guard value.isFinite else { throw TrainingError.nonFiniteLoss(step: s, value: value) }
        let norm = part.clip.map { clipGradientNorm(part.module.parameters, maxNorm: $0) }
        if part === parts[0] { gradientNorm = norm }
        try part.optimizer.update()
        if let ema = part.ema {
            // Warm-up: decay min(d, (1 + s)/(10 + s)), so early averages are not dominated by the
            // random initialization (the usual ramp, e.g. TensorFlow's EMA with num_updates).
            let decay = part.emaDecay?(s) ?? min(ema.decay, Float(1 + s) / Float(10 + s))
            try ema.update(from: part.module, decay: decay)
        }
        return value
    }
}

/// The JSON-lines log of a run: one object per logged step, flushed per line. Opened without
/// following a symbolic link; a resumed run keeps only the lines up to its checkpoint's step
/// (a kill between checkpoints would otherwise log those steps twice).
final class TrainingLog {
    let handle: FileHandle
    let path: String

    init(path: String, keepingStepsUpTo step: Int) throws {
        self.path = path
        var kept = Data()
        if step > 0, let old = try? FileIO.read(path) {
            for line in old.split(separator: UInt8(ascii: "\n")) {
                guard let obj = try? JSONSerialization.jsonObject(with: Data(line)) as? [String: Any],
                      let s = obj["step"] as? Int, s <= step else { continue }
                kept.append(contentsOf: line)
                kept.append(UInt8(ascii: "\n"))
            }
        }
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0o644)
        guard fd >= 0 else {
            throw IOError.writeFailed(path: path, reason: errno == ELOOP ? "is a symbolic link; the log is not written through links"
                                                                        : String(cString: strerror(errno)))
        }
        handle = FileHandle(fileDescriptor: fd, closeOnDealloc: true)
        if !kept.isEmpty { try write(kept) }
    }

    func write(_ data: Data) throws {
        do { try handle.write(contentsOf: data) } catch { throw IOError.writeFailed(path: path, reason: "\(error)") }
    }

    func append(_ p: TrainingProgress, elapsed: Double) throws {
        var obj: [String: Any] = ["step": p.step, "loss": Double(p.loss), "smoothed_loss": Double(p.smoothedLoss),
                                  "lr": Double(p.learningRate), "steps_per_second": p.stepsPerSecond, "elapsed": elapsed]
        if let g = p.gradientNorm { obj["grad_norm"] = Double(g) }
        var line = try JSONSerialization.data(withJSONObject: obj, options: [.sortedKeys])
        line.append(UInt8(ascii: "\n"))
        try write(line)
    }
}
