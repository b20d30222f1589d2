import CKernels

extension Tensor {
    /// Layer normalization over the last dim (Ba, Kiros & Hinton 2016):
    /// (x - mean) / sqrt(var + eps) · gamma + beta, gamma and beta of shape [D] or nil.
    package func layerNorm(gamma: Tensor?, beta: Tensor?, eps: Float = 1e-5) throws -> Tensor {
        guard rank >= 1, let d = shape.last, d > 0 else {
            throw TensorError.invalidShape(operation: "layerNorm", shape: shape, expected: "rank >= 1 with a non-empty last dim")
        }
        for p in [gamma, beta].compactMap({ $0 }) where p.shape != [d] {
            throw TensorError.shapeMismatch(operation: "layerNorm", lhs: shape, rhs: p.shape, expected: "gamma/beta of shape [\(d)]")
        }
        let rows = count / d
        let y = Tensor(uninitialized: shape)
        let mean = Tensor(uninitialized: [rows]), rstd = Tensor(uninitialized: [rows])
        ck_layernorm_forward(y.pointer, mean.pointer, rstd.pointer, pointer, gamma?.pointer, beta?.pointer, Int64(rows), Int64(d), eps)
        let x = self
        return y.recorded(on: Tensor.tape(x, gamma, beta)) { g in
            ck_layernorm_backward(x.liveNode?.gradPointer(), gamma?.liveNode?.gradPointer(), beta?.liveNode?.gradPointer(),
                                  g.pointer, x.pointer, gamma?.pointer, mean.pointer, rstd.pointer, Int64(rows), Int64(d))
        }
    }
}
