import ArgumentParser
import Distill
import Foundation

struct SampleCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sample",
        abstract: "Sample a trained model or an exact mixture with any sampler and grid.",
        discussion: """
        --model is a checkpoint written by `distill train`/`distill distill`, or a mixture (\(GaussianMixture.builtInNames.joined(separator: ", ")), gmm:FILE.json).
        Writes OUTPUT (.npy) and a picture next to it (a scatter plot for 2-D data, an image grid for images).

        Examples:
          distill sample --model out/train/model.safetensors --sampler dpmpp-2m --steps 10
          distill sample --model ring8 --sampler unipc-3 --steps 8 --grid logsnr --output out/ring8.npy
          distill sample --model ring8 --class 3 --guidance 2 --sampler heun --steps 15
          distill sample --model out/cd/model.safetensors --steps 1
        """
    )

    @Option(help: "Checkpoint or mixture (with --sampler generator: a generator checkpoint).") var model: String
    @OptionGroup var gridOptions: GridOptions
    @Option(help: "Samples to draw.") var count = 2000
    @Option(help: "Seed for the initial noise and stochastic samplers.") var seed: UInt64 = 0
    @Option(help: "The initial state as an .npy file (used exactly as given) instead of seeded noise.") var noise: String?
    @Option(help: "Class label for every sample (class-conditional models).") var `class`: Int?
    @Option(help: "Classifier-free guidance weight w (with --class).") var guidance: Float?
    @Option(help: "Output .npy file.") var output = "out/samples.npy"
    @Option(help: "Picture file (.png), or 'none'.") var picture: String?
    @Flag(help: "Print a JSON summary.") var json = false

    func run() throws {
        if gridOptions.sampler == "generator" { return try sampleGenerator() }
        let source = reporting { try ModelSource.load(model) }
        let d = source.itemShape.reduce(1, *)
        let dir = FileIO.directory(of: output)
        if dir != "." { makeFolder(dir) }
        let start = Date()
        let (sample, nfe) = reporting { () throws -> (Tensor, Int) in
            var labels: [Int]?
            if let c = `class` {
                guard let classes = source.classCount, (0..<classes).contains(c) else {
                    throw CLIError.usage("--class \(c): the model has \(source.classCount.map { "classes 0..<\($0)" } ?? "no classes")")
                }
                labels = Array(repeating: c, count: count)
            } else if guidance != nil {
                throw CLIError.usage("--guidance needs --class")
            }
            var denoiser: any Denoiser = source.denoiser
            if let w = guidance, let null = source.nullLabel { denoiser = GuidedDenoiser(AnyDenoiser(denoiser), guidance: w, nullLabel: null) }
            if source.isConsistency, let cm = source.denoiser as? ConsistencyModel<AnyNetwork> {
                var rng = Philox(seed: seed)
                let z = try noise.map { try NPY.read($0) } ?? (try rng.normal([count, d]) * Float(cm.sigmaMax))
                let times = gridOptions.steps <= 1 ? [] : ConsistencyDistillation.levels(count: gridOptions.steps + 1, sigmaMax: cm.sigmaMax)
                    .dropFirst().dropLast().reversed().map { $0 }
                let r = try sampleConsistency(cm, from: z, times: Array(times.suffix(gridOptions.steps - 1)), labels: labels, seed: seed)
                return (r.sample, r.evaluations)
            }
            let (grid, orders, kind) = try gridOptions.build(process: source.process)
            var x: Tensor
            if let noise {
                x = try NPY.read(noise)
                guard x.shape == [x.shape.first ?? 0, d] || Array(x.shape.dropFirst()) == source.itemShape else {
                    throw CLIError.usage("\(noise) has shape \(x.shape); expected [N, \(d)]")
                }
                x = try x.reshaped([x.shape[0], d])
            } else {
                var rng = Philox(seed: seed)
                x = try rng.normal([count, d]) * Float(grid.levels[0].sigma)
            }
            var moments: [Double]?
            if kind == .analyticDPM {
                let data = try DataSet.load(source.dataSource, count: 2000, seed: seed &+ 1)
                moments = try analyticDPMMoments(denoiser, grid: grid, data: data.rows.slice(0..<min(2000, data.rows.shape[0])))
            }
            let options = SamplerOptions(labels: labels, seed: seed)
            let r = try orders.map { try sampleDPMSolver(denoiser, from: x, grid: grid, orders: $0, options: options) }
                ?? kind.sample(denoiser, from: x, grid: grid, options: options, analyticMoments: moments)
            return (r.sample, r.evaluations)
        }
        let seconds = Date().timeIntervalSince(start)
        let shaped = reporting { try sample.reshaped([sample.shape[0]] + source.itemShape) }
        reporting { try NPY.write(shaped, to: output) }
        let pic = picture ?? (output.hasSuffix(".npy") ? String(output.dropLast(4)) + ".png" : output + ".png")
        if pic != "none" { reporting { try savePicture(shaped, to: pic, mixture: source.mixture) } }
        if json {
            let obj: [String: Any] = ["output": output, "picture": pic, "samples": sample.shape[0], "nfe": nfe, "seconds": seconds,
                                      "samples_per_second": Double(sample.shape[0]) / max(seconds, 1e-9)]
            print(String(decoding: try JSONSerialization.data(withJSONObject: obj, options: [.sortedKeys]), as: UTF8.self))
        } else {
            print(String(format: "%d samples in %.2f s (NFE %d): %@%@", sample.shape[0], seconds, nfe, output, pic == "none" ? "" : ", " + pic))
        }
    }
}

