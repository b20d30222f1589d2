import CKernels

// Sums, means, log-sum-exp and softmax over axes, with their backward rules.

extension Tensor {
    /// Views `shape` as [outer, shape[axis], inner].
    static func split(_ shape: [Int], at axis: Int) -> (outer: Int, r: Int, inner: Int) {
        (Shape.count(Array(shape[..<axis])), shape[axis], Shape.count(Array(shape[(axis + 1)...])))
    }

    /// Adds alpha * (src summed down to `shape`) into `dst`: the backward of broadcasting.
    /// `shape` must broadcast to src.shape.
    static func accumulateReduced(_ src: Tensor, into dst: UnsafeMutablePointer<Float>, shape: [Int], alpha: Float) throws {
        let padded = [Int](repeating: 1, count: src.rank - shape.count) + shape
        // Groups of adjacent dims that are all reduced or all kept (size-1 dims dropped).
        var groups: [(size: Int, reduce: Bool)] = []
        for d in 0..<src.rank where src.shape[d] != 1 {
            let reduce = padded[d] == 1
            if let last = groups.last, last.reduce == reduce {
                groups[groups.count - 1].size *= src.shape[d]
            } else {
                groups.append((src.shape[d], reduce))
            }
        }
        var cur = src
        var reduceIndices = groups.indices.filter { groups[$0].reduce }
        if reduceIndices.isEmpty {
            ck_axpy(dst, src.pointer, Int64(src.count), alpha)
            return
        }
        while let i = reduceIndices.first {
            reduceIndices.removeFirst()
            let outer = groups[..<i].reduce(1) { $0 * $1.size }
            let inner = groups[(i + 1)...].reduce(1) { $0 * $1.size }
            let r = groups[i].size
            if reduceIndices.isEmpty {
                ck_reduce_sum(dst, cur.pointer, Int64(outer), Int64(r), Int64(inner), alpha, 1)
            } else {
                let next = Tensor(uninitialized: [outer * inner])
                ck_reduce_sum(next.pointer, cur.pointer, Int64(outer), Int64(r), Int64(inner), 1, 0)
                cur = next
                groups[i].size = 1
            }
        }
    }

    /// Sum of every element (a scalar tensor).
    public func sum() -> Tensor {
        let y = Tensor(uninitialized: [])
        ck_reduce_sum(y.pointer, pointer, 1, Int64(count), 1, 1, 0)
        let x = self
        return y.recorded(on: Tensor.tape(self)) { g in
            if let n = x.liveNode {
                let gp = n.gradPointer()
                ck_affine(gp, gp, Int64(x.count), 1, g.pointer.pointee)
            }
        }
    }

    /// Mean of every element (a scalar tensor).
    public func mean() -> Tensor { sum() * (1 / Float(Swift.max(count, 1))) }

    /// Sum over `axes` (negative axes count from the end); the reduced dims are kept as size 1
    /// when `keepingDims` is true, else removed.
    public func sum(axes: [Int], keepingDims: Bool = false) throws -> Tensor {
        let norm = try Set(axes.map { try Shape.axis($0, rank: rank, "sum(axes:)") })
        let kept = shape.enumerated().map { norm.contains($0.offset) ? 1 : $0.element }
        let y = Tensor(uninitialized: kept)
        try Tensor.accumulateInto(zeroed: y, from: self)
        let outShape = keepingDims ? kept : shape.enumerated().filter { !norm.contains($0.offset) }.map { $0.element }
        let x = self
        let out = Tensor(shape: outShape, storage: y.storage)
        return out.recorded(on: Tensor.tape(self)) { g in
            guard let n = x.liveNode else { return }
            // Broadcast g (shape `kept`) back over x: dx += g.
            let (sh, st) = Shape.collapse(x.shape, [Shape.strides(x.shape), Shape.broadcastStrides(kept, to: x.shape)])
            ck_binary_forward(n.gradPointer(), n.gradPointer(), st[0].map(Int64.init), g.pointer, st[1].map(Int64.init),
                              sh.map(Int64.init), Int32(sh.count), Int32(CK_BIN_ADD.rawValue))
        }
    }

    /// Fills `y` (zeroed first) with `x` summed down to y's shape.
    static func accumulateInto(zeroed y: Tensor, from x: Tensor) throws {
        ck_fill(y.pointer, Int64(y.count), 0)
        try accumulateReduced(x, into: y.pointer, shape: y.shape, alpha: 1)
    }

    /// Mean over `axes`.
    public func mean(axes: [Int], keepingDims: Bool = false) throws -> Tensor {
        let norm = try Set(axes.map { try Shape.axis($0, rank: rank, "mean(axes:)") })
        let n = norm.reduce(1) { $0 * shape[$1] }
        return try sum(axes: axes, keepingDims: keepingDims) * (1 / Float(Swift.max(n, 1)))
    }

    /// log Σ exp over `axis`, computed stably; the axis is removed (or kept as 1).
    package func logSumExp(axis: Int, keepingDims: Bool = false) throws -> Tensor {
        let a = try Shape.axis(axis, rank: rank, "logSumExp")
        let (o, r, i) = Tensor.split(shape, at: a)
        var outShape = shape
        if keepingDims { outShape[a] = 1 } else { outShape.remove(at: a) }
        let y = Tensor(uninitialized: outShape)
        ck_logsumexp_forward(y.pointer, pointer, Int64(o), Int64(r), Int64(i))
        let x = self
        return y.recorded(on: Tensor.tape(self)) { g in
            if let n = x.liveNode {
                ck_logsumexp_backward(n.gradPointer(), g.pointer, x.pointer, y.pointer, Int64(o), Int64(r), Int64(i))
            }
        }
    }

    /// Softmax over `axis`.
    package func softmax(axis: Int = -1) throws -> Tensor {
        let a = try Shape.axis(axis, rank: rank, "softmax")
        let (o, r, i) = Tensor.split(shape, at: a)
        let y = Tensor(uninitialized: shape)
        ck_softmax_forward(y.pointer, pointer, Int64(o), Int64(r), Int64(i))
        let x = self
        return y.recorded(on: Tensor.tape(self)) { g in
            if let n = x.liveNode {
                ck_softmax_backward(n.gradPointer(), g.pointer, y.pointer, Int64(o), Int64(r), Int64(i))
            }
        }
    }

    /// Log-softmax over `axis`: x - logSumExp(x).
    package func logSoftmax(axis: Int = -1) throws -> Tensor {
        try self - logSumExp(axis: axis, keepingDims: true)
    }

    /// Maximum over `axis` (not differentiable: the result is a constant).
    package func max(axis: Int, keepingDims: Bool = false) throws -> Tensor {
        let a = try Shape.axis(axis, rank: rank, "max(axis:)")
        let (o, r, i) = Tensor.split(shape, at: a)
        guard r > 0 else {
            throw TensorError.invalidShape(operation: "max(axis:)", shape: shape, expected: "a non-empty axis \(a)")
        }
        var outShape = shape
        if keepingDims { outShape[a] = 1 } else { outShape.remove(at: a) }
        let y = Tensor(uninitialized: outShape)
        ck_reduce_max(y.pointer, pointer, Int64(o), Int64(r), Int64(i))
        return y
    }
}
