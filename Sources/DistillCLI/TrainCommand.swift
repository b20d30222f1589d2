import ArgumentParser
import Distill
import Foundation

struct TrainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "Train a diffusion model (an MLP score network) by denoising score matching.",
        discussion: """
        Data: \(DataSet.help). Images are flattened for the MLP (the U-Net arrives with the image engine).
        Writes OUTPUT/model.safetensors (a checkpoint with its model card, written atomically every
        --checkpoint-every steps and on Ctrl-C), OUTPUT/train.jsonl (the log) and OUTPUT/loss.svg.

        Examples:
          distill train --data moons --steps 4000
          distill train --data ring8 --class-conditional --process vp-cosine --parameterization v --output out/ring8
          distill train --data digits --hidden 512,512,512 --steps 20000 --resume
        """
    )

    @Option(help: "Training data (see above).") var data = "8gaussians"
    @Option(help: "Points drawn from procedural data.") var count = 65_536
    @Option(help: "Process: \(ProcessKind.allCases.map(\.rawValue).joined(separator: ", ")).") var process = "vp-linear"
    @Option(help: "Output parameterization: \(Parameterization.allCases.map(\.rawValue).joined(separator: ", ")).") var parameterization = "epsilon"
    @Option(help: "Loss weighting: \(LossWeighting.allCases.map(\.rawValue).joined(separator: ", ")).") var weighting = "epsilon"
    @Flag(help: "Draw noise levels log-normally (EDM) instead of uniformly in time.") var logNormal = false
    @Option(help: "Hidden widths.") var hidden = "256,256,256"
    @Option(help: "Training steps.") var steps = 5000
    @Option(help: "Batch size.") var batch = 512
    @Option(help: "Peak learning rate (AdamW, warmup + cosine).") var lr: Float = 2e-3
    @Option(help: "AdamW weight decay.") var weightDecay: Float = 0
    @Option(help: "EMA decay (0 disables).") var ema: Float = 0.999
    @Option(help: "Random seed.") var seed: UInt64 = 0
    @Flag(help: "Condition on class labels (with label dropout for classifier-free guidance).") var classConditional = false
    @Option(help: "Label dropout probability.") var pUncond = 0.1
    @Option(help: "Checkpoint every this many steps.") var checkpointEvery = 1000
    @Option(help: "Output folder.") var output = "out/train"
    @Flag(help: "Continue from OUTPUT/model.safetensors if it exists.") var resume = false
    @Flag(help: "No progress output.") var quiet = false
    @Flag(help: "Print the summary as one JSON object.") var json = false

    func run() throws {
        var recipe = DiffusionRecipe()
        guard let pk = ProcessKind(rawValue: process) else { fail("unknown process '\(process)'; valid: \(ProcessKind.allCases.map(\.rawValue).joined(separator: ", "))") }
        guard let par = Parameterization(rawValue: parameterization) else { fail("unknown parameterization '\(parameterization)'; valid: \(Parameterization.allCases.map(\.rawValue).joined(separator: ", "))") }
        guard let w = LossWeighting(rawValue: weighting) else { fail("unknown weighting '\(weighting)'; valid: \(LossWeighting.allCases.map(\.rawValue).joined(separator: ", "))") }
        guard steps >= 1, batch >= 1, lr > 0, count >= 1 else { fail("--steps, --batch, --count must be >= 1 and --lr > 0") }
        recipe.process = pk
        recipe.parameterization = par
        recipe.weighting = w
        recipe.logNormalTimes = logNormal
        recipe.hidden = reporting { try parseInts(hidden, name: "--hidden") }
        recipe.steps = steps
        recipe.batch = batch
        recipe.learningRate = lr
        recipe.weightDecay = weightDecay
        recipe.emaDecay = ema > 0 ? ema : nil
        recipe.seed = seed
        recipe.classConditional = classConditional
        recipe.labelDropout = pUncond
        recipe.checkpointEvery = checkpointEvery
        let set = reporting { try DataSet.load(data, count: count, seed: seed) }
        makeFolder(output)
        let ckpt = output + "/model.safetensors", log = output + "/train.jsonl"
        if !resume { try? FileManager.default.removeItem(atPath: log) }
        Interrupt.install()
        let bar = ProgressLine(total: steps, quiet: quiet || json, plainEvery: max(steps / 20, 1))
        if !quiet && !json { print("distill train: \(set.name), \(set.rows.shape[0]) items of shape \(set.itemShape), \(Runtime.threadCount) threads") }
        let (_, _, summary) = reporting {
            try recipe.train(rows: set.rows, labels: set.labels, itemShape: set.itemShape, classCount: set.classCount,
                             dataSource: set.name, checkpoint: ckpt, log: log, resume: resume) { p, trainer in
                if Interrupt.isRequested { trainer.requestStop() }
                bar.update(p.step, String(format: "loss %.4f", p.smoothedLoss))
            }
        }
        reporting { try writeLossCurve(log: log, to: output + "/loss.svg", title: "Training loss (\(set.name))") }
        if json {
            let obj: [String: Any] = ["checkpoint": ckpt, "steps": summary.endStep, "seconds": summary.seconds,
                                      "final_loss": Double(summary.finalSmoothedLoss), "interrupted": summary.interrupted]
            print(String(decoding: try JSONSerialization.data(withJSONObject: obj, options: [.sortedKeys]), as: UTF8.self))
        } else if !quiet {
            print(summary.interrupted ? "interrupted at step \(summary.endStep); checkpoint saved: \(ckpt)"
                                      : String(format: "trained to step %d in %.1f s (smoothed loss %.4f); checkpoint: %@", summary.endStep,
                                               summary.seconds, summary.finalSmoothedLoss, ckpt))
        }
        if summary.interrupted { throw ExitCode(130) }
    }
}

/// Plots a trainer's JSONL log (smoothed loss against step) as SVG.
func writeLossCurve(log: String, to path: String, title: String) throws {
    guard let text = try? String(contentsOfFile: log, encoding: .utf8) else { return }
    let points = text.split(separator: "\n").compactMap { line -> (x: Double, y: Double)? in
        guard let o = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
              let s = o["step"] as? Int, let l = o["smoothed_loss"] as? Double else { return nil }
        return (Double(s), l)
    }
    guard !points.isEmpty else { return }
    try LineChart(title: title, xLabel: "step", yLabel: "loss (moving average)", logY: true,
                  series: [.init(name: "loss", points: points)]).write(to: path)
}
