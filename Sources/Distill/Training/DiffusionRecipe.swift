import Foundation

/// How to train a diffusion model by denoising score matching (`docs/methods.md` §3): the
/// network (an MLP, or a U-Net for images), process, parameterization, loss weighting,
/// optimizer settings and classifier-free-guidance label dropout. ``train(on:checkpoint:log:resume:shouldStop:progress:)``
/// runs it on the ``Trainer``.
///
/// ```swift
/// var recipe = DiffusionRecipe()
/// recipe.steps = 4000
/// let (teacher, _) = try recipe.train(on: Dataset.load("moons"), checkpoint: "out/moons.safetensors")
/// ```
public struct DiffusionRecipe: Sendable, Codable, Equatable {
    /// The forward process.
    public var process: DiffusionProcess = .vpLinear()
    /// What the network predicts.
    public var parameterization: Parameterization = .epsilon
    /// The DSM loss weighting.
    public var weighting: LossWeighting = .epsilon
    /// Draw noise levels log-normally (EDM: mean -1.2, std 1.2) instead of uniformly in time.
    package var logNormalTimes = false
    /// Hidden widths of the MLP (used when ``unet`` is nil).
    public var hidden: [Int] = [256, 256, 256]
    /// A U-Net instead of the MLP (items must be square images [C, S, S]); its image size,
    /// channels and class count are taken from the data.
    public var unet: UNet.Configuration?
    /// Optimizer steps.
    public var steps = 5000
    /// Items per step.
    public var batch = 512
    /// The peak learning rate (linear warm-up over min(200, steps/10) steps, then cosine decay
    /// to a twentieth of it).
    public var learningRate: Float = 2e-3
    /// AdamW's decoupled weight decay.
    public var weightDecay: Float = 0
    /// EMA decay of the weights (nil: none); sampling uses the EMA weights.
    public var emaDecay: Float? = 0.999
    /// Clip the global gradient norm to this (nil: no clipping).
    package var gradientClip: Float? = 1
    /// Seeds the initialization, the batches and every noise draw.
    public var seed: UInt64 = 0
    /// Condition on the data's labels, with label dropout for classifier-free guidance.
    public var classConditional = false
    /// Probability of replacing a label by the null class (Ho & Salimans 2022).
    public var labelDropout = 0.1
    /// Save a checkpoint every this many steps.
    public var checkpointEvery = 1000

    /// The defaults: an MLP of widths 256×3, VP-linear, ε-prediction, 5000 steps of 512.
    public init() {}

    /// Throws unless every setting is usable.
    package func validate() throws {
        func bad(_ m: String) -> TrainingError { .invalidConfiguration(m) }
        try process.validate()
        guard (1...100_000_000).contains(steps) else { throw bad("steps must be in 1...100000000; got \(steps)") }
        guard (1...(1 << 20)).contains(batch) else { throw bad("the batch must be in 1...\(1 << 20); got \(batch)") }
        guard learningRate.isFinite, learningRate > 0, learningRate <= 10 else { throw bad("the learning rate must be in (0, 10]; got \(learningRate)") }
        guard labelDropout.isFinite, (0...1).contains(labelDropout) else { throw bad("the label dropout must be in [0, 1]; got \(labelDropout)") }
        guard checkpointEvery >= 1 else { throw bad("checkpointEvery must be at least 1; got \(checkpointEvery)") }
        guard unet != nil || (!hidden.isEmpty && hidden.count <= 64 && hidden.allSatisfy({ (1...65_536).contains($0) })) else {
            throw bad("the MLP needs 1 to 64 hidden widths of 1...65536; got \(hidden)")
        }
        try configuration.validate()
    }

    /// The trainer settings of this recipe.
    var configuration: TrainingConfiguration {
        TrainingConfiguration(steps: steps, learningRate: .warmupCosine(peak: learningRate, warmupSteps: min(200, steps / 10),
                                                                        totalSteps: steps, minimum: learningRate / 20),
                              weightDecay: weightDecay, gradientClip: gradientClip, emaDecay: emaDecay, seed: seed,
                              checkpointEvery: checkpointEvery, logEvery: max(1, min(100, steps / 50)))
    }

