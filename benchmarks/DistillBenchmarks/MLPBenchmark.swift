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
        let model = DiffusionModel(network: net, process: .vpLinear(), parameterization: .epsilon)
        var rng = Philox(seed: 2)
        let t = try Timing.median(reps: iterations, warmup: 10) {
            try net.valueWithGradient {
                try denoisingScoreMatchingLoss(model: model, x0: x0, rng: &rng)
            }
            try opt.update()
        }
        return t * 1e3
    }

    /// The PyTorch script's median, or nil with the reason when it cannot run.
    static func pytorchStepMilliseconds(script: String, python: String, batch: Int, iterations: Int) -> (ms: Double?, note: String) {
        let (obj, note) = PyTorchReference.run(script: script, python: python,
                                               arguments: ["--batch", String(batch), "--iters", String(iterations)])
        guard let ms = obj?["median_ms"] as? Double else { return (nil, note) }
        return (ms, note)
    }

    /// Alternates rounds of ours and PyTorch's (the machine is shared and noisy, so both see
    /// the same conditions) and reports the median over rounds of each side's median.
    static func run(batches: [Int], rounds: Int, script: String, python: String, emit: (BenchmarkRecord) -> Void) throws {
        for batch in batches {
            let iters = batch >= 2048 ? 30 : 150
            var ours: [Double] = [], theirs: [Double] = []
            var note = ""
            for _ in 0..<rounds {
                ours.append(try swiftStepMilliseconds(batch: batch, iterations: iters))
                let (ms, n) = pytorchStepMilliseconds(script: script, python: python, batch: batch, iterations: iters)
                note = n
                if let ms { theirs.append(ms) } else { break }
            }
            let o = Timing.median(of: ours)
            let t = theirs.isEmpty ? nil : Timing.median(of: theirs)
            if let t {
                note += ": \(String(format: "%.2f", t)) ms (median of \(theirs.count) alternating rounds); ratio = its time / ours"
            }
            emit(BenchmarkRecord(name: "mlp_dsm_step_b\(batch)", value: o, unit: "ms/step", ratio: t.map { $0 / o }, reference: note))
        }
    }
}
