import Synchronization

/// Deterministic shuffled mini-batches over a dataset of `count` items.
///
/// The index stream is the concatenation of one random permutation of 0..<count per epoch,
/// the permutation of epoch e drawn from `Philox(seed: seed, stream: e)`; step s takes the
/// positions s·batchSize ..< (s+1)·batchSize of that stream. So every batch is full, each
/// item appears exactly once per epoch (a batch may straddle two epochs when batchSize does
/// not divide count), and ``indices(forStep:)`` is a pure function of (seed, step): a run
/// resumed at any step sees exactly the batches an uninterrupted run would.
///
/// The last permutation used is cached, so consecutive steps cost O(batchSize).
package struct BatchSampler: Sendable {
    /// Number of items in the dataset.
    package let count: Int
    /// Items per batch.
    package let batchSize: Int
    /// The key of the shuffles.
    package let seed: UInt64
    private let cache = PermutationCache()

    /// A sampler over `count` items.
    ///
    /// - Throws: ``TensorError`` unless `count` and `batchSize` are positive.
    package init(count: Int, batchSize: Int, seed: UInt64) throws {
        guard count >= 1, batchSize >= 1 else {
            throw TensorError.invalidArgument(operation: "BatchSampler",
                                              message: "count \(count) and batchSize \(batchSize) must both be at least 1")
        }
        self.count = count
        self.batchSize = batchSize
        self.seed = seed
    }

    /// Steps per epoch: count / batchSize (not a whole number when batches straddle epochs).
    package var stepsPerEpoch: Double { Double(count) / Double(batchSize) }

    /// The order in which epoch `epoch` visits the items: a permutation of 0..<count drawn
    /// from `Philox(seed: seed, stream: epoch)` (Fisher–Yates). Negative epochs (reached by
    /// negative steps) use the stream with the same bit pattern.
    package func permutation(forEpoch epoch: Int) -> [Int] {
        permutation(stream: UInt64(bitPattern: Int64(epoch)))
    }

    func permutation(stream: UInt64) -> [Int] {
        if let hit = cache.lookup(stream) { return hit }
        var rng = Philox(seed: seed, stream: stream)
        let p = rng.permutation(count)
        cache.store(stream, p)
        return p
    }

    /// The epoch that holds the first item of step `step`.
    package func epoch(forStep step: Int) -> Int {
        let position = Int128(step) * Int128(batchSize)
        return Int(truncatingIfNeeded: floorDivide(position, Int128(count)).quotient)
    }

    /// The item indices of step `step` (0-based): batchSize indices in 0..<count.
    ///
    /// A pure function of (seed, step) — see the type's description. Negative steps continue
    /// the sequence backwards (step −1 ends epoch −1), so every integer is valid.
    package func indices(forStep step: Int) -> [Int] {
        var out: [Int] = []
        out.reserveCapacity(batchSize)
        var position = Int128(step) * Int128(batchSize)
        var remaining = batchSize
        while remaining > 0 {
            let (epoch, offset) = floorDivide(position, Int128(count))
            let perm = permutation(stream: UInt64(truncatingIfNeeded: epoch))
            let take = Swift.min(remaining, count - Int(offset))
            out.append(contentsOf: perm[Int(offset)..<(Int(offset) + take)])
            remaining -= take
            position += Int128(take)
        }
        return out
    }

    /// The images and labels of step `step`.
    ///
    /// - Throws: ``DatasetError`` when the dataset does not hold ``count`` images.
    package func batch(forStep step: Int, from dataset: ImageDataset) throws -> (images: Tensor, labels: [Int]?) {
        guard dataset.count == count else {
            throw DatasetError.invalidArgument(source: "BatchSampler",
                                               message: "the dataset has \(dataset.count) images; the sampler was made for \(count)")
        }
        return try dataset.batch(indices(forStep: step))
    }

    /// The rows (entries of the first axis) of `data` and their labels for step `step`,
    /// e.g. points (count, d) of a 2-D dataset.
    ///
    /// - Throws: ``DatasetError`` when `data` does not have ``count`` rows or `labels` is
    ///   given with another length.
    package func batch(forStep step: Int, rows data: Tensor, labels: [Int]? = nil) throws -> (rows: Tensor, labels: [Int]?) {
        guard data.rank >= 1, data.shape[0] == count else {
            throw DatasetError.invalidShape(source: "BatchSampler", shape: data.shape, expected: "\(count) rows on the first axis")
        }
        if let labels, labels.count != count {
            throw DatasetError.labelCountMismatch(source: "BatchSampler", images: count, labels: labels.count)
        }
        let idx = indices(forStep: step)
        let table = try data.reshaped([count, data.count / count])
        let rows = try table.gatherRows(idx).reshaped([idx.count] + Array(data.shape.dropFirst()))
        return (rows, labels.map { l in idx.map { l[$0] } })
    }

    /// (⌊a / b⌋, a mod b) for b > 0, the remainder in 0..<b.
    private func floorDivide(_ a: Int128, _ b: Int128) -> (quotient: Int128, remainder: Int128) {
        var q = a / b, r = a % b
        if r < 0 { q -= 1; r += b }
        return (q, r)
    }
}

/// The last permutation a sampler drew, shared by copies of the sampler.
final class PermutationCache: Sendable {
    private let entry = Mutex<(stream: UInt64, permutation: [Int])?>(nil)

    func lookup(_ stream: UInt64) -> [Int]? {
        entry.withLock { e in e.flatMap { $0.stream == stream ? $0.permutation : nil } }
    }

    func store(_ stream: UInt64, _ permutation: [Int]) {
        entry.withLock { $0 = (stream, permutation) }
    }
}
