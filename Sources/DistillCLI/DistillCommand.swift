import ArgumentParser
import Distill
import Foundation

struct DistillCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "distill",
        abstract: "Distill a teacher into few-step students (\(DistillationMethod.allCases.map(\.rawValue).joined(separator: ", "))) or one-step generators (\(GeneratorMethod.allCases.map(\.rawValue).joined(separator: ", "))).",
        discussion: """
        Methods: \(DistillationMethod.allCases.map { "\($0.rawValue) (\($0.paper))" }.joined(separator: ", ")); generators (no data used):
        \(GeneratorMethod.allCases.map { "\($0.rawValue) (\($0.paper))" }.joined(separator: ", ")), saved as OUTPUT/METHOD-generator.safetensors
        and sampled with `distill sample --model FILE --sampler generator`.
        --teacher is a checkpoint from `distill train` or a mixture (\(GaussianMixture.builtInNames.joined(separator: ", ")), gmm:FILE.json; exact).
        Each stage is saved as OUTPUT/METHOD-nfeK.safetensors (a checkpoint `distill sample` reads) and scored by
        sliced-W2 against the data.

        Examples:
          distill distill --method cd --teacher ring8
          distill distill --method pd --teacher out/train/model.safetensors --steps 3000
          distill distill --method pd --teacher out/digits/model.safetensors --student teacher --batch 128
          distill distill --method guided --teacher ring8 --guidance 2
          distill distill --method diff-instruct --teacher out/digits/model.safetensors --hidden 512,512,512 --fake-hidden 512,512,512 --fake-steps 4
        """
    )

    @Option(help: "Method.") var method: String
    @Option(help: "Teacher checkpoint or mixture.") var teacher: String
    @Option(help: "Training data (default: the teacher's).") var data: String?
    @Option(help: "Training steps per stage.") var steps = 2000
    @Option(help: "Batch size.") var batch = 512
    @Option(help: "Student hidden widths.") var hidden = "128,128,128"
    @Option(help: "Students: mlp (fresh MLPs of --hidden), or teacher (the teacher checkpoint's architecture, e.g. its U-Net; KD, PD, guided and CD students start from its weights).") var student = "mlp"
    @Option(help: "Peak learning rate.") var lr: Float = 2e-3
    @Option(help: "Guidance weight for the guided method's second stage, and for a generator's teacher with --class.") var guidance: Float = 1
    @Option(name: .customLong("class"), help: "Generators: ask the class-conditional teacher for this class only (guided by --guidance).") var teacherClass: Int?
    @Option(help: "Diff-Instruct / VSD: hidden widths of the fake score network.") var fakeHidden = "128,128,128"
    @Option(help: "Diff-Instruct / VSD: fake-score updates per generator update.") var fakeSteps = 1
    @Option(help: "Generator: mlp, or conv (a convolutional generator, for image teachers).") var generator = "mlp"
    @Option(help: "Generator latent size (default: the data size for mlp, 64 for conv).") var latent: Int?
    @Flag(help: "A stochastic generator: extra noise input (mlp: as many values as the latent; conv: a noise map).") var stochastic = false
    @Option(help: "Random seed.") var seed: UInt64 = 1
    @Option(help: "Output folder.") var output = "out/distill"
    @Flag(help: "No progress output.") var quiet = false
    @Flag(help: "Print a JSON summary.") var json = false

    func run() throws {
        if let g = GeneratorMethod(rawValue: method) { return try runGenerator(g) }
        guard let m = DistillationMethod(rawValue: method) else {
            fail("unknown method '\(method)'; valid: \((DistillationMethod.allCases.map(\.rawValue) + GeneratorMethod.allCases.map(\.rawValue)).joined(separator: ", "))")
        }
        guard steps >= 10, batch >= 1, lr > 0 else { fail("--steps must be >= 10, --batch >= 1, --lr > 0") }
        let source = reporting { try ModelSource.load(teacher) }
        let set = reporting { try DataSet.load(data ?? source.dataSource, count: 65_536, seed: seed) }
        guard set.rows.shape[1] == source.itemShape.reduce(1, *) else {
            fail("the data have \(set.rows.shape[1]) values per item, the teacher \(source.itemShape.reduce(1, *))")
        }
        makeFolder(output)
        Interrupt.install()
        let sampler = reporting { try BatchSampler(count: set.rows.shape[0], batchSize: min(batch, set.rows.shape[0]), seed: seed) }
        var distiller = Distiller(teacher: source.denoiser, conditionalTeacher: source.classCount == nil ? nil : source.denoiser,
                                  nullLabel: source.nullLabel, dimension: set.rows.shape[1], dataSource: set.name,
                                  budget: .init(steps: steps, batch: batch, hidden: reporting { try parseInts(hidden, name: "--hidden") }, learningRate: lr)) { _, s in
            let b = try sampler.batch(forStep: s, rows: set.rows, labels: set.labels)
            return (b.rows, b.labels)
        }
        distiller.seed = seed
        distiller.teacherProcess = source.process
        switch student {
        case "mlp": break
        case "teacher":
            guard let saved = source.saved, !source.isConsistency else {
                fail("--student teacher needs a diffusion-model checkpoint as --teacher (got '\(teacher)')")
            }
            distiller.students = .teacher(network: saved.network, card: saved.card)
        default: fail("unknown --student '\(student)'; valid: mlp, teacher")
        }
        var bar: ProgressLine?
        var phase = ""
        distiller.log = { if !quiet && !json { print($0) } }
        distiller.progress = { name, s, total, loss in
            if Interrupt.isRequested { fail("interrupted (\(name) at step \(s)); completed stages are saved") }
            if name != phase { phase = name; bar = ProgressLine(total: total, quiet: quiet || json, plainEvery: max(total / 10, 1)) }
            bar?.update(s, "\(name)  loss " + String(format: "%.4f", loss))
        }
        var rng = Philox(seed: seed &+ 99)
        let n = min(2000, set.rows.shape[0])
        let noise = reporting { try rng.normal([n, set.rows.shape[1]]) }
        let labels = set.labels.map { Array($0.prefix(n)) }
        var summary: [[String: Any]] = []
        // Each stage is saved and scored as soon as it is trained, so an interrupt keeps the finished ones.
        distiller.onStage = { stage in
            let path = output + "/\(m.rawValue)-nfe\(stage.nfe)\(stage.note.isEmpty ? "" : "-" + stage.note.replacingOccurrences(of: " ", with: "-")).safetensors"
            try Checkpoint(model: stage.network, optimizer: nil, step: steps, config: stage.card.json).write(to: path)
            let out = try stage.sample(noise, m == .guided ? labels : nil)
            let sw2 = try slicedWasserstein2(out, set.rows.slice(0..<n), seed: 5)
            summary.append(["checkpoint": path, "nfe": stage.nfe, "sliced_w2": sw2, "note": stage.note])
            if !json { print(String(format: "NFE %d  SW2 to the data %.4f  %@", stage.nfe, sw2, path)) }
            if set.itemShape == [2] { try Pictures.scatter(out, range: -4.5...4.5).writePNG(to: String(path.dropLast(12)) + ".png") }
        }
        _ = reporting { try distiller.run(m, guidanceWeights: [guidance]) }
        if json { print(String(decoding: try JSONSerialization.data(withJSONObject: ["method": m.rawValue, "stages": summary], options: [.sortedKeys]), as: UTF8.self)) }
    }

    /// Diff-Instruct, SDS or VSD: a one-step generator from the teacher's scores alone.
    func runGenerator(_ g: GeneratorMethod) throws {
        guard steps >= 10, batch >= 1, lr > 0 else { fail("--steps must be >= 10, --batch >= 1, --lr > 0") }
        let source = reporting { try ModelSource.load(teacher) }
        let d = source.itemShape.reduce(1, *)
        makeFolder(output)
        Interrupt.install()
        var settings = GeneratorDistiller.Settings()
        settings.steps = steps
        settings.batch = batch
        settings.generatorLearningRate = lr
        settings.hidden = reporting { try parseInts(hidden, name: "--hidden") }
        settings.fakeHidden = reporting { try parseInts(fakeHidden, name: "--fake-hidden") }
        guard fakeSteps >= 1 else { fail("--fake-steps must be >= 1") }
        settings.fakeStepsPerGeneratorStep = fakeSteps
        settings.seed = seed
        if let c = teacherClass {
            guard let classes = source.classCount, (0..<classes).contains(c) else {
                fail("--class \(c): the teacher has \(source.classCount.map { "classes 0..<\($0)" } ?? "no classes")")
            }
            settings.teacherClass = c
            settings.guidance = guidance
            settings.nullLabel = source.nullLabel
        }
        switch generator {
        case "mlp":
            settings.latentDimension = latent
            settings.noiseDimension = stochastic ? latent ?? d : 0
        case "conv":
            let shape = source.itemShape
            guard shape.count == 3, shape[1] == shape[2] else {
                fail("--generator conv needs an image teacher ([C, S, S] items); this one has items of shape \(shape)")
            }
            settings.convolutional = ConvGenerator.Configuration(imageSize: shape[1], imageChannels: shape[0], latentDimension: latent ?? 64,
                                                                 stochastic: stochastic)
        default: fail("unknown generator '\(generator)'; valid: mlp, conv")
        }
        var distiller = GeneratorDistiller(teacher: source.denoiser, process: source.process, dimension: d, settings: settings)
        let bar = ProgressLine(total: steps, quiet: quiet || json, plainEvery: max(steps / 10, 1))
        distiller.progress = { s, _, loss in
            if Interrupt.isRequested { fail("interrupted at step \(s); nothing saved") }
            bar.update(s, String(format: "generator loss %.4f", loss))
        }
        let (gen, card) = reporting { try distiller.run(g) }
        let path = output + "/\(g.rawValue)-generator.safetensors"
        reporting {
            try Checkpoint(model: gen.stateDictionary(), step: steps, config: card.json).write(to: path)
        }
        var rng = Philox(seed: seed &+ 5)
        let samples = reporting { try withoutGradient { try gen.sample(2000, rng: &rng) } }
        var obj: [String: Any] = ["method": g.rawValue, "checkpoint": path]
        if let m = source.mixture {
            let (exact, _) = reporting { try m.sample(2000, seed: seed) }
            let sw2 = reporting { try slicedWasserstein2(samples, exact, seed: 5) }
            let cov = reporting { try m.modeCoverage(samples) }
            obj["sliced_w2"] = sw2
            obj["modes_covered"] = cov.coveredModes
            if !json { print(String(format: "1 NFE  SW2 to exact samples %.4f  modes %d/%d  %@", sw2, cov.coveredModes, cov.modeCount, path)) }
        } else if !json { print("generator saved: \(path)") }
        let picture = output + "/\(g.rawValue)-generator.png"
        if source.itemShape == [2] { reporting { try Pictures.scatter(samples, range: -4.5...4.5).writePNG(to: picture) } }
        if source.itemShape.count == 3 {
            reporting { try Pictures.imageGrid(samples.slice(0..<100).reshaped([-1] + source.itemShape), columns: 10).writePNG(to: picture) }
        }
        if json { print(String(decoding: try JSONSerialization.data(withJSONObject: obj, options: [.sortedKeys]), as: UTF8.self)) }
    }
}
