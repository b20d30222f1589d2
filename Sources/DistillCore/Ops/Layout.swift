import CKernels

// Reshaping (free), first-axis slicing (a view), and the layout changes that materialize a
// new tensor through the strided-copy kernel: permute, slice along any axis, concat, stack,
// broadcast.

extension Tensor {
    /// The same elements under a new shape with the same count; one dim may be -1 (inferred).
    public func reshaped(_ newShape: [Int]) throws -> Tensor {
        var s = newShape
        let unknown = s.indices.filter { s[$0] == -1 }
        guard unknown.count <= 1, !s.contains(where: { $0 < -1 }) else {
            throw TensorError.invalidShape(operation: "reshaped", shape: newShape, expected: "sizes >= 0 with at most one -1")
        }
        if let u = unknown.first {
            let known = Shape.count(s.enumerated().filter { $0.offset != u }.map { $0.element })
            guard known > 0, count % known == 0 else {
                throw TensorError.shapeMismatch(operation: "reshaped", lhs: shape, rhs: newShape, expected: "a shape with \(count) elements")
            }
            s[u] = count / known
        }
        guard Shape.count(s) == count else {
            throw TensorError.shapeMismatch(operation: "reshaped", lhs: shape, rhs: newShape, expected: "a shape with \(count) elements")
        }
        let x = self
        let y = Tensor(shape: s, storage: storage, offset: offset)
        return y.recorded(on: Tensor.tape(self)) { g in
            if let n = x.liveNode { ck_axpy(n.gradPointer(), g.pointer, Int64(g.count), 1) }
        }
    }

    /// Collapses dims `from...` into one.
    package func flattened(from axis: Int = 0) throws -> Tensor {
        let a = try Shape.axis(axis, rank: rank, "flattened")
        return try reshaped(Array(shape[..<a]) + [Shape.count(Array(shape[a...]))])
    }

    /// Inserts a size-1 dim at `axis` (0...rank; negative counts from the end).
    package func expandingDims(at axis: Int) throws -> Tensor {
        let a = axis < 0 ? axis + rank + 1 : axis
        guard a >= 0, a <= rank else {
            throw TensorError.outOfRange(operation: "expandingDims", value: axis, validRange: "-\(rank + 1)...\(rank)")
        }
        var s = shape
        s.insert(1, at: a)
        return try reshaped(s)
    }

    /// Removes size-1 dims (all, or those listed).
    package func squeezed(axes: [Int]? = nil) throws -> Tensor {
        let drop = try Set((axes ?? shape.indices.filter { shape[$0] == 1 }).map { try Shape.axis($0, rank: rank, "squeezed") })
        for a in drop where shape[a] != 1 {
            throw TensorError.invalidShape(operation: "squeezed", shape: shape, expected: "size 1 on axis \(a)")
        }
        return try reshaped(shape.enumerated().filter { !drop.contains($0.offset) }.map { $0.element })
    }

    /// Rows `range` of the first axis, as a view sharing storage.
    public func slice(_ range: Range<Int>) throws -> Tensor {
        guard rank >= 1, range.lowerBound >= 0, range.upperBound <= shape[0] else {
            throw TensorError.outOfRange(operation: "slice", value: range.upperBound,
                                         validRange: "a range within 0..<\(rank >= 1 ? shape[0] : 0)")
        }
        let rowSize = count / Swift.max(shape[0], 1)
        var s = shape
        s[0] = range.count
        let x = self
        let y = Tensor(shape: s, storage: storage, offset: offset + range.lowerBound * rowSize)
        return y.recorded(on: Tensor.tape(self)) { g in
            if let n = x.liveNode { ck_axpy(n.gradPointer() + range.lowerBound * rowSize, g.pointer, Int64(g.count), 1) }
        }
    }

    /// Row `index` of the first axis (the first axis removed), as a view.
    package func row(_ index: Int) throws -> Tensor {
        try slice(index..<(index + 1)).reshaped(Array(shape.dropFirst()))
    }

    /// Elements `range` along `axis`, copied into a new tensor.
    package func slice(_ range: Range<Int>, axis: Int) throws -> Tensor {
        let a = try Shape.axis(axis, rank: rank, "slice(_:axis:)")
        if a == 0 { return try slice(range) }
        guard range.lowerBound >= 0, range.upperBound <= shape[a] else {
            throw TensorError.outOfRange(operation: "slice(_:axis:)", value: range.upperBound,
                                         validRange: "a range within 0..<\(shape[a]) on axis \(a)")
        }
        var s = shape
        s[a] = range.count
        let srcStrides = Shape.strides(shape)
        let start = range.lowerBound * srcStrides[a]
        let y = Tensor(uninitialized: s)
        try Tensor.stridedCopy(y.pointer, Shape.strides(s), pointer + start, srcStrides, s, accumulate: false)
        let x = self
        return y.recorded(on: Tensor.tape(self)) { g in
            if let n = x.liveNode {
                try Tensor.stridedCopy(n.gradPointer() + start, srcStrides, g.pointer, Shape.strides(s), s, accumulate: true)
            }
        }
    }

