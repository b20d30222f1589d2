import CKernels
import Testing

private final class Counter: @unchecked Sendable {
    var hits: [Int32]
    init(_ n: Int) { hits = [Int32](repeating: 0, count: n) }
}

@Suite(.serialized) struct PoolTests {
    @Test func everyTaskRunsExactlyOnce() {
        for threads: Int32 in [1, 2, 3] {
            withThreads(threads) {
                for n in [1, 2, 5, 64, 1001] {
                    let c = Counter(n)
                    withUnsafeMutablePointer(to: &c.hits[0]) { base in
                        ck_parallel_for({ ctx, i, _ in
                            let p = ctx!.assumingMemoryBound(to: Int32.self)
                            p[Int(i)] += 1
                        }, base, Int64(n))
                    }
                    #expect(c.hits.allSatisfy { $0 == 1 }, "threads \(threads), tasks \(n)")
                }
            }
        }
    }

    @Test func nestedCallsRunInline() {
        withThreads(2) {
            var counts = [Int64](repeating: 0, count: 8)
            counts.withUnsafeMutableBufferPointer { buf in
                ck_parallel_for({ ctx, i, _ in
                    // Each outer task runs a nested parallel-for on its own counter; nested
                    // calls execute on the calling thread, so no two threads share a counter.
                    let slot = ctx!.assumingMemoryBound(to: Int64.self) + Int(i)
                    ck_parallel_for({ c, _, _ in c!.assumingMemoryBound(to: Int64.self).pointee += 1 }, slot, 4)
                }, buf.baseAddress, 8)
            }
            #expect(counts == [Int64](repeating: 4, count: 8))
        }
    }

    @Test func threadCountIsSettable() {
        withThreads(3) { #expect(ck_get_num_threads() == 3) }
        withThreads(1) { #expect(ck_get_num_threads() == 1) }
        #expect(ck_default_num_threads() >= 1)
    }

    @Test func workersShareTheWork() {
        withThreads(2) {
            let before = ck_pool_worker_tasks()
            var x = [Float](repeating: 1, count: 1 << 22)
            for _ in 0..<20 { ck_affine(&x, x, Int64(x.count), 1.0001, 0) }
            #expect(ck_pool_worker_tasks() > before, "the worker thread ran none of 5000 tasks")
        }
    }
}
