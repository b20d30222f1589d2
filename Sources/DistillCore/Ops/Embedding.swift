import CKernels

extension Tensor {
    /// Fourier features of a batch of scalars: self (B) or (B, 1), frequencies (H) →
    /// (B, 2H) = [sin(t f), cos(t f)]. Differentiable in both t and the frequencies.
    package func fourierFeatures(frequencies: Tensor) throws -> Tensor {
        guard frequencies.rank == 1, rank == 1 || (rank == 2 && shape[1] == 1) else {
            throw TensorError.shapeMismatch(operation: "fourierFeatures", lhs: shape, rhs: frequencies.shape,
                                            expected: "times of shape [B] or [B, 1] and frequencies of shape [H]")
        }
        let b = shape[0], h = frequencies.count
        let y = Tensor(uninitialized: [b, 2 * h])
        ck_fourier_forward(y.pointer, pointer, frequencies.pointer, Int64(b), Int64(h))
        let t = self
        return y.recorded(on: Tensor.tape(t, frequencies)) { g in
            ck_fourier_backward(t.liveNode?.gradPointer(), frequencies.liveNode?.gradPointer(), g.pointer, t.pointer,
                                frequencies.pointer, Int64(b), Int64(h))
        }
    }

    /// Rows of this table (V, D) picked by `indices` → (B, D). Throws on an index outside 0..<V.
    package func gatherRows(_ indices: [Int]) throws -> Tensor {
        guard rank == 2 else {
            throw TensorError.invalidShape(operation: "gatherRows", shape: shape, expected: "a (V, D) table")
        }
        let v = shape[0], d = shape[1]
        if let bad = indices.first(where: { $0 < 0 || $0 >= v }) {
            throw TensorError.outOfRange(operation: "gatherRows", value: bad, validRange: "0..<\(v)")
        }
        let idx = indices.map { Int32($0) }
        let y = Tensor(uninitialized: [indices.count, d])
        idx.withUnsafeBufferPointer { ck_lookup_forward(y.pointer, pointer, $0.baseAddress, Int64(indices.count), Int64(d)) }
        let table = self
        return y.recorded(on: Tensor.tape(self)) { g in
            if let n = table.liveNode {
                idx.withUnsafeBufferPointer { ck_lookup_backward(n.gradPointer(), g.pointer, $0.baseAddress, Int64(idx.count), Int64(d)) }
            }
        }
    }
}
