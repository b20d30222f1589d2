/// A fully connected layer y = activation(x Wᵀ + b), run as one fused kernel.
public final class Linear: Module {
    /// (out, in).
    public let weight: Parameter
    /// (out), or nil.
    public let bias: Parameter?
    /// Applied inside the fused kernel.
    public var activation: Activation

    /// Weights and bias drawn U(±1/√in) from `rng` (PyTorch's default).
    public init(_ inFeatures: Int, _ outFeatures: Int, bias: Bool = true, activation: Activation = .identity,
                rng: inout Philox) throws {
        guard inFeatures > 0, outFeatures > 0 else {
            throw TensorError.invalidArgument(operation: "Linear", message: "sizes \(inFeatures) → \(outFeatures) must be positive")
        }
        weight = Parameter(try Initialization.uniformFanIn([outFeatures, inFeatures], fanIn: inFeatures, rng: &rng))
        self.bias = bias ? Parameter(try Initialization.uniformFanIn([outFeatures], fanIn: inFeatures, rng: &rng)) : nil
        self.activation = activation
    }

    public var inFeatures: Int { weight.value.shape[1] }
    public var outFeatures: Int { weight.value.shape[0] }

    public func callAsFunction(_ x: Tensor) throws -> Tensor {
        try x.linear(weight: weight.value, bias: bias?.value, activation: activation)
    }

    public func visitParameters(_ visit: (String, Parameter) throws -> Void) rethrows {
        try visit("weight", weight)
        if let bias { try visit("bias", bias) }
    }
}

/// Layer normalization over the last dim with a learned scale and shift (Ba et al. 2016).
public final class LayerNorm: Module {
    public let gamma: Parameter
    public let beta: Parameter
    public let eps: Float

    public init(_ dim: Int, eps: Float = 1e-5) throws {
        gamma = Parameter(try Tensor.ones([dim]))
        beta = Parameter(try Tensor.zeros([dim]))
        self.eps = eps
    }

    public func callAsFunction(_ x: Tensor) throws -> Tensor {
        try x.layerNorm(gamma: gamma.value, beta: beta.value, eps: eps)
    }

    public func visitParameters(_ visit: (String, Parameter) throws -> Void) rethrows {
        try visit("weight", gamma)
        try visit("bias", beta)
    }
}
