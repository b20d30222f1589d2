import Distill
import Foundation
import Testing

/// The datasets shipped read-only next to the package (not needed at run time).
enum SharedData {
    static let directory: String = {
        let here = URL(fileURLWithPath: #filePath)   // …/main/Tests/DistillTests/DataTests.swift
        return here.deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("shared/data").path
    }()
    static func path(_ name: String) -> String { directory + "/" + name }
    static var available: Bool { FileManager.default.fileExists(atPath: path("digits8x8-images-idx3-ubyte.gz")) }
}

/// A fresh temporary directory, removed by `cleanup`.
func makeTemporaryDirectory() throws -> String {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("distill-data-\(UUID().uuidString)").path
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    return dir
}

@Suite struct IDXAndGzipTests {
    @Test(.enabled(if: SharedData.available, "needs ../shared/data"))
    func sharedFilesLoadWithTheirShapes() throws {
        let digits = try IDX.read(SharedData.path("digits8x8-images-idx3-ubyte.gz"))
        #expect(digits.shape == [1797, 8, 8])
        #expect(digits.values.min() == 0 && digits.values.max() == 16)
        let digitLabels = try IDX.read(SharedData.path("digits8x8-labels-idx1-ubyte.gz"))
        #expect(digitLabels.shape == [1797])
        #expect(Set(digitLabels.values) == Set((0..<10).map(Float.init)))
        let mnist = try IDX.read(SharedData.path("mnist-t10k-images-idx3-ubyte.gz"))
        #expect(mnist.shape == [10000, 28, 28])
        #expect(mnist.values.count == 10000 * 28 * 28)
        #expect(mnist.values.min() == 0 && mnist.values.max() == 255)
        let mnistLabels = try IDX.read(SharedData.path("mnist-t10k-labels-idx1-ubyte.gz"))
        #expect(mnistLabels.shape == [10000])
        // The first MNIST test label is a 7 (a well-known fact of the file).
        #expect(mnistLabels.values.first == 7)

        let dataset = try ImageDataset.idx(images: SharedData.path("mnist-t10k-images-idx3-ubyte.gz"),
                                           labels: SharedData.path("mnist-t10k-labels-idx1-ubyte.gz"))
        #expect(dataset.images.shape == [10000, 1, 28, 28])
        #expect(dataset.classCount == 10)
        #expect(dataset.labels?.count == 10000)
    }

    /// Every element type survives encode → (gzip) → file → read exactly: the chosen values
    /// are representable in each type (and in Float).
    @Test(arguments: IDX.ElementType.allCases)
    func everyElementTypeRoundTrips(_ type: IDX.ElementType) throws {
        let dir = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let values: [Float]
        switch type {
        case .unsignedByte: values = [0, 1, 127, 128, 254, 255]
        case .signedByte: values = [-128, -1, 0, 1, 100, 127]
        case .short: values = [-32768, -300, 0, 1, 300, 32767]
        case .int: values = [-2147483648, -70000, 0, 1, 70000, 16777216]
        case .float, .double: values = [-1.5, 0, 0.25, 3.0e8, -7.125e-3, 1]
        }
        let bytes = try IDX.encode(shape: [2, 3], values: values, type: type)
        #expect(bytes.count == 4 + 2 * 4 + 6 * type.size)
        for compressed in [false, true] {
            let path = dir + "/t.idx" + (compressed ? ".gz" : "")
            try FileIO.writeAtomically(path, compressed ? Gzip.compress(bytes) : bytes)
            let back = try IDX.read(path)
            #expect(back.shape == [2, 3])
            #expect(back.values == values)
        }
    }

