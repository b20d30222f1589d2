import Foundation

/// A complete recipe for training a diffusion model (an MLP or, for images, a U-Net) on rows of
/// data with the generic ``Trainer``: the network, process, parameterization, loss weighting,
/// optimizer settings and classifier-free-guidance label dropout. The CLI's `train` and `demo`
/// use it.
public struct DiffusionRecipe: Codable, Sendable {
    public var process: ProcessKind = .vpLinear
    public var parameterization: Parameterization = .epsilon
    public var weighting: LossWeighting = .epsilon
    /// EDM's log-normal noise levels (mean -1.2, std 1.2) instead of uniform times.
    public var logNormalTimes = false
    /// Hidden widths of the MLP (when ``unet`` is nil).
    public var hidden: [Int] = [256, 256, 256]
    /// The U-Net to train instead of the MLP (items must be images [C, S, S]); its image size,
    /// image channels and class count are taken from the data.
    public var unet: UNet.Configuration?
    public var steps = 5000
    public var batch = 512
    public var learningRate: Float = 2e-3
    public var weightDecay: Float = 0
    public var emaDecay: Float? = 0.999
    public var gradientClip: Float? = 1
    public var seed: UInt64 = 0
    public var classConditional = false
    /// Probability of replacing a label by the null class (classifier-free guidance training).
    public var labelDropout = 0.1
    public var checkpointEvery = 1000

    public init() {}

    /// The network (initialized from `seed`) and its model card, for items of `itemShape`.
    public func makeNetwork(itemShape: [Int], classCount: Int?, dataSource: String) throws
        -> (network: any ConditionalNetwork, card: ModelCard) {
        let classes = classConditional ? classCount : nil
        if classConditional && classCount == nil {
            throw TrainingError.invalidConfiguration("class conditioning needs labelled data")
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
        let card = ModelCard(architecture: architecture, process: ProcessSpec(process), parameterization: parameterization,
                             conditioning: conditioning, dataShape: itemShape, dataSource: dataSource, classCount: classes,
                             provenance: "denoising score matching (\(weighting.rawValue) weighting), \(steps) steps")
        return (network, card)
    }

    /// Trains on `rows` (N, d), checkpointing to `checkpoint` (atomic; with the model card, so
    /// ``SavedModel/load(_:preferEMA:)`` rebuilds the model) and logging to `log`; resumes from
    /// the checkpoint when `resume` is set and it exists. `progress` sees every step.
    public func train(rows: Tensor, labels: [Int]?, itemShape: [Int], classCount: Int?, dataSource: String,
                      checkpoint: String?, log: String?, resume: Bool = false,
                      progress: ((TrainingProgress, Trainer) -> Void)? = nil) throws -> (trainer: Trainer, card: ModelCard, summary: TrainingSummary) {
        let (network, card) = try makeNetwork(itemShape: itemShape, classCount: classCount, dataSource: dataSource)
        let (trainer, summary) = try train(network, card: card, rows: rows, labels: labels, classCount: classCount, checkpoint: checkpoint,
                                           log: log, resume: resume, progress: progress)
        return (trainer, card, summary)
    }

    private func train<N: ConditionalNetwork>(_ net: N, card: ModelCard, rows: Tensor, labels: [Int]?, classCount: Int?,
                                              checkpoint: String?, log: String?, resume: Bool,
                                              progress: ((TrainingProgress, Trainer) -> Void)?) throws -> (Trainer, TrainingSummary) {
        let model = DiffusionModel(network: net, process: card.process.process, parameterization: parameterization,
                                   conditioning: card.conditioning)
        let config = TrainingConfiguration(steps: steps, learningRate: .warmupCosine(peak: learningRate, warmupSteps: min(200, steps / 10),
                                                                                      totalSteps: steps, minimum: learningRate / 20),
                                           weightDecay: weightDecay, gradientClip: gradientClip, emaDecay: emaDecay, seed: seed,
                                           checkpointEvery: checkpointEvery, checkpointPath: checkpoint, logPath: log,
                                           logEvery: max(1, min(100, steps / 50)))
        let trainer = try Trainer(model: net, configuration: config, modelConfiguration: card.json)
        if resume, let checkpoint, FileManager.default.fileExists(atPath: checkpoint) { try trainer.resume(from: checkpoint) }
        let sampler = try BatchSampler(count: rows.shape[0], batchSize: min(batch, rows.shape[0]), seed: seed)
        let null = classCount
        let summary = try trainer.run(progress: { progress?($0, trainer) }) { step, rng in
            let b = try sampler.batch(forStep: step, rows: rows, labels: labels)
            var lab: [Int]? = nil
            if classConditional, let l = b.labels, let null { lab = try dropLabels(l, probability: labelDropout, nullLabel: null, rng: &rng) }
            return try denoisingScoreMatchingLoss(model: model, x0: b.rows, labels: lab, weighting: weighting,
                                                  sampling: logNormalTimes ? .logNormal(mean: -1.2, std: 1.2) : .uniform, rng: &rng)
        }
        return (trainer, summary)
    }
}
