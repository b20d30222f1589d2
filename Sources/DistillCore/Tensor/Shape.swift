/// Shape arithmetic shared by the tensor operations.
package enum Shape {
    /// The largest size of one dimension a tensor may have (2³¹ − 1).
    package static let maxDimension = Int(Int32.max)
    /// The most dimensions a tensor may have (NumPy's limit).
    package static let maxRank = 64

    /// Number of elements of a shape (1 for a scalar's empty shape).
    ///
    /// Meant for shapes that passed ``checkedCount(_:elementSize:)`` (every tensor's
    /// shape did). It never wraps around: a product that overflows `Int` comes out as
    /// `Int.max`, a count no tensor can have, so a comparison with a real count fails.
    @inline(__always)
    package static func count(_ shape: [Int]) -> Int {
        var n = 1
        for d in shape {
            let (m, overflow) = n.multipliedReportingOverflow(by: d)
            if overflow { return shape.contains(0) ? 0 : Int.max }
            n = m
        }
        return n
    }

    /// The element count of `shape` when it is a shape a tensor may have: at most
    /// ``maxRank`` dimensions, each in 0...``maxDimension``, and the count times
    /// `elementSize` bytes fits in `Int` — counting a zero-size dimension as 1, so that
    /// no product of some of the dimensions can overflow later. Nil otherwise.
    package static func checkedCount(_ shape: [Int], elementSize: Int = MemoryLayout<Float>.stride) -> Int? {
        guard shape.count <= maxRank else { return nil }
        var count = 1, bound = elementSize
        for d in shape {
            guard d >= 0, d <= maxDimension else { return nil }
            let (b, overflow) = bound.multipliedReportingOverflow(by: max(d, 1))
            guard !overflow else { return nil }
            bound = b
            count *= d   // count * elementSize <= bound, so this cannot overflow
        }
        return count
    }

    /// What ``checkedCount(_:elementSize:)`` requires, for error messages.
    package static let validShapeDescription =
        "at most \(maxRank) dimensions of sizes 0...\(maxDimension) whose element count fits in memory"

    /// Row-major contiguous strides.
    static func strides(_ shape: [Int]) -> [Int] {
        var s = [Int](repeating: 1, count: shape.count)
        var acc = 1
        for d in stride(from: shape.count - 1, through: 0, by: -1) {
            s[d] = acc
            if d > 0 { acc *= shape[d] }   // the product of a tensor's trailing dims fits
        }
        return s
    }

    /// Throws unless `shape` is one a tensor may have (``checkedCount(_:elementSize:)``).
    static func validate(_ shape: [Int], _ op: String) throws {
        guard checkedCount(shape) != nil else {
            throw TensorError.invalidShape(operation: op, shape: shape, expected: validShapeDescription)
        }
    }

    /// NumPy broadcasting of two shapes.
    static func broadcast(_ a: [Int], _ b: [Int], _ op: String) throws -> [Int] {
        let n = max(a.count, b.count)
        var out = [Int](repeating: 1, count: n)
        for i in 0..<n {
            let da = i < n - a.count ? 1 : a[i - (n - a.count)]
            let db = i < n - b.count ? 1 : b[i - (n - b.count)]
            if da == db || db == 1 { out[i] = da } else if da == 1 { out[i] = db } else {
                throw TensorError.shapeMismatch(operation: op, lhs: a, rhs: b,
                                                expected: "sizes equal or 1 in each trailing dimension")
            }
        }
        return out
    }

    /// Strides reading a contiguous tensor of `shape` broadcast to `out` (0 on repeated dims).
    static func broadcastStrides(_ shape: [Int], to out: [Int]) -> [Int] {
        let own = strides(shape)
        let lead = out.count - shape.count
        return (0..<out.count).map { i in
            i < lead ? 0 : (shape[i - lead] == 1 && out[i] != 1 ? 0 : own[i - lead])
        }
    }

    /// Merges adjacent dims that every operand walks contiguously, dropping size-1 dims, so
    /// kernels see the fewest dims. Returns at least one dim.
    static func collapse(_ shape: [Int], _ strides: [[Int]]) -> (shape: [Int], strides: [[Int]]) {
        var outShape: [Int] = []
        var outStrides = [[Int]](repeating: [], count: strides.count)
        for d in 0..<shape.count where shape[d] != 1 {
            if let last = outShape.last,
               strides.indices.allSatisfy({ k in outStrides[k].last! == strides[k][d] * shape[d] }) {
                outShape[outShape.count - 1] = last * shape[d]
                for k in strides.indices { outStrides[k][outStrides[k].count - 1] = strides[k][d] }
            } else {
                outShape.append(shape[d])
                for k in strides.indices { outStrides[k].append(strides[k][d]) }
            }
        }
        if outShape.isEmpty {
            return ([1], strides.map { _ in [0] })
        }
        return (outShape, outStrides)
    }

    /// Normalizes a possibly negative axis for a rank.
    static func axis(_ axis: Int, rank: Int, _ op: String) throws -> Int {
        let a = axis < 0 ? axis + rank : axis
        guard a >= 0, a < max(rank, 1) else {
            throw TensorError.outOfRange(operation: op, value: axis, validRange: "-\(rank)..<\(rank)")
        }
        return a
    }
}
