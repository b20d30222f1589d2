import CKernels

// Matrix products (through the pooled OpenBLAS kernels) and the fused linear layer.

/// Activations the fused linear layer (and ``Tensor/activation(_:)``) apply.
package enum Activation: String, Sendable, Codable, CaseIterable {
    case identity, relu, silu, gelu, tanh, sigmoid, softplus

    var kernel: Int32 {
        switch self {
        case .identity: return Int32(CK_ACT_NONE.rawValue)
        case .relu: return Int32(CK_ACT_RELU.rawValue)
        case .silu: return Int32(CK_ACT_SILU.rawValue)
        case .gelu: return Int32(CK_ACT_GELU.rawValue)
        case .tanh: return Int32(CK_ACT_TANH.rawValue)
        case .sigmoid: return Int32(CK_ACT_SIGMOID.rawValue)
        case .softplus: return Int32(CK_ACT_SOFTPLUS.rawValue)
        }
    }
}

extension Tensor {
    /// Matrix product. Shapes (M, K) × (K, N) → (M, N), or batched (B, M, K) × (B, K, N) →
    /// (B, M, N); a rank-2 operand is shared by every batch entry. `transposingA`/`B` use
    /// the operand's transpose (its last two dims swapped) without materializing it.
    public func matmul(_ other: Tensor, transposingA ta: Bool = false, transposingB tb: Bool = false) throws -> Tensor {
        let a = self, b = other
        guard (2...3).contains(a.rank), (2...3).contains(b.rank) else {
            throw TensorError.shapeMismatch(operation: "matmul", lhs: a.shape, rhs: b.shape, expected: "rank 2 or 3 operands")
        }
        let (ar, ac) = (a.shape[a.rank - 2], a.shape[a.rank - 1])
        let (br, bc) = (b.shape[b.rank - 2], b.shape[b.rank - 1])
        let (m, k) = ta ? (ac, ar) : (ar, ac)
        let (k2, n) = tb ? (bc, br) : (br, bc)
        let batchA = a.rank == 3 ? a.shape[0] : nil, batchB = b.rank == 3 ? b.shape[0] : nil
        guard k == k2, batchA == nil || batchB == nil || batchA == batchB else {
            throw TensorError.shapeMismatch(operation: "matmul", lhs: a.shape, rhs: b.shape,
                                            expected: "inner sizes equal (\(k) vs \(k2)) and equal batch sizes")
        }
        let batch = batchA ?? batchB
        let outShape = batch.map { [$0, m, n] } ?? [m, n]
        let y = Tensor(uninitialized: outShape)
        let sa = batchA == nil ? 0 : ar * ac, sb = batchB == nil ? 0 : br * bc
        ck_gemm_batched(ta ? 1 : 0, tb ? 1 : 0, Int64(m), Int64(n), Int64(k), 1, a.pointer, Int64(ac), Int64(sa),
                        b.pointer, Int64(bc), Int64(sb), 0, y.pointer, Int64(n), Int64(m * n), Int64(batch ?? 1))
        return y.recorded(on: Tensor.tape(a, b)) { g in
            // dA = g op(B)^T (or its transpose), dB = op(A)^T g (or its transpose); a shared
            // rank-2 operand sums its gradient over the batch, one product per entry in order.
            let nb = batch ?? 1
            // Scratch for ck_gemm's K splits; any of the four products below fits in it.
            let ws = Tensor(uninitialized: [[(k, m, n), (m, k, n), (n, k, m), (k, n, m)]
                .map { Int(ck_gemm_workspace_floats(Int64($0.0), Int64($0.1), Int64($0.2))) }.max()!])
            defer { withExtendedLifetime(ws) {} }
            if let na = a.liveNode {
                let ga = na.gradPointer()
                for i in 0..<nb {
                    let gi = g.pointer + i * m * n, bi = b.pointer + (batchB == nil ? 0 : i * sb)
                    let dst = ga + (batchA == nil ? 0 : i * sa)
                    if ta {   // dA^T... A is (k, m): dA = op(B) g^T
                        ck_gemm(tb ? 1 : 0, 1, Int64(k), Int64(m), Int64(n), 1, bi, Int64(bc), gi, Int64(n), 1, dst, Int64(ac), ws.pointer)
                    } else {  // A is (m, k): dA = g op(B)^T
                        ck_gemm(0, tb ? 0 : 1, Int64(m), Int64(k), Int64(n), 1, gi, Int64(n), bi, Int64(bc), 1, dst, Int64(ac), ws.pointer)
                    }
                }
            }
            if let nbn = b.liveNode {
                let gb = nbn.gradPointer()
                for i in 0..<nb {
                    let gi = g.pointer + i * m * n, ai = a.pointer + (batchA == nil ? 0 : i * sa)
                    let dst = gb + (batchB == nil ? 0 : i * sb)
                    if tb {   // B is (n, k): dB = g^T op(A)
                        ck_gemm(1, ta ? 1 : 0, Int64(n), Int64(k), Int64(m), 1, gi, Int64(n), ai, Int64(ac), 1, dst, Int64(bc), ws.pointer)
                    } else {  // B is (k, n): dB = op(A)^T g
                        ck_gemm(ta ? 0 : 1, 0, Int64(k), Int64(n), Int64(m), 1, ai, Int64(ac), gi, Int64(n), 1, dst, Int64(bc), ws.pointer)
                    }
                }
            }
        }
    }

