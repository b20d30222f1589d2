/// A fully connected layer y = activation(x Wᵀ + b), run as one fused kernel.
package final class Linear: Module {
    /// (out, in).
    package let weight: Parameter
    /// (out), or nil.
    package let bias: Parameter?
    /// Applied inside the fused kernel.
    package var activation: Activation

    /// Weights and bias drawn U(±1/√in) from `rng` (PyTorch's default).
    package init(_ inFeatures: Int, _ outFeatures: Int, bias: Bool = true, activation: Activation = .identity,
                rng: inout Philox) throws {
        guard inFeatures > 0, outFeatures > 0 else {
            throw TensorError.invalidArgument(operation: "Linear", message: "sizes \(inFeatures) → \(outFeatures) must be positive")
        }
        weight = Parameter(try Initialization.uniformFanIn([outFeatures, inFeatures], fanIn: inFeatures, rng: &rng))
        self.bias = bias ? Parameter(try Initialization.uniformFanIn([outFeatures], fanIn: inFeatures, rng: &rng)) : nil
        self.activation = activation
    }

    package var inFeatures: Int { weight.value.shape[1] }
    package var outFeatures: Int { weight.value.shape[0] }

    package func callAsFunction(_ x: Tensor) throws -> Tensor {
        try x.linear(weight: weight.value, bias: bias?.value, activation: activation)
    }

    package func visitParameters(_ visit: (String, Parameter) throws -> Void) rethrows {
        try visit("weight", weight)
        if let bias { try visit("bias", bias) }
    }
}

/// Layer normalization over the last dim with a learned scale and shift (Ba et al. 2016).
package final class LayerNorm: Module {
    package let gamma: Parameter
    package let beta: Parameter
    package let eps: Float

    package init(_ dim: Int, eps: Float = 1e-5) throws {
        gamma = Parameter(try Tensor.ones([dim]))
        beta = Parameter(try Tensor.zeros([dim]))
        self.eps = eps
    }

    package func callAsFunction(_ x: Tensor) throws -> Tensor {
        try x.layerNorm(gamma: gamma.value, beta: beta.value, eps: eps)
    }

    package func visitParameters(_ visit: (String, Parameter) throws -> Void) rethrows {
        try visit("weight", gamma)
        try visit("bias", beta)
    }
}