    /// Dims reordered: result dim i is input dim `permutation[i]`.
    package func permuted(_ permutation: [Int]) throws -> Tensor {
        guard permutation.count == rank, Set(permutation) == Set(0..<rank) else {
            throw TensorError.invalidArgument(operation: "permuted", message: "\(permutation) is not a permutation of 0..<\(rank)")
        }
        let inStrides = Shape.strides(shape)
        let outShape = permutation.map { shape[$0] }
        let readStrides = permutation.map { inStrides[$0] }
        let y = Tensor(uninitialized: outShape)
        try Tensor.stridedCopy(y.pointer, Shape.strides(outShape), pointer, readStrides, outShape, accumulate: false)
        let x = self
        return y.recorded(on: Tensor.tape(self)) { g in
            if let n = x.liveNode {
                try Tensor.stridedCopy(n.gradPointer(), readStrides, g.pointer, Shape.strides(outShape), outShape, accumulate: true)
            }
        }
    }

    /// The last two dims swapped (a rank-1 tensor is returned as is).
    package func transposed() throws -> Tensor {
        guard rank >= 2 else { return self }
        var p = Array(0..<rank)
        p.swapAt(rank - 1, rank - 2)
        return try permuted(p)
    }

    /// This tensor broadcast to `newShape` (materialized).
    package func broadcast(to newShape: [Int]) throws -> Tensor {
        let out = try Shape.broadcast(shape, newShape, "broadcast(to:)")
        guard out == newShape else {
            throw TensorError.shapeMismatch(operation: "broadcast(to:)", lhs: shape, rhs: newShape,
                                            expected: "a target shape that contains this shape")
        }
        let y = Tensor(uninitialized: newShape)
        try Tensor.stridedCopy(y.pointer, Shape.strides(newShape), pointer, Shape.broadcastStrides(shape, to: newShape), newShape,
                           accumulate: false)
        let x = self
        return y.recorded(on: Tensor.tape(self)) { g in
            if let n = x.liveNode { try Tensor.accumulateReduced(g, into: n.gradPointer(), shape: x.shape, alpha: 1) }
        }
    }

    /// Tensors joined along `axis`; all other dims must agree.
    public static func concat(_ tensors: [Tensor], axis: Int = 0) throws -> Tensor {
        guard let first = tensors.first else {
            throw TensorError.invalidArgument(operation: "concat", message: "needs at least one tensor")
        }
        let a = try Shape.axis(axis, rank: first.rank, "concat")
        for t in tensors where t.rank != first.rank || t.shape.enumerated().contains(where: { $0.offset != a && $0.element != first.shape[$0.offset] }) {
            throw TensorError.shapeMismatch(operation: "concat", lhs: first.shape, rhs: t.shape, expected: "equal sizes except on axis \(a)")
        }
        var outShape = first.shape
        outShape[a] = tensors.reduce(0) { $0 + $1.shape[a] }
        let outStrides = Shape.strides(outShape)
        let y = Tensor(uninitialized: outShape)
        var starts: [Int] = []
        var at = 0
        for t in tensors {
            starts.append(at * outStrides[a])
            try stridedCopy(y.pointer + at * outStrides[a], outStrides, t.pointer, Shape.strides(t.shape), t.shape, accumulate: false)
            at += t.shape[a]
        }
        return y.recorded(on: Tensor.tape(tensors)) { g in
            for (t, s) in zip(tensors, starts) {
                if let n = t.liveNode {
                    try stridedCopy(n.gradPointer(), Shape.strides(t.shape), g.pointer + s, outStrides, t.shape, accumulate: true)
                }
            }
        }
    }

    /// Tensors of one shape stacked along a new axis.
    package static func stack(_ tensors: [Tensor], axis: Int = 0) throws -> Tensor {
        guard let first = tensors.first else {
            throw TensorError.invalidArgument(operation: "stack", message: "needs at least one tensor")
        }
        for t in tensors where t.shape != first.shape {
            throw TensorError.shapeMismatch(operation: "stack", lhs: first.shape, rhs: t.shape, expected: "equal shapes")
        }
        return try concat(tensors.map { try $0.expandingDims(at: axis) }, axis: axis)
    }

    /// The strided-copy kernel over Swift arrays (rank collapsed to the kernel's limit).
    static func stridedCopy(_ y: UnsafeMutablePointer<Float>, _ ys: [Int], _ x: UnsafePointer<Float>, _ xs: [Int],
                            _ shape: [Int], accumulate: Bool) throws {
        let (sh, st) = Shape.collapse(shape, [ys, xs])
        guard sh.count <= maxKernelRank else {
            throw TensorError.invalidShape(operation: "layout copy", shape: shape,
                                           expected: "at most \(maxKernelRank) dims after merging contiguous ones")
        }
        ck_strided_copy(y, st[0].map(Int64.init), x, st[1].map(Int64.init), sh.map(Int64.init), Int32(sh.count), accumulate ? 1 : 0)
    }
}
