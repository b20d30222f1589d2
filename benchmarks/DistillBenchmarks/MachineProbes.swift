import Foundation
import DistillCore
import CKernels

/// The machine's ceilings, measured in-process on the kernels' thread pool.
package struct MachineProbes: Sendable {
    /// Peak FP32 FLOP/s: the best of several runs of independent FMA chains, with the widest
    /// SIMD the CPU has (AVX-512 when present, else AVX2). The runs are spread over about half a
    /// second: on a shared machine a core can be away for a while, and a peak measured then
    /// would flatter every ratio against it.
    package var peakFlops: Double
    /// Which SIMD width gave the peak.
    package var peakISA: String
    /// STREAM-triad bandwidth in bytes/s at the size used for the elementwise benchmarks
    /// (the best of several runs).
    package var triadBytesPerSecond: Double

    static func measure(elements: Int, reps: Int) -> MachineProbes {
        let tasks = Int64(32 * Runtime.threadCount)
        func best(_ avx512: Int32) -> Double {
            var b = 0.0
            for _ in 0..<reps {
                let t0 = Timing.now()
                let flops = ck_bench_fma_flops(avx512, tasks)
                b = max(b, flops / (Timing.now() - t0))
                usleep(100_000 / UInt32(reps))
            }
            return b
        }
        let avx2 = best(0), avx512 = ck_cpu_has_avx512() != 0 ? best(1) : 0
        let a = Buffer(elements), b = Buffer(elements, fill: 1), c = Buffer(elements, fill: 2)
        var bw = 0.0
        for _ in 0..<reps {
            let t = Timing.median(reps: 3, warmup: 1) { ck_bench_triad(a.p, b.p, c.p, 3, Int64(elements)) }
            bw = max(bw, Double(12 * elements) / t)
        }
        return MachineProbes(peakFlops: max(avx2, avx512), peakISA: avx512 > avx2 ? "AVX-512" : Runtime.simdLevel == .neon ? "NEON" : "AVX2",
                             triadBytesPerSecond: bw)
    }
}

/// A raw float buffer for kernel benchmarks (touched once so pages are mapped).
final class Buffer {
    let p: UnsafeMutablePointer<Float>
    let count: Int
    init(_ n: Int, fill: Float = 0.5) {
        p = .allocate(capacity: max(n, 1))
        count = n
        for i in 0..<n { p[i] = fill + Float(i % 7) * 1e-3 }
    }
    deinit { p.deallocate() }
}
