import CKernels
import Distill
import Foundation

/// Image-engine benchmarks: the U-Nets' convolutions and attention (GFLOP/s against the
/// in-process peak), and one U-Net training step against `benchmarks/pytorch/unet_step.py`
/// running the same architecture.
enum ImageBenchmarks {
    /// The U-Nets the benchmarks (and `unet_step.py`) use. "mnist": 28×28, 32·[1, 2, 2]
    /// channels, 2 blocks per level, attention at 7×7 and in the middle, 4 heads, 8 groups
    /// (1,742,881 parameters; the `UNet.Configuration()` defaults). "digits": 8×8, 32·[1, 2],
    /// 2 blocks, attention at 4×4 and in the middle, 4 heads, 8 groups (1,080,161 parameters).
    static let unetConfigurations: [(name: String, config: UNet.Configuration)] = [
        ("mnist", UNet.Configuration()),
        ("digits", UNet.Configuration(imageSize: 8, baseChannels: 32, channelMultipliers: [1, 2], blocksPerLevel: 2,
                                      attentionResolutions: [4], headCount: 4, groups: 8)),
    ]

    // MARK: - Convolution

    /// (image side, Cin, Cout, K, stride, where it occurs).
    static let convShapes: [(Int, Int, Int, Int, Int, String)] = [
        (28, 32, 32, 3, 1, "mnist level 0 res conv"),
        (28, 64, 32, 3, 1, "mnist level 0 up conv1 (concat)"),
        (28, 96, 32, 3, 1, "mnist level 0 up conv1 (concat)"),
        (28, 32, 32, 3, 2, "mnist downsample 28→14"),
        (14, 32, 64, 3, 1, "mnist level 1 first conv1"),
        (14, 64, 64, 3, 1, "mnist level 1 res conv"),
        (14, 128, 64, 3, 1, "mnist level 1 up conv1 (concat)"),
        (7, 64, 64, 3, 1, "mnist level 2 / middle res conv"),
        (7, 128, 64, 3, 1, "mnist level 2 up conv1 (concat)"),
        (16, 32, 32, 3, 1, "16×16 (no U-Net here has it)"),
        (16, 64, 64, 3, 1, "16×16 (no U-Net here has it)"),
        (8, 32, 32, 3, 1, "digits level 0 res conv"),
        (8, 96, 32, 3, 1, "digits level 0 up conv1 (concat)"),
        (4, 64, 64, 3, 1, "digits level 1 / middle res conv"),
        (28, 96, 32, 1, 1, "mnist 1×1 skip conv"),
    ]

