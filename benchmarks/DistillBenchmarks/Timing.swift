import Foundation

/// Wall-clock timing helpers: monotonic clock, medians over repetitions.
enum Timing {
    static func now() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
    }

    /// Seconds per call of `body`: `warmup` untimed calls, then the median of `reps` timed ones.
    static func median(reps: Int, warmup: Int = 2, _ body: () throws -> Void) rethrows -> Double {
        median(of: try samples(reps: reps, warmup: warmup, body))
    }

    /// The median of timings.
    static func median(of times: [Double]) -> Double { times.sorted()[times.count / 2] }

    /// The individual timings.
    static func samples(reps: Int, warmup: Int = 2, _ body: () throws -> Void) rethrows -> [Double] {
        for _ in 0..<warmup { try body() }
        var out: [Double] = []
        for _ in 0..<max(reps, 1) {
            let t0 = now()
            try body()
            out.append(now() - t0)
        }
        return out
    }
}
