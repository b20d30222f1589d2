import CKernels

// 2-D convolution over the im2col/GEMM kernels of ck_conv.h, and the gradient-buffer helper
// shared by the image ops whose backward kernels can either write or add their gradients.

/// Gradient buffers for one backward call of a kernel with "write instead of add" flags.
///
/// A traced input whose gradient buffer does not exist yet gets a fresh, uninitialized one
/// and its flag set, so the kernel writes it without a zeroing pass (``GradNode/gradBuffer()``).
/// When the same tape node reaches the kernel twice (the same tensor passed as two operands),
/// every buffer is taken zeroed and no flag is set: two writers of one buffer must both add.
struct KernelGradients {
    private(set) var pointers: [UnsafeMutablePointer<Float>?] = []
    private(set) var flags: Int32 = 0

    /// `inputs[i]` is an operand and its kernel flag; `pointers[i]` is its gradient buffer, or
    /// nil when it is absent or not traced.
    init(_ inputs: [(Tensor?, Int32)]) {
        let nodes = inputs.map { $0.0?.liveNode }
        let ids = nodes.compactMap { $0.map(ObjectIdentifier.init) }
        let shared = Set(ids).count != ids.count
        for (node, (_, flag)) in zip(nodes, inputs) {
            guard let node else { pointers.append(nil); continue }
            if shared {
                pointers.append(node.gradPointer())
            } else {
                let (p, fresh) = node.gradBuffer()
                if fresh { flags |= flag }
                pointers.append(p)
            }
        }
    }
}

/// Tensors a backward rule needs, handed over once when the rule runs, so that their memory is
/// released as the backward pass proceeds instead of when the tape closes (each rule runs at
/// most once per tape).
final class SavedTensors {
    private var tensors: [Tensor?]

    init(_ tensors: [Tensor?]) { self.tensors = tensors }

    /// The saved tensors, forgotten by this box.
    func take() -> [Tensor?] {
        defer { tensors = [] }
        return tensors
    }
}

extension Tensor {
    /// Copies `count` floats (in parallel on the kernel pool), or adds them when `accumulate`.
    static func copyFloats(_ dst: UnsafeMutablePointer<Float>, _ src: UnsafePointer<Float>, count: Int, accumulate: Bool) throws {
        if accumulate {
            ck_axpy(dst, src, Int64(count), 1)
        } else {
            try stridedCopy(dst, [1], src, [1], [count], accumulate: false)
        }
    }

    /// Output side length of a convolution: (in + 2·padding − kernel) / stride + 1, or 0 when the
    /// kernel does not fit the padded input.
    package static func convolutionOutputSize(_ input: Int, kernel: Int, stride: Int, padding: Int) -> Int {
        Int(ck_conv2d_out_size(Int64(input), Int64(kernel), Int64(stride), Int64(padding)))
    }

