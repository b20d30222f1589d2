import Foundation

/// Training or reference data: items as rows, with their shape, labels and — when the data are
/// samples of a known mixture — the exact distribution.
///
/// ``load(_:count:seed:)`` reads a data specification: a 2-D toy ("moons", "8gaussians", …),
/// an analytic mixture ("ring8", "grid25", "gmm64", or "gmm:FILE.json"), the built-in 8×8
/// digits ("digits"), MNIST-format files ("idx:IMAGES[,LABELS]", gzip allowed) or a NumPy
/// array ("npy:FILE.npy"). Images are scaled to [-1, 1].
public struct Dataset: Sendable {
    /// A short name of where the data came from ("moons", "digits", "npy:train.npy"; file names
    /// without their folders), recorded in model cards as a label only.
    public let name: String
    /// The items as rows (N, values per item); images flattened.
    public let rows: Tensor
    /// The shape of one item ([d], or [C, H, W] for images).
    public let itemShape: [Int]
    /// One class label per item, when the data are labelled.
    public let labels: [Int]?
    /// The number of classes of labelled data.
    public let classCount: Int?
    /// The exact distribution, when the data are samples of a known mixture.
    package let mixture: GaussianMixture?
    /// The range every value lies in, when the source guarantees one (images: [-1, 1]).
    package let valueRange: ClosedRange<Double>?

    /// Data from rows in memory.
    ///
    /// - Parameters:
    ///   - rows: (N, d) or (N, C, H, W); N ≥ 1, every value finite.
    ///   - labels: one label in 0..<classCount per row, or nil.
    ///   - classCount: the number of classes (default: the largest label + 1).
    ///   - name: a short name for model cards and messages.
    /// - Throws: `DatasetError` for an empty or non-finite array or labels that do not fit.
    public init(rows: Tensor, labels: [Int]? = nil, classCount: Int? = nil, name: String = "data") throws {
        guard rows.rank >= 2, rows.shape[0] >= 1 else {
            throw DatasetError.invalidShape(source: name, shape: rows.shape, expected: "[N, d] or [N, C, H, W] with N ≥ 1")
        }
        let bad = rows.withUnsafeBufferPointer { $0.firstIndex(where: { !$0.isFinite }) }
        if let bad { throw DatasetError.invalidArgument(source: name, message: "value \(bad) is not finite") }
        var classes: Int?
        if let labels {
            guard labels.count == rows.shape[0] else {
                throw DatasetError.invalidArgument(source: name, message: "\(labels.count) labels for \(rows.shape[0]) items")
            }
            let k = classCount ?? ((labels.max() ?? 0) + 1)
            if let out = labels.first(where: { !(0..<k).contains($0) }) {
                throw DatasetError.invalidArgument(source: name, message: "label \(out) is outside 0..<\(k)")
            }
            classes = k
        }
        self.init(name: name, rows: try rows.flattened(from: 1), itemShape: Array(rows.shape.dropFirst()), labels: labels,
                  classCount: classes, mixture: nil, valueRange: nil)
    }

    package init(name: String, rows: Tensor, itemShape: [Int], labels: [Int]?, classCount: Int?, mixture: GaussianMixture?,
                 valueRange: ClosedRange<Double>?) {
        self.name = name
        self.rows = rows
        self.itemShape = itemShape
        self.labels = labels
        self.classCount = classCount
        self.mixture = mixture
        self.valueRange = valueRange
    }

