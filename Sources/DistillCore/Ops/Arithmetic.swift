import CKernels

// Elementwise arithmetic with NumPy broadcasting, scalar arithmetic and unary math, each
// with its backward rule. Broadcast inputs get their gradient summed over the repeated dims.

extension Tensor {
    /// Largest rank the broadcasting kernels take after merging dims.
    static let maxKernelRank = Int(CK_MAX_DIMS)

    static func binary(_ a: Tensor, _ b: Tensor, _ op: ck_binop, _ name: String) throws -> Tensor {
        let outShape = try Shape.broadcast(a.shape, b.shape, name)
        let (shape, strides) = Shape.collapse(outShape, [Shape.broadcastStrides(a.shape, to: outShape),
                                                         Shape.broadcastStrides(b.shape, to: outShape)])
        guard shape.count <= maxKernelRank else {
            throw TensorError.invalidShape(operation: name, shape: outShape,
                                           expected: "at most \(maxKernelRank) dims after merging contiguous ones")
        }
        let y = Tensor(uninitialized: outShape)
        ck_binary_forward(y.pointer, a.pointer, strides[0].map(Int64.init), b.pointer, strides[1].map(Int64.init),
                          shape.map(Int64.init), Int32(shape.count), Int32(op.rawValue))
        let tape = Tensor.tape(a, b)
        guard tape != nil else { return y }
        return y.recorded(on: tape) { g in
            for (x, isB) in [(a, false), (b, true)] {
                guard let n = x.liveNode else { continue }
                let st64 = strides.map { $0.map(Int64.init) }
                let sh64 = shape.map(Int64.init)
                if x.count == g.count {                     // no broadcasting: straight into the grad
                    ck_binary_backward(isB ? nil : n.gradPointer(), isB ? n.gradPointer() : nil, 1, g.pointer,
                                       a.pointer, st64[0], b.pointer, st64[1], sh64, Int32(sh64.count), Int32(op.rawValue))
                } else if op == CK_BIN_ADD || op == CK_BIN_SUB {
                    try Tensor.accumulateReduced(g, into: n.gradPointer(), shape: x.shape,
                                                 alpha: isB && op == CK_BIN_SUB ? -1 : 1)
                } else {
                    let full = Tensor(uninitialized: g.shape)
                    ck_binary_backward(isB ? nil : full.pointer, isB ? full.pointer : nil, 0, g.pointer,
                                       a.pointer, st64[0], b.pointer, st64[1], sh64, Int32(sh64.count), Int32(op.rawValue))
                    try Tensor.accumulateReduced(full, into: n.gradPointer(), shape: x.shape, alpha: 1)
                }
            }
        }
    }

    /// Elementwise sum, broadcasting.
    public static func + (a: Tensor, b: Tensor) throws -> Tensor { try binary(a, b, CK_BIN_ADD, "add") }
    /// Elementwise difference, broadcasting.
    public static func - (a: Tensor, b: Tensor) throws -> Tensor { try binary(a, b, CK_BIN_SUB, "subtract") }
    /// Elementwise product, broadcasting.
    public static func * (a: Tensor, b: Tensor) throws -> Tensor { try binary(a, b, CK_BIN_MUL, "multiply") }
    /// Elementwise quotient, broadcasting.
    public static func / (a: Tensor, b: Tensor) throws -> Tensor { try binary(a, b, CK_BIN_DIV, "divide") }

    /// Elementwise maximum, broadcasting (the gradient goes to `a` on ties).
    package static func maximum(_ a: Tensor, _ b: Tensor) throws -> Tensor { try binary(a, b, CK_BIN_MAX, "maximum") }
    /// Elementwise minimum, broadcasting (the gradient goes to `a` on ties).
    package static func minimum(_ a: Tensor, _ b: Tensor) throws -> Tensor { try binary(a, b, CK_BIN_MIN, "minimum") }

    // MARK: - Scalars

    /// alpha * self + beta in one pass.
    package func affine(scale alpha: Float, shift beta: Float) -> Tensor {
        let y = Tensor(uninitialized: shape)
        ck_affine(y.pointer, pointer, Int64(count), alpha, beta)
        let x = self
        return y.recorded(on: Tensor.tape(self)) { g in
            if let n = x.liveNode { ck_axpy(n.gradPointer(), g.pointer, Int64(g.count), alpha) }
        }
    }

    /// Adds `s` to every element.
    public static func + (a: Tensor, s: Float) -> Tensor { a.affine(scale: 1, shift: s) }
    package static func + (s: Float, a: Tensor) -> Tensor { a.affine(scale: 1, shift: s) }
    /// Subtracts `s` from every element.
    public static func - (a: Tensor, s: Float) -> Tensor { a.affine(scale: 1, shift: -s) }
    package static func - (s: Float, a: Tensor) -> Tensor { a.affine(scale: -1, shift: s) }
    /// Multiplies every element by `s`.
    public static func * (a: Tensor, s: Float) -> Tensor { a.affine(scale: s, shift: 0) }
    /// Multiplies every element by `s`.
    public static func * (s: Float, a: Tensor) -> Tensor { a.affine(scale: s, shift: 0) }
    /// Divides every element by `s`.
    public static func / (a: Tensor, s: Float) -> Tensor { a.affine(scale: 1 / s, shift: 0) }
    /// The negation.
    public static prefix func - (a: Tensor) -> Tensor { a.affine(scale: -1, shift: 0) }

    // MARK: - Unary math

    func unary(_ op: ck_unop) -> Tensor {
        let y = Tensor(uninitialized: shape)
        ck_unary_forward(y.pointer, pointer, Int64(count), Int32(op.rawValue))
        let x = self
        return y.recorded(on: Tensor.tape(self)) { g in
            if let n = x.liveNode { ck_unary_backward(n.gradPointer(), g.pointer, x.pointer, y.pointer, Int64(g.count), Int32(op.rawValue)) }
        }
    }

    /// e^x elementwise.
    package func exp() -> Tensor { unary(CK_UN_EXP) }
    /// Natural logarithm elementwise.
    package func log() -> Tensor { unary(CK_UN_LOG) }
    /// Square root elementwise.
    public func sqrt() -> Tensor { unary(CK_UN_SQRT) }
    /// x² elementwise.
    public func squared() -> Tensor { unary(CK_UN_SQUARE) }
    /// |x| elementwise (gradient sign(x), 0 at 0).
    package func abs() -> Tensor { unary(CK_UN_ABS) }
    /// sin elementwise.
    package func sin() -> Tensor { unary(CK_UN_SIN) }
    /// cos elementwise.
    package func cos() -> Tensor { unary(CK_UN_COS) }
    /// 1/x elementwise.
    package func reciprocal() -> Tensor { unary(CK_UN_RECIP) }

    // MARK: - In place (untraced)

    /// self += other (same shape), in place; the result is not traced.
    package mutating func addInPlace(_ other: Tensor, scale: Float = 1) throws {
        guard other.shape == shape else {
            throw TensorError.shapeMismatch(operation: "addInPlace", lhs: shape, rhs: other.shape, expected: "equal shapes")
        }
        node = nil
        ck_axpy(uniquePointer(), other.pointer, Int64(count), scale)
    }

    /// self = alpha * self + beta, in place; the result is not traced.
    package mutating func scaleInPlace(by alpha: Float, adding beta: Float = 0) {
        node = nil
        let p = uniquePointer()
        ck_affine(p, p, Int64(count), alpha, beta)
    }
}
