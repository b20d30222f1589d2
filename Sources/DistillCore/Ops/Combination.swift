import CKernels

extension Tensor {
    /// Σₖ cₖ·tₖ (+ `noiseStd`·z, z standard normal from `noise`, which advances) in one fused
    /// kernel pass: the update step of every sampler. All terms share one shape; at most 8
    /// terms. Differentiable in the terms (the noise is a constant).
    package static func linearCombination(_ terms: [(Float, Tensor)], noiseStd: Float = 0, noise: inout Philox) throws -> Tensor {
        guard let first = terms.first, terms.count <= Int(CK_SAMPLER_MAX_INPUTS) else {
            throw TensorError.invalidArgument(operation: "linearCombination", message: "takes 1...\(CK_SAMPLER_MAX_INPUTS) terms; got \(terms.count)")
        }
        for (_, t) in terms where t.shape != first.1.shape {
            throw TensorError.shapeMismatch(operation: "linearCombination", lhs: first.1.shape, rhs: t.shape, expected: "equal shapes")
        }
        let y = Tensor(uninitialized: first.1.shape)
        var pointers = terms.map { UnsafePointer($0.1.pointer) as UnsafePointer<Float>? }
        let coeffs = terms.map { $0.0 }
        withExtendedLifetime(terms) {
            ck_sampler_combine(y.pointer, &pointers, coeffs, Int32(terms.count), noiseStd, noise.seed, noise.stream, noise.offset,
                               Int64(y.count))
        }
        if noiseStd != 0 { noise.advance(by: y.count) }
        return y.recorded(on: Tensor.tape(terms.map { $0.1 })) { g in
            for (c, t) in terms {
                if let n = t.liveNode { ck_axpy(n.gradPointer(), g.pointer, Int64(g.count), c) }
            }
        }
    }

    /// Σₖ cₖ·tₖ in one fused pass (no noise).
    package static func linearCombination(_ terms: [(Float, Tensor)]) throws -> Tensor {
        var unused = Philox(seed: 0)
        return try linearCombination(terms, noiseStd: 0, noise: &unused)
    }
}
