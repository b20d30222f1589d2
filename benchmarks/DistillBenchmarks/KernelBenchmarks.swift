import DistillCore
import CKernels
import Foundation

/// GEMM, fused linear and elementwise kernel benchmarks.
enum KernelBenchmarks {
    /// Square GEMMs: GFLOP/s, as a fraction of peak and against one OpenBLAS call using its
    /// own threads at the same thread count.
    static func gemm(sizes: [Int], probes: MachineProbes, emit: (BenchmarkRecord) -> Void) {
        let threads = Int32(Runtime.threadCount)
        for n in sizes {
            let a = Buffer(n * n), b = Buffer(n * n), c = Buffer(n * n)
            let flops = 2.0 * Double(n * n * n)
            let reps = max(5, min(40, Int(4e9 / flops)))
            let ours = Timing.median(reps: reps) { ck_gemm(0, 0, Int64(n), Int64(n), Int64(n), 1, a.p, Int64(n), b.p, Int64(n), 0, c.p, Int64(n), nil) }
            let blas = Timing.median(reps: reps) {
                ck_gemm_openblas(threads, 0, 0, Int64(n), Int64(n), Int64(n), 1, a.p, Int64(n), b.p, Int64(n), 0, c.p, Int64(n))
            }
            Thread.sleep(forTimeInterval: 0.3)   // let OpenBLAS's own threads stop spinning
            emit(BenchmarkRecord(name: "gemm_\(n)", value: flops / ours / 1e9, unit: "GFLOP/s", ratio: flops / ours / probes.peakFlops,
                                 reference: "peak \(String(format: "%.1f", probes.peakFlops / 1e9)) GFLOP/s (\(probes.peakISA), \(threads) threads)"))
            emit(BenchmarkRecord(name: "gemm_\(n)_vs_openblas", value: flops / blas / 1e9, unit: "GFLOP/s", ratio: blas / ours,
                                 reference: "OpenBLAS sgemm, own \(threads) threads (value); ratio = its time / ours"))
        }
    }

    /// The MLP's hidden layer (B x 256 -> 256, SiLU) as fused forward and forward+backward.
    static func linear(batch: Int, width: Int, probes: MachineProbes, emit: (BenchmarkRecord) -> Void) {
        let x = Buffer(batch * width), w = Buffer(width * width), bias = Buffer(width)
        let y = Buffer(batch * width), z = Buffer(batch * width), dy = Buffer(batch * width)
        let ws = Buffer(Int(ck_linear_backward_workspace_floats(Int64(batch), Int64(width), Int64(width), Int32(CK_ACT_SILU.rawValue))))
        let dx = Buffer(batch * width), dw = Buffer(width * width), db = Buffer(width)
        let act = Int32(CK_ACT_SILU.rawValue)
        let (b, n) = (Int64(batch), Int64(width))
        let fwdFlops = 2.0 * Double(batch * width * width)
        let fwd = Timing.median(reps: 30) { ck_linear_forward(y.p, z.p, x.p, w.p, bias.p, b, n, n, act) }
        let both = Timing.median(reps: 30) {
            ck_linear_forward(y.p, z.p, x.p, w.p, bias.p, b, n, n, act)
            ck_linear_backward(dx.p, dw.p, db.p, ws.p, 0, dy.p, z.p, y.p, x.p, w.p, b, n, n, act)
        }
        let peak = "peak \(String(format: "%.1f", probes.peakFlops / 1e9)) GFLOP/s"
        emit(BenchmarkRecord(name: "linear_silu_fwd_\(batch)x\(width)", value: fwdFlops / fwd / 1e9, unit: "GFLOP/s",
                             ratio: fwdFlops / fwd / probes.peakFlops, reference: peak))
        emit(BenchmarkRecord(name: "linear_silu_fwd_bwd_\(batch)x\(width)", value: 3 * fwdFlops / both / 1e9, unit: "GFLOP/s",
                             ratio: 3 * fwdFlops / both / probes.peakFlops, reference: peak))
    }

    /// Memory-bound kernels at a size beyond the caches: GB/s against the triad.
    static func elementwise(elements n: Int, probes: MachineProbes, emit: (BenchmarkRecord) -> Void) {
        let a = Buffer(n), b = Buffer(n), c = Buffer(n), d = Buffer(n, fill: 0.01)
        let cases: [(String, Int, () -> Void)] = [
            ("silu_forward", 8, { ck_act_forward(a.p, b.p, Int64(n), Int32(CK_ACT_SILU.rawValue)) }),
            ("silu_backward", 16, { ck_act_backward(a.p, b.p, c.p, nil, Int64(n), Int32(CK_ACT_SILU.rawValue)) }),
            ("add_broadcast_free", 12, { ck_binary_forward(a.p, b.p, [1], c.p, [1], [Int64(n)], 1, Int32(CK_BIN_ADD.rawValue)) }),
            ("affine", 8, { ck_affine(a.p, b.p, Int64(n), 0.5, 1) }),
            ("adamw_step", 28, { ck_adam_step(a.p, b.p, d.p, c.p, Int64(n), 1e-3, 0.9, 0.999, 1e-8, 0.01, 1, 10, 1) }),
            ("ema_update", 12, { ck_ema_update(a.p, b.p, Int64(n), 0.999) }),
        ]
        let triad = String(format: "triad %.1f GB/s", probes.triadBytesPerSecond / 1e9)
        for (name, bytes, body) in cases {
            let t = Timing.median(reps: 7, warmup: 1, body)
            let bw = Double(bytes * n) / t
            emit(BenchmarkRecord(name: name, value: bw / 1e9, unit: "GB/s", ratio: bw / probes.triadBytesPerSecond, reference: triad))
        }
    }
}
