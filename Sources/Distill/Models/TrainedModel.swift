import Foundation

/// A trained model of any kind — a diffusion model, a consistency model or a one-step
/// generator — or the exact Gaussian-mixture teacher, with the one way to sample it that is
/// right for its kind.
///
/// ```swift
/// let model = try TrainedModel.load("out/distill/cd-nfe2.safetensors")
/// let x = try model.sample(count: 1000, seed: 7)                    // the model's own plan
/// let y = try model.sample(count: 1000, plan: SamplingPlan(sampler: .consistency, nfe: 4))
/// ```
///
/// A checkpoint carries a model card that says what the network is, how its output is read,
/// and — for a distilled student — the sampler, grid and NFE it was trained for
/// (``defaultPlan``). Combinations that make no sense are errors, not silently wrong samples:
/// a consistency model samples only with ``SamplerKind/consistency``, a diffusion model never
/// with it, and a generator takes no plan at all.
public struct TrainedModel {
    /// What kind of model it is, which decides how it samples.
    public enum Kind: String, Sendable {
        /// A diffusion model (or the exact mixture): any ODE/SDE sampler on a grid.
        case diffusion
        /// A consistency model (Song et al. 2023): multistep consistency sampling.
        case consistency
        /// A one-step generator (Diff-Instruct, SDS, VSD): one evaluation, no plan.
        case generator
    }

    package enum Body {
        case diffusion(DiffusionModel<AnyNetwork>, ModelCard)
        case consistency(ConsistencyModel<AnyNetwork>, ModelCard)
        case generator(any Generator, GeneratorCard)
        case mixture(ClassConditionalMixture)
    }

    package let body: Body

    package init(_ body: Body) { self.body = body }

    /// A diffusion or consistency model made of `network` as `card` describes it (the network is
    /// shared, not copied).
    package init(network: any ConditionalNetwork, card: ModelCard) {
        if let sigmaMax = card.architecture.consistencySigmaMax {
            let form = card.consistencyReadsDenoiser == true
                ? ConsistencyModel<AnyNetwork>.DenoiserForm(process: card.process, parameterization: card.parameterization,
                                                            conditioning: card.conditioning) : nil
            body = .consistency(ConsistencyModel(network: AnyNetwork(network), sigmaData: Double(card.sigmaData), sigmaMax: sigmaMax,
                                                 denoiserForm: form), card)
        } else {
            body = .diffusion(DiffusionModel(network: AnyNetwork(network), process: card.process, parameterization: card.parameterization,
                                             conditioning: card.conditioning, sigmaData: card.sigmaData), card)
        }
    }

    /// The exact Gaussian-mixture teacher as a model: exact denoiser, VP-linear process, one
    /// class per component (the null label is the whole mixture).
    public init(exact mixture: GaussianMixture) {
        body = .mixture(ClassConditionalMixture(mixture))
    }

    /// Reads a checkpoint written by this package (`distill train`, `distill distill`, a
    /// ``Distiller`` or a ``Trainer``), or a diffusers pipeline folder, and rebuilds its model.
    /// The model card is validated as a whole before any network is built.
    ///
    /// A folder holding `model_index.json` is read as a diffusers pipeline: the `UNet2DModel` of
    /// `unet/` under the `DDPMScheduler` or `DDIMScheduler` of `scheduler/`, sampled by default
    /// as diffusers' DDIM pipeline does (50 steps, η = 0; `docs/methods.md` §2.10). Only the
    /// folder's fixed files are opened.
    ///
    /// - Parameters:
    ///   - path: the `.safetensors` checkpoint, or the pipeline folder.
    ///   - useEMA: take the exponential moving average of the weights when the checkpoint has one
    ///     (a pipeline folder has one set of weights).
    /// - Throws: `IOError` for an unreadable file, ``ModelCardError`` for a card that does not
    ///   describe a usable model, `ModuleError` when the weights do not fit it, and for a
    ///   pipeline folder an error naming the file and field that cannot be used.
    public static func load(_ path: String, useEMA: Bool = true) throws -> TrainedModel {
        if isDiffusersPipeline(path) { return try loadDiffusersPipeline(path) }
        let ck = try Checkpoint.read(from: path)
        let weights = useEMA ? (ck.ema ?? ck.model) : ck.model
        let stored = saturatingSum(weights.values.map(\.count))
        struct Format: Decodable { let format: String? }
        let config = Data(ck.config.utf8)
        let format = (try? JSONDecoder().decode(Format.self, from: config))?.format
        func decode<Card: Decodable>(_ type: Card.Type) throws -> Card {
            do { return try JSONDecoder().decode(type, from: config) } catch {
                throw ModelCardError(source: path, field: "(card)", reason: "not a readable model card (\(error))")
            }
        }
        switch format {
        case "distill.model":
            let card = try decode(ModelCard.self)
            try card.validate(source: path, storedValues: stored)
            let network = try card.architecture.network()
            do { try network.load(weights) } catch {
                throw ModelCardError(source: path, field: "architecture", reason: "the weights do not fit the card's network (\(error))")
            }
            return TrainedModel(network: network, card: card)
        case "distill.generator":
            let card = try decode(GeneratorCard.self)
            try card.validate(source: path, storedValues: stored)
            let generator = try card.makeGenerator()
            do { try generator.load(weights) } catch {
                throw ModelCardError(source: path, field: "architecture", reason: "the weights do not fit the card's generator (\(error))")
            }
            return TrainedModel(.generator(generator, card))
        default:
            throw ModelCardError(source: path, field: "format",
                                 reason: "\(format.map { "'\($0)'" } ?? "missing"); expected 'distill.model' or 'distill.generator'")
        }
    }

