import CKernels

extension Tensor {
    /// Group normalization (Wu & He 2018), fused with the per-sample scale and shift of the
    /// diffusion U-Net's "scale-shift norm" (Nichol & Dhariwal 2021; Dhariwal & Nichol 2021) and
    /// an activation, in one kernel pass:
    ///
    ///     x̂ = (x − μ_g) / √(σ²_g + eps)             (statistics per sample and group)
    ///     y = act((x̂·gamma + beta)·(1 + scale) + shift)
    ///
    /// self (N, C, ...) — NCHW images or any (N, C, L) — with C divisible by `groups`; `gamma`,
    /// `beta` (C) or nil (1 and 0); `scale`, `shift` one value per sample and channel, shaped
    /// (N, C) or (N, C, 1, 1), or nil (0). Differentiable in every tensor argument. The backward
    /// kernel writes fresh gradient buffers instead of zeroing and adding to them.
    ///
    /// - Throws: ``TensorError`` for an input of rank < 2, a channel count not divisible by
    ///   `groups`, or a parameter of the wrong shape.
    package func groupNorm(groups: Int, gamma: Tensor? = nil, beta: Tensor? = nil, scale: Tensor? = nil, shift: Tensor? = nil,
                          activation: Activation = .identity, eps: Float = 1e-5) throws -> Tensor {
        let (n, c) = try groupNormShape(groups: groups, gamma: gamma, beta: beta)
        for (name, t) in [("scale", scale), ("shift", shift)] {
            guard let t else { continue }
            guard t.count == n * c, t.rank >= 2, t.shape[0] == n, t.shape[1] == c, t.shape.dropFirst(2).allSatisfy({ $0 == 1 }) else {
                throw TensorError.shapeMismatch(operation: "groupNorm", lhs: shape, rhs: t.shape,
                                                expected: "\(name) of shape [\(n), \(c)] (one value per sample and channel)")
            }
        }
        return groupNormKernel(groups: groups, gamma: gamma, beta: beta, scaleShift: (scale, 0, shift, 0, c), activation: activation, eps: eps)
    }

    /// ``groupNorm(groups:gamma:beta:scale:shift:activation:eps:)`` with the scale and shift
    /// taken from one (N, 2C) tensor [scale | shift] — the output of the U-Net's time-embedding
    /// projection in ADM's residual blocks (Dhariwal & Nichol 2021) — read in place, without
    /// splitting it.
    ///
    /// - Throws: ``TensorError`` as the other form, or for `scaleShift` not of shape (N, 2C).
    package func groupNorm(groups: Int, gamma: Tensor? = nil, beta: Tensor? = nil, scaleShift: Tensor,
                          activation: Activation = .identity, eps: Float = 1e-5) throws -> Tensor {
        let (n, c) = try groupNormShape(groups: groups, gamma: gamma, beta: beta)
        guard scaleShift.shape == [n, 2 * c] else {
            throw TensorError.shapeMismatch(operation: "groupNorm", lhs: shape, rhs: scaleShift.shape,
                                            expected: "scaleShift of shape [\(n), \(2 * c)] ([scale | shift] per sample)")
        }
        return groupNormKernel(groups: groups, gamma: gamma, beta: beta, scaleShift: (scaleShift, 0, scaleShift, c, 2 * c),
                               activation: activation, eps: eps)
    }

    /// Validates the input and affine parameters; returns (N, C).
    private func groupNormShape(groups: Int, gamma: Tensor?, beta: Tensor?) throws -> (Int, Int) {
        guard rank >= 2 else {
            throw TensorError.invalidShape(operation: "groupNorm", shape: shape, expected: "(batch, channels, ...) of rank >= 2")
        }
        let c = shape[1]
        guard groups >= 1, c >= 1, c % groups == 0 else {
            throw TensorError.invalidArgument(operation: "groupNorm",
                                              message: "\(c) channels cannot be split into \(groups) groups; the group count must divide the channel count")
        }
        for (name, p) in [("gamma", gamma), ("beta", beta)] {
            if let p, p.shape != [c] {
                throw TensorError.shapeMismatch(operation: "groupNorm", lhs: shape, rhs: p.shape, expected: "\(name) of shape [\(c)]")
            }
        }
        return (shape[0], c)
    }

