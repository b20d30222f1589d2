/// A 2-D convolution layer over NCHW images (as PyTorch's `nn.Conv2d` with a square kernel,
/// zero padding, no dilation or groups): y = conv(x, W) + b, run by ``Tensor/conv2d(weight:bias:stride:padding:)``.
/// The building block of the U-Net (Ronneberger et al. 2015).
package final class Conv2d: Module {
    /// (out, in, K, K).
    package let weight: Parameter
    /// (out), or nil.
    package let bias: Parameter?
    package let stride: Int
    package let padding: Int

    /// Weights and bias drawn U(±1/√fanIn), fanIn = in·K·K, from `rng` (PyTorch's default
    /// initialization). `zeroInitialized` starts weight and bias at zero instead (the "zero
    /// module" of the diffusion U-Net's last layers, Dhariwal & Nichol 2021), drawing nothing.
    ///
    /// - Throws: ``TensorError`` for non-positive channel counts or kernel size, a stride below
    ///   1 or a negative padding.
    package init(_ inChannels: Int, _ outChannels: Int, kernelSize: Int, stride: Int = 1, padding: Int = 0, bias: Bool = true,
                zeroInitialized: Bool = false, rng: inout Philox) throws {
        guard inChannels > 0, outChannels > 0, kernelSize > 0 else {
            throw TensorError.invalidArgument(operation: "Conv2d",
                                              message: "channels \(inChannels) → \(outChannels) and kernel size \(kernelSize) must be positive")
        }
        guard stride >= 1, padding >= 0 else {
            throw TensorError.invalidArgument(operation: "Conv2d", message: "stride \(stride) must be >= 1 and padding \(padding) >= 0")
        }
        let shape = [outChannels, inChannels, kernelSize, kernelSize]
        let fanIn = inChannels * kernelSize * kernelSize
        if zeroInitialized {
            weight = Parameter(try Tensor.zeros(shape))
            self.bias = bias ? Parameter(try Tensor.zeros([outChannels])) : nil
        } else {
            weight = Parameter(try Initialization.uniformFanIn(shape, fanIn: fanIn, rng: &rng))
            self.bias = bias ? Parameter(try Initialization.uniformFanIn([outChannels], fanIn: fanIn, rng: &rng)) : nil
        }
        self.stride = stride
        self.padding = padding
    }

    package var inChannels: Int { weight.value.shape[1] }
    package var outChannels: Int { weight.value.shape[0] }
    package var kernelSize: Int { weight.value.shape[2] }

    /// x (N, in, H, W) → (N, out, Ho, Wo).
    ///
    /// - Throws: ``TensorError`` when x is not NCHW with `inChannels` channels, or is smaller
    ///   than the kernel.
    package func callAsFunction(_ x: Tensor) throws -> Tensor {
        guard x.rank == 4, x.shape[1] == inChannels else {
            throw TensorError.invalidShape(operation: "Conv2d", shape: x.shape,
                                           expected: "an NCHW batch with \(inChannels) channels: [batch, \(inChannels), height, width]")
        }
        return try x.conv2d(weight: weight.value, bias: bias?.value, stride: stride, padding: padding)
    }

    /// residual + conv(x) in one op (a residual connection without a separate add).
    package func callAsFunction(_ x: Tensor, adding residual: Tensor) throws -> Tensor {
        guard x.rank == 4, x.shape[1] == inChannels else {
            throw TensorError.invalidShape(operation: "Conv2d", shape: x.shape,
                                           expected: "an NCHW batch with \(inChannels) channels: [batch, \(inChannels), height, width]")
        }
        return try x.conv2d(weight: weight.value, bias: bias?.value, stride: stride, padding: padding, residual: residual)
    }

    package func visitParameters(_ visit: (String, Parameter) throws -> Void) rethrows {
        try visit("weight", weight)
        if let bias { try visit("bias", bias) }
    }
}

/// Group normalization with a learned per-channel scale and shift (Wu & He 2018), optionally
/// followed by an activation in the same kernel pass, and optionally modulated per sample by
/// a scale and shift (the "scale-shift norm" of Nichol & Dhariwal 2021).
package final class GroupNorm: Module {
    /// (C), initialized to ones.
    package let gamma: Parameter
    /// (C), initialized to zeros.
    package let beta: Parameter
    package let groups: Int
    package let eps: Float
    /// Applied after normalization inside the kernel.
    package var activation: Activation

    /// - Throws: ``TensorError`` unless `groups` divides `channels` (both positive).
    package init(groups: Int, channels: Int, eps: Float = 1e-5, activation: Activation = .identity) throws {
        guard groups >= 1, channels >= 1, channels % groups == 0 else {
            throw TensorError.invalidArgument(operation: "GroupNorm",
                                              message: "\(channels) channels cannot be split into \(groups) groups; the group count must divide the channel count")
        }
        gamma = Parameter(try Tensor.ones([channels]))
        beta = Parameter(try Tensor.zeros([channels]))
        self.groups = groups
        self.eps = eps
        self.activation = activation
    }

    package var channels: Int { gamma.value.count }

    /// x (N, C, ...) → the same shape.
    package func callAsFunction(_ x: Tensor) throws -> Tensor {
        try checkChannels(x)
        return try x.groupNorm(groups: groups, gamma: gamma.value, beta: beta.value, activation: activation, eps: eps)
    }

    /// x (N, C, ...) with per-sample scale and shift from `scaleShift` (N, 2C) = [scale | shift]:
    /// act((x̂·gamma + beta)·(1 + scale) + shift).
    package func callAsFunction(_ x: Tensor, scaleShift: Tensor) throws -> Tensor {
        try checkChannels(x)
        return try x.groupNorm(groups: groups, gamma: gamma.value, beta: beta.value, scaleShift: scaleShift, activation: activation,
                               eps: eps)
    }

    private func checkChannels(_ x: Tensor) throws {
        guard x.rank >= 2, x.shape[1] == channels else {
            throw TensorError.invalidShape(operation: "GroupNorm", shape: x.shape, expected: "[batch, \(channels), ...]")
        }
    }

    package func visitParameters(_ visit: (String, Parameter) throws -> Void) rethrows {
        try visit("weight", gamma)
        try visit("bias", beta)
    }
}
