import CKernels
import Foundation
import Testing

/// Every parallel kernel must give the same bits for 1 and 2 threads.
@Suite(.serialized) struct DeterminismKernelTests {
    /// Runs `compute` at 1 and 2 threads and checks identical bits; also checks the pool's
    /// worker really took part in the 2-thread run. A pool busy with another suite's work runs
    /// the caller's tasks inline, so the run is retried (for up to ~4 s) until the worker joins.
    func sameBits(_ name: String, _ compute: () -> [Float]) {
        let one = withThreads(1) { compute() }
        var shared = false
        for attempt in 0..<400 where !shared {
            if attempt > 0 { usleep(10_000) }
            let before = ck_pool_worker_tasks()
            let two = withThreads(2) { compute() }
            shared = ck_pool_worker_tasks() > before
            let mismatch = firstBitMismatch(one, two)
            #expect(mismatch == nil, "\(name): results differ between 1 and 2 threads at \(String(describing: mismatch))")
        }
        #expect(shared, "\(name): the 2-thread run never used the worker thread")
    }

    /// A thread's SIMD override (what `withSIMD` sets) reaches the pool workers running its
    /// kernels and no other thread, so suites comparing the two paths can run concurrently
    /// with the thread-count checks above. SiLU's SIMD path (own exp) and scalar path (libm)
    /// differ in the last bits, which makes the path taken visible.
    @Test func threadSIMDOverrideReachesItsWorkersOnly() {
        guard ck_cpu_has_avx2_fma() != 0 else { return }
        var g = TestRNG(5)
        let x = g.floats(1_000_003, -8, 8)
        func silu() -> [Float] {
            var y = [Float](repeating: 0, count: x.count)
            ck_act_forward(&y, x, Int64(x.count), Int32(CK_ACT_SILU.rawValue))
            return y
        }
        let scalar = withThreads(1) { withSIMD(false) { silu() } }
        let simd = withThreads(1) { withSIMD(true) { silu() } }
        #expect(firstBitMismatch(scalar, simd) != nil)
        sameBits("silu, scalar override") { withSIMD(false) { silu() } }
        #expect(withThreads(2) { withSIMD(false) { firstBitMismatch(silu(), scalar) } } == nil)
        final class Seen: @unchecked Sendable { var value: Int32 = -1 }
        let elsewhere = Seen(), done = DispatchSemaphore(value: 0)
        withSIMD(false) {
            Thread { elsewhere.value = ck_cpu_simd_enabled(); done.signal() }.start()
            done.wait()
        }
        #expect(elsewhere.value == 1)
    }

