import ArgumentParser
import Distill
import DistillSupport
import Foundation

struct EvalCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "eval",
        abstract: "Compare samples with a reference: sliced-W2, MMD, energy distance; mixture likelihood and mode coverage; FID/KID on images.",
        discussion: """
        --reference is an .npy file or a data set (\(Dataset.specificationHelp)).
        For a mixture reference, exact samples are drawn and the exact log-likelihood and mode coverage are reported; \
        for 64-value images (8x8 digits) FID and KID on the built-in digit classifier's features. For other images \
        (e.g. MNIST from IDX files) --classifier FILE gives FID and KID on that classifier's features: when FILE \
        does not exist, a classifier is trained on the labelled reference (its last 10% held out, accuracy \
        reported) and written there for the next runs.

        Examples:
          distill eval --samples out/samples.npy --reference ring8
          distill eval --samples out/digits.npy --reference digits --json
          distill eval --samples out/digits.npy --reference digits --classifier out/digits-classifier.safetensors
        """
    )

    @Option(help: "Samples (.npy, [N, d] or [N, C, H, W]).") var samples: String
    @Option(help: "Reference: .npy file or data set.") var reference: String
    @Option(parsing: .unconditional, help: "Reference points drawn from procedural sources.") var count = 5000
    @Option(parsing: .unconditional, help: "Seed for reference draws and projections.") var seed: UInt64 = 0
    @Option(help: "Classifier for FID/KID (trained on the labelled reference and written here when missing).") var classifier: String?
    @Option(parsing: .unconditional, help: "Training steps of a new --classifier.") var classifierSteps = 3000
    @Flag(help: "One JSON object instead of a table.") var json = false

    func run() throws {
        let metrics = reporting { () throws -> [(String, Double)] in
            let s = try NPY.read(samples)
            guard s.rank >= 2, s.shape[0] >= 2 else { throw CLIError.usage("\(samples) has shape \(s.shape); expected at least 2 samples") }
            let rows = try s.flattened(from: 1)
            try check(count, in: 1...(1 << 22), "--count")
            let ref = reference.hasSuffix(".npy") && !reference.hasPrefix("npy:")
                ? try Dataset.load("npy:" + reference, count: count, seed: seed) : try Dataset.load(reference, count: count, seed: seed)
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
            var features: (DigitClassifier, Tensor, String)?
            if let path = classifier {
                features = (try featureClassifier(path, reference: ref, into: &out), ref.rows, "")
            } else if rows.shape[1] == 64 {
                let realImages = ref.name == "digits" ? ref.rows : try Dataset.load("digits").rows
                features = (try DigitClassifier.pretrainedDigits8x8(), realImages, "_digits")
            }
            if let (clf, realImages, suffix) = features {
                guard clf.configuration.inputSize == rows.shape[1] else {
                    throw CLIError.usage("the classifier takes \(clf.configuration.inputSize) values per image; the samples have \(rows.shape[1])")
                }
                out.append(("fid" + suffix, try clf.frechetDistance(realImages, rows)))
                let kid = try clf.kernelInceptionDistance(realImages, rows, subsets: 20, subsetSize: min(500, rows.shape[0], realImages.shape[0]), seed: seed)
                out.append(("kid" + suffix, kid.mean))
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

    /// The classifier at `path`, or a new one trained on the labelled reference (last 10% held
    /// out; its accuracy goes into `out`) and written to `path`.
    func featureClassifier(_ path: String, reference ref: Dataset, into out: inout [(String, Double)]) throws -> DigitClassifier {
        if FileManager.default.fileExists(atPath: path) { return try DigitClassifier.read(from: path) }
        guard let labels = ref.labels, let classes = ref.classCount, ref.rows.shape[0] >= 20 else {
            throw CLIError.usage("\(path) does not exist, and the reference \(ref.name) has no labels (or too few items) to train a classifier on")
        }
        try check(classifierSteps, in: 1...10_000_000, "--classifier-steps")
        let n = ref.rows.shape[0]
        let shape = ref.itemShape.count == 3 ? [n] + ref.itemShape : [n, 1, 1, ref.rows.shape[1]]
        let data = try ImageDataset(images: ref.rows.reshaped(shape), labels: labels, classCount: classes, source: ref.name)
        let split = data.count - data.count / 10
        let train = try data.subset(0..<split), test = try data.subset(split..<data.count)
        let clf = try DigitClassifier(.init(inputSize: ref.rows.shape[1], classCount: classes), seed: seed)
        if !json { status("training a classifier on \(ref.name) (\(split) images, \(classifierSteps) steps) for FID/KID: \(path)") }
        try clf.train(on: train, steps: classifierSteps, seed: seed &+ 1, inputNoise: 0.5)
        let accuracy = try clf.accuracy(images: test.images, labels: test.labels!)
        try clf.write(to: path, metadata: ["held_out_accuracy": String(accuracy), "reference": ref.name])
        out.append(("classifier_held_out_accuracy", accuracy))
        return clf
    }
}