    /// 2-D convolution (cross-correlation, as PyTorch's `conv2d`), NCHW: self (N, Cin, H, W),
    /// `weight` (Cout, Cin, K, K), `bias` (Cout) or nil → (N, Cout, Ho, Wo) with
    /// Ho = (H + 2·padding − K) / stride + 1 (likewise Wo); zero padding, no dilation, no groups.
    /// With `residual` (of the output's shape) the result is residual + conv(x) + bias, in one
    /// op (the residual connection of a ResNet block, He et al. 2016, without a separate add).
    ///
    /// The kernel cuts the batch into tiles (bands of output rows or groups of whole small
    /// images), im2col's each tile into a scratch slot and multiplies it by the weights with a
    /// single-threaded GEMM per tile; no full-batch im2col is ever formed. Results are
    /// bit-identical for any thread count. The convolutional layers of the U-Net (Ronneberger
    /// et al. 2015) are built on it. The backward rule keeps the input alive only until it runs.
    ///
    /// - Throws: ``TensorError`` when the input is not rank 4, the weight is not (Cout, Cin, K, K)
    ///   with a square kernel and the input's channel count, the bias is not (Cout), the stride
    ///   is not positive, the padding is negative, the kernel does not fit the padded image, or
    ///   the residual does not have the output's shape.
    package func conv2d(weight: Tensor, bias: Tensor? = nil, stride: Int = 1, padding: Int = 0, residual: Tensor? = nil) throws -> Tensor {
        let op = "conv2d"
        guard rank == 4 else {
            throw TensorError.invalidShape(operation: op, shape: shape, expected: "an NCHW input (batch, channels, height, width)")
        }
        guard weight.rank == 4, weight.shape[2] == weight.shape[3], weight.shape[2] >= 1, weight.shape[0] >= 1 else {
            throw TensorError.invalidShape(operation: op, shape: weight.shape,
                                           expected: "a weight (outChannels, inChannels, K, K) with a square kernel")
        }
        let (n, cin, h, w) = (shape[0], shape[1], shape[2], shape[3])
        let (cout, k) = (weight.shape[0], weight.shape[2])
        guard weight.shape[1] == cin else {
            throw TensorError.shapeMismatch(operation: op, lhs: shape, rhs: weight.shape,
                                            expected: "the weight's input channels (\(weight.shape[1])) equal to the input's channels (\(cin))")
        }
        if let bias, bias.shape != [cout] {
            throw TensorError.shapeMismatch(operation: op, lhs: weight.shape, rhs: bias.shape, expected: "a bias of shape [\(cout)]")
        }
        guard stride >= 1, padding >= 0 else {
            throw TensorError.invalidArgument(operation: op, message: "stride \(stride) must be >= 1 and padding \(padding) >= 0")
        }
        let ho = Tensor.convolutionOutputSize(h, kernel: k, stride: stride, padding: padding)
        let wo = Tensor.convolutionOutputSize(w, kernel: k, stride: stride, padding: padding)
        guard ho >= 1, wo >= 1 else {
            throw TensorError.invalidShape(operation: op, shape: shape,
                                           expected: "an image of at least \(Swift.max(k - 2 * padding, 1))×\(Swift.max(k - 2 * padding, 1)) pixels for a \(k)×\(k) kernel with padding \(padding)")
        }
        if let residual, residual.shape != [n, cout, ho, wo] {
            throw TensorError.shapeMismatch(operation: op, lhs: [n, cout, ho, wo], rhs: residual.shape,
                                            expected: "a residual of the output's shape")
        }
        let sizes = (Int64(n), Int64(cin), Int64(h), Int64(w), Int64(cout), Int64(k), Int64(stride), Int64(padding))
        let y = Tensor(uninitialized: [n, cout, ho, wo])
        let ws = Tensor(uninitialized: [Int(ck_conv2d_forward_workspace_floats(sizes.0, sizes.1, sizes.2, sizes.3, sizes.4,
                                                                                sizes.5, sizes.6, sizes.7))])
        withExtendedLifetime(ws) {
            ck_conv2d_forward(y.pointer, pointer, weight.pointer, bias?.pointer, ws.pointer, sizes.0, sizes.1, sizes.2, sizes.3,
                              sizes.4, sizes.5, sizes.6, sizes.7)
        }
        if let residual { ck_axpy(y.pointer, residual.pointer, Int64(y.count), 1) }
        let tape = Tensor.tape([self, weight] + [bias, residual].compactMap { $0 })
        guard tape != nil else { return y }
        // The residual's gradient is the output's: only its node is kept, not its storage.
        let residualNode = residual?.liveNode
        let saved = SavedTensors([self, weight, bias])
        return y.recorded(on: tape) { g in
            let t = saved.take()
            let (x, weight, bias) = (t[0]!, t[1]!, t[2])
            if let node = residualNode {
                let (p, fresh) = node.gradBuffer()
                try Tensor.copyFloats(p, g.pointer, count: g.count, accumulate: !fresh)
            }
            guard x.liveNode != nil || weight.liveNode != nil || bias?.liveNode != nil else { return }
            let grads = KernelGradients([(x, Int32(CK_CONV_SET_DX)), (weight, Int32(CK_CONV_SET_DW)), (bias, Int32(CK_CONV_SET_DB))])
            let ws = Tensor(uninitialized: [Int(ck_conv2d_backward_workspace_floats(sizes.0, sizes.1, sizes.2, sizes.3, sizes.4,
                                                                                     sizes.5, sizes.6, sizes.7))])
            withExtendedLifetime(ws) {
                ck_conv2d_backward(grads.pointers[0], grads.pointers[1], grads.pointers[2], ws.pointer, grads.flags, g.pointer,
                                   x.pointer, weight.pointer, sizes.0, sizes.1, sizes.2, sizes.3, sizes.4, sizes.5, sizes.6, sizes.7)
            }
        }
    }
}
