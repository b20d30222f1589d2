import CKernels

/// Process-wide settings of the kernel runtime.
public enum Runtime {
    /// Threads the kernels use (the caller included). Defaults to `DISTILL_NUM_THREADS` or
    /// the CPUs available to the process. Results do not depend on it.
    public static var threadCount: Int {
        get { Int(ck_get_num_threads()) }
        set { ck_set_num_threads(Int32(newValue)) }
    }

    /// Whether kernels take their AVX2+FMA paths (true when the CPU has them). Setting false
    /// forces the portable scalar paths.
    public static var simdEnabled: Bool {
        get { ck_cpu_simd_enabled() != 0 }
        set { _ = ck_cpu_set_simd_enabled(newValue ? 1 : 0) }
    }

    /// Bytes currently held by live tensors, and the peak since ``resetPeakMemory()``.
    package static var liveTensorBytes: Int { Int(ck_alloc_live_bytes()) }
    package static var peakTensorBytes: Int { Int(ck_alloc_peak_bytes()) }
    package static func resetPeakMemory() { ck_alloc_reset_peak() }
    /// Returns cached tensor memory to the system.
    package static func releaseCachedMemory() { ck_alloc_trim() }
}

extension Runtime {
    /// Runs `body(i)` for every i in 0..<count on the kernels' thread pool (the caller takes
    /// part), each index exactly once, in no particular order. For determinism, each index must
    /// write only its own outputs. Kernels called inside run single-threaded.
    package static func parallelFor(_ count: Int, _ body: (Int) -> Void) {
        guard count > 0 else { return }
        withoutActuallyEscaping(body) { escapable in
            var fn = escapable
            withUnsafeMutablePointer(to: &fn) { ptr in
                ck_parallel_for({ ctx, i, _ in
                    ctx!.assumingMemoryBound(to: ((Int) -> Void).self).pointee(Int(i))
                }, ptr, Int64(count))
            }
        }
    }
}
