import ArgumentParser
import Distill
import DistillSupport
import Foundation

struct TrainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "Train a diffusion model (an MLP or U-Net score network) by denoising score matching.",
        discussion: """
        Data: \(Dataset.specificationHelp). The network is chosen by the data (--network auto): a U-Net for images, \
        an MLP otherwise; --network mlp flattens images for the MLP. The default U-Net has 32·[1, 2] \
        channels (32·[1, 2, 2] for images of 16 pixels and more), 2 residual blocks per level and \
        attention at the lowest resolution; sizes that cannot be halved that often are an error that \
        says which sizes work.

        Writes OUTPUT/model.safetensors (a checkpoint with its model card, written atomically every \
        --checkpoint-every steps and on Ctrl-C or SIGTERM, which exit with 130), OUTPUT/train.jsonl (the \
        log) and OUTPUT/loss.svg. An existing model is never replaced without --force; --resume continues \
        it with the same bits, and refuses a checkpoint written with other settings.

        Examples:
          distill train --data moons --steps 4000
          distill train --data ring8 --class-conditional --process vp-cosine --parameterization v --output out/ring8
          distill train --data digits --class-conditional --steps 3000 --output out/digits-unet
          distill train --data moons --steps 4000 --resume
        """
    )

    @Option(help: "Training data (see above).") var data = "8gaussians"
    @Option(parsing: .unconditional, help: "Points drawn from procedural data.") var count = 65_536
    @Option(help: "Process: \(DiffusionProcess.names.joined(separator: ", ")).") var process = "vp-linear"
    @Option(help: "Output parameterization: \(Parameterization.allCases.map(\.rawValue).joined(separator: ", ")).") var parameterization = "epsilon"
    @Option(help: "Loss weighting: \(LossWeighting.allCases.map(\.rawValue).joined(separator: ", ")).") var weighting = "epsilon"
    @Flag(help: "Draw noise levels log-normally (EDM) instead of uniformly in time.") var logNormal = false
    @Option(help: "Network: auto (a U-Net for images, an MLP otherwise), mlp or unet.") var network = "auto"
    @Option(parsing: .unconditional, help: "MLP hidden widths.") var hidden = "256,256,256"
    @Option(parsing: .unconditional, help: "U-Net channels at the first level.") var baseChannels = 32
    @Option(parsing: .unconditional, help: "U-Net channel multiplier per level (default 1,2, or 1,2,2 for images of 16 pixels and more).") var channelMultipliers: String?
    @Option(parsing: .unconditional, help: "U-Net residual blocks per level.") var blocksPerLevel = 2
    @Option(parsing: .unconditional, help: "U-Net resolutions (image sides) with self-attention (default: the lowest).") var attentionResolutions: String?
    @Option(parsing: .unconditional, help: "U-Net dropout in the residual blocks.") var dropout: Float = 0
    @Option(parsing: .unconditional, help: "Training steps.") var steps = 5000
    @Option(parsing: .unconditional, help: "Batch size (default 512 for an MLP, 64 for a U-Net).") var batch: Int?
    @Option(parsing: .unconditional, help: "Peak learning rate (AdamW, warmup + cosine; default 2e-3 for an MLP, 1e-3 for a U-Net).") var lr: Float?
    @Option(parsing: .unconditional, help: "AdamW weight decay.") var weightDecay: Float = 0
    @Option(parsing: .unconditional, help: "EMA decay (0 disables).") var ema: Float = 0.999
    @Option(parsing: .unconditional, help: "Random seed.") var seed: UInt64 = 0
    @Flag(help: "Condition on class labels (with label dropout for classifier-free guidance).") var classConditional = false
    @Option(parsing: .unconditional, help: "Label dropout probability.") var pUncond = 0.1
    @Option(parsing: .unconditional, help: "Checkpoint every this many steps.") var checkpointEvery = 1000
    @Option(help: "Output folder.") var output = "out/train"
    @Flag(help: "Continue from OUTPUT/model.safetensors (same settings required).") var resume = false
    @Flag(help: "Replace an existing OUTPUT/model.safetensors with a new run.") var force = false
    @Flag(help: "No progress output.") var quiet = false
    @Flag(help: "Print the summary as one JSON object.") var json = false

    func run() throws {
        // Every setting is checked, and the data read, before anything is written.
        let recipe = reporting { try makeRecipe() }
        let set = reporting { try Dataset.load(data, count: count, seed: seed) }
        let isImage = set.itemShape.count == 3
        var chosen = recipe
        switch network {
        case "mlp": break
        case "auto" where !isImage: break
        case "unet", "auto":
            guard isImage else { fail("--network unet needs image data ([C, H, W] items); \(set.name) has items of shape \(set.itemShape)") }
            chosen.unet = reporting { try unetConfiguration(imageSize: set.itemShape[1]) }
        default: fail("unknown network '\(network)'; valid: auto, mlp, unet")
        }
        chosen.batch = batch ?? (chosen.unet == nil ? 512 : 64)
        chosen.learningRate = lr ?? (chosen.unet == nil ? 2e-3 : 1e-3)
        reporting {
            try check(chosen.batch, in: 1...(1 << 20), "--batch")
            try check(chosen.learningRate, in: 1e-8...10, "--lr")
        }
        let ckpt = output + "/model.safetensors", log = output + "/train.jsonl"
        let exists = FileManager.default.fileExists(atPath: ckpt)
        if exists && !resume && !force {
            fail("\(ckpt) exists; pass --resume to continue it or --force to replace it")
        }
        if resume && force { fail("--resume and --force exclude each other") }
        let net = reporting { try chosen.makeNetworkSummary(for: set) }
        makeFolder(output)
        Interrupt.install()
        let bar = ProgressLine(total: chosen.steps, quiet: quiet || json, plainEvery: max(chosen.steps / 20, 1))
        if !quiet && !json {
            status("distill train: \(set.name), \(set.rows.shape[0]) items of shape \(set.itemShape); \(net); \(Runtime.threadCount) threads")
        }
        let (_, summary) = reporting {
            try chosen.train(on: set, checkpoint: ckpt, log: log, resume: resume && exists, shouldStop: { Interrupt.isRequested }) { p in
                bar.update(p.step, String(format: "loss %.4f", p.smoothedLoss))
            }
        }
        reporting { try writeLossCurve(log: log, to: output + "/loss.svg", title: "Training loss (\(set.name))") }
        if json {
            let obj: [String: Any] = ["checkpoint": ckpt, "steps": summary.endStep, "seconds": summary.seconds,
                                      "final_loss": Double(summary.finalSmoothedLoss), "interrupted": summary.interrupted]
            print(String(decoding: try JSONSerialization.data(withJSONObject: obj, options: [.sortedKeys]), as: UTF8.self))
        } else if summary.interrupted {
            status("interrupted at step \(summary.endStep); checkpoint saved: \(ckpt) (continue with --resume)")
        } else if !quiet {
            print(String(format: "trained to step %d in %.1f s (smoothed loss %.4f); checkpoint: %@", summary.endStep,
                         summary.seconds, summary.finalSmoothedLoss, ckpt))
        }
        if summary.interrupted { throw ExitCode(130) }
    }

    /// The recipe of the command's options (the network's kind and sizes come from the data).
    func makeRecipe() throws -> DiffusionRecipe {
        var recipe = DiffusionRecipe()
        recipe.process = try DiffusionProcess(name: process)
        guard let par = Parameterization(rawValue: parameterization) else {
            throw CLIError.usage("unknown parameterization '\(parameterization)'; valid: \(Parameterization.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        guard let w = LossWeighting(rawValue: weighting) else {
            throw CLIError.usage("unknown weighting '\(weighting)'; valid: \(LossWeighting.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        try check(steps, in: 1...100_000_000, "--steps")
        try check(count, in: 1...(1 << 24), "--count")
        try check(checkpointEvery, in: 1...100_000_000, "--checkpoint-every")
        try check(weightDecay, in: 0...0.99, "--weight-decay")
        try check(ema, in: 0...0.99999, "--ema")
        guard pUncond.isFinite, (0...1).contains(pUncond) else { throw CLIError.usage("--p-uncond must be in 0...1; got \(pUncond)") }
        recipe.parameterization = par
        recipe.weighting = w
        recipe.logNormalTimes = logNormal
        recipe.hidden = try parseInts(hidden, name: "--hidden")
        recipe.steps = steps
        recipe.weightDecay = weightDecay
        recipe.emaDecay = ema > 0 ? ema : nil
        recipe.seed = seed
        recipe.classConditional = classConditional
        recipe.labelDropout = pUncond
        recipe.checkpointEvery = checkpointEvery
        return recipe
    }

    private func gcd(_ a: Int, _ b: Int) -> Int { b == 0 ? a : gcd(b, a % b) }

    /// The U-Net of the command's options for square images of side `imageSize` (channels and
    /// classes come from the data when the recipe builds it).
    func unetConfiguration(imageSize: Int) throws -> UNet.Configuration {
        try check(baseChannels, in: 1...1024, "--base-channels")
        try check(blocksPerLevel, in: 1...16, "--blocks-per-level")
        try check(dropout, in: 0...0.99, "--dropout")
        let multipliers = try channelMultipliers.map { try parseInts($0, name: "--channel-multipliers", maximum: 16) }
            ?? (imageSize >= 16 ? [1, 2, 2] : [1, 2])
        let lowest = imageSize >> min(multipliers.count - 1, 30)
        let attention = try attentionResolutions.map { try parseInts($0, name: "--attention-resolutions", maximum: 4096) } ?? [lowest]
        return UNet.Configuration(imageSize: imageSize, baseChannels: baseChannels, channelMultipliers: multipliers,
                                  blocksPerLevel: blocksPerLevel, attentionResolutions: attention,
                                  headCount: gcd(4, baseChannels), groups: gcd(8, baseChannels), dropout: dropout)
    }
}

extension DiffusionRecipe {
    /// "MLP with 133122 parameters": the network the recipe builds for `data` (built to check
    /// that it can be, before anything is written).
    func makeNetworkSummary(for data: Dataset) throws -> String {
        let (net, _) = try makeNetwork(for: data)
        return "\(unet == nil ? "MLP" : "U-Net") with \(net.parameterCount) parameters"
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
