/// Errors of the gradient functions.
package enum AutodiffError: Error, CustomStringConvertible {
    /// The differentiated function returned more than one element.
    case nonScalarOutput(shape: [Int])

    package var description: String {
        switch self {
        case let .nonScalarOutput(shape):
            return "gradient: the function returned shape \(shape); expected a single element (a scalar loss)"
        }
    }
}

/// Runs `f` with `leaves` traced on a fresh tape, then its backward pass. The core of every
/// gradient function; the tape is released before returning.
func differentiate(_ leaves: [Tensor], _ f: ([Tensor]) throws -> Tensor) throws -> (value: Tensor, gradients: [Tensor]) {
    let tape = Tape()
    defer { tape.close() }
    let leafNodes = leaves.map { GradNode(tape: tape, shape: $0.shape) }
    let traced = zip(leaves, leafNodes).map { leaf, n -> Tensor in
        var t = leaf
        t.node = n
        return t
    }
    let out = try GradientMode.$isDisabled.withValue(false) { try f(traced) }
    guard out.count == 1 else { throw AutodiffError.nonScalarOutput(shape: out.shape) }
    if let root = out.liveNode, root.tape === tape {
        root.grad = try Tensor.ones(root.shape)
        let leafIDs = Set(leafNodes.map { ObjectIdentifier($0) })
        for n in tape.nodes.reversed() {
            guard let g = n.grad, let rule = n.backward else { continue }
            try rule(g)
            if !leafIDs.contains(ObjectIdentifier(n)) { n.grad = nil }   // free as we go
        }
    }
    let grads = zip(leafNodes, leaves).map { n, leaf in n.grad ?? Tensor.zeros(like: leaf) }
    return (out.detached(), grads)
}

/// The value of a scalar function and its gradients with respect to each input.
///
/// ```swift
/// let (loss, grads) = try valueWithGradient(at: [x, w]) { v in try (v[0] * v[1]).sum() }
/// ```
package func valueWithGradient(at inputs: [Tensor], _ f: ([Tensor]) throws -> Tensor) throws -> (value: Tensor, gradients: [Tensor]) {
    try differentiate(inputs.map { $0.detached() }, f)
}

/// The value of a scalar function of one tensor and its gradient.
public func valueWithGradient(at x: Tensor, _ f: (Tensor) throws -> Tensor) throws -> (value: Tensor, gradient: Tensor) {
    let (v, g) = try differentiate([x.detached()]) { try f($0[0]) }
    return (v, g[0])
}

/// Evaluates the scalar loss `f` and stores d(loss)/d(parameter) in each trainable
/// parameter's ``Parameter/grad`` (added to the existing gradient when `accumulate` is true,
/// e.g. for gradient accumulation). Frozen parameters are treated as constants. Returns the loss.
@discardableResult
package func valueWithGradient(of parameters: [Parameter], accumulate: Bool = false,
                              _ f: () throws -> Tensor) throws -> Float {
    let trainable = parameters.filter { $0.isTrainable }
    let originals = trainable.map { $0.value }
    defer { for (p, v) in zip(trainable, originals) { p.value = v } }
    let (value, grads) = try differentiate(originals.map { $0.detached() }) { traced in
        for (p, t) in zip(trainable, traced) { p.value = t }
        return try f()
    }
    for (p, g) in zip(trainable, grads) {
        if accumulate, var old = p.grad {
            try old.addInPlace(g)
            p.grad = old
        } else {
            p.grad = g
        }
    }
    return try value.item()
}