    /// The network (initialized from ``seed``) and its model card, for `data`.
    package func makeNetwork(for data: Dataset) throws -> (network: any ConditionalNetwork, card: ModelCard) {
        try validate()
        let itemShape = data.itemShape
        let classes = classConditional ? data.classCount : nil
        if classConditional && data.classCount == nil {
            throw TrainingError.invalidConfiguration("class conditioning needs labelled data; \(data.name) has no labels")
        }
        let network: any ConditionalNetwork, architecture: ModelCard.Architecture
        if var config = unet {
            guard itemShape.count == 3, itemShape[1] == itemShape[2] else {
                throw TrainingError.invalidConfiguration("a U-Net needs square images [C, S, S]; the data's items have shape \(itemShape)")
            }
            config.imageChannels = itemShape[0]
            config.imageSize = itemShape[1]
            config.classCount = classes
            network = try UNet(config, seed: seed)
            architecture = .unet(config)
        } else {
            let config = MLPScoreNetwork.Configuration(dataDimension: itemShape.reduce(1, *), hiddenWidths: hidden, classCount: classes)
            network = try MLPScoreNetwork(config, seed: seed)
            architecture = .mlp(config)
        }
        let conditioning: NetworkConditioning = parameterization == .edm ? .edm : .time
        var card = ModelCard(architecture: architecture, process: process, parameterization: parameterization,
                             conditioning: conditioning, dataShape: itemShape, dataSource: data.name, classCount: classes,
                             provenance: "denoising score matching (\(weighting.rawValue) weighting), \(steps) steps")
        card.dataRange = data.valueRange.map { [$0.lowerBound, $0.upperBound] }
        return (network, card)
    }

    /// Trains on `data` and returns the model (with its EMA weights, when there is an EMA).
    ///
    /// - Parameters:
    ///   - data: the training data (labelled for ``classConditional``).
    ///   - checkpoint: where the run's state is written (atomically; it loads as a
    ///     ``TrainedModel``).
    ///   - log: a JSON-lines log of the loss.
    ///   - resume: continue from `checkpoint` when it exists; refused unless it was written
    ///     with the same recipe and data.
    ///   - shouldStop: asked after every step; true saves the checkpoint and returns early.
    ///   - progress: called after every step.
    /// - Returns: the model and the run's summary (``TrainingSummary/interrupted`` when stopped).
    public func train(on data: Dataset, checkpoint: String? = nil, log: String? = nil, resume: Bool = false,
                      shouldStop: (() -> Bool)? = nil,
                      progress: ((TrainingProgress) -> Void)? = nil) throws -> (model: TrainedModel, summary: TrainingSummary) {
        let (network, card) = try makeNetwork(for: data)
        let model = DiffusionModel(network: AnyNetwork(network), process: process, parameterization: parameterization, conditioning: card.conditioning)
        let trainer = try Trainer(model: network, configuration: configuration, card: card.json)
        trainer.identity = try identity(data)
        if resume, let checkpoint, FileManager.default.fileExists(atPath: checkpoint) { try trainer.resume(from: checkpoint) }
        let batches = try data.batches(size: batch, seed: seed)
        let null = data.classCount
        let summary = try trainer.run(checkpoint: checkpoint, log: log, progress: { p in
            progress?(p)
            if shouldStop?() == true { trainer.requestStop() }
        }) { step, rng in
            let b = try batches(step)
            var labels: [Int]? = nil
            if classConditional, let l = b.labels, let null { labels = try dropLabels(l, probability: labelDropout, nullLabel: null, rng: &rng) }
            return try denoisingScoreMatchingLoss(model: model, x0: b.rows, labels: labels, weighting: weighting,
                                                  sampling: logNormalTimes ? .logNormal(mean: -1.2, std: 1.2) : .uniform, rng: &rng)
        }
        if let ema = trainer.parts[0].ema { try network.load(ema.shadow) }
        return (TrainedModel(network: network, card: card), summary)
    }

    /// What a resumed run must share with the checkpoint besides the trainer's settings, by name.
    func identity(_ data: Dataset) throws -> [String: String] {
        ["data": data.name, "the data's item count": String(data.rows.shape[0]), "the batch": String(batch),
         "the process": try Trainer.json(process), "the parameterization": parameterization.rawValue,
         "the loss weighting": weighting.rawValue, "log-normal times": String(logNormalTimes),
         "the network": try unet.map { try Trainer.json($0) } ?? "MLP \(hidden)",
         "class conditioning": String(classConditional), "the label dropout": String(labelDropout)]
    }
}
