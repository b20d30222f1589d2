import ArgumentParser
import Distill
import Foundation

/// The sampling options shared by `sample` and the evaluation parts of other commands.
struct GridOptions: ParsableArguments {
    @Option(help: "Sampler: \(SamplerKind.allCases.map(\.rawValue).joined(separator: ", ")), or generator (one evaluation of a generator checkpoint).")
    var sampler = "dpmpp-2m"

    @Option(help: "Steps (for dpm-solver-2/3: the NFE budget, allocated as the official code does).")
    var steps = 20

    @Option(help: "Grid: karras, logsnr, time, quadratic, or for a ddpm model leading/trailing/linspace.")
    var grid = "karras"

    @Option(help: "A JSON file with an explicit grid: [[alpha, sigma], ...], noisiest first (overrides --grid).")
    var gridFile: String?

    @Flag(inversion: .prefixedNo, help: "End with a step to sigma = 0 (a final denoise).")
    var finalDenoise = true

    /// The grid (and DPM-Solver orders) for `process`.
    func build(process: any DiffusionProcess) throws -> (NoiseGrid, [Int]?, SamplerKind) {
        let kind = try SamplerKind(name: sampler)
        guard steps >= 1 else { throw CLIError.usage("--steps must be at least 1") }
        var orders: [Int]?
        var n = steps
        if kind == .dpmSolver2 || kind == .dpmSolver3 {
            let o = try dpmSolverSinglestepOrders(nfe: max(steps - (finalDenoise ? 1 : 0), 1), order: kind == .dpmSolver2 ? 2 : 3)
            orders = o + (finalDenoise ? [1] : [])
            n = o.count + (finalDenoise ? 1 : 0)
        }
        if let file = gridFile {
            let data = try FileIO.read(file)
            guard let pairs = try? JSONSerialization.jsonObject(with: Data(data)) as? [[Double]], pairs.allSatisfy({ $0.count == 2 }) else {
                throw CLIError.usage("\(file): expected a JSON list of [alpha, sigma] pairs")
            }
            let g = try NoiseGrid.explicit(pairs.map { ($0[0], $0[1]) }, process: process)
            return (g, orders.map { Array($0.prefix(g.steps)) + Array(repeating: 1, count: max(0, g.steps - $0.count)) }, kind)
        }
        let noisy = finalDenoise ? max(n - 1, 1) : n
        let g: NoiseGrid
        switch grid {
        case "karras": g = try .karras(process, steps: finalDenoise ? n : noisy, finalDenoise: finalDenoise)
        case "logsnr": g = try .logSNRUniform(process, steps: noisy, finalDenoise: finalDenoise)
        case "time": g = try .timeUniform(process, steps: noisy, finalDenoise: finalDenoise)
        case "quadratic": g = try .timeQuadratic(process, steps: noisy, finalDenoise: finalDenoise)
        case "leading", "trailing", "linspace":
            guard let ddpm = process as? DiscreteDDPMProcess else { throw CLIError.usage("--grid \(grid) needs a model trained with --process ddpm") }
            g = try .discrete(ddpm, steps: noisy, spacing: NoiseGrid.DiscreteSpacing(rawValue: grid)!, finalDenoise: finalDenoise)
        default:
            throw CLIError.usage("unknown grid '\(grid)'; valid: karras, logsnr, time, quadratic, leading, trailing, linspace")
        }
        return (g, orders, kind)
    }
}
