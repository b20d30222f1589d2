import CKernels
import Foundation

/// Process-wide settings of the kernel runtime.
public enum Runtime {
    /// Threads the kernels use (the caller included). Defaults to `DISTILL_NUM_THREADS` or
    /// the CPUs available to the process. Results do not depend on it.
    public static var threadCount: Int {
        get { Int(ck_get_num_threads()) }
        set { ck_set_num_threads(Int32(newValue)) }
    }

    /// The instruction set the kernels' vector code uses, process-wide. It starts at the best
    /// level the CPU has, or at the one the environment variable `DISTILL_SIMD` names
    /// (`scalar`, `avx2`, `avx512`, `neon`) when the CPU has it. Setting it caps the level: a
    /// level the CPU lacks gives the best one below it (x86-64: scalar < avx2 < avx512; AArch64:
    /// scalar < neon; the other architecture's level gives scalar), so read it back, or check
    /// ``supportedSIMDLevels`` first. Set it before running model code, from one thread: the
    /// level also picks the convolution engines and their workspaces. At `.avx2` on an AVX-512
    /// CPU, OpenBLAS (the large matrix products) moves to its AVX2 kernels as well, unless
    /// `OPENBLAS_CORETYPE` chose its kernels. Levels may differ in the last bits (other engines,
    /// other vector formulas); at a given level results do not depend on the thread count. The
    /// kernel tests check each level against the naive references.
    public static var simdLevel: SIMDLevel {
        get { SIMDLevel(kernelLevel: ck_simd_level()) }
        set { _ = ck_simd_set_level(newValue.kernelLevel) }
    }

    /// The levels this CPU can run, `scalar` first and the best last.
    public static var supportedSIMDLevels: [SIMDLevel] {
        SIMDLevel.allCases.filter { ck_simd_supported($0.kernelLevel) != 0 }
    }

    /// The value of `DISTILL_SIMD` when it names no level this CPU has (the level is then the
    /// best one), so that a program can report it; nil when the variable is unset or valid.
    package static var rejectedSIMDEnvironment: String? {
        guard ck_simd_env_rejected() != 0 else { return nil }
        return ProcessInfo.processInfo.environment["DISTILL_SIMD"] ?? ""
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

/// An instruction set for the kernels' vector code (see ``Runtime/simdLevel``).
public enum SIMDLevel: String, CaseIterable, Sendable {
    /// Portable C only: no vector code (any CPU).
    case scalar
    /// AVX2 with FMA, 8 floats per register (x86-64).
    case avx2
    /// AVX-512 F/BW/DQ/VL, 16 floats per register, and the AVX-512 convolution engines (x86-64).
    case avx512
    /// Advanced SIMD with FMA, 4 floats per register (AArch64).
    case neon

    var kernelLevel: Int32 {
        switch self {
        case .scalar: Int32(CK_SIMD_SCALAR)
        case .avx2: Int32(CK_SIMD_AVX2)
        case .avx512: Int32(CK_SIMD_AVX512)
        case .neon: Int32(CK_SIMD_NEON)
        }
    }

    init(kernelLevel: Int32) {
        self = Self.allCases.first { $0.kernelLevel == kernelLevel } ?? .scalar
    }
}