    /// A model named the way the command line names them: a built-in mixture ("ring8", "grid25",
    /// "gmm64"), "gmm:FILE.json" (an exact mixture from a file), or a checkpoint path.
    package static func named(_ spec: String) throws -> TrainedModel {
        if let m = GaussianMixture.named(spec) { return TrainedModel(exact: m) }
        if spec.hasPrefix("gmm:") { return TrainedModel(exact: try GaussianMixture.load(String(spec.dropFirst(4)))) }
        return try load(spec)
    }

    /// Samples of the model's training data for Analytic-DPM's moments, when they can be had
    /// without opening a file the model names: drawn from an exact mixture, or from the
    /// built-in data set a card names. Nil otherwise.
    package func builtInData(count: Int, seed: UInt64) throws -> Tensor? {
        if let m = mixture { return try m.sample(count, seed: seed).samples }
        guard let name = card?.dataSource, let data = try Dataset.builtIn(name, count: count, seed: seed) else { return nil }
        return try data.rows.slice(0..<min(count, data.rows.shape[0]))
    }

    /// Writes the model's weights and card as a checkpoint, atomically.
    package func write(to path: String, step: Int = 0) throws {
        switch body {
        case let .diffusion(m, card): try Checkpoint(model: m.network, optimizer: nil, step: step, config: card.json).write(to: path)
        case let .consistency(m, card): try Checkpoint(model: m.network, optimizer: nil, step: step, config: card.json).write(to: path)
        case let .generator(g, card): try Checkpoint(model: g, optimizer: nil, step: step, config: card.json).write(to: path)
        case .mixture: throw TrainingError.invalidConfiguration("an exact mixture has no weights to write")
        }
    }

    // MARK: - What it is

    /// The kind of model, which decides how it samples.
    public var kind: Kind {
        switch body {
        case .diffusion, .mixture: return .diffusion
        case .consistency: return .consistency
        case .generator: return .generator
        }
    }

    /// The shape of one sample ([d] for vectors, [C, H, W] for images).
    public var itemShape: [Int] {
        switch body {
        case let .diffusion(_, c), let .consistency(_, c): return c.dataShape
        case let .generator(_, c): return c.itemShape
        case let .mixture(m): return [m.mixture.dimension]
        }
    }

    /// The number of classes of a class-conditional model (labels 0..<classCount; the label
    /// classCount means "no class"), nil for an unconditional one.
    public var classCount: Int? {
        switch body {
        case let .diffusion(_, c), let .consistency(_, c): return c.classCount
        case .generator: return nil
        case let .mixture(m): return m.mixture.componentCount
        }
    }

    /// The process the model was trained under (nil for a generator).
    public var process: DiffusionProcess? {
        switch body {
        case let .diffusion(_, c), let .consistency(_, c): return c.process
        case .generator: return nil
        case .mixture: return .vpLinear()
        }
    }

    /// How the model was made, in a sentence (from its card).
    public var summary: String {
        switch body {
        case let .diffusion(_, c), let .consistency(_, c): return c.provenance
        case let .generator(_, c): return c.provenance ?? "one-step generator trained with \(c.method)"
        case let .mixture(m): return "exact Gaussian mixture of \(m.mixture.componentCount) components in \(m.mixture.dimension) dimensions"
        }
    }

    /// The plan `sample(count:plan:labels:guidance:seed:data:)` uses when given none: a
    /// distilled student's own sampler, grid and NFE; DPM-Solver++(2M) at 20 NFE on EDM's grid
    /// for other diffusion models; 1 NFE for a consistency model; nil for a generator, which
    /// takes no plan.
    public var defaultPlan: SamplingPlan? {
        switch body {
        case let .diffusion(_, c): return c.plan ?? SamplingPlan()
        case let .consistency(_, c): return c.plan ?? SamplingPlan(sampler: .consistency, nfe: 1)
        case .generator: return nil
        case .mixture: return SamplingPlan()
        }
    }