    /// Convolution forward + backward (dx, dw, db) at batch `batch`: GFLOP/s counting
    /// 3 × 2·N·Cout·Ho·Wo·Cin·K² (forward, dx, dw), as a fraction of the in-process peak.
    static func convolution(batch: Int, probes: MachineProbes, quick: Bool, emit: (BenchmarkRecord) -> Void) {
        let peak = "peak \(String(format: "%.1f", probes.peakFlops / 1e9)) GFLOP/s (\(probes.peakISA), \(Runtime.threadCount) threads)"
        for (s, cin, cout, k, stride, note) in quick ? Array(convShapes.prefix(3)) : convShapes {
            let pad = k / 2
            let o = Int(ck_conv2d_out_size(Int64(s), Int64(k), Int64(stride), Int64(pad)))
            let sizes = (Int64(batch), Int64(cin), Int64(s), Int64(s), Int64(cout), Int64(k), Int64(stride), Int64(pad))
            let x = Buffer(batch * cin * s * s), w = Buffer(cout * cin * k * k), b = Buffer(cout), y = Buffer(batch * cout * o * o)
            let dx = Buffer(batch * cin * s * s), dw = Buffer(cout * cin * k * k), db = Buffer(cout)
            let wsF = ck_conv2d_forward_workspace_floats(sizes.0, sizes.1, sizes.2, sizes.3, sizes.4, sizes.5, sizes.6, sizes.7)
            let wsB = ck_conv2d_backward_workspace_floats(sizes.0, sizes.1, sizes.2, sizes.3, sizes.4, sizes.5, sizes.6, sizes.7)
            let ws = Buffer(Int(max(wsF, wsB)))
            let flops = 2.0 * Double(batch * cout * o * o * cin * k * k)
            let reps = max(5, min(30, Int(3e9 / (3 * flops))))
            let fwdTimes = Timing.samples(reps: reps) {
                ck_conv2d_forward(y.p, x.p, w.p, b.p, ws.p, sizes.0, sizes.1, sizes.2, sizes.3, sizes.4, sizes.5, sizes.6, sizes.7)
            }
            let bothTimes = Timing.samples(reps: reps) {
                ck_conv2d_forward(y.p, x.p, w.p, b.p, ws.p, sizes.0, sizes.1, sizes.2, sizes.3, sizes.4, sizes.5, sizes.6, sizes.7)
                ck_conv2d_backward(dx.p, dw.p, db.p, ws.p, Int32(CK_CONV_SET_DX | CK_CONV_SET_DW | CK_CONV_SET_DB), y.p, x.p, w.p,
                                   sizes.0, sizes.1, sizes.2, sizes.3, sizes.4, sizes.5, sizes.6, sizes.7)
            }
            let fwd = Timing.median(of: fwdTimes), both = Timing.median(of: bothTimes)
            let tag = "conv\(k)x\(k)\(stride == 2 ? "s2" : "")_\(s)x\(s)_\(cin)to\(cout)_b\(batch)"
            emit(BenchmarkRecord(name: tag + "_fwd_bwd", value: 3 * flops / both / 1e9, unit: "GFLOP/s", ratio: 3 * flops / both / probes.peakFlops,
                                 reference: "\(peak); \(note); fwd+bwd \(String(format: "%.2f", both * 1e3)) ms, workspace \((max(wsF, wsB) * 4) >> 10) KiB"))
            emit(BenchmarkRecord(name: tag + "_fwd", value: flops / fwd / 1e9, unit: "GFLOP/s", ratio: flops / fwd / probes.peakFlops,
                                 reference: "\(peak); fwd \(String(format: "%.2f", fwd * 1e3)) ms"))
            // The fastest call, like the peak (the best of its runs): what the kernels do when the
            // shared machine leaves the cores alone.
            for (pass, times, f) in [("fwd_bwd", bothTimes, 3 * flops), ("fwd", fwdTimes, flops)] {
                let best = times.min() ?? .infinity
                emit(BenchmarkRecord(name: tag + "_\(pass)_best", value: f / best / 1e9, unit: "GFLOP/s", ratio: f / best / probes.peakFlops,
                                     reference: "\(peak); fastest of \(reps) calls, \(String(format: "%.2f", best * 1e3)) ms"))
            }
        }
    }

    // MARK: - Attention

    /// Fused attention forward + backward at batch 64 with 4 heads of 16 channels (the U-Nets'
    /// 64-channel attention): GFLOP/s counting 4·B·H·T²·D for the forward and 10·B·H·T²·D for
    /// the backward (it recomputes the scores), as a fraction of the in-process peak.
    static func attention(batch: Int, probes: MachineProbes, quick: Bool, emit: (BenchmarkRecord) -> Void) {
        let peak = "peak \(String(format: "%.1f", probes.peakFlops / 1e9)) GFLOP/s"
        let (heads, d) = (4, 16)
        for side in quick ? [7] : [4, 7, 8, 16] {
            let t = side * side
            let n = batch * heads * t * d
            let q = Buffer(n), k = Buffer(n), v = Buffer(n), o = Buffer(n), dO = Buffer(n), lse = Buffer(batch * heads * t)
            let dq = Buffer(n), dk = Buffer(n), dv = Buffer(n)
            let scale = 1 / Float(d).squareRoot()
            let (B, H, T, D) = (Int64(batch), Int64(heads), Int64(t), Int64(d))
            let fwdFlops = 4.0 * Double(batch * heads * t * t * d)
            let reps = max(5, min(40, Int(2e9 / (3.5 * fwdFlops))))
            let fwd = Timing.median(reps: reps) { ck_attention_forward(o.p, lse.p, q.p, k.p, v.p, B, H, T, D, scale) }
            let both = Timing.median(reps: reps) {
                ck_attention_forward(o.p, lse.p, q.p, k.p, v.p, B, H, T, D, scale)
                ck_attention_backward(dq.p, dk.p, dv.p, dO.p, q.p, k.p, v.p, o.p, lse.p, B, H, T, D, scale)
            }
            let tag = "attention_\(side)x\(side)_b\(batch)_h\(heads)_d\(d)"
            emit(BenchmarkRecord(name: tag + "_fwd_bwd", value: 3.5 * fwdFlops / both / 1e9, unit: "GFLOP/s",
                                 ratio: 3.5 * fwdFlops / both / probes.peakFlops,
                                 reference: "\(peak); \(t) tokens; fwd+bwd \(String(format: "%.3f", both * 1e3)) ms"))
            emit(BenchmarkRecord(name: tag + "_fwd", value: fwdFlops / fwd / 1e9, unit: "GFLOP/s", ratio: fwdFlops / fwd / probes.peakFlops,
                                 reference: "\(peak); fwd \(String(format: "%.3f", fwd * 1e3)) ms"))
        }
    }

