import Foundation

/// The distillation methods (`docs/methods.md` §6–§7): diffusion-to-field students that
/// sample in a few steps, and diffusion-to-generator one-step generators.
public enum DistillationMethod: String, Sendable, Codable, CaseIterable {
    /// Knowledge (output) distillation of the teacher's sampler into one step.
    case kd
    /// Progressive distillation: 16 → 8 → 4 → 2 → 1 steps.
    case pd
    /// CFD, classifier-based feature distillation: PD whose last stages match the teacher's
    /// sharpened feature distribution under a frozen classifier.
    case cfd
    /// TRACT, transitive-closure time distillation: a few phases that each distill a whole
    /// segment of the teacher's grid into one step (64 → 8 → 1 steps).
    case tract
    /// Guided distillation: a guidance-conditioned student, then progressive distillation at one weight.
    case guided
    /// BOOT, data-free bootstrapping: a one-step generator of the teacher's ODE signal, trained
    /// without data.
    case boot
    /// DSNO, a neural operator predicting the teacher's ODE trajectory at a few times in one pass.
    case dsno
    /// Consistency distillation from the teacher's ODE.
    case cd
    /// Consistency training, without a teacher's ODE.
    case ct
    /// Rectified flow on the teacher's coupling, then one-step distillation.
    case reflow
    /// Diff-Instruct: a one-step generator from the integral KL to the teacher.
    case diffInstruct = "diff-instruct"
    /// Score distillation sampling: a one-step generator pushed by the teacher's noise prediction.
    case sds
    /// Variational score distillation: SDS against a fake score of the generator's own samples.
    case vsd

    /// The paper the method comes from.
    public var paper: String {
        switch self {
        case .kd: return "Luhman & Luhman 2021"
        case .pd: return "Salimans & Ho 2022"
        case .tract: return "Berthelot et al. 2023"
        case .cfd: return "Sun et al. 2022"
        case .boot: return "Gu et al. 2023"
        case .dsno: return "Zheng et al. 2023"
        case .guided: return "Meng et al. 2023"
        case .cd, .ct: return "Song et al. 2023"
        case .reflow: return "Liu et al. 2022"
        case .diffInstruct: return "Luo et al. 2023"
        case .sds: return "Poole et al. 2022"
        case .vsd: return "Wang et al. 2023"
        }
    }

    /// Whether it trains a one-step generator (from the teacher's scores, without data).
    package var makesGenerator: Bool { [.diffInstruct, .sds, .vsd].contains(self) }
}

/// One result of a distillation run: a student at the NFE it samples with.
public struct DistilledStage {
    /// A shell-safe name ("pd-nfe4", "guided-w1-nfe8", "cd-nfe2", "diff-instruct-nfe1"), the
    /// stem of its file in the run's directory.
    public let name: String
    /// The NFE the student samples with (its ``TrainedModel/defaultPlan``).
    public let nfe: Int
    /// The student, whose card carries the plan it was trained for.
    public let model: TrainedModel
    /// What distinguishes this stage ("stage 1", "straightness 0.0123", …).
    public let note: String
    /// The guidance weight a guided student samples at (nil for other methods).
    package var guidance: Float?
    /// The flow's straightness (Liu et al. 2022) where the stage measured it (reflow at 1 NFE;
    /// the note says it in words).
    package var straightness: Double?
}

/// Distills a teacher by any ``DistillationMethod``: every method is an objective plus a list
/// of training stages on the one ``Trainer``, with the teacher frozen (`docs/methods.md` §6–§7).
///
/// ```swift
/// let teacher = try TrainedModel.load("out/train/model.safetensors")
/// var settings = Distiller.Settings()
/// settings.steps = 2000
/// let distiller = try Distiller(teacher: teacher, data: Dataset.load("moons"), settings: settings)
/// for stage in try distiller.run(.pd, directory: "out/pd") { print(stage.name, stage.nfe) }
/// ```
///
/// With a directory, each stage's running state is checkpointed there (hidden files
/// `.METHOD-STAGE.state.safetensors`), every finished student is written as `NAME.safetensors`,
/// and a run stopped by ``shouldStop`` resumes with the same bits.
public struct Distiller {
    /// What the students are made of.
    public enum Students: String, Sendable, Codable {
        /// Fresh MLPs of ``Settings/hidden`` widths, each method in its paper's
        /// parameterization and process (the teacher may be any model, the exact mixture too).
        case mlp
        /// Networks of the teacher's architecture. Where the papers start the student from the
        /// teacher — KD, PD, guided distillation and CD — it copies the teacher's weights and
        /// keeps its process, conditioning and time input; a guided student's guidance input
        /// starts at zero; a CD student reads the network as the teacher's denoiser. CT and
        /// reflow students are fresh networks of that architecture.
        case teacher
    }