    /// Each malformed file gives the specific IOError case, naming the file.
    @Test func malformedIDXFilesThrowClearErrors() throws {
        let dir = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let good = try IDX.encode(shape: [2, 2, 2], values: [Float](repeating: 3, count: 8), type: .unsignedByte)
        func check(_ name: String, _ bytes: [UInt8], _ matches: (IOError) -> Bool) throws {
            let path = dir + "/" + name
            try FileIO.writeAtomically(path, bytes)
            do {
                _ = try IDX.read(path)
                Issue.record("\(name): expected an error")
            } catch let error as IOError {
                #expect(matches(error), "\(name): \(error)")
                #expect(error.description.contains(path), "\(name): the message should name the file: \(error)")
            }
        }
        try check("short.idx", [0, 0]) { if case .truncated = $0 { return true }; return false }
        try check("magic.idx", [1, 0] + good.dropFirst(2)) { if case .corrupt = $0 { return true }; return false }
        try check("type.idx", [0, 0, 0x07] + good.dropFirst(3)) { if case .unsupported = $0 { return true }; return false }
        try check("rank0.idx", [0, 0, 8, 0]) { if case .corrupt = $0 { return true }; return false }
        try check("header.idx", Array(good.prefix(9))) { if case .truncated = $0 { return true }; return false }
        try check("data.idx", Array(good.dropLast())) { if case .truncated = $0 { return true }; return false }
        try check("extra.idx", good + [0]) { if case .corrupt = $0 { return true }; return false }
        let gz = try Gzip.compress(good)
        try check("cut.idx.gz", Array(gz.prefix(gz.count - 6))) { if case .truncated = $0 { return true }; return false }
        #expect(throws: IOError.self) { try IDX.read(dir + "/missing.idx") }
        #expect(throws: IOError.self) { try IDX.read(dir) }   // a directory
    }

    @Test func gzipRoundTripsAndRejectsBadStreams() throws {
        var rng = Philox(seed: 9)
        let payload = try rng.uniform([50_000], low: 0, high: 8).scalars.map { UInt8($0) }
        let gz = try Gzip.compress(payload)
        #expect(Gzip.isGzip(gz) && !Gzip.isGzip(payload))
        #expect(try Gzip.decompress(gz, path: "mem") == payload)
        // Concatenated members decode as one stream, as `gzip -d` does.
        #expect(try Gzip.decompress(gz + Gzip.compress([1, 2, 3]), path: "mem") == payload + [1, 2, 3])
        #expect(try Gzip.decompress(Gzip.compress([]), path: "mem") == [])

        func expectError(_ bytes: [UInt8], _ label: String, _ matches: (IOError) -> Bool) {
            do {
                _ = try Gzip.decompress(bytes, path: "input.gz")
                Issue.record("\(label): expected an error")
            } catch let error as IOError {
                #expect(matches(error), "\(label): \(error)")
                #expect(error.description.hasPrefix("input.gz"))
            } catch {
                Issue.record("\(label): unexpected \(error)")
            }
        }
        let isTruncated: (IOError) -> Bool = { if case .truncated = $0 { return true }; return false }
        let isCorrupt: (IOError) -> Bool = { if case .corrupt = $0 { return true }; return false }
        expectError([], "empty", isTruncated)
        for cut in [1, 10, gz.count / 2, gz.count - 1] {
            expectError(Array(gz.prefix(cut)), "cut at \(cut)", isTruncated)
        }
        var flipped = gz
        flipped[gz.count / 2] ^= 0xFF
        expectError(flipped, "flipped byte", { isCorrupt($0) || isTruncated($0) })
        var badCRC = gz
        badCRC[gz.count - 6] ^= 0x01           // inside the CRC-32 of the trailer
        expectError(badCRC, "bad checksum", isCorrupt)
        expectError(gz + [0x00, 0x01], "trailing bytes", isCorrupt)
        expectError([0x1F, 0x8B, 0x08, 0x00] + [UInt8](repeating: 0xFF, count: 20), "bad header", { isCorrupt($0) || isTruncated($0) })
        expectError(Array("not compressed at all".utf8), "not gzip", isCorrupt)
        // The output cap is enforced.
        #expect(throws: IOError.self) { try Gzip.decompress(gz, path: "mem", maximumSize: 1000) }
        #expect(throws: IOError.self) { try Gzip.compress([1], level: 10) }
    }
}

@Suite struct ImageDatasetTests {
    @Test func embeddedDigitsAreNormalizedAndLabeled() throws {
        let d = try ImageDataset.digits8x8()
        #expect(d.images.shape == [1797, 1, 8, 8])
        #expect(d.count == 1797 && d.featureCount == 64 && d.classCount == 10)
        let x = d.images.scalars
        #expect(x.min() == -1 && x.max() == 1)     // pixel values 0 and 16 both occur
        // Every value is k/16·2−1 for a whole k in 0...16.
        #expect(x.allSatisfy { v in let k = (v + 1) * 8; return k == k.rounded() })
        let counts = Dictionary(grouping: d.labels!, by: { $0 }).mapValues(\.count)
        #expect(counts.keys.sorted() == Array(0..<10))
        #expect(counts.values.allSatisfy { (174...183).contains($0) })   // the set is nearly balanced
    }