    // MARK: - U-Net training step

    struct StepMeasure {
        var ms: Double
        /// Peak live tensor bytes over the warm-up and timed steps, minus the live bytes before.
        var peakTensorBytes: Int
        /// Peak RSS (VmHWM, reset before the first step) minus the RSS then; nil without /proc.
        var peakRSSDelta: Int?
        var parameters: Int
    }

    /// One DSM training step (t ~ U(1e-3, 1), ε ~ N(0, I), VP-linear, ε-loss, backward, AdamW
    /// lr 1e-3 wd 0.01) of `config` at `batch`: the median over `iterations` after `warmup`.
    static func swiftStep(_ config: UNet.Configuration, batch: Int, iterations: Int, warmup: Int) throws -> StepMeasure {
        Runtime.releaseCachedMemory()
        let net = try UNet(config, seed: 0)
        let opt = try Adam.adamW(net, learningRate: 1e-3, weightDecay: 0.01)
        var data = Philox(seed: 1)
        let s = config.imageSize
        let x0 = try data.uniform([batch, config.imageChannels, s, s], low: -1, high: 1)
        let model = DiffusionModel(network: net, process: .vpLinear(), parameterization: .epsilon)
        var rng = Philox(seed: 2)
        let live = Runtime.liveTensorBytes
        Runtime.resetPeakMemory()
        let rss0 = ProcessMemory.residentBytes()
        let hwm = ProcessMemory.resetPeak()
        let times = try Timing.samples(reps: iterations, warmup: warmup) {
            try net.valueWithGradient { try denoisingScoreMatchingLoss(model: model, x0: x0, rng: &rng) }
            try opt.update()
        }
        let rss = hwm ? ProcessMemory.peakResidentBytes().map { $0 - (rss0 ?? 0) } : nil
        return StepMeasure(ms: Timing.median(of: times) * 1e3, peakTensorBytes: Runtime.peakTensorBytes - live,
                           peakRSSDelta: rss0 == nil ? nil : rss, parameters: net.parameterCount)
    }

    struct TorchMeasure {
        var ms: Double
        var peakTensorBytes: Int?
        var peakRSSDelta: Int?
        var parameters: Int
        var note: String
    }

    static func pytorchStep(script: String, python: String, config: String, batch: Int, iterations: Int, warmup: Int,
                            memorySteps: Int) -> (TorchMeasure?, String) {
        let (obj, note) = PyTorchReference.run(script: script, python: python, arguments: [
            "--config", config, "--batch", String(batch), "--iters", String(iterations), "--warmup", String(warmup),
            "--memory-steps", String(memorySteps)])
        guard let obj, let ms = obj["median_ms"] as? Double else { return (nil, note) }
        return (TorchMeasure(ms: ms, peakTensorBytes: obj["peak_tensor_bytes"] as? Int, peakRSSDelta: obj["peak_rss_delta_bytes"] as? Int,
                             parameters: obj["parameters"] as? Int ?? -1, note: note), note)
    }