extension SampleCommand {
    /// One evaluation of a generator checkpoint (`distill distill --method diff-instruct|sds|vsd`).
    func sampleGenerator() throws {
        let start = Date()
        let (samples, shape) = reporting { () throws -> (Tensor, [Int]) in
            let ck = try Checkpoint.read(from: model)
            guard let card = try? JSONDecoder().decode(GeneratorCard.self, from: Data(ck.config.utf8)) else {
                throw CLIError.usage("\(model) is not a generator checkpoint (make one with distill distill --method diff-instruct|sds|vsd)")
            }
            let gen = try card.makeGenerator(weights: ck.model)
            var rng = Philox(seed: seed)
            let x = try withoutGradient { try gen.sample(count, rng: &rng) }
            guard let conv = card.convolutional else { return (x, [card.dataDimension]) }
            let shape = [conv.imageChannels, conv.imageSize, conv.imageSize]
            return (try x.reshaped([count] + shape), shape)
        }
        let dir = FileIO.directory(of: output)
        if dir != "." { makeFolder(dir) }
        reporting { try NPY.write(samples, to: output) }
        let pic = picture ?? (output.hasSuffix(".npy") ? String(output.dropLast(4)) + ".png" : output + ".png")
        if pic != "none" { reporting { try savePicture(samples, to: pic, mixture: shape == [2] ? GaussianMixture.ring8() : nil) } }
        print(String(format: "%d samples in %.3f s (NFE 1): %@", samples.shape[0], Date().timeIntervalSince(start), output))
    }
}

/// A scatter plot for 2-D samples, an image grid for images (first 100), nothing otherwise.
func savePicture(_ samples: Tensor, to path: String, mixture: GaussianMixture?) throws {
    if samples.rank == 2, samples.shape[1] == 2 {
        try Pictures.scatter(samples, range: mixture == nil ? nil : -4.5...4.5).writePNG(to: path)
    } else if samples.rank == 4 {
        try Pictures.imageGrid(samples.slice(0..<min(100, samples.shape[0])), columns: 10).writePNG(to: path)
    } else if samples.rank == 2, samples.shape[1] == 64 {
        try Pictures.imageGrid(samples.slice(0..<min(100, samples.shape[0])).reshaped([-1, 1, 8, 8]), columns: 10).writePNG(to: path)
    }
}