    /// The data a specification names (see the type's documentation); `count` points are drawn
    /// from procedural sources (toys and mixtures) with `seed`.
    ///
    /// - Throws: `DatasetError` for an unknown specification (naming the valid forms),
    ///   `IOError` and `DatasetError` for files that cannot be read or do not fit.
    public static func load(_ spec: String, count: Int = 65_536, seed: UInt64 = 0) throws -> Dataset {
        if let data = try builtIn(spec, count: count, seed: seed) { return data }
        if spec.hasPrefix("gmm:") {
            let path = String(spec.dropFirst(4))
            return try mixtureSamples(GaussianMixture.load(path), name: "gmm:" + fileName(path), count: count, seed: seed)
        }
        if spec.hasPrefix("idx:") {
            let parts = spec.dropFirst(4).split(separator: ",", omittingEmptySubsequences: false).map(String.init)
            guard (1...2).contains(parts.count), !parts.contains(where: \.isEmpty) else {
                throw DatasetError.invalidArgument(source: spec, message: "expected idx:IMAGES or idx:IMAGES,LABELS")
            }
            return try images("idx:" + parts.map(fileName).joined(separator: ","),
                              ImageDataset.idx(images: parts[0], labels: parts.count == 2 ? parts[1] : nil))
        }
        if spec.hasPrefix("npy:") {
            let path = String(spec.dropFirst(4))
            let t = try NPY.read(path)
            guard t.rank >= 2, t.shape[0] > 0 else {
                throw DatasetError.invalidShape(source: path, shape: t.shape, expected: "[N, d] or [N, C, H, W] with N ≥ 1")
            }
            return try Dataset(rows: t, name: "npy:" + fileName(path))
        }
        throw DatasetError.invalidArgument(source: "data", message: "unknown data '\(spec)'\(suggestion(for: spec, among: builtInNames)); expected \(specificationHelp)")
    }

    /// The data of a built-in name (a toy, a built-in mixture or "digits"), which read no
    /// file; nil for any other specification. Model cards name their training data this way,
    /// and only built-in names are ever followed from a card.
    package static func builtIn(_ spec: String, count: Int = 65_536, seed: UInt64 = 0) throws -> Dataset? {
        if let toy = ToyDataset(rawValue: spec) {
            guard (1...(1 << 24)).contains(count) else {
                throw DatasetError.invalidArgument(source: spec, message: "count must be in 1...\(1 << 24); got \(count)")
            }
            return Dataset(name: spec, rows: try toy.sample(count, seed: seed), itemShape: [2], labels: nil, classCount: nil,
                           mixture: GaussianMixture(toy: toy), valueRange: nil)
        }
        if let m = GaussianMixture.named(spec) { return try mixtureSamples(m, name: spec, count: count, seed: seed) }
        if spec == "digits" { return try images("digits", ImageDataset.digits8x8()) }
        return nil
    }

    static func mixtureSamples(_ m: GaussianMixture, name: String, count: Int, seed: UInt64) throws -> Dataset {
        guard count >= 1, count <= (1 << 26) / max(m.dimension, 1) else {
            throw DatasetError.invalidArgument(source: name, message: "count must be in 1...\((1 << 26) / max(m.dimension, 1)); got \(count)")
        }
        let (rows, components) = try m.sample(count, seed: seed)
        return Dataset(name: name, rows: rows, itemShape: [m.dimension], labels: components, classCount: m.componentCount,
                       mixture: m, valueRange: nil)
    }

    static func images(_ name: String, _ d: ImageDataset) throws -> Dataset {
        Dataset(name: name, rows: try d.images.flattened(from: 1), itemShape: Array(d.images.shape.dropFirst()), labels: d.labels,
                classCount: d.labels == nil ? nil : d.classCount, mixture: nil, valueRange: -1...1)
    }

    /// The last component of a path: data names recorded in model cards carry no machine paths.
    static func fileName(_ path: String) -> String { URL(fileURLWithPath: path).lastPathComponent }

    /// The names ``load(_:count:seed:)`` knows without a file.
    package static var builtInNames: [String] { ToyDataset.allCases.map(\.rawValue) + GaussianMixture.builtInNames + ["digits"] }

    /// The forms of a data specification, for help texts and errors.
    package static var specificationHelp: String {
        "a toy (\(ToyDataset.allCases.map(\.rawValue).joined(separator: ", "))), a mixture (\(GaussianMixture.builtInNames.joined(separator: ", ")), "
            + "or gmm:FILE.json), digits (the built-in 8x8 digits), idx:IMAGES[,LABELS] (MNIST-format files, .gz allowed), or npy:FILE.npy"
    }

    /// A batch sampler over the rows: step s always gets the same batch.
    package func batches(size: Int, seed: UInt64) throws -> (Int) throws -> (rows: Tensor, labels: [Int]?) {
        let sampler = try BatchSampler(count: rows.shape[0], batchSize: min(size, rows.shape[0]), seed: seed)
        return { step in try sampler.batch(forStep: step, rows: rows, labels: labels) }
    }
}
