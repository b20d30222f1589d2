import CKernels

/// An n-dimensional array of `Float`s: a value type over shared, 64-byte aligned storage.
///
/// Tensors are contiguous and row-major (images NCHW). Copies share storage until one of
/// them is written (copy-on-write). Operations are methods and operators that throw a
/// ``TensorError`` on bad shapes; inside a gradient scope (``valueWithGradient(at:_:)``)
/// they also record how to differentiate themselves. Slicing along the first axis is a view
/// (no copy); other layout changes materialize a new tensor.
///
/// A tensor that is being traced by a gradient tape belongs to the thread running that
/// scope; untraced tensors may be shared freely.
public struct Tensor: @unchecked Sendable {
    /// Sizes of the dimensions (empty for a scalar).
    public let shape: [Int]
    /// Number of elements.
    public let count: Int
    @usableFromInline var storage: TensorStorage
    @usableFromInline var offset: Int
    /// The gradient-tape node when this tensor is traced, else nil.
    var node: GradNode?

    init(shape: [Int], storage: TensorStorage, offset: Int = 0, node: GradNode? = nil) {
        self.shape = shape
        self.count = Shape.count(shape)
        self.storage = storage
        self.offset = offset
        self.node = node
    }

    /// A tensor with unspecified contents (every element is written by the caller).
    init(uninitialized shape: [Int]) {
        self.init(shape: shape, storage: TensorStorage(capacity: Shape.count(shape)))
    }

    /// Number of dimensions.
    public var rank: Int { shape.count }

    /// Pointer to the first element, for reading.
    @inlinable var pointer: UnsafeMutablePointer<Float> { storage.base + offset }

    /// Makes the storage exclusively owned (copying if shared) and returns it for writing.
    mutating func uniquePointer() -> UnsafeMutablePointer<Float> {
        if !isKnownUniquelyReferenced(&storage) {
            let fresh = TensorStorage(capacity: count)
            fresh.base.update(from: pointer, count: count)
            storage = fresh
            offset = 0
        }
        return storage.base + offset
    }

    // MARK: - Creation

    /// A tensor of `shape` holding `scalars` in row-major order.
    public init(shape: [Int], scalars: [Float]) throws {
        try Shape.validate(shape, "Tensor(shape:scalars:)")
        let n = Shape.count(shape)
        guard scalars.count == n else {
            throw TensorError.countMismatch(operation: "Tensor(shape:scalars:)", count: scalars.count, expected: n)
        }
        self.init(uninitialized: shape)
        scalars.withUnsafeBufferPointer { pointer.update(from: $0.baseAddress!, count: n) }
    }

    /// A 1-D tensor of `scalars`.
    public init(_ scalars: [Float]) {
        self.init(uninitialized: [scalars.count])
        scalars.withUnsafeBufferPointer { if let b = $0.baseAddress { pointer.update(from: b, count: scalars.count) } }
    }

    /// A scalar (rank-0) tensor.
    package init(_ scalar: Float) {
        self.init(uninitialized: [])
        pointer.pointee = scalar
    }

    /// A tensor of `shape` with every element `value`.
    public static func full(_ shape: [Int], _ value: Float) throws -> Tensor {
        try Shape.validate(shape, "Tensor.full")
        let t = Tensor(uninitialized: shape)
        ck_fill(t.pointer, Int64(t.count), value)
        return t
    }

    /// Zeros of `shape`.
    public static func zeros(_ shape: [Int]) throws -> Tensor { try full(shape, 0) }

    /// Ones of `shape`.
    package static func ones(_ shape: [Int]) throws -> Tensor { try full(shape, 1) }

    /// Zeros of the same shape as `other`.
    package static func zeros(like other: Tensor) -> Tensor {
        let t = Tensor(uninitialized: other.shape)
        ck_fill(t.pointer, Int64(t.count), 0)
        return t
    }

    /// `count` values evenly spaced from `start` to `end` inclusive.
    package static func linspace(_ start: Float, _ end: Float, count: Int) throws -> Tensor {
        guard count >= 1 else {
            throw TensorError.invalidArgument(operation: "Tensor.linspace", message: "count \(count) must be at least 1")
        }
        let step = count > 1 ? (Double(end) - Double(start)) / Double(count - 1) : 0
        return Tensor((0..<count).map { Float(Double(start) + step * Double($0)) })
    }

    // MARK: - Reading

    /// The elements in row-major order.
    public var scalars: [Float] { Array(UnsafeBufferPointer(start: pointer, count: count)) }

    /// The single element of a one-element tensor.
    public func item() throws -> Float {
        guard count == 1 else {
            throw TensorError.invalidShape(operation: "Tensor.item", shape: shape, expected: "exactly one element")
        }
        return pointer.pointee
    }

    /// Element at a multi-index.
    package func scalar(at index: [Int]) throws -> Float {
        guard index.count == rank else {
            throw TensorError.invalidArgument(operation: "Tensor.scalar(at:)",
                                              message: "index has \(index.count) components; the tensor has rank \(rank)")
        }
        var flat = 0
        for (d, i) in index.enumerated() {
            guard i >= 0, i < shape[d] else {
                throw TensorError.outOfRange(operation: "Tensor.scalar(at:)", value: i, validRange: "0..<\(shape[d]) on axis \(d)")
            }
            flat = flat * shape[d] + i
        }
        return pointer[flat]
    }

    /// Calls `body` with the elements, read-only.
    public func withUnsafeBufferPointer<R>(_ body: (UnsafeBufferPointer<Float>) throws -> R) rethrows -> R {
        try body(UnsafeBufferPointer(start: pointer, count: count))
    }

    /// Calls `body` with the elements for writing (copying first if the storage is shared).
    /// Writing a traced tensor detaches it from the gradient tape.
    package mutating func withUnsafeMutableBufferPointer<R>(_ body: (UnsafeMutableBufferPointer<Float>) throws -> R) rethrows -> R {
        node = nil
        return try body(UnsafeMutableBufferPointer(start: uniquePointer(), count: count))
    }
}

extension Tensor: CustomStringConvertible {
    /// The shape and the first eight values.
    public var description: String {
        let shown = scalars.prefix(8).map { String($0) }.joined(separator: ", ")
        return "Tensor(shape: \(shape), [\(shown)\(count > 8 ? ", …" : "")])"
    }
}
