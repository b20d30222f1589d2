import CKernels

extension Tensor {
    /// Multi-head scaled dot-product self-attention (Vaswani et al. 2017), fused:
    /// q, k, v (B, H, T, D) → o (B, H, T, D) with
    ///
    ///     o_i = Σ_j softmax_j(scale · q_i·k_j) v_j,     scale = 1/√D by default (no mask).
    ///
    /// The kernel is tiled as FlashAttention (Dao et al. 2022): blocks of 64 queries against
    /// blocks of 64 keys with an online softmax, so the T×T score matrix is never stored; the
    /// backward pass recomputes the scores from the per-row log-sum-exp kept by the forward.
    /// Memory beyond the inputs and output is O(B·H·T); the backward rule keeps q, k, v and o alive
    /// only until it runs. Differentiable in q, k and v (which may
    /// be the same tensor). Results are bit-identical for any thread count.
    ///
    /// - Throws: ``TensorError`` unless q, k and v are rank 4 with one shape, or when `scale`
    ///   is not finite.
    package static func attention(q: Tensor, k: Tensor, v: Tensor, scale: Float? = nil) throws -> Tensor {
        guard q.rank == 4 else {
            throw TensorError.invalidShape(operation: "attention", shape: q.shape, expected: "q of shape (batch, heads, tokens, headDim)")
        }
        for t in [k, v] where t.shape != q.shape {
            throw TensorError.shapeMismatch(operation: "attention", lhs: q.shape, rhs: t.shape, expected: "q, k and v of one shape (B, H, T, D)")
        }
        let (b, h, t, d) = (q.shape[0], q.shape[1], q.shape[2], q.shape[3])
        let s = scale ?? 1 / Float(Swift.max(d, 1)).squareRoot()
        guard s.isFinite else {
            throw TensorError.invalidArgument(operation: "attention", message: "scale \(s) must be finite")
        }
        let o = Tensor(uninitialized: q.shape)
        let tape = Tensor.tape(q, k, v)
        let lse = tape == nil ? nil : Tensor(uninitialized: [b, h, t])
        ck_attention_forward(o.pointer, lse?.pointer, q.pointer, k.pointer, v.pointer, Int64(b), Int64(h), Int64(t), Int64(d), s)
        guard tape != nil else { return o }
        let saved = SavedTensors([q, k, v, o, lse])
        return o.recorded(on: tape) { g in
            let kept = saved.take()
            let (q, k, v, o, lse) = (kept[0]!, kept[1]!, kept[2]!, kept[3]!, kept[4]!)
            // The backward kernel only adds: buffers are taken zeroed.
            let dq = q.liveNode?.gradPointer(), dk = k.liveNode?.gradPointer(), dv = v.liveNode?.gradPointer()
            withExtendedLifetime((q, k, v, o, lse)) {
                ck_attention_backward(dq, dk, dv, g.pointer, q.pointer, k.pointer, v.pointer, o.pointer, lse.pointer,
                                      Int64(b), Int64(h), Int64(t), Int64(d), s)
            }
        }
    }
}
