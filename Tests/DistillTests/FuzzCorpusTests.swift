import Distill
import Foundation
import Testing

/// The fuzz regression corpus (Tests/Fuzz/corpus, written by Tests/Fuzz/make_corpus.py)
/// through the file loaders: every `ok-*` file loads, every `bad-*` file — crafted hostile
/// inputs, those of issue 17 among them, and inputs the fuzzer found — throws a typed
/// error on one line that starts with the file's path.
@Suite struct FuzzCorpusTests {
    static let corpus = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("Fuzz/corpus").path

    /// Loads a file with the loader its folder names.
    static func load(_ loader: String, _ path: String) throws {
        switch loader {
        case "npy": _ = try NPY.read(path)
        case "safetensors": _ = try SafeTensors.read(path)
        case "checkpoint": _ = try Checkpoint.read(from: path)
        case "idx": _ = try IDX.read(path)
        case "mixture":
            // A loaded mixture gives finite densities and scores (no silent NaN).
            let m = try GaussianMixture.load(path)
            let x = (0..<(2 * m.dimension)).map { Double($0) - 3 }
            let (den, score) = m.denoiserAndScore(x, alpha: 0.6, sigma: 0.8)
            let all = m.logDensity(x) + den + score
            #expect(all.allSatisfy { $0.isFinite }, "\(path)")
        default: Issue.record("no loader for the corpus folder \(loader)")
        }
    }

    @Test(arguments: ["npy", "safetensors", "checkpoint", "idx", "mixture"])
    func everyCorpusFileLoadsOrFailsCleanly(_ loader: String) throws {
        let dir = Self.corpus + "/" + loader
        let files = try FileManager.default.contentsOfDirectory(atPath: dir).sorted()
        #expect(files.contains { $0.hasPrefix("ok-") } && files.contains { $0.hasPrefix("bad-") }, "\(dir) needs both kinds")
        for file in files {
            let path = dir + "/" + file
            let message: String?
            do {
                try Self.load(loader, path)
                message = nil
            } catch let e as IOError {
                message = e.description
            } catch let e as GaussianMixtureError {
                message = e.description
            } catch {
                Issue.record("\(file): an untyped error \(type(of: error)): \(error)")
                continue
            }
            if file.hasPrefix("ok-") {
                #expect(message == nil, "\(file) should load: \(message ?? "")")
            } else if let message {
                #expect(message.hasPrefix(path + ": ") && !message.contains("\n"), "\(file): \(message)")
            } else {
                Issue.record("\(file) should not load")
            }
        }
    }
}
