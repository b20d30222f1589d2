import CKernels

/// A counter-based random stream: Philox-4x32-10 (Salmon et al., SC 2011) keyed by a seed
/// and a stream number, reading positions from an offset that advances with each draw.
///
/// Number `i` of a stream is a pure function of (seed, stream, i), so a draw gives the same
/// values whatever the thread count, and a batch drawn in pieces equals the batch drawn at
/// once. Use distinct streams for independent purposes (data, noise, dropout, ...).
public struct Philox: Sendable, Hashable, Codable {
    /// The key.
    package var seed: UInt64
    /// The stream within the key.
    package var stream: UInt64
    /// Position of the next value.
    package var offset: UInt64

    /// The generator of key `seed` on `stream`, at position `offset` (0: its first value).
    public init(seed: UInt64, stream: UInt64 = 0, offset: UInt64 = 0) {
        self.seed = seed
        self.stream = stream
        self.offset = offset
    }

    /// Moves past `n` values just drawn.
    mutating func advance(by n: Int) { offset += UInt64(n) }

    /// Standard normal values (Box-Muller) scaled to mean/std.
    public mutating func normal(_ shape: [Int], mean: Float = 0, std: Float = 1) throws -> Tensor {
        try Shape.validate(shape, "Philox.normal")
        let t = Tensor(uninitialized: shape)
        ck_random_normal(t.pointer, Int64(t.count), seed, stream, offset, mean, std)
        advance(by: t.count)
        return t
    }

    /// Uniform values in [low, high).
    public mutating func uniform(_ shape: [Int], low: Float = 0, high: Float = 1) throws -> Tensor {
        try Shape.validate(shape, "Philox.uniform")
        let t = Tensor(uninitialized: shape)
        ck_random_uniform(t.pointer, Int64(t.count), seed, stream, offset, low, high)
        advance(by: t.count)
        return t
    }

    /// A uniform integer in 0..<bound (by rejection, so unbiased).
    package mutating func nextInt(below bound: Int) -> Int {
        precondition(bound > 0, "nextInt(below:) needs a positive bound")
        let b = UInt64(bound)
        let limit = UInt64.max - UInt64.max % b
        while true {
            let v = nextUInt64()
            if v < limit { return Int(v % b) }
        }
    }

    /// 64 random bits (uses the rest of the current Philox block).
    package mutating func nextUInt64() -> UInt64 {
        var out = [UInt32](repeating: 0, count: 4)
        let block = offset >> 2
        var ctr: [UInt32] = [UInt32(truncatingIfNeeded: block), UInt32(truncatingIfNeeded: block >> 32),
                             UInt32(truncatingIfNeeded: stream), UInt32(truncatingIfNeeded: stream >> 32)]
        var key: [UInt32] = [UInt32(truncatingIfNeeded: seed), UInt32(truncatingIfNeeded: seed >> 32)]
        ck_philox4x32_10(&out, &ctr, &key)
        offset = (block + 1) << 2
        return UInt64(out[0]) | UInt64(out[1]) << 32
    }

    /// A random permutation of 0..<n (Fisher-Yates).
    package mutating func permutation(_ n: Int) -> [Int] {
        var p = Array(0..<n)
        if n > 1 {
            for i in stride(from: n - 1, to: 0, by: -1) { p.swapAt(i, nextInt(below: i + 1)) }
        }
        return p
    }
}