    /// The level rule: a supported level is itself, an unsupported one caps to the best level
    /// below it (the other architecture's to scalar), an unknown one is refused; a thread's level
    /// override reaches every task of its parallel jobs and no other thread.
    @Test func simdLevelCapsAndThreadOverride() {
        let scalar = Int32(CK_SIMD_SCALAR), avx2 = Int32(CK_SIMD_AVX2), avx512 = Int32(CK_SIMD_AVX512), neon = Int32(CK_SIMD_NEON)
        for level in simdLevels { #expect(ck_simd_cap(level) == level) }
        #if arch(x86_64)
        #expect(ck_simd_cap(neon) == scalar)
        if ck_simd_supported(avx512) == 0 { #expect(ck_simd_cap(avx512) == (ck_simd_supported(avx2) != 0 ? avx2 : scalar)) }
        #elseif arch(arm64)
        #expect(ck_simd_cap(avx2) == scalar && ck_simd_cap(avx512) == scalar)
        #endif
        #expect(ck_simd_cap(99) == -1 && ck_simd_cap(-1) == -1 && ck_simd_set_level(99) == -1)
        #expect(ck_simd_set_thread_level(99) == -2)
        // Each task records the level it saw after ~0.1 ms of work, so that the worker takes
        // part; a job is retried until it did (as in sameBits).
        for level in simdLevels {
            var seen = [Int32](repeating: -1, count: 64), workerTookPart = false
            for attempt in 0..<1500 where !workerTookPart {   // the pool may be busy with other suites (runs the job inline)
                if attempt > 0 { usleep(10_000) }
                let before = ck_pool_worker_tasks()
                withSIMDLevel(level) {
                    withThreads(2) {
                        seen.withUnsafeMutableBufferPointer { buffer in
                            ck_parallel_for({ ctx, i, _ in
                                var x: Int32 = 1
                                for k in 0..<100_000 { x = x &* 1_103_515_245 &+ Int32(truncatingIfNeeded: k) }
                                ctx!.assumingMemoryBound(to: Int32.self)[Int(i)] = ck_simd_level() + (x == 0x7fff_ffff ? 100 : 0)   // x must be computed
                            }, buffer.baseAddress, 64)
                        }
                    }
                }
                workerTookPart = ck_pool_worker_tasks() > before
                #expect(seen.allSatisfy { $0 == level }, "level \(level): tasks saw \(Set(seen))")
            }
            #expect(workerTookPart, "level \(level): the pool's worker never ran a task")
        }
        final class Seen: @unchecked Sendable { var value: Int32 = -1 }
        let elsewhere = Seen(), done = DispatchSemaphore(value: 0)
        withSIMDLevel(scalar) {
            Thread { elsewhere.value = ck_simd_level(); done.signal() }.start()
            done.wait()
        }
        #expect(elsewhere.value == ck_simd_level())
    }

    @Test func kernelsAreThreadCountInvariant() {
        var g = TestRNG(77)
        let (B, IN, OUT): (Int64, Int64, Int64) = (4096, 66, 256)
        let x = g.floats(Int(B * IN)), w = g.floats(Int(OUT * IN)), b = g.floats(Int(OUT)), dy = g.floats(Int(B * OUT))
        let big = g.floats(3_000_001)
        sameBits("gemm") {
            var c = [Float](repeating: 0, count: Int(B * OUT))
            ck_gemm(0, 1, B, OUT, IN, 1, x, IN, w, IN, 0, &c, OUT, nil)
            return c
        }
        sameBits("linear forward+backward") {
            var y = [Float](repeating: 0, count: Int(B * OUT)), z = y
            var ws = [Float](repeating: 0, count: Int(ck_linear_backward_workspace_floats(B, IN, OUT, Int32(CK_ACT_SILU.rawValue))))
            ck_linear_forward(&y, &z, x, w, b, B, IN, OUT, Int32(CK_ACT_SILU.rawValue))
            var dx = [Float](repeating: 0, count: Int(B * IN)), dw = [Float](repeating: 0, count: Int(OUT * IN))
            var db = [Float](repeating: 0, count: Int(OUT))
            ck_linear_backward(&dx, &dw, &db, &ws, 0, dy, z, y, x, w, B, IN, OUT, Int32(CK_ACT_SILU.rawValue))
            return y + dx + dw + db
        }
        sameBits("full sum") {
            var s: Float = 0
            ck_reduce_sum(&s, big, 1, Int64(big.count), 1, 1, 0)
            return [s, Float(ck_sum_squares(big, Int64(big.count)))]
        }
        sameBits("column sums") {
            var s = [Float](repeating: 0, count: Int(OUT))
            ck_reduce_sum(&s, dy, 1, B, OUT, 1, 0)
            return s
        }
        sameBits("philox normal") {
            var z = [Float](repeating: 0, count: 1_000_003)
            ck_random_normal(&z, Int64(z.count), 5, 1, 9, 0, 1)
            return z
        }
        sameBits("broadcast add, long rows") {
            var y = [Float](repeating: 0, count: big.count)
            ck_binary_forward(&y, big, [1], big, [1], [Int64(big.count)], 1, Int32(CK_BIN_MUL.rawValue))
            return y
        }
        sameBits("silu") {
            var y = [Float](repeating: 0, count: big.count)
            ck_act_forward(&y, big, Int64(big.count), Int32(CK_ACT_SILU.rawValue))
            return y
        }
        sameBits("adam") {
            var p = big, m = [Float](repeating: 0, count: big.count), v = m
            ck_adam_step(&p, &m, &v, big, Int64(big.count), 1e-3, 0.9, 0.999, 1e-8, 0.01, 1, 1, 1)
            return p
        }
    }
}
