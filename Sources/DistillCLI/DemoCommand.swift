import ArgumentParser
import Distill
import DistillSupport
import Foundation

/// The quickstart: train a teacher, sample it fast, distill it, and show the results.
struct DemoCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo",
        abstract: "Quickstart: train a teacher, compare samplers, run every distillation method, and draw the results.",
        discussion: """
        On the 8-Gaussian ring (whose exact distribution is known, so every number is measured against the
        truth): trains an MLP teacher by denoising score matching, samples it with several samplers at
        several NFE, distills it with the D2F methods (KD, PD, CD, CT, reflow) and trains one-step
        generators from its scores (Diff-Instruct, SDS, VSD), prints the tables, and writes pictures
        (sample scatter plots, the loss curve, a quality-vs-NFE plot) into the output folder. About 3
        minutes on 2 cores. A teacher from an earlier demo with the same settings is reused (a run
        stopped with Ctrl-C continues it); one trained with other settings is replaced only with --force.

        Examples:
          distill demo
          distill demo --output out/demo --teacher-steps 6000
        """
    )

    @Option(help: "Output folder.") var output = "out/demo"
    @Option(parsing: .unconditional, help: "Teacher training steps.") var teacherSteps = 4000
    @Option(parsing: .unconditional, help: "Training steps per distillation stage.") var distillSteps = 1500
    @Option(parsing: .unconditional, help: "Training steps per one-step generator.") var generatorSteps = 1500
    @Option(parsing: .unconditional, help: "Random seed.") var seed: UInt64 = 0
    @Flag(help: "Replace a teacher of an earlier demo trained with other settings.") var force = false
    @Flag(help: "Tables only, no progress.") var quiet = false

    func run() throws {
        reporting {
            try check(teacherSteps, in: 1...10_000_000, "--teacher-steps")
            try check(distillSteps, in: 10...10_000_000, "--distill-steps")
            try check(generatorSteps, in: 10...10_000_000, "--generator-steps")
        }
        let start = Date()
        makeFolder(output)
        Interrupt.install()
        let mixture = GaussianMixture.ring8()
        let say = { (s: String) in if !quiet { status(s) } }
        say("distill demo: the 8-Gaussian ring, \(Runtime.threadCount) threads; everything is scored against the exact distribution")

        // 1. The teacher (sampled with its EMA weights).
        say("\n[1/4] training the teacher (MLP 2 → 128×3 → 2, VP-linear, ε-prediction, \(teacherSteps) steps)")
        var recipe = DiffusionRecipe()
        recipe.hidden = [128, 128, 128]
        recipe.steps = teacherSteps
        recipe.seed = seed
        let data = reporting { try Dataset.load("ring8", count: 65_536, seed: seed) }
        let bar = ProgressLine(total: teacherSteps, quiet: quiet, plainEvery: max(teacherSteps / 5, 1))
        let checkpoint = output + "/teacher.safetensors"
        let earlier = FileManager.default.fileExists(atPath: checkpoint) && !force
        let (teacher, summary) = reporting { () throws -> (TrainedModel, TrainingSummary) in
            do {
                return try recipe.train(on: data, checkpoint: checkpoint, log: output + "/teacher.jsonl", resume: earlier,
                                        shouldStop: { Interrupt.isRequested }) { p in bar.update(p.step, String(format: "loss %.4f", p.smoothedLoss)) }
            } catch TrainingError.checkpointMismatch(let why) {
                throw CLIError.usage("\(checkpoint) is an earlier demo's teacher trained with other settings (\(why)); pass --force to replace it")
            }
        }
        if summary.interrupted {
            status("interrupted; the teacher's checkpoint is saved in \(output)")
            throw ExitCode(130)
        }
        reporting { try writeLossCurve(log: output + "/teacher.jsonl", to: output + "/loss.svg", title: "Teacher training loss") }

        // 2. Samplers, each at the plan for a budget of NFE.
        say("\n[2/4] sampling the teacher: sliced-W2 to exact samples (floor ≈ 0.15 at 2000 samples)")
        let n = 2000
        var rng = Philox(seed: seed &+ 1)
        let noise = reporting { try rng.normal([n, 2]) }
        let (exact, _) = reporting { try mixture.sample(n, seed: seed &+ 2) }
        let kinds: [SamplerKind] = [.euler, .heun, .ddim, .dpmSolver3, .dpmpp2M, .dpmpp3M, .unipc3, .deis3, .lms]
        let nfes = [5, 10, 20]
        var series: [LineChart.Series] = []
        var panels: [RGBImage] = []
        say("sampler".padding(toLength: 16, withPad: " ", startingAt: 0) + nfes.map { "NFE≤\($0)".padding(toLength: 14, withPad: " ", startingAt: 0) }.joined())
        for kind in kinds {
            var points: [(x: Double, y: Double)] = []
            var line = kind.rawValue.padding(toLength: 16, withPad: " ", startingAt: 0)
            for target in nfes {
                let r = reporting { try teacher.sample(fromUnitNoise: noise, plan: SamplingPlan(sampler: kind, nfe: target)) }
                let sw2 = reporting { try slicedWasserstein2(r.sample, exact, seed: 3) }
                points.append((Double(r.evaluations), sw2))
                line += String(format: "%.3f (%2d)    ", sw2, r.evaluations)
                if target == 10 && [SamplerKind.ddim, .dpmpp2M, .unipc3].contains(kind) {
                    panels.append(reporting { try Pictures.scatter(r.sample, range: -3.5...3.5, size: 260) })
                }
            }
            say(line)
            series.append(.init(name: kind.rawValue, points: points))
        }
        reporting {
            try LineChart(title: "Sampler quality vs NFE (teacher on the 8-Gaussian ring)", xLabel: "NFE", yLabel: "sliced-W2 to exact samples",
                          logX: true, logY: true, series: series).write(to: output + "/quality_vs_nfe.svg")
        }

        // 3. Distillation.
        say("\n[3/4] distilling the teacher (\(distillSteps) steps per stage; students are MLPs 2 → 128×3 → 2)")
        var experiment = DistillationExperiment(mixture: mixture, teacher: teacher, steps: distillSteps, hidden: [128, 128, 128], samples: n,
                                                log: quiet ? nil : { say("  " + $0) })
        var pictures: [(String, RGBImage)] = []
        experiment.onSamples = { method, nfe, x in
            let keep = [("exact-mixture teacher dpmpp-2m", 21), ("teacher dpmpp-2m", 21), ("teacher ddim", 2), ("kd", 1), ("pd", 1), ("cd", 1), ("reflow + one-step distillation", 1)]
            if keep.contains(where: { method.hasPrefix($0.0) && nfe == $0.1 }) && !pictures.contains(where: { $0.0 == method }) {
                pictures.append((method, (try? Pictures.scatter(x, range: -3.5...3.5, size: 260)) ?? RGBImage(width: 1, height: 1)))
            }
        }
        var rows = reporting { try experiment.run(methods: [.kd, .pd, .cd, .ct, .reflow]) }

        // 4. One-step generators from the teacher's scores alone.
        say("\n[4/4] one-step generators from the teacher's scores (\(generatorSteps) steps each; MLP generators 2 → 128×2 → 2)")
        var settings = Distiller.Settings()
        settings.steps = generatorSteps
        settings.batch = 256
        settings.hidden = [128, 128]
        settings.seed = seed &+ 3
        settings.generator.generatorLearningRate = 1e-3
        var distiller = reporting { try Distiller(teacher: teacher, settings: settings) }
        distiller.shouldStop = { Interrupt.isRequested }
        for method in [DistillationMethod.diffInstruct, .sds, .vsd] {
            let bar = ProgressLine(total: generatorSteps, quiet: quiet, plainEvery: max(generatorSteps / 2, 1))
            distiller.progress = { _, p in bar.update(p.step, String(format: "\(method.rawValue)  loss %.4f", p.loss)) }
            let stage: DistilledStage
            do { stage = try distiller.run(method)[0] } catch TrainingError.interrupted {
                status("interrupted during \(method.rawValue)")
                throw ExitCode(130)
            } catch { fail("\(error)") }
            let x = reporting { try stage.model.sample(count: n, seed: seed &+ 6) }
            let sw2 = reporting { try slicedWasserstein2(x, exact, seed: 5) }
            let coverage = reporting { try mixture.modeCoverage(x) }
            let name = "\(method.rawValue) (\(method.paper))"
            rows.append(.init(method: name, nfe: 1, note: "one-step generator",
                              logLikelihoodGap: reporting { try mixture.averageLogLikelihood(x) - mixture.averageLogLikelihood(exact) },
                              modesCovered: coverage.coveredModes, modes: coverage.modeCount, inModeFraction: coverage.highQualityFraction,
                              slicedW2: sw2))
            say(String(format: "  %-30@ NFE  1  SW2 %.4f  modes %d/%d", name as NSString, sw2, coverage.coveredModes, coverage.modeCount))
            if method != .vsd { pictures.append((name, reporting { try Pictures.scatter(x, range: -3.5...3.5, size: 260) })) }
        }
        let table = reporting { try DistillationExperiment.markdown([rows]) }
        print("\n" + table)
        reporting {
            try Pictures.row([try Pictures.scatter(exact, range: -3.5...3.5, size: 260)] + panels).writePNG(to: output + "/samplers.png")
            try Pictures.row(pictures.map(\.1)).writePNG(to: output + "/distillation.png")
            try FileIO.writeAtomically(output + "/distillation.md", Array(("# Distillation (demo)\n\n" + table).utf8))
        }
        print(String(format: "done in %.0f s. In %@: samplers.png (exact | DDIM | DPM-Solver++(2M) | UniPC-3 at 10 NFE), distillation.png (%@), quality_vs_nfe.svg, loss.svg, distillation.md, teacher.safetensors",
                     Date().timeIntervalSince(start), output, pictures.map(\.0).joined(separator: " | ")))
    }
}