    /// The model as a denoiser (nil for a generator): the teacher view distillation uses.
    package var denoiser: (any Denoiser)? {
        switch body {
        case let .diffusion(m, _): return m
        case let .consistency(m, _): return m
        case .generator: return nil
        case let .mixture(m): return m
        }
    }

    /// The card of a checkpoint-backed diffusion or consistency model.
    package var card: ModelCard? {
        switch body {
        case let .diffusion(_, c), let .consistency(_, c): return c
        default: return nil
        }
    }

    /// The network of a checkpoint-backed diffusion or consistency model.
    package var network: (any ConditionalNetwork)? {
        switch body {
        case let .diffusion(m, _): return m.network.base
        case let .consistency(m, _): return m.network.base
        default: return nil
        }
    }

    /// The exact mixture, when the model is one.
    package var mixture: GaussianMixture? {
        if case let .mixture(m) = body { return m.mixture }
        return nil
    }

    // MARK: - Sampling

    /// Draws `count` samples, shaped [count] + ``itemShape``.
    ///
    /// - Parameters:
    ///   - count: how many samples (at least 1).
    ///   - plan: the sampler, grid and NFE (nil: ``defaultPlan``). Must be nil for a generator.
    ///   - labels: one class per sample for a class-conditional model (nil: unconditional).
    ///   - guidance: the classifier-free guidance weight w (with labels), or for a guided
    ///     student the weight it is asked to sample at (nil: the student's own).
    ///   - seed: the seed of the initial noise (Philox(seed) drawn as [count, values per item],
    ///     scaled to the first level) and of the noise stochastic samplers draw.
    ///   - data: samples of the training data (rows), which Analytic-DPM needs for its moments.
    ///   - progress: called after each sampling step with (steps done, steps in all).
    /// - Throws: ``SamplerError`` for a plan that does not fit the model, bad labels or a
    ///   sample that is not finite.
    public func sample(count: Int, plan: SamplingPlan? = nil, labels: [Int]? = nil, guidance: Float? = nil, seed: UInt64 = 0,
                       data: Tensor? = nil, progress: ((Int, Int) -> Void)? = nil) throws -> Tensor {
        guard count >= 1 else { throw SamplerError.invalidOption("count must be at least 1; got \(count)") }
        let values = itemShape.reduce(1, *)
        guard count <= TrainedModel.maxSampleValues / max(values, 1) else {
            throw SamplerError.invalidOption("\(count) samples of \(values) values each exceed the limit of \(TrainedModel.maxSampleValues) values")
        }
        var rng = Philox(seed: seed)
        let z = try rng.normal([count, kind == .generator ? latentWidth : values])
        return try sample(fromUnitNoise: z, plan: plan, labels: labels, guidance: guidance, seed: seed, data: data, progress: progress).sample
    }

    /// Samples from standard normal noise z (rows): scaled to the plan's first level for a
    /// diffusion or consistency model (x = σ₀·z), the latent inputs of a generator.
    package func sample(fromUnitNoise z: Tensor, plan: SamplingPlan? = nil, labels: [Int]? = nil, guidance: Float? = nil, seed: UInt64 = 0,
                        data: Tensor? = nil, progress: ((Int, Int) -> Void)? = nil) throws -> SamplerResult {
        if case .generator = body { return try sample(from: z, plan: plan, labels: labels, guidance: guidance, seed: seed, progress: progress) }
        try check(plan: plan, guidance: guidance, labels: labels, count: z.shape.first ?? 0)
        let chosen = plan ?? defaultPlan!
        return try sample(from: z * Float(try startingScale(chosen)), plan: chosen, labels: labels, guidance: guidance, seed: seed,
                          data: data, progress: progress)
    }