    /// The kernel call: scale at scaleShift.0 + offset .1, shift at .2 + offset .3, both with
    /// row stride .4.
    private func groupNormKernel(groups: Int, gamma: Tensor?, beta: Tensor?,
                                 scaleShift ss: (Tensor?, Int, Tensor?, Int, Int), activation: Activation, eps: Float) -> Tensor {
        let n = shape[0], c = shape[1], hw = count / Swift.max(n * c, 1)
        let (scaleT, scaleOff, shiftT, shiftOff, ld) = ss
        let y = Tensor(uninitialized: shape)
        let tape = Tensor.tape([self] + [gamma, beta, scaleT, shiftT].compactMap { $0 })
        let mean = Tensor(uninitialized: [n * groups]), rstd = Tensor(uninitialized: [n * groups])
        let act = activation.kernel
        ck_groupnorm_forward(y.pointer, mean.pointer, rstd.pointer, pointer, gamma?.pointer, beta?.pointer,
                             scaleT.map { $0.pointer + scaleOff }, shiftT.map { $0.pointer + shiftOff }, Int64(n), Int64(c),
                             Int64(hw), Int64(groups), Int64(ld), eps, act)
        guard tape != nil else { return y }
        let saved = SavedTensors([self, gamma, beta, scaleT, shiftT, mean, rstd])
        return y.recorded(on: tape) { g in
            let t = saved.take()
            let (x, gamma, beta, scaleT, shiftT, mean, rstd) = (t[0]!, t[1], t[2], t[3], t[4], t[5]!, t[6]!)
            // One (N, 2C) tensor for both: its buffer is fresh only for the first request, and the
            // two halves together write every element, so both flags go with that freshness.
            let sameSS = scaleT != nil && scaleT?.liveNode != nil && scaleT?.liveNode === shiftT?.liveNode && scaleOff != shiftOff
            var grads: KernelGradients
            var dscale: UnsafeMutablePointer<Float>?, dshift: UnsafeMutablePointer<Float>?
            if sameSS {
                grads = KernelGradients([(x, Int32(CK_GN_SET_DX)), (gamma, Int32(CK_GN_SET_DGAMMA)), (beta, Int32(CK_GN_SET_DBETA)),
                                         (scaleT, Int32(CK_GN_SET_DSCALE | CK_GN_SET_DSHIFT))])
                dscale = grads.pointers[3]
                dshift = grads.pointers[3].map { $0 + shiftOff }
            } else {
                grads = KernelGradients([(x, Int32(CK_GN_SET_DX)), (gamma, Int32(CK_GN_SET_DGAMMA)), (beta, Int32(CK_GN_SET_DBETA)),
                                         (scaleT, Int32(CK_GN_SET_DSCALE)), (shiftT, Int32(CK_GN_SET_DSHIFT))])
                dscale = grads.pointers[3]
                dshift = grads.pointers[4]
            }
            let ws = Tensor(uninitialized: [Int(ck_groupnorm_backward_workspace_floats(Int64(n), Int64(c), Int64(hw), Int64(groups)))])
            withExtendedLifetime((ws, mean, rstd)) {
                ck_groupnorm_backward(grads.pointers[0], grads.pointers[1], grads.pointers[2], dscale, dshift, ws.pointer, grads.flags,
                                      g.pointer, x.pointer, gamma?.pointer, beta?.pointer, scaleT.map { $0.pointer + scaleOff },
                                      shiftT.map { $0.pointer + shiftOff }, mean.pointer, rstd.pointer, Int64(n), Int64(c), Int64(hw),
                                      Int64(groups), Int64(ld), act)
            }
        }
    }
}
