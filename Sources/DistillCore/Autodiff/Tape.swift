import CKernels

/// The record of one gradient computation: the traced tensors in creation order, each with
/// the rule that sends its gradient back to its inputs. Created by the gradient functions,
/// released when they return.
final class Tape {
    var nodes: [GradNode] = []
    /// False once the backward pass ran or the scope ended: tensors whose node belongs to a
    /// closed tape count as constants.
    var isOpen = true

    /// Empties the tape; breaks the node → tape → node cycles.
    func close() {
        isOpen = false
        for n in nodes { n.backward = nil; n.grad = nil }
        nodes.removeAll()
    }
}

/// A traced tensor's place on the tape: its gradient buffer and its backward rule.
final class GradNode {
    let tape: Tape
    let shape: [Int]
    /// The accumulated gradient (allocated zeroed on first use).
    var grad: Tensor?
    /// Sends `grad` to the inputs (accumulating into their nodes). Nil for leaves.
    var backward: ((Tensor) throws -> Void)?

    init(tape: Tape, shape: [Int]) {
        self.tape = tape
        self.shape = shape
    }

    /// The gradient buffer, created zeroed when first asked for.
    func gradPointer() -> UnsafeMutablePointer<Float> {
        if grad == nil { grad = Tensor.zeros(like: Tensor(uninitialized: shape)) }
        return grad!.pointer
    }

    /// The gradient buffer for a kernel that can either add to it or overwrite it: when
    /// `fresh` is true the buffer was just created, uninitialized, and the caller must write
    /// every element (saving the zeroing pass).
    func gradBuffer() -> (pointer: UnsafeMutablePointer<Float>, fresh: Bool) {
        if let g = grad { return (g.pointer, false) }
        grad = Tensor(uninitialized: shape)
        return (grad!.pointer, true)
    }
}

/// Whether operations record on gradient tapes in the current task (see ``withoutGradient(_:)``).
enum GradientMode {
    @TaskLocal static var isDisabled = false
}

/// Runs `body` without recording any operation for differentiation, even on traced tensors:
/// its results are constants. Samplers and teachers run this way.
public func withoutGradient<R>(_ body: () throws -> R) rethrows -> R {
    try GradientMode.$isDisabled.withValue(true) { try body() }
}

extension Tensor {
    /// The open tape this tensor is traced on, if any.
    @inline(__always)
    var liveNode: GradNode? {
        guard let n = node, n.tape.isOpen else { return nil }
        return n
    }

    /// Whether this tensor is being traced for differentiation.
    package var isTraced: Bool { liveNode != nil }

    /// This tensor's value, cut from any gradient tape (stop-gradient).
    public func detached() -> Tensor {
        var t = self
        t.node = nil
        return t
    }

    /// The tape an operation on these inputs must record on, or nil (nothing traced, or
    /// gradients disabled).
    static func tape(_ a: Tensor, _ b: Tensor? = nil, _ c: Tensor? = nil) -> Tape? {
        guard let n = a.liveNode ?? b?.liveNode ?? c?.liveNode else { return nil }
        if GradientMode.isDisabled { return nil }
        return n.tape
    }

    /// The tape for an operation on any number of inputs.
    static func tape(_ inputs: [Tensor]) -> Tape? {
        guard let n = inputs.lazy.compactMap({ $0.liveNode }).first else { return nil }
        if GradientMode.isDisabled { return nil }
        return n.tape
    }

    /// This tensor as the traced output of an operation, with its backward rule.
    func recorded(on tape: Tape?, _ backward: @escaping (Tensor) throws -> Void) -> Tensor {
        guard let tape else { return self }
        let n = GradNode(tape: tape, shape: shape)
        n.backward = backward
        tape.nodes.append(n)
        var t = self
        t.node = n
        return t
    }
}
