import ArgumentParser
import Distill
import DistillSupport
import Foundation

struct DistillCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "distill",
        abstract: "Distill a teacher into few-step students or one-step generators (\(DistillationMethod.allCases.map(\.rawValue).joined(separator: ", "))).",
        discussion: """
        Methods: \(DistillationMethod.allCases.map { "\($0.rawValue) (\($0.paper))" }.joined(separator: ", ")). \
        The generators (diff-instruct, sds, vsd) use no data.
        --teacher is a checkpoint from `distill train` or an exact mixture (\(GaussianMixture.builtInNames.joined(separator: ", ")), gmm:FILE.json).
        --data defaults to the teacher's own training data when that is a built-in set; a file the checkpoint \
        names is never opened.

        Every student is written as OUTPUT/NAME.safetensors (pd-nfe4, cd-nfe2, guided-w1-nfe8, diff-instruct-nfe1, \
        …), a checkpoint `distill sample` reads and samples the way it was trained, and is scored by sliced-W2 \
        against the data. The running stage is checkpointed in OUTPUT; Ctrl-C or SIGTERM saves it and exits \
        with 130, and --resume continues it with the same bits. Files of an earlier run are never replaced \
        without --force.

        Examples:
          distill distill --method cd --teacher ring8
          distill distill --method pd --teacher out/train/model.safetensors --steps 3000
          distill distill --method pd --teacher out/digits-unet/model.safetensors --student teacher --batch 128 --output out/pd-digits
          distill distill --method guided --teacher ring8 --guidance 2
          distill distill --method diff-instruct --teacher out/digits-unet/model.safetensors --hidden 512,512,512 --fake-hidden 512,512,512 --fake-steps 4
        """
    )

    @Option(help: "Method.") var method: String
    @Option(help: "Teacher checkpoint or mixture.") var teacher: String
    @Option(help: "Training data (default: the teacher's, when built in).") var data: String?
    @Option(parsing: .unconditional, help: "Training steps per stage.") var steps = 2000
    @Option(parsing: .unconditional, help: "Batch size.") var batch = 512
    @Option(parsing: .unconditional, help: "Student (and generator) hidden widths.") var hidden = "128,128,128"
    @Option(help: "Students: mlp (fresh MLPs of --hidden), or teacher (the teacher checkpoint's architecture, e.g. its U-Net; KD, PD, guided and CD students start from its weights).") var student = "mlp"
    @Option(parsing: .unconditional, help: "Peak learning rate.") var lr: Float = 2e-3
    @Option(parsing: .unconditional, help: "Guided: the guidance weights students are evaluated at (stage two distills the first); generators with --class: the teacher's guidance.") var guidance = "1"
    @Option(name: .customLong("class"), parsing: .unconditional, help: "Generators: ask the class-conditional teacher for this class only (guided by --guidance).") var teacherClass: Int?
    @Option(parsing: .unconditional, help: "Diff-Instruct / VSD: hidden widths of the fake score network.") var fakeHidden = "128,128,128"
    @Option(parsing: .unconditional, help: "Diff-Instruct / VSD: fake-score updates per generator update.") var fakeSteps = 1
    @Option(help: "Generator: mlp, or conv (a convolutional generator, for image teachers).") var generator = "mlp"
    @Option(parsing: .unconditional, help: "Generator latent size (default: the data size for mlp, 64 for conv).") var latent: Int?
    @Flag(help: "A stochastic generator: extra noise input (mlp: as many values as the latent; conv: a noise map).") var stochastic = false
    @Option(parsing: .unconditional, help: "Random seed.") var seed: UInt64 = 1
    @Option(help: "Output folder.") var output = "out/distill"
    @Flag(help: "Continue an interrupted run in OUTPUT (same settings required).") var resume = false
    @Flag(help: "Replace the files of an earlier run in OUTPUT.") var force = false
    @Flag(help: "No progress output.") var quiet = false
    @Flag(help: "Print a JSON summary.") var json = false

    func run() throws {
        // Every setting is checked, the teacher and data read, before anything is written.
        guard let m = DistillationMethod(rawValue: method) else {
            let names = DistillationMethod.allCases.map(\.rawValue)
            fail("unknown method '\(method)'\(suggestion(for: method, among: names)); valid: \(names.joined(separator: ", "))")
        }
        if resume && force { fail("--resume and --force exclude each other") }
        let settings = reporting { try makeSettings() }
        let source = reporting { try TrainedModel.named(teacher) }
        if settings.students == .teacher && !m.makesGenerator && source.card == nil {
            fail("--student teacher needs a diffusion-model checkpoint as --teacher (got '\(teacher)')")
        }
        if let c = teacherClass, !(source.classCount.map { (0..<$0).contains(c) } ?? false) {
            fail("--class \(c): the teacher has \(source.classCount.map { "classes 0..<\($0)" } ?? "no classes")")
        }
        if generator == "conv", !(source.itemShape.count == 3 && source.itemShape[1] == source.itemShape[2]) {
            fail("--generator conv needs an image teacher ([C, S, S] items); this one has items of shape \(source.itemShape)")
        }
        let set = reporting { try trainingData(for: source) }
        var distiller = reporting { try Distiller(teacher: source, data: set, settings: settings) }
        let reference = reporting { try referenceSamples(set, source) }
        makeFolder(output)
        Interrupt.install()
        var bar: ProgressLine?
        var phase = ""
        distiller.log = { if !quiet && !json { status($0) } }
        distiller.shouldStop = { Interrupt.isRequested }
        distiller.progress = { name, p in
            if name != phase { phase = name; bar = ProgressLine(total: p.totalSteps, quiet: quiet || json, plainEvery: max(p.totalSteps / 10, 1)) }
            bar?.update(p.step, "\(name)  loss " + String(format: "%.4f", p.loss))
        }
        var summary: [[String: Any]] = []
        let labels = set?.labels.map { Array($0.prefix(reference?.shape[0] ?? 0)) }
        let stages: [DistilledStage]
        do {
            stages = try distiller.run(m, directory: output, resume: resume, overwrite: force) { stage in
                // Each student is scored (and drawn, for 2-D data) as soon as it is written.
                let path = "\(output)/\(stage.name).safetensors"
                var row: [String: Any] = ["name": stage.name, "checkpoint": path, "nfe": stage.nfe, "note": stage.note]
                if let reference {
                    let x = try stage.model.sample(count: reference.shape[0], labels: m == .guided ? labels : nil, seed: seed &+ 99)
                    let flat = try x.reshaped([x.shape[0], reference.shape[1]])
                    row["sliced_w2"] = try slicedWasserstein2(flat, reference, seed: 5)
                    if let mixture = source.mixture ?? set?.mixture {
                        let coverage = try mixture.modeCoverage(flat)
                        row["modes_covered"] = coverage.coveredModes
                    }
                    if let png = try pictureBytes(x, mixture: source.mixture) {
                        try FileIO.writeAtomically("\(output)/\(stage.name).png", png)
                    }
                }
                summary.append(row)
                if !json {
                    let sw2 = (row["sliced_w2"] as? Double).map { String(format: "SW2 to the data %.4f  ", $0) } ?? ""
                    print("\(stage.name)  NFE \(stage.nfe)  \(sw2)\(path)")
                    flushStandardOutput()
                }
            }
        } catch TrainingError.interrupted(let state) {
            status("distill: interrupted; the running stage is saved in \(state); continue with --resume")
            throw ExitCode(130)
        } catch {
            fail("\(error)")
        }
        _ = stages
        if json {
            let obj: [String: Any] = ["method": m.rawValue, "stages": summary]
            print(String(decoding: try JSONSerialization.data(withJSONObject: obj, options: [.sortedKeys]), as: UTF8.self))
        }
    }

    /// The distiller's settings from the options (each number checked).
    func makeSettings() throws -> Distiller.Settings {
        var s = Distiller.Settings()
        try check(steps, in: 10...100_000_000, "--steps")
        try check(batch, in: 1...(1 << 20), "--batch")
        try check(lr, in: 1e-8...10, "--lr")
        try check(fakeSteps, in: 1...1000, "--fake-steps")
        if let latent { try check(latent, in: 1...(1 << 20), "--latent") }
        s.steps = steps
        s.batch = batch
        s.learningRate = lr
        s.seed = seed
        s.hidden = try parseInts(hidden, name: "--hidden")
        s.fakeHidden = try parseInts(fakeHidden, name: "--fake-hidden")
        s.fakeStepsPerGeneratorStep = fakeSteps
        s.guidanceWeights = try parseFloats(guidance, name: "--guidance")
        guard s.guidanceWeights.allSatisfy({ abs($0) <= 1000 }) else { throw CLIError.usage("--guidance weights must be at most 1000") }
        if let c = teacherClass {
            s.teacherClass = c
            s.teacherGuidance = s.guidanceWeights[0]
        }
        switch student {
        case "mlp": s.students = .mlp
        case "teacher": s.students = .teacher
        default: throw CLIError.usage("unknown --student '\(student)'; valid: mlp, teacher")
        }
        switch generator {
        case "mlp": s.convolutionalGenerator = false
        case "conv": s.convolutionalGenerator = true
        default: throw CLIError.usage("unknown --generator '\(generator)'; valid: mlp, conv")
        }
        s.latentDimension = latent
        s.stochasticGenerator = stochastic
        return s
    }

    /// --data, or the teacher's own training data when they are an exact mixture or a built-in
    /// set (a data file a checkpoint names is never opened); nil when there are none.
    func trainingData(for source: TrainedModel) throws -> Dataset? {
        if let data { return try Dataset.load(data, count: 65_536, seed: seed) }
        if source.mixture != nil { return try Dataset.load(teacher, count: 65_536, seed: seed) }
        guard let name = source.card?.dataSource else { return nil }
        return try Dataset.builtIn(name, count: 65_536, seed: seed)
    }

    /// Up to 2000 items of the data to score students against.
    func referenceSamples(_ set: Dataset?, _ source: TrainedModel) throws -> Tensor? {
        guard let set else { return nil }
        return try set.rows.slice(0..<min(2000, set.rows.shape[0]))
    }
}
