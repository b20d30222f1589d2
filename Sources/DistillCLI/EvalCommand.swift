import ArgumentParser
import Distill
import Foundation

struct EvalCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "eval",
        abstract: "Compare samples with a reference: sliced-W2, MMD, energy distance; mixture likelihood and mode coverage; FID/KID for 8x8 digits.",
        discussion: """
        --reference is an .npy file, a data set (\(DataSet.help)).
        For a mixture reference, exact samples are drawn and the exact log-likelihood and mode coverage are reported;
        for 64-value images (8x8 digits) FID and KID on the built-in digit classifier's features.

        Examples:
          distill eval --samples out/samples.npy --reference ring8
          distill eval --samples out/digits.npy --reference digits --json
        """
    )

    @Option(help: "Samples (.npy, [N, d] or [N, C, H, W]).") var samples: String
    @Option(help: "Reference: .npy file or data set.") var reference: String
    @Option(help: "Reference points drawn from procedural sources.") var count = 5000
    @Option(help: "Seed for reference draws and projections.") var seed: UInt64 = 0
    @Flag(help: "One JSON object instead of a table.") var json = false

    func run() throws {
        let metrics = reporting { () throws -> [(String, Double)] in
            let s = try NPY.read(samples)
            guard s.rank >= 2, s.shape[0] >= 2 else { throw CLIError.usage("\(samples) has shape \(s.shape); expected at least 2 samples") }
            let rows = try s.flattened(from: 1)
            let ref: DataSet = reference.hasSuffix(".npy") && !reference.hasPrefix("npy:")
                ? try DataSet.load("npy:" + reference, count: count, seed: seed) : try DataSet.load(reference, count: count, seed: seed)
            guard ref.rows.shape[1] == rows.shape[1] else {
                throw CLIError.usage("samples have \(rows.shape[1]) values each, the reference \(ref.rows.shape[1])")
            }
            var out: [(String, Double)] = [("samples", Double(rows.shape[0])), ("reference_points", Double(ref.rows.shape[0]))]
            out.append(("sliced_w2", try slicedWasserstein2(rows, ref.rows, seed: seed)))
            let cap = 3000   // pairwise metrics are quadratic: subsample
            let (a, b) = (try rows.slice(0..<min(cap, rows.shape[0])), try ref.rows.slice(0..<min(cap, ref.rows.shape[0])))
            out.append(("mmd2_rbf", try maximumMeanDiscrepancy(a, b)))
            out.append(("energy_distance", try energyDistance(a, b)))
            if let m = ref.mixture {
                out.append(("log_likelihood", try m.averageLogLikelihood(rows)))
                let cov = try m.modeCoverage(rows)
                out.append(("modes_covered", Double(cov.coveredModes)))
                out.append(("modes", Double(cov.modeCount)))
                out.append(("high_quality_fraction", cov.highQualityFraction))
            }
            if rows.shape[1] == 64 {
                let clf = try DigitClassifier.pretrainedDigits8x8()
                let realImages = ref.name == "digits" ? ref.rows : try ImageDataset.digits8x8().images.flattened(from: 1)
                out.append(("fid_digits", try clf.frechetDistance(realImages, rows)))
                let kid = try clf.kernelInceptionDistance(realImages, rows, subsets: 20, subsetSize: min(500, rows.shape[0], realImages.shape[0]), seed: seed)
                out.append(("kid_digits", kid.mean))
            }
            return out
        }
        if json {
            let obj = Dictionary(uniqueKeysWithValues: metrics.map { ($0.0, $0.1) })
            print(String(decoding: try JSONSerialization.data(withJSONObject: obj, options: [.sortedKeys]), as: UTF8.self))
        } else {
            for (name, v) in metrics { print(name.padding(toLength: 24, withPad: " ", startingAt: 0) + String(format: "%.6g", v)) }
        }
    }
}