    /// Samples from a given initial state: for a diffusion or consistency model the state at
    /// the plan's first level (rows of ``itemShape``'s values, or [N] + ``itemShape``), for a
    /// generator its latent (and noise) inputs. Parameters as for
    /// ``sample(count:plan:labels:guidance:seed:data:progress:)``.
    ///
    /// - Returns: the samples, shaped [N] + ``itemShape``, and the NFE they took.
    public func sample(from initial: Tensor, plan: SamplingPlan? = nil, labels: [Int]? = nil, guidance: Float? = nil,
                       seed: UInt64 = 0, data: Tensor? = nil, progress: ((Int, Int) -> Void)? = nil) throws -> SamplerResult {
        guard let n = initial.shape.first, n >= 1, initial.rank >= 2 else {
            throw SamplerError.invalidOption("the initial state has shape \(initial.shape); expected [N, …] with N ≥ 1")
        }
        try check(plan: plan, guidance: guidance, labels: labels, count: n)
        let values = itemShape.reduce(1, *)
        let result: SamplerResult
        switch body {
        case let .generator(g, _):
            guard initial.shape == [n, latentWidth] else {
                throw SamplerError.invalidOption("a generator's inputs have shape [N, \(latentWidth)]; got \(initial.shape)")
            }
            let x = try withoutGradient { try g.generate(initial) }
            progress?(1, 1)
            result = SamplerResult(sample: x, evaluations: 1)
        default:
            guard initial.count == n * values else {
                throw SamplerError.invalidOption("the initial state has shape \(initial.shape); expected [\(n), \(values)] or \([n] + itemShape)")
            }
            let x = try initial.reshaped([n, values])
            let chosen = plan ?? defaultPlan!
            result = try chosen.run(try guided(guidance, labels: labels), process: process!, from: x, labels: labels, seed: seed,
                                    data: data, dataRange: card?.dataBounds, progress: progress)
        }
        let shaped = try result.sample.reshaped([n] + itemShape)
        let bad = shaped.withUnsafeBufferPointer { $0.reduce(0) { $0 + ($1.isFinite ? 0 : 1) } }
        guard bad == 0 else {
            throw SamplerError.invalidOption("the sample has \(bad) non-finite values (of \(shaped.count)); the model or plan diverged")
        }
        return SamplerResult(sample: shaped, evaluations: result.evaluations)
    }

    /// The largest sample a call may produce, in values (4 GiB of Float32).
    package static let maxSampleValues = 1 << 30

    /// Width of a generator's input rows (latent + noise).
    package var latentWidth: Int {
        if case let .generator(g, _) = body { return g.latentDimension + g.noiseDimension }
        return 0
    }

    /// σ₀ of the plan's first level for this model: seeded unit noise starts as σ₀·z.
    func startingScale(_ plan: SamplingPlan) throws -> Double {
        if case let .consistency(m, _) = body {
            return try plan.consistencyGrid(epsilon: m.epsilon, sigmaMax: m.sigmaMax).levels[0].sigma
        }
        return try plan.startingNoiseScale(process: process!)
    }

    /// Refuses combinations that make no sense, with the reason.
    func check(plan: SamplingPlan?, guidance: Float?, labels: [Int]?, count: Int) throws {
        switch body {
        case .generator:
            if let plan {
                throw SamplerError.invalidOption("a one-step generator samples in one evaluation; it takes no sampling plan (got \(plan.sampler.rawValue))")
            }
            if guidance != nil || labels != nil { throw SamplerError.invalidOption("a generator takes no labels or guidance") }
        case .consistency:
            if let plan, plan.sampler != .consistency {
                throw SamplerError.invalidOption("a consistency model samples with the consistency sampler (Song et al. 2023, Alg. 1), not \(plan.sampler.rawValue)")
            }
            if guidance != nil { throw SamplerError.invalidOption("a consistency model takes no guidance weight") }
        case .diffusion, .mixture:
            if plan?.sampler == .consistency { throw SamplerError.invalidOption("the consistency sampler needs a consistency model") }
        }
        if let labels {
            guard let classes = classCount else { throw SamplerError.invalidOption("labels given to a model without classes") }
            guard labels.count == count else { throw SamplerError.invalidOption("\(labels.count) labels for \(count) samples") }
            if let bad = labels.first(where: { !(0...classes).contains($0) }) {
                throw SamplerError.invalidOption("label \(bad) is outside 0...\(classes) (\(classes) is the null class)")
            }
        }
        if let g = guidance, !g.isFinite { throw SamplerError.invalidOption("the guidance weight must be finite; got \(g)") }
    }

    /// The denoiser to sample: a guided student at its guidance weight, or classifier-free
    /// guidance of a class-conditional model (Ho & Salimans 2022).
    func guided(_ guidance: Float?, labels: [Int]?) throws -> any Denoiser {
        switch body {
        case let .diffusion(m, card) where card.architecture.hasGuidanceInput:
            return m.withGuidance(guidance ?? card.guidance ?? 1)
        case let .diffusion(m, card):
            guard let w = guidance else { return m }
            guard let null = card.classCount, labels != nil else { throw SamplerError.invalidOption("guidance needs a class-conditional model and labels") }
            return GuidedDenoiser(m, guidance: w, nullLabel: null)
        case let .mixture(m):
            guard let w = guidance else { return m }
            guard labels != nil else { throw SamplerError.invalidOption("guidance needs labels") }
            return GuidedDenoiser(m, guidance: w, nullLabel: m.nullLabel)
        case let .consistency(m, _): return m
        case .generator: throw SamplerError.invalidOption("a generator is not a denoiser")
        }
    }
}