    @Test(.enabled(if: SharedData.available, "needs ../shared/data"))
    func embeddedDigitsMatchTheSharedFilesExactly() throws {
        let embedded = try ImageDataset.digits8x8()
        let fromFiles = try ImageDataset.idx(images: SharedData.path("digits8x8-images-idx3-ubyte.gz"),
                                             labels: SharedData.path("digits8x8-labels-idx1-ubyte.gz"), maxValue: 16)
        #expect(embedded.images.shape == fromFiles.images.shape)
        #expect(embedded.images.scalars == fromFiles.images.scalars)
        #expect(embedded.labels == fromFiles.labels)
        let raw = try IDX.read(SharedData.path("digits8x8-images-idx3-ubyte.gz")).values
        #expect(embedded.images.scalars == raw.map { $0 * (2 / 16) - 1 })
    }

    @Test func npyImagesInEitherLayoutAndBadInputs() throws {
        let dir = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        // (N, H, W, C) = (3, 2, 2, 2) with values v(n, h, w, c) = 8n + 4h + 2w + c.
        let nhwc = (0..<24).map(Float.init)
        try NPY.write(Tensor(shape: [3, 2, 2, 2], scalars: nhwc), to: dir + "/x.npy")
        try NPY.write(Tensor([2, 0, 1]), to: dir + "/y.npy")
        let d = try ImageDataset.npy(images: dir + "/x.npy", labels: dir + "/y.npy", maxValue: 23, layout: .channelsLast)
        #expect(d.images.shape == [3, 2, 2, 2])
        #expect(d.labels == [2, 0, 1] && d.classCount == 3)
        for n in 0..<3 { for c in 0..<2 { for h in 0..<2 { for w in 0..<2 {
            let expected = Float(8 * n + 4 * h + 2 * w + c) * (2 / 23) - 1
            #expect(try d.images.scalar(at: [n, c, h, w]) == max(-1, min(1, expected)))
        } } } }
        // Flattened square images (N, 64) become (N, 1, 8, 8).
        try NPY.write(Tensor.zeros([5, 64]), to: dir + "/flat.npy")
        #expect(try ImageDataset.npy(images: dir + "/flat.npy", labels: nil).images.shape == [5, 1, 8, 8])

        try NPY.write(Tensor.zeros([5, 10]), to: dir + "/notsquare.npy")
        #expect(throws: DatasetError.self) { try ImageDataset.npy(images: dir + "/notsquare.npy", labels: nil) }
        #expect(throws: DatasetError.labelCountMismatch(source: dir + "/x.npy", images: 3, labels: 2)) {
            try NPY.write(Tensor([0, 1]), to: dir + "/y2.npy")
            return try ImageDataset.npy(images: dir + "/x.npy", labels: dir + "/y2.npy", maxValue: 23)
        }
        try NPY.write(Tensor([0, 1.5, 2]), to: dir + "/yfrac.npy")
        #expect(throws: DatasetError.self) { try ImageDataset.npy(images: dir + "/x.npy", labels: dir + "/yfrac.npy", maxValue: 23) }
        // Pixels above maxValue are an error, not values outside [-1, 1].
        do {
            _ = try ImageDataset.npy(images: dir + "/x.npy", labels: nil, maxValue: 16)
            Issue.record("expected pixelOutOfRange")
        } catch let DatasetError.pixelOutOfRange(source, _, value, _) {
            #expect(source == dir + "/x.npy" && value == 17)
        }
        #expect(throws: DatasetError.self) { try ImageDataset.npy(images: dir + "/x.npy", labels: nil, maxValue: 0) }
        // IDX: images and labels that disagree.
        try FileIO.writeAtomically(dir + "/i.idx", IDX.encode(shape: [2, 3, 3], values: [Float](repeating: 1, count: 18), type: .unsignedByte))
        try FileIO.writeAtomically(dir + "/l.idx", IDX.encode(shape: [3], values: [0, 1, 2], type: .unsignedByte))
        #expect(throws: DatasetError.labelCountMismatch(source: dir + "/i.idx", images: 2, labels: 3)) {
            try ImageDataset.idx(images: dir + "/i.idx", labels: dir + "/l.idx")
        }
        #expect(throws: DatasetError.self) { try ImageDataset(images: Tensor.zeros([2, 4]), labels: nil) }
        #expect(throws: DatasetError.self) { try ImageDataset(images: Tensor.zeros([2, 1, 2, 2]), labels: [0, 3], classCount: 3) }
    }

    @Test func subsetsAndBatchesPickTheRightImages() throws {
        let d = try ImageDataset.digits8x8()
        let (x, y) = try d.batch([5, 0, 5, 1796])
        #expect(x.shape == [4, 1, 8, 8])
        #expect(y == [d.labels![5], d.labels![0], d.labels![5], d.labels![1796]])
        #expect(try x.row(0).scalars == d.images.row(5).scalars)
        #expect(try x.row(3).scalars == d.images.row(1796).scalars)
        let tail = try d.subset(1500..<1797)
        #expect(tail.count == 297 && tail.classCount == 10)
        #expect(try tail.images.row(0).scalars == d.images.row(1500).scalars)
        #expect(throws: TensorError.self) { try d.batch([1797]) }
    }
}