    /// Fused linear layer: activation(self · weightᵀ + bias) in one kernel pass.
    /// self (..., IN), weight (OUT, IN), bias (OUT) or nil → (..., OUT).
    package func linear(weight: Tensor, bias: Tensor?, activation: Activation = .identity) throws -> Tensor {
        guard weight.rank == 2, rank >= 1, shape[rank - 1] == weight.shape[1] else {
            throw TensorError.shapeMismatch(operation: "linear", lhs: shape, rhs: weight.shape,
                                            expected: "input (..., IN) and weight (OUT, IN)")
        }
        let (inF, outF) = (weight.shape[1], weight.shape[0])
        if let bias, bias.shape != [outF] {
            throw TensorError.shapeMismatch(operation: "linear", lhs: weight.shape, rhs: bias.shape, expected: "bias of shape [\(outF)]")
        }
        let rows = count / Swift.max(inF, 1)
        var outShape = shape
        outShape[rank - 1] = outF
        let y = Tensor(uninitialized: outShape)
        let x = self
        let tape = Tensor.tape(x, weight, bias)
        let keepZ = activation != .identity && tape != nil
        let z = keepZ ? Tensor(uninitialized: outShape) : nil
        ck_linear_forward(y.pointer, z?.pointer, x.pointer, weight.pointer, bias?.pointer, Int64(rows), Int64(inF),
                          Int64(outF), activation.kernel)
        return y.recorded(on: tape) { g in
            let ws = Tensor(uninitialized: [Int(ck_linear_backward_workspace_floats(Int64(rows), Int64(inF), Int64(outF), activation.kernel))])
            var flags: Int32 = 0
            func buffer(_ t: Tensor?, _ flag: Int32) -> UnsafeMutablePointer<Float>? {
                guard let n = t?.liveNode else { return nil }
                let (p, fresh) = n.gradBuffer()
                if fresh { flags |= flag }
                return p
            }
            let dx = buffer(x, Int32(CK_LINEAR_SET_DX)), dw = buffer(weight, Int32(CK_LINEAR_SET_DW))
            let db = buffer(bias, Int32(CK_LINEAR_SET_DB))
            withExtendedLifetime(ws) {
                ck_linear_backward(dx, dw, db, ws.pointer, flags, g.pointer, z?.pointer, y.pointer, x.pointer, weight.pointer,
                                   Int64(rows), Int64(inF), Int64(outF), activation.kernel)
            }
        }
    }

    /// An activation function elementwise.
    package func activation(_ f: Activation) -> Tensor {
        if f == .identity { return self }
        let y = Tensor(uninitialized: shape)
        ck_act_forward(y.pointer, pointer, Int64(count), f.kernel)
        let x = self
        return y.recorded(on: Tensor.tape(self)) { g in
            if let n = x.liveNode { ck_act_backward(n.gradPointer(), g.pointer, x.pointer, y.pointer, Int64(g.count), f.kernel) }
        }
    }

    /// max(x, 0).
    package func relu() -> Tensor { activation(.relu) }
    /// x·sigmoid(x) (Elfwing et al. 2018; Hendrycks & Gimpel 2016).
    package func silu() -> Tensor { activation(.silu) }
    /// x·Φ(x), exact erf form (Hendrycks & Gimpel 2016).
    package func gelu() -> Tensor { activation(.gelu) }
    /// Hyperbolic tangent.
    package func tanh() -> Tensor { activation(.tanh) }
    /// 1 / (1 + e^-x).
    package func sigmoid() -> Tensor { activation(.sigmoid) }
    /// log(1 + e^x).
    package func softplus() -> Tensor { activation(.softplus) }
}
