import ArgumentParser
import Distill
import DistillSupport
import Foundation

struct SampleCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sample",
        abstract: "Sample a trained model, a distilled student, a generator or an exact mixture.",
        discussion: """
        --model is a checkpoint written by `distill train` or `distill distill`, a diffusers pipeline folder \
        (model_index.json, unet/ with a UNet2DModel, scheduler/ with a DDPM or DDIM scheduler), or an exact mixture \
        (\(GaussianMixture.builtInNames.joined(separator: ", ")), gmm:FILE.json). Without plan options each model samples \
        the way it was made to: a distilled student with its own sampler, grid and NFE, a consistency model with \
        the consistency sampler, a generator in one evaluation, a diffusers pipeline as diffusers' DDIM pipeline \
        does (50 steps, eta 0), anything else with dpmpp-2m at 20 NFE on EDM's grid. \
        Writes OUTPUT (.npy, [N] + the item shape) and a picture next to it (a scatter plot for 2-D data, an \
        image grid for images).

        Examples:
          distill sample --model out/train/model.safetensors --sampler dpmpp-2m --nfe 10
          distill sample --model ring8 --sampler unipc-3 --nfe 8 --grid logsnr --output out/ring8.npy
          distill sample --model ring8 --class 3 --guidance 2 --sampler heun --nfe 15
          distill sample --model out/distill/cd-nfe2.safetensors
        """
    )

    @Option(help: "Checkpoint, diffusers pipeline folder or mixture.") var model: String
    @OptionGroup var planOptions: PlanOptions
    @Option(parsing: .unconditional, help: "Samples to draw.") var count = 2000
    @Option(parsing: .unconditional, help: "Seed for the initial noise and stochastic samplers.") var seed: UInt64 = 0
    @Option(help: "The initial state as an .npy file (used exactly as given) instead of seeded noise.") var noise: String?
    @Option(help: "Class label for every sample (class-conditional models).") var `class`: Int?
    @Option(parsing: .unconditional, help: "Classifier-free guidance weight w (with --class), or the weight a guided student samples at.") var guidance: Float?
    @Option(help: "Data (\(Dataset.specificationHelp)) for Analytic-DPM's moments, when the model's own data are not built in.") var data: String?
    @Option(help: "Output .npy file.") var output = "out/samples.npy"
    @Option(help: "Picture file (.png), or 'none'.") var picture: String?
    @Flag(help: "Print a JSON summary.") var json = false

    func run() throws {
        // Everything is read and checked before anything is written.
        reporting { try check(count, in: 1...(1 << 24), "--count") }
        let m = reporting { try TrainedModel.named(model) }
        let pic = picture ?? (output.hasSuffix(".npy") ? String(output.dropLast(4)) + ".png" : output + ".png")
        for (path, what) in [(output, "--output"), (pic, "--picture")] where path != "none" {
            for input in [model, noise, planOptions.gridFile].compactMap({ $0 }) where sameFile(path, input) {
                fail("\(what) \(path) is an input of this command; choose another file")
            }
        }
        let plan = reporting { try planOptions.plan(base: m.defaultPlan) }
        let labels: [Int]? = reporting { () throws -> [Int]? in
            guard let c = `class` else { return nil }
            guard let classes = m.classCount, (0..<classes).contains(c) else {
                throw CLIError.usage("--class \(c): the model has \(m.classCount.map { "classes 0..<\($0)" } ?? "no classes")")
            }
            return Array(repeating: c, count: count)
        }
        let moments: Tensor? = reporting { () throws -> Tensor? in
            guard plan?.sampler == .analyticDPM else { return nil }
            if let data { return try Dataset.load(data, count: 2000, seed: seed &+ 1).rows.slice(0..<2000, clampedTo: true) }
            guard let rows = try m.builtInData(count: 2000, seed: seed &+ 1) else {
                throw CLIError.usage("analytic-dpm needs samples of the model's data: pass --data (the card names data that are not built in)")
            }
            return rows
        }
        let dir = FileIO.directory(of: output)
        let start = Date()
        let bar = ProgressLine(total: 1, quiet: json || count < 10_000, plainEvery: 1)
        let result = reporting { () throws -> SamplerResult in
            if let noise {
                let x = try NPY.read(noise)
                return try m.sample(from: x, plan: plan, labels: labels.map { Array($0.prefix(x.shape.first ?? 0)) }, guidance: guidance,
                                    seed: seed, data: moments)
            }
            var rng = Philox(seed: seed)
            return try m.sample(fromUnitNoise: rng.normalRows(count, m), plan: plan, labels: labels, guidance: guidance,
                                seed: seed, data: moments) { done, total in bar.update(done, "sampling step \(done) of \(total)") }
        }
        let seconds = Date().timeIntervalSince(start)
        let sample = result.sample
        let png = pic == "none" ? nil : reporting { try pictureBytes(sample, mixture: m.mixture) }
        if dir != "." { makeFolder(dir) }
        reporting { try NPY.write(sample, to: output) }
        if let png { reporting { try FileIO.writeAtomically(pic, png) } }
        if json {
            let obj: [String: Any] = ["output": output, "picture": png == nil ? "none" : pic, "samples": sample.shape[0], "nfe": result.evaluations,
                                      "seconds": seconds, "samples_per_second": Double(sample.shape[0]) / max(seconds, 1e-9)]
            print(String(decoding: try JSONSerialization.data(withJSONObject: obj, options: [.sortedKeys]), as: UTF8.self))
        } else {
            print(String(format: "%d samples in %.2f s (NFE %d): %@%@", sample.shape[0], seconds, result.evaluations, output, png == nil ? "" : ", " + pic))
        }
    }
}

extension Philox {
    /// Standard normal rows for `count` samples of `model` (its latent width for a generator).
    mutating func normalRows(_ count: Int, _ model: TrainedModel) throws -> Tensor {
        try normal([count, model.kind == .generator ? model.latentWidth : model.itemShape.reduce(1, *)])
    }
}

extension Tensor {
    /// The first rows in `range`, or fewer when the tensor is shorter.
    func slice(_ range: Range<Int>, clampedTo: Bool) throws -> Tensor {
        try slice(range.lowerBound..<min(range.upperBound, shape[0]))
    }
}

/// A scatter plot for 2-D samples, an image grid for images (first 100), nothing otherwise,
/// as PNG bytes.
func pictureBytes(_ samples: Tensor, mixture: GaussianMixture?) throws -> [UInt8]? {
    if samples.rank == 2, samples.shape[1] == 2 {
        return try Pictures.scatter(samples, range: mixture == nil ? nil : -4.5...4.5).pngBytes()
    } else if samples.rank == 4 {
        return try Pictures.imageGrid(samples.slice(0..<min(100, samples.shape[0])), columns: 10).pngBytes()
    } else if samples.rank == 2, samples.shape[1] == 64 {
        return try Pictures.imageGrid(samples.slice(0..<min(100, samples.shape[0])).reshaped([-1, 1, 8, 8]), columns: 10).pngBytes()
    }
    return nil
}
