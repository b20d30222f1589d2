import ArgumentParser
import Distill
import Foundation

/// The sampling-plan options of `sample`: each one left out keeps the model's own plan.
struct PlanOptions: ParsableArguments {
    @Option(help: "Sampler: \(SamplerKind.allCases.map(\.rawValue).joined(separator: ", ")) (default: the model's own; a consistency model takes consistency, a generator none).")
    var sampler: String?

    @Option(parsing: .unconditional, help: "Network evaluations to spend (NFE); the grid gets as many steps as fit (default: the model's own plan, else 20).")
    var nfe: Int?

    @Option(help: "Grid spacing: \(SamplingPlan.Spacing.allCases.map(\.rawValue).joined(separator: ", ")) (leading/trailing/linspace for ddpm models).")
    var grid: String?

    @Option(help: "A JSON file with an explicit grid: [[alpha, sigma], ...], noisiest first (its length sets the steps).")
    var gridFile: String?

    @Flag(inversion: .prefixedNo, help: "End with a step to sigma = 0 (a final denoise).")
    var finalDenoise: Bool?

    /// Whether any option was given.
    var isEmpty: Bool { sampler == nil && nfe == nil && grid == nil && gridFile == nil && finalDenoise == nil }

    /// The plan: `base` (the model's own) with the given options replacing its settings.
    func plan(base: SamplingPlan?) throws -> SamplingPlan? {
        guard !isEmpty else { return base }
        let kind = try sampler.map { try SamplerKind(name: $0) }
        if let nfe { try check(nfe, in: 1...SamplingPlan.maximumNFE, "--nfe") }
        let spacing = try grid.map { name -> SamplingPlan.Spacing in
            guard let s = SamplingPlan.Spacing(rawValue: name) else {
                let names = SamplingPlan.Spacing.allCases.map(\.rawValue)
                throw CLIError.usage("unknown grid '\(name)'; valid: \(names.joined(separator: ", "))")
            }
            return s
        }
        if let file = gridFile {
            guard nfe == nil, grid == nil, finalDenoise == nil else {
                throw CLIError.usage("--grid-file sets the whole grid; it does not combine with --nfe, --grid or --final-denoise")
            }
            let levels = try SamplingPlan.levels(fromJSON: FileIO.read(file), source: file)
            return SamplingPlan(sampler: kind ?? base?.sampler ?? .dpmpp2M, levels: levels)
        }
        return (base ?? SamplingPlan()).replacing(sampler: kind, nfe: nfe, spacing: spacing, finalDenoise: finalDenoise)
    }
}