@Suite struct BatchSamplerTests {
    @Test(arguments: [(10, 5), (10, 3), (7, 16)])
    func everyIndexOncePerEpoch(count: Int, batchSize: Int) throws {
        let s = try BatchSampler(count: count, batchSize: batchSize, seed: 4)
        // The concatenated stream of 6 epochs' worth of positions.
        let steps = 6 * count / batchSize + 1
        let stream = (0..<steps).flatMap { s.indices(forStep: $0) }
        #expect((0..<steps).allSatisfy { s.indices(forStep: $0).count == batchSize })
        for e in 0..<6 {
            let epoch = Array(stream[(e * count)..<((e + 1) * count)])
            #expect(epoch.sorted() == Array(0..<count), "epoch \(e)")
            #expect(epoch == s.permutation(forEpoch: e))
        }
        // Not the identity every epoch, and epochs differ (the shuffles are real).
        let perms = (0..<6).map { s.permutation(forEpoch: $0) }
        #expect(Set(perms).count > 1)
    }

    @Test func indicesArePureFunctionsOfSeedAndStep() throws {
        let a = try BatchSampler(count: 1797, batchSize: 128, seed: 11)
        let forward = (0..<60).map { a.indices(forStep: $0) }
        // A fresh sampler (an exact resume) visiting steps out of order gives the same batches.
        let b = try BatchSampler(count: 1797, batchSize: 128, seed: 11)
        for step in [37, 3, 59, 0, 14, 14, 58, 1] { #expect(b.indices(forStep: step) == forward[step]) }
        let c = try BatchSampler(count: 1797, batchSize: 128, seed: 12)
        #expect(c.indices(forStep: 0) != forward[0])
        #expect(a.epoch(forStep: 14) == 0 && a.epoch(forStep: 15) == 1)   // 15·128 = 1920 ≥ 1797
        // Negative steps are valid (the stream continues backwards) and never crash.
        #expect(a.indices(forStep: -1) == Array(a.permutation(forEpoch: -1).suffix(128)))
        #expect(throws: TensorError.self) { try BatchSampler(count: 0, batchSize: 1, seed: 0) }
        #expect(throws: TensorError.self) { try BatchSampler(count: 5, batchSize: 0, seed: 0) }
    }

    @Test func batchesGatherImagesRowsAndLabels() throws {
        let d = try ImageDataset.digits8x8()
        let s = try BatchSampler(count: d.count, batchSize: 32, seed: 2)
        let (x, y) = try s.batch(forStep: 7, from: d)
        let idx = s.indices(forStep: 7)
        #expect(x.shape == [32, 1, 8, 8])
        #expect(y == idx.map { d.labels![$0] })
        for (k, i) in idx.enumerated() { #expect(try x.row(k).scalars == d.images.row(i).scalars) }

        let points = try ToyDataset.twoMoons.sample(100, seed: 0)
        let labels = (0..<100).map { $0 % 3 }
        let r = try BatchSampler(count: 100, batchSize: 10, seed: 3)
        let (p, l) = try r.batch(forStep: 12, rows: points, labels: labels)
        let pidx = r.indices(forStep: 12)
        #expect(p.shape == [10, 2] && l == pidx.map { $0 % 3 })
        for (k, i) in pidx.enumerated() { #expect(try p.row(k).scalars == points.row(i).scalars) }
        #expect(throws: DatasetError.self) { try r.batch(forStep: 0, rows: Tensor.zeros([99, 2])) }
        #expect(throws: DatasetError.self) { try r.batch(forStep: 0, rows: points, labels: [1]) }
        #expect(throws: DatasetError.self) { try r.batch(forStep: 0, from: d) }
    }
}

@Suite struct ToyDatasetTests {
    @Test(arguments: ToyDataset.allCases)
    func seededShapedAndBounded(_ dataset: ToyDataset) throws {
        let a = try dataset.sample(5000, seed: 21)
        #expect(a.shape == [5000, 2])
        #expect(try dataset.sample(5000, seed: 21).scalars == a.scalars)
        #expect(try dataset.sample(5000, seed: 22).scalars != a.scalars)
        let v = a.scalars
        #expect(v.allSatisfy { $0.isFinite && abs($0) < 6 })
        // "Roughly [-4, 4]": at most 0.5% of coordinates beyond 4 (Gaussian tails only).
        #expect(Double(v.filter { abs($0) > 4 }.count) <= 0.005 * Double(v.count))
        // Spread out, not collapsed: both coordinates vary.
        let xs = stride(from: 0, to: v.count, by: 2).map { v[$0] }, ys = stride(from: 1, to: v.count, by: 2).map { v[$0] }
        #expect(xs.max()! - xs.min()! > 1.5 && ys.max()! - ys.min()! > 1.5)
        #expect(ToyDataset(rawValue: dataset.rawValue) == dataset)
        #expect(try dataset.sample(0, seed: 1).shape == [0, 2])
        #expect(throws: TensorError.self) { try dataset.sample(-1, seed: 1) }
    }

    /// The two original datasets are unchanged: recomputed here with the original formulas.
    @Test func originalDatasetsAreUnchanged() throws {
        var rng = Philox(seed: 5, stream: 0x7079)
        let u = try rng.uniform([300]).scalars, z = try rng.normal([300, 2]).scalars
        let g = try ToyDataset.eightGaussians.sample(300, seed: 5).scalars
        let m = try ToyDataset.twoMoons.sample(300, seed: 5).scalars
        for i in 0..<300 {
            let a = Double(min(Int(u[i] * 8), 7)) * Double.pi / 4
            #expect(g[2 * i] == Float(2 * cos(a)) + 0.1 * z[2 * i])
            #expect(g[2 * i + 1] == Float(2 * sin(a)) + 0.1 * z[2 * i + 1])
            let upper = u[i] < 0.5
            let t = Double(upper ? u[i] * 2 : (u[i] - 0.5) * 2) * Double.pi
            let (x, y) = upper ? (cos(t), sin(t)) : (1 - cos(t), 0.5 - sin(t))
            #expect(m[2 * i] == Float(x - 0.5) * 1.6 + 0.05 * z[2 * i])
            #expect(m[2 * i + 1] == Float(y - 0.25) * 1.6 + 0.05 * z[2 * i + 1])
        }
    }

    /// Each dataset has its documented geometry.
    @Test func geometryMatchesTheDocumentation() throws {
        func points(_ d: ToyDataset) throws -> [(Double, Double)] {
            let v = try d.sample(4000, seed: 8).scalars
            return (0..<4000).map { (Double(v[2 * $0]), Double(v[2 * $0 + 1])) }
        }
        // Checkerboard: every point in a square whose column + row index is even.
        for (x, y) in try points(.checkerboard) {
            let c = Int(((x + 4) / 2).rounded(.down)), r = Int(((y + 4) / 2).rounded(.down))
            #expect((0..<4).contains(c) && (0..<4).contains(r) && (c + r) % 2 == 0, "(\(x), \(y))")
        }
        // Rings: radii within 5 noise std (0.4) of 0.75k, and all four rings used.
        var ringCounts = [0, 0, 0, 0]
        for (x, y) in try points(.rings) {
            let r = (x * x + y * y).squareRoot()
            let k = min(max(Int((r / 0.75).rounded()) - 1, 0), 3)
            #expect(abs(r - 0.75 * Double(k + 1)) < 0.4)
            ringCounts[k] += 1
        }
        #expect(ringCounts.allSatisfy { $0 > 800 })   // ≈1000 each; 800 is > 6 binomial std away
        // 25 Gaussians: every point within 6 std (0.6) of its nearest grid mean; every mean used.
        let means = try #require(ToyDataset.twentyFiveGaussians.mixtureMeans)
        #expect(means.count == 25 && ToyDataset.twentyFiveGaussians.mixtureStandardDeviation == 0.1)
        var used = Set<Int>()
        for (x, y) in try points(.twentyFiveGaussians) {
            let (k, d2) = means.enumerated().map { ($0.offset, pow($0.element[0] - x, 2) + pow($0.element[1] - y, 2)) }.min { $0.1 < $1.1 }!
            #expect(d2.squareRoot() < 0.6)
            used.insert(k)
        }
        #expect(used.count == 25)
        #expect(ToyDataset.eightGaussians.mixtureMeans?.count == 8 && ToyDataset.rings.mixtureMeans == nil)
        // Swiss roll: the noiseless radius t/5 lies in [1.5π/5, 4.5π/5]; with noise std 0.2, within ±1.
        for (x, y) in try points(.swissRoll) {
            let r = (x * x + y * y).squareRoot()
            #expect(r > 1.5 * Double.pi / 5 - 1 && r < 4.5 * Double.pi / 5 + 1)
        }
        // Pinwheel: mean radius 2·E[1 + 0.3z] = 2 (the tangential part adds ≈ 0.01).
        let radii = try points(.pinwheel).map { ($0.0 * $0.0 + $0.1 * $0.1).squareRoot() }
        #expect(abs(radii.reduce(0, +) / Double(radii.count) - 2) < 0.05)   // std of the mean 0.6/√4000 ≈ 0.01
    }
}
