import ArgumentParser
import Distill
import Foundation

/// The quickstart: train a small MLP score network on a 2-D dataset and report throughput.
struct DemoCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo",
        abstract: "Quickstart: train an MLP score network by denoising score matching on a 2-D dataset.",
        discussion: """
        Trains the 2 → 256 → 256 → 256 → 2 MLP (SiLU, sinusoidal time embedding) with
        ε-prediction denoising score matching under the VP-linear process, AdamW and an EMA,
        printing the loss and samples/s, and saves a checkpoint into the output folder.

        Examples:
          distill demo
          distill demo --dataset moons --steps 3000 --batch 1024 --output out/demo
        """
    )

    @Option(help: "Dataset: \(ToyDataset.allCases.map(\.rawValue).joined(separator: ", ")).")
    var dataset: String = ToyDataset.eightGaussians.rawValue

    @Option(help: "Training steps.")
    var steps: Int = 2000

    @Option(help: "Batch size.")
    var batch: Int = 512

    @Option(help: "Learning rate (AdamW).")
    var lr: Float = 2e-3

    @Option(help: "Random seed.")
    var seed: UInt64 = 0

    @Option(help: "Folder for the checkpoint.")
    var output: String = "out/demo"

    @Flag(help: "Print only the final summary.")
    var quiet = false

    @Flag(help: "Print the summary as one JSON object.")
    var json = false

    func run() throws {
        guard let data = ToyDataset(rawValue: dataset) else {
            fail("unknown dataset '\(dataset)'; valid: \(ToyDataset.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        guard steps >= 1, batch >= 1, lr > 0 else { fail("--steps and --batch must be at least 1 and --lr positive") }
        do {
            try FileManager.default.createDirectory(atPath: output, withIntermediateDirectories: true)
        } catch {
            fail("cannot create output folder '\(output)': \(error.localizedDescription)")
        }
        let config = MLPScoreNetwork.Configuration()
        let net = try MLPScoreNetwork(config, seed: seed)
        let opt = try Adam.adamW(net, learningRate: lr, weightDecay: 0.01)
        let ema = try ExponentialMovingAverage(net, decay: 0.995)
        let schedule = LearningRateSchedule.warmupCosine(peak: lr, warmupSteps: min(100, steps / 10), totalSteps: steps, minimum: lr / 10)
        let model = DiffusionModel(network: net, process: VPLinearProcess(), parameterization: .epsilon)
        let pool = try data.sample(65_536, seed: seed)
        var rng = Philox(seed: seed, stream: 1)
        let progress = ProgressLine(total: steps, quiet: quiet || json, plainEvery: max(steps / 10, 1))
        if !quiet && !json {
            print("distill demo: \(data.rawValue), \(net.parameterCount) parameters, batch \(batch), \(steps) steps, \(Runtime.threadCount) threads")
        }
        var smoothed: Float = .nan
        var losses: [Float] = []
        let start = Date()
        for step in 0..<steps {
            let first = (step * batch) % (pool.shape[0] - batch + 1)
            let x0 = try pool.slice(first..<(first + batch))
            opt.learningRate = schedule.learningRate(at: step)
            let loss = try net.valueWithGradient {
                try denoisingScoreMatchingLoss(model: model, x0: x0, rng: &rng)
            }
            clipGradientNorm(net.parameters, maxNorm: 1)
            try opt.update()
            try ema.update(from: net)
            guard loss.isFinite else { fail("the loss became \(loss) at step \(step); try a smaller --lr") }
            smoothed = smoothed.isNaN ? loss : 0.98 * smoothed + 0.02 * loss
            losses.append(loss)
            progress.update(step + 1, String(format: "loss %.4f", smoothed))
        }
        let seconds = Date().timeIntervalSince(start)
        let path = output + "/mlp-\(data.rawValue).safetensors"
        let configJSON = String(decoding: try JSONEncoder().encode(config), as: UTF8.self)
        try Checkpoint(model: net, optimizer: opt, ema: ema, step: steps, config: configJSON).write(to: path)
        let first100 = losses.prefix(100).reduce(0, +) / Float(min(100, losses.count))
        let last100 = losses.suffix(100).reduce(0, +) / Float(min(100, losses.count))
        let samplesPerSecond = Double(steps * batch) / seconds
        if json {
            let obj: [String: Any] = ["dataset": data.rawValue, "steps": steps, "batch": batch, "seconds": seconds,
                                      "samples_per_second": samplesPerSecond, "loss_first_100": first100,
                                      "loss_last_100": last100, "checkpoint": path, "threads": Runtime.threadCount]
            print(String(decoding: try JSONSerialization.data(withJSONObject: obj, options: [.sortedKeys]), as: UTF8.self))
        } else {
            print(String(format: "trained %d steps in %.1f s: %.0f samples/s; mean loss %.4f (first 100 steps) → %.4f (last 100)",
                         steps, seconds, samplesPerSecond, first100, last100))
            print("checkpoint: \(path)")
        }
    }
}