    /// Alternating rounds of ours and PyTorch's step (the machine is shared and noisy, so both
    /// see the same conditions); reports the median over rounds of each side's median, and the
    /// peak memory of each side (PyTorch's exact tensor peak is measured in the first round).
    static func unetStep(batch: Int, rounds: Int, quick: Bool, script: String, python: String, emit: (BenchmarkRecord) -> Void) throws {
        for (name, config) in unetConfigurations {
            let big = config.imageSize >= 16
            let (iters, warmup) = quick ? (2, 1) : (big ? 5 : 15, 2)
            var ours: [Double] = [], theirs: [Double] = []
            var swiftMemory: StepMeasure?
            var torch: TorchMeasure?
            var note = ""
            for round in 0..<rounds {
                let m = try swiftStep(config, batch: batch, iterations: iters, warmup: warmup)
                ours.append(m.ms)
                if swiftMemory == nil { swiftMemory = m }
                let (t, n) = pytorchStep(script: script, python: python, config: name, batch: batch, iterations: iters, warmup: warmup,
                                         memorySteps: round == 0 ? (quick ? 1 : 2) : 0)
                note = n
                guard let t else { break }
                theirs.append(t.ms)
                if round == 0 { torch = t }
            }
            let o = Timing.median(of: ours)
            let t = theirs.isEmpty ? nil : Timing.median(of: theirs)
            let params = swiftMemory?.parameters ?? 0
            var ref = note
            if let t, let torch {
                ref += String(format: ": %.1f ms (median of %d alternating rounds); ratio = its time / ours; parameters %d (ours) / %d (PyTorch)",
                              t, theirs.count, params, torch.parameters)
            }
            emit(BenchmarkRecord(name: "unet_\(name)_step_b\(batch)", value: o, unit: "ms/step", ratio: t.map { $0 / o }, reference: ref))
            let mib = { (b: Int) in Double(b) / 1_048_576 }
            if let m = swiftMemory {
                var r = "tensor storage held during the steps beyond the parameters and data"
                if let pt = torch?.peakTensorBytes {
                    r += String(format: "; PyTorch %.1f MiB (TorchDispatchMode storage tracking); ratio = its peak / ours", mib(pt))
                }
                emit(BenchmarkRecord(name: "unet_\(name)_peak_tensor_memory_b\(batch)", value: mib(m.peakTensorBytes), unit: "MiB",
                                     ratio: torch?.peakTensorBytes.map { Double($0) / Double(max(m.peakTensorBytes, 1)) }, reference: r))
                if let rss = m.peakRSSDelta {
                    var r2 = "peak RSS (VmHWM reset before the first step) minus the RSS then; ours in the bench process"
                    if let pr = torch?.peakRSSDelta { r2 += String(format: "; PyTorch %.1f MiB in a fresh process; ratio = its / ours", mib(pr)) }
                    emit(BenchmarkRecord(name: "unet_\(name)_peak_rss_delta_b\(batch)", value: mib(rss), unit: "MiB",
                                         ratio: torch?.peakRSSDelta.map { Double($0) / Double(max(rss, 1)) }, reference: r2))
                }
            }
        }
    }
}

/// The process's resident memory from /proc (Linux).
enum ProcessMemory {
    static func residentBytes() -> Int? {
        guard let s = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8) else { return nil }
        let f = s.split(separator: " ")
        guard f.count > 1, let pages = Int(f[1]) else { return nil }
        return pages * Int(sysconf(Int32(_SC_PAGESIZE)))
    }

    static func peakResidentBytes() -> Int? {
        guard let s = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return nil }
        for line in s.split(separator: "\n") where line.hasPrefix("VmHWM:") {
            let f = line.split(separator: " ", omittingEmptySubsequences: true)
            if f.count >= 2, let kb = Int(f[1]) { return kb * 1024 }
        }
        return nil
    }

    /// Resets VmHWM to the current RSS (writing "5" to /proc/self/clear_refs).
    static func resetPeak() -> Bool {
        guard let h = FileHandle(forWritingAtPath: "/proc/self/clear_refs") else { return false }
        defer { try? h.close() }
        do { try h.write(contentsOf: Data("5".utf8)) } catch { return false }
        return true
    }
}
