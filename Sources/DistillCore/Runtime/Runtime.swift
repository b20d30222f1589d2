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
    /// (`scalar`, `avx2`, `avx512`, `neon`) when the CPU has it. Change it with
    /// ``setSIMDLevel(_:)``. Results are the same at every level where a kernel promises bits
    /// (the kernel tests check each level against the naive references).
    public static var simdLevel: SIMDLevel { SIMDLevel(kernelLevel: ck_simd_level()) }

    /// The levels this CPU can run, `scalar` first and the best last.
    public static var supportedSIMDLevels: [SIMDLevel] {
        SIMDLevel.allCases.filter { ck_simd_supported($0.kernelLevel) != 0 }
    }

    /// Caps the kernels' vector code at `level` (e.g. `.avx2` on an AVX-512 CPU, to measure what
    /// an AVX2-only machine would do; `.scalar` for the portable C). Set it before running
    /// model code, from one thread: the level also picks the convolution engines and their
    /// workspaces. OpenBLAS, which runs the large matrix products, picks its own kernels when it
    /// loads (`OPENBLAS_CORETYPE` caps those).
    /// - Throws: ``RuntimeError/unsupportedSIMDLevel(_:supported:)`` when this CPU cannot run `level`.
    public static func setSIMDLevel(_ level: SIMDLevel) throws(RuntimeError) {
        guard ck_simd_set_level(level.kernelLevel) >= 0 else {
            throw .unsupportedSIMDLevel(level.rawValue, supported: supportedSIMDLevels)
        }
    }

    /// The value of `DISTILL_SIMD` when it names no level this CPU has (the level is then the
    /// best one), so that a program can report it; nil when the variable is unset or valid.
    public static var rejectedSIMDEnvironment: String? {
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

/// Errors of the process-wide runtime settings.
public enum RuntimeError: Error, Equatable, CustomStringConvertible {
    /// A SIMD level this CPU cannot run was asked for; `supported` lists the ones it can.
    case unsupportedSIMDLevel(String, supported: [SIMDLevel])

    /// One line naming the request and what this CPU supports.
    public var description: String {
        switch self {
        case let .unsupportedSIMDLevel(level, supported):
            return "SIMD level '\(level)' is not available on this CPU; supported: \(supported.map(\.rawValue).joined(separator: ", "))"
        }
    }
}
