import Distill
import Foundation

/// One denoising-score-matching training step of the 2-D MLP score network
/// (2 → 256 → 256 → 256 → 2, SiLU, 64-wide sinusoidal time embedding; forward, backward,
/// AdamW), against `benchmarks/pytorch/mlp_dsm.py` running the same model and step.
enum MLPBenchmark {
    /// Milliseconds per step (median).
    static func swiftStepMilliseconds(batch: Int, iterations: Int) throws -> Double {
        let net = try MLPScoreNetwork(.init(), seed: 0)
        let opt = try Adam.adamW(net, learningRate: 1e-3, weightDecay: 0.01)
        let x0 = try ToyDataset.eightGaussians.sample(batch, seed: 1)
        let process = VPLinearProcess()
        var rng = Philox(seed: 2)
        let t = try Timing.median(reps: iterations, warmup: 10) {
            try net.valueWithGradient {
                try denoisingScoreMatchingLoss(x0: x0, process: process, rng: &rng) { try net($0, time: $1) }
            }
            try opt.update()
        }
        return t * 1e3
    }

    /// The PyTorch script's median, or nil with the reason when it cannot run.
    static func pytorchStepMilliseconds(script: String, python: String, batch: Int, iterations: Int,
                                        threads: Int) -> (ms: Double?, note: String) {
        guard FileManager.default.fileExists(atPath: script) else { return (nil, "script not found at \(script)") }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = [python, script, "--batch", String(batch), "--threads", String(threads), "--iters", String(iterations), "--json"]
        let out = Pipe()
        p.standardOutput = out
        p.standardError = FileHandle.nullDevice
        do { try p.run() } catch { return (nil, "could not start \(python): \(error)") }
        let data = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        guard p.terminationStatus == 0,
              let obj = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
              let ms = obj["median_ms"] as? Double else {
            return (nil, "the script failed (is torch installed? pip install \"torch==2.13.0+cpu\")")
        }
        let fused = (obj["adamw_fused"] as? Bool) == true ? ", fused AdamW" : ""
        return (ms, "PyTorch \(obj["torch_version"] as? String ?? "?") \(threads) threads\(fused): \(String(format: "%.2f", ms)) ms; ratio = its time / ours")
    }

    static func run(batches: [Int], script: String, python: String, emit: (BenchmarkRecord) -> Void) throws {
        for batch in batches {
            let iters = batch >= 2048 ? 30 : 150
            let ours = try swiftStepMilliseconds(batch: batch, iterations: iters)
            let (torch, note) = pytorchStepMilliseconds(script: script, python: python, batch: batch, iterations: iters,
                                                        threads: Runtime.threadCount)
            emit(BenchmarkRecord(name: "mlp_dsm_step_b\(batch)", value: ours, unit: "ms/step",
                                 ratio: torch.map { $0 / ours }, reference: note))
        }
    }
}
