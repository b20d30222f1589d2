import CKernels

/// A 64-byte aligned buffer of `Float`s from the kernels' caching allocator.
///
/// Storage is shared between tensor values; ``Tensor`` copies it before writing when it is
/// not the only owner (copy-on-write).
@usableFromInline package final class TensorStorage: @unchecked Sendable {
    /// First element.
    @usableFromInline package let base: UnsafeMutablePointer<Float>
    /// Number of floats the buffer holds.
    package let capacity: Int

    /// A buffer of `capacity` floats with unspecified contents.
    init(capacity: Int) {
        let bytes = max(capacity, 1) * MemoryLayout<Float>.stride
        guard let raw = ck_alloc(bytes) else {
            fatalError("DistillCore: out of memory allocating \(bytes) bytes")
        }
        self.base = raw.bindMemory(to: Float.self, capacity: max(capacity, 1))
        self.capacity = capacity
    }

    deinit {
        ck_free(base, max(capacity, 1) * MemoryLayout<Float>.stride)
    }
}