    /// The budget and knobs of a run.
    public struct Settings: Sendable, Codable, Equatable {
        /// Training steps per stage.
        public var steps = 2000
        /// Items per step.
        public var batch = 512
        /// The peak learning rate (warm-up then cosine decay, per stage).
        public var learningRate: Float = 2e-3
        /// Hidden widths of fresh MLP students and MLP generators.
        public var hidden = [128, 128, 128]
        /// What the D2F students are made of.
        public var students = Students.mlp
        /// Seeds every initialization and random draw.
        public var seed: UInt64 = 1
        /// Guided distillation: the weights stage-one students are evaluated at; stage two
        /// distills the first.
        public var guidanceWeights: [Float] = [1]
        /// CFD: the loss's temperature, dataset term and mixture classifier (`docs/methods.md` §6.9).
        package var classifierFeature = ClassifierFeatureDistillation.Settings()
        /// BOOT: intervals of its time grid (`docs/methods.md` §6.11).
        package var bootIntervals = BootstrappingDistillation.defaultIntervals
        /// Generators and BOOT: ask a class-conditional teacher for this class only.
        package var teacherClass: Int?
        /// Generators and BOOT with ``teacherClass``: classifier-free guidance weight of the teacher.
        package var teacherGuidance: Float?
        /// Diff-Instruct and VSD: hidden widths of the fake score network.
        package var fakeHidden = [128, 128, 128]
        /// Diff-Instruct and VSD: fake-score updates per generator update.
        package var fakeStepsPerGeneratorStep = 1
        /// Generators: a convolutional image generator instead of an MLP (image teachers).
        package var convolutionalGenerator = false
        /// Generators: the latent size (default: the data size for MLPs, 64 for convolutional).
        package var latentDimension: Int?
        /// Generators: an extra noise input (MLP: as many values as the latent; convolutional:
        /// a noise map), making the generator stochastic.
        package var stochasticGenerator = false
        /// Save the running stage every this many steps.
        public var checkpointEvery = 500
        /// TRACT's phase schedule: the step counts from the first teacher's to the last
        /// student's, each a multiple of the next (`docs/methods.md` §6.10).
        package var tractSchedule = TransitiveClosureDistillation.defaultSchedule
        /// Generator knobs the evidence pages vary (learning rates, weighting, particles).
        package var generator = GeneratorSettings()

        /// The defaults: 2000 steps of 512 per stage, MLP students of widths 128×3.
        public init() {}

        /// Throws unless every setting is usable.
        package func validate() throws {
            func bad(_ m: String) -> TrainingError { .invalidConfiguration(m) }
            guard (10...100_000_000).contains(steps) else { throw bad("steps must be in 10...100000000; got \(steps)") }
            guard (1...(1 << 20)).contains(batch) else { throw bad("the batch must be in 1...\(1 << 20); got \(batch)") }
            guard learningRate.isFinite, learningRate > 0, learningRate <= 10 else { throw bad("the learning rate must be in (0, 10]; got \(learningRate)") }
            for (name, widths) in [("hidden", hidden), ("fake hidden", fakeHidden)] {
                guard !widths.isEmpty, widths.count <= 64, widths.allSatisfy({ (1...65_536).contains($0) }) else {
                    throw bad("the \(name) widths must be 1 to 64 values of 1...65536; got \(widths)")
                }
            }
            guard !guidanceWeights.isEmpty, guidanceWeights.allSatisfy({ $0.isFinite && abs($0) <= 1000 }) else {
                throw bad("guidance weights must be finite, of at most 1000; got \(guidanceWeights)")
            }
            if let g = teacherGuidance, !(g.isFinite && abs(g) <= 1000) { throw bad("the teacher's guidance must be finite; got \(g)") }
            guard (1...1000).contains(fakeStepsPerGeneratorStep) else { throw bad("fake steps per generator step must be in 1...1000") }
            if let l = latentDimension, !(1...(1 << 20)).contains(l) { throw bad("the latent size must be in 1...\(1 << 20); got \(l)") }
            guard tractSchedule.count >= 2, tractSchedule.count <= 16, tractSchedule.last! >= 1, tractSchedule.first! <= 1 << 16,
                  zip(tractSchedule, tractSchedule.dropFirst()).allSatisfy({ $0 > $1 && $0 % $1 == 0 }) else {
                throw bad("the TRACT schedule must be 2 to 16 step counts from at most 65536 down to at least 1, each a multiple of the next; got \(tractSchedule)")
            }
            let cfd = classifierFeature
            guard cfd.temperature.isFinite, cfd.temperature > 0, cfd.temperature <= 10, cfd.datasetWeight.isFinite, cfd.datasetWeight >= 0,
                  cfd.datasetWeight <= 1000, (0...1).contains(cfd.entropyShare), cfd.classifierNoise.isFinite, (0...100).contains(cfd.classifierNoise) else {
                throw bad("CFD's temperature must be in (0, 10], its dataset weight in [0, 1000], its entropy share in [0, 1] and its classifier noise in [0, 100]")
            }
            guard (2...4096).contains(bootIntervals) else { throw bad("BOOT's intervals must be in 2...4096; got \(bootIntervals)") }
            guard checkpointEvery >= 1 else { throw bad("checkpointEvery must be at least 1") }
        }
    }

