import Distill
import Foundation

/// Training or reference data named on the command line.
struct DataSet {
    let name: String
    /// Items as rows (N, d): images flattened.
    let rows: Tensor
    /// Shape of one item ([d], or [C, H, W] for images).
    let itemShape: [Int]
    let labels: [Int]?
    let classCount: Int?
    /// The exact distribution, when the data are samples of a known mixture.
    let mixture: GaussianMixture?

    static let help = """
    a toy (\(ToyDataset.allCases.map(\.rawValue).joined(separator: ", "))), a mixture (\(GaussianMixture.builtInNames.joined(separator: ", ")), \
    or gmm:FILE.json), digits (the built-in 8x8 digits), idx:IMAGES[,LABELS] (MNIST-format files, .gz allowed), or npy:FILE.npy
    """

    /// Parses a data spec; `count` is the number of points drawn from procedural sources.
    static func load(_ spec: String, count: Int, seed: UInt64) throws -> DataSet {
        if let toy = ToyDataset(rawValue: spec) {
            let rows = try toy.sample(count, seed: seed)
            return DataSet(name: spec, rows: rows, itemShape: [2], labels: nil, classCount: nil, mixture: GaussianMixture(toy: toy))
        }
        if let m = try mixture(spec) {
            let (rows, comps) = try m.sample(count, seed: seed)
            return DataSet(name: spec, rows: rows, itemShape: [m.dimension], labels: comps, classCount: m.componentCount, mixture: m)
        }
        if spec == "digits" { return try images("digits", ImageDataset.digits8x8()) }
        if spec.hasPrefix("idx:") {
            let parts = spec.dropFirst(4).split(separator: ",").map(String.init)
            guard (1...2).contains(parts.count) else { throw CLIError.usage("--data idx:IMAGES[,LABELS]") }
            return try images(spec, ImageDataset.idx(images: parts[0], labels: parts.count == 2 ? parts[1] : nil))
        }
        if spec.hasPrefix("npy:") {
            let t = try NPY.read(String(spec.dropFirst(4)))
            guard t.rank >= 2, t.shape[0] > 0 else { throw CLIError.usage("\(spec.dropFirst(4)) holds shape \(t.shape); expected [N, d] or [N, C, H, W]") }
            return DataSet(name: spec, rows: try t.flattened(from: 1), itemShape: Array(t.shape.dropFirst()), labels: nil, classCount: nil, mixture: nil)
        }
        throw CLIError.usage("unknown data '\(spec)'; expected \(help)")
    }

    static func images(_ name: String, _ d: ImageDataset) throws -> DataSet {
        DataSet(name: name, rows: try d.images.flattened(from: 1), itemShape: Array(d.images.shape.dropFirst()), labels: d.labels,
                classCount: d.labels == nil ? nil : d.classCount, mixture: nil)
    }

    /// A mixture spec ("ring8", "gmm:FILE.json", ...), or nil when the spec is something else.
    static func mixture(_ spec: String) throws -> GaussianMixture? {
        if spec.hasPrefix("gmm:") { return try GaussianMixture.load(String(spec.dropFirst(4))) }
        return GaussianMixture.named(spec)
    }
}

/// A model to sample from: a checkpoint with a model card, or an exact mixture.
struct ModelSource {
    let denoiser: any Denoiser
    let process: any DiffusionProcess
    let itemShape: [Int]
    let classCount: Int?
    let nullLabel: Int?
    let mixture: GaussianMixture?
    let dataSource: String
    let isConsistency: Bool
    /// The checkpoint, when the teacher is one (not a mixture).
    var saved: SavedModel? = nil

    static func load(_ spec: String) throws -> ModelSource {
        if let m = try DataSet.mixture(spec) {
            let cond = ClassConditionalMixture(m)
            return ModelSource(denoiser: cond, process: VPLinearProcess(), itemShape: [m.dimension], classCount: m.componentCount,
                               nullLabel: cond.nullLabel, mixture: m, dataSource: spec, isConsistency: false)
        }
        let saved = try SavedModel.load(spec)
        let card = saved.card
        let consistency = card.architecture.consistencySigmaMax != nil
        return ModelSource(denoiser: saved.denoiser, process: card.process.process, itemShape: card.dataShape, classCount: card.classCount,
                           nullLabel: card.classCount, mixture: try? DataSet.mixture(card.dataSource) ?? nil, dataSource: card.dataSource,
                           isConsistency: consistency, saved: saved)
    }
}

/// Command-line usage errors (printed as one line).
enum CLIError: Error, CustomStringConvertible {
    case usage(String)
    var description: String {
        switch self { case let .usage(m): return m }
    }
}

/// Parses "256,256,256".
func parseInts(_ s: String, name: String) throws -> [Int] {
    let v = s.split(separator: ",").map { Int($0.trimmingCharacters(in: .whitespaces)) }
    guard !v.isEmpty, v.allSatisfy({ ($0 ?? 0) > 0 }) else { throw CLIError.usage("\(name) '\(s)': expected positive integers separated by commas") }
    return v.map { $0! }
}

/// Creates the folder for outputs, or fails with one line.
func makeFolder(_ path: String) {
    do { try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true) } catch {
        fail("cannot create folder '\(path)': \(error.localizedDescription)")
    }
}

/// Runs `body`, turning any thrown error into one clear line and exit code 1.
func reporting<T>(_ body: () throws -> T) -> T {
    do { return try body() } catch { fail("\(error)") }
}
