import CKernels

// 2× resampling of NCHW images: the U-Net's upsampling and (parameter-free) downsampling.

extension Tensor {
    /// Nearest-neighbour 2× upsampling: self (N, C, H, W) → (N, C, 2H, 2W), each pixel copied to
    /// a 2×2 block (the U-Net's expanding path, Ronneberger et al. 2015; followed by a 3×3
    /// convolution in the diffusion U-Net, Ho et al. 2020).
    ///
    /// - Throws: ``TensorError`` unless the input is rank 4.
    package func upsampleNearest2x() throws -> Tensor {
        guard rank == 4 else {
            throw TensorError.invalidShape(operation: "upsampleNearest2x", shape: shape, expected: "an NCHW image batch (rank 4)")
        }
        let (n, c, h, w) = (shape[0], shape[1], shape[2], shape[3])
        let y = Tensor(uninitialized: [n, c, 2 * h, 2 * w])
        ck_upsample_nearest2x_forward(y.pointer, pointer, Int64(n), Int64(c), Int64(h), Int64(w))
        // The backward rule needs the input's gradient node, not its values.
        guard let tape = Tensor.tape(self), let node = liveNode else { return y }
        return y.recorded(on: tape) { g in
            ck_upsample_nearest2x_backward(node.gradPointer(), g.pointer, Int64(n), Int64(c), Int64(h), Int64(w))
        }
    }

    /// 2×2 average pooling with stride 2: self (N, C, H, W) → (N, C, H/2, W/2), each output the
    /// mean of a 2×2 block (an odd last row or column is dropped, as PyTorch's `avg_pool2d(2)`).
    ///
    /// - Throws: ``TensorError`` unless the input is rank 4 with H, W >= 2.
    package func averagePool2x() throws -> Tensor {
        guard rank == 4, shape[2] >= 2, shape[3] >= 2 else {
            throw TensorError.invalidShape(operation: "averagePool2x", shape: shape,
                                           expected: "an NCHW image batch (rank 4) at least 2×2 pixels")
        }
        let (n, c, h, w) = (shape[0], shape[1], shape[2], shape[3])
        let y = Tensor(uninitialized: [n, c, h / 2, w / 2])
        ck_avgpool2x_forward(y.pointer, pointer, Int64(n), Int64(c), Int64(h), Int64(w))
        guard let tape = Tensor.tape(self), let node = liveNode else { return y }
        return y.recorded(on: tape) { g in
            ck_avgpool2x_backward(node.gradPointer(), g.pointer, Int64(n), Int64(c), Int64(h), Int64(w))
        }
    }
}

extension Tensor {
    /// Tensors joined along the channel axis (axis 1): (N, C₀, ...), (N, C₁, ...), … → (N, ΣCᵢ, ...),
    /// the U-Net's skip connections (Ronneberger et al. 2015). The same values as
    /// `concat(_, axis: 1)`, but the backward rule keeps only the inputs' gradient nodes — not
    /// their values — and writes a fresh gradient buffer instead of zeroing and adding to it.
    ///
    /// - Throws: ``TensorError`` for an empty list, a rank below 2, or sizes that differ outside
    ///   axis 1.
    package static func concatChannels(_ tensors: [Tensor]) throws -> Tensor {
        guard let first = tensors.first, first.rank >= 2 else {
            throw TensorError.invalidArgument(operation: "concatChannels", message: "needs at least one tensor of rank >= 2")
        }
        let inner = Array(first.shape.dropFirst(2)), n = first.shape[0]
        for t in tensors where t.rank != first.rank || t.shape[0] != n || Array(t.shape.dropFirst(2)) != inner {
            throw TensorError.shapeMismatch(operation: "concatChannels", lhs: first.shape, rhs: t.shape,
                                            expected: "equal sizes except on axis 1")
        }
        let plane = Shape.count(inner)
        let total = tensors.reduce(0) { $0 + $1.shape[1] }
        var outShape = first.shape
        outShape[1] = total
        let y = Tensor(uninitialized: outShape)
        var pieces: [(node: GradNode?, offset: Int, width: Int)] = []
        var at = 0
        for t in tensors {
            let width = t.shape[1] * plane
            // (n, width) rows into rows of stride total·plane.
            try stridedCopy(y.pointer + at, [total * plane, 1], t.pointer, [width, 1], [n, width], accumulate: false)
            pieces.append((t.liveNode, at, width))
            at += width
        }
        guard let tape = Tensor.tape(tensors) else { return y }
        return y.recorded(on: tape) { g in
            for p in pieces {
                guard let node = p.node else { continue }
                let (dst, fresh) = node.gradBuffer()
                try stridedCopy(dst, [p.width, 1], g.pointer + p.offset, [total * plane, 1], [n, p.width], accumulate: !fresh)
            }
        }
    }
}