    /// Knobs of generator training below the public settings.
    package struct GeneratorSettings: Sendable, Codable, Equatable {
        package var generatorLearningRate: Float?
        package var fakeLearningRate: Float = 1e-3
        package var weighting = ScoreDistillationWeighting.sigmaSquared
        /// Times drawn for the teacher (Diff-Instruct trains on t ∈ [0.02, 0.98]).
        package var timeRange: ClosedRange<Double> = 0.02...0.98
        /// Optimize this many particles instead of a network (the particle view of SDS/VSD).
        package var particles: Int?
        /// The defaults above.
        package init() {}
    }

    /// Training data: (batch size, step) → (x0 rows, labels); step s always gets the same batch.
    package typealias DataSource = (_ batch: Int, _ step: Int) throws -> (Tensor, [Int]?)

    /// The frozen teacher.
    public let teacher: TrainedModel
    /// The run's settings.
    public var settings: Settings
    /// Called with each stage's name and progress after every step.
    public var progress: ((String, TrainingProgress) -> Void)?
    /// Notes on what the run does ("kd: 8192 pairs from the teacher's DPM-Solver++(2M)", …).
    public var log: ((String) -> Void)?
    /// Asked after every step; true stops the run, saves the running stage, and makes
    /// ``run(_:directory:resume:overwrite:onStage:)`` throw ``TrainingError/interrupted(checkpoint:)``.
    public var shouldStop: (() -> Bool)?

    let data: DataSource?
    let dataName: String
    let dimension: Int
    let denoiser: any Denoiser

    /// A distiller of `teacher` (a diffusion model or the exact mixture) on `data` (needed by
    /// PD, CFD, TRACT, guided distillation, CD and CT; KD, BOOT, DSNO, reflow and the generators need none). Batches
    /// are drawn by a sampler seeded with ``Settings/seed``.
    ///
    /// - Throws: ``TrainingError`` for a teacher that cannot teach (a generator or a consistency
    ///   model) or data whose items do not match the teacher's.
    public init(teacher: TrainedModel, data: Dataset? = nil, settings: Settings = .init()) throws {
        var source: DataSource?
        if let data {
            let batches = try data.batches(size: settings.batch, seed: settings.seed)
            source = { _, step in let b = try batches(step); return (b.rows, b.labels) }
            guard data.rows.shape[1] == teacher.itemShape.reduce(1, *) else {
                throw TrainingError.invalidConfiguration("the data (\(data.name)) have \(data.rows.shape[1]) values per item; the teacher's items have \(teacher.itemShape.reduce(1, *))")
            }
        }
        try self.init(teacher: teacher, dataName: data?.name ?? "none", settings: settings, data: source)
    }

    /// A distiller drawing batches from `data`.
    package init(teacher: TrainedModel, dataName: String, settings: Settings, data: DataSource?) throws {
        guard teacher.kind == .diffusion, let denoiser = teacher.denoiser else {
            throw TrainingError.invalidConfiguration("a teacher must be a diffusion model or an exact mixture; this one is a \(teacher.kind.rawValue) model")
        }
        self.teacher = teacher
        self.settings = settings
        self.data = data
        self.dataName = dataName
        self.denoiser = denoiser
        dimension = teacher.itemShape.reduce(1, *)
    }

    /// Runs `method` stage by stage and returns its students.
    ///
    /// - Parameters:
    ///   - method: the method to run.
    ///   - directory: where running stages are checkpointed and finished students written
    ///     (nil: nothing is written and nothing can resume).
    ///   - resume: continue from the checkpoints in `directory`: finished stages are reloaded,
    ///     the interrupted one continues from its last checkpoint with the same bits.
    ///   - overwrite: replace the files of an earlier run in `directory` (without it, and
    ///     without `resume`, existing files are an error).
    ///   - onStage: called with each student as soon as it is trained (and written).
    /// - Throws: ``TrainingError/interrupted(checkpoint:)`` when ``shouldStop`` stopped the run;
    ///   ``TrainingError`` for settings the method cannot use.
    @discardableResult
    public func run(_ method: DistillationMethod, directory: String? = nil, resume: Bool = false, overwrite: Bool = false,
                    onStage: ((DistilledStage) throws -> Void)? = nil) throws -> [DistilledStage] {
        try settings.validate()
        var run = try DistillationRun(distiller: self, method: method, directory: directory, resume: resume, overwrite: overwrite,
                                      onStage: onStage)
        try run.execute()
        return run.stages
    }
}
