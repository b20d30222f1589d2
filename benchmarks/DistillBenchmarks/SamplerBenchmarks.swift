import CKernels
import Distill
import DistillSupport
import Foundation

/// Sampler benchmarks: the fused step kernel's bandwidth, sampling throughput against PyTorch,
/// and the quality-vs-NFE table on the analytic mixtures.
enum SamplerBenchmarks {
    /// The fused update with 3 inputs (DPM-Solver++(2M): x, D₀, D₋₁) with and without fresh
    /// noise, GB/s against the triad (bytes: 3 reads + 1 write per element).
    static func fusedStep(elements n: Int, probes: MachineProbes, emit: (BenchmarkRecord) -> Void) {
        let a = Buffer(n), b = Buffer(n), c = Buffer(n), y = Buffer(n)
        let triad = String(format: "triad %.1f GB/s", probes.triadBytesPerSecond / 1e9)
        for (name, std) in [("sampler_step_3inputs", Float(0)), ("sampler_step_3inputs_noise", Float(0.5))] {
            var inputs: [UnsafePointer<Float>?] = [UnsafePointer(a.p), UnsafePointer(b.p), UnsafePointer(c.p)]
            let coeffs: [Float] = [0.9, 0.3, -0.1]
            let t = Timing.median(reps: 7, warmup: 1) {
                ck_sampler_combine(y.p, &inputs, coeffs, 3, std, 1, 2, 0, Int64(n))
            }
            let bw = Double(16 * n) / t
            emit(BenchmarkRecord(name: name, value: bw / 1e9, unit: "GB/s", ratio: bw / probes.triadBytesPerSecond, reference: triad))
        }
    }

    /// DPM-Solver++(2M), 10 steps, MLP score network, batch 16384: samples/s against
    /// `pytorch/mlp_sample.py` in alternating rounds; ratio = ours / PyTorch's samples/s.
    static func throughput(batch: Int, rounds: Int, script: String, python: String, emit: (BenchmarkRecord) -> Void) throws {
        let net = try MLPScoreNetwork(.init(), seed: 0)
        let process = DiffusionProcess.vpLinear()
        let model = DiffusionModel(network: net, process: process, parameterization: .epsilon)
        let plan = SamplingPlan(sampler: .dpmpp2M, nfe: 10, spacing: .logSNR, finalDenoise: false)
        var rng = Philox(seed: 1)
        let x = try rng.normal([batch, 2])
        var ours: [Double] = [], theirs: [Double] = []
        var note = ""
        for _ in 0..<rounds {
            let t = try Timing.median(reps: 5, warmup: 1) { _ = try plan.run(model, process: process, from: x) }
            ours.append(Double(batch) / t)
            let (r, n) = pytorchSamplesPerSecond(script: script, python: python, batch: batch)
            note = n
            if let r { theirs.append(r) } else { break }
        }
        let o = Timing.median(of: ours)
        let t = theirs.isEmpty ? nil : Timing.median(of: theirs)
        if let t { note += String(format: ": %.0f samples/s (median of %d alternating rounds); ratio = ours / PyTorch", t, theirs.count) }
        emit(BenchmarkRecord(name: "sampling_dpmpp2m_10steps_b\(batch)", value: o, unit: "samples/s", ratio: t.map { o / $0 }, reference: note))
    }

    static func pytorchSamplesPerSecond(script: String, python: String, batch: Int) -> (Double?, String) {
        let (obj, note) = PyTorchReference.run(script: script, python: python, arguments: ["--batch", String(batch), "--iters", "5"])
        guard let sps = obj?["samples_per_second"] as? Double else { return (nil, note) }
        return (sps, note)
    }
}

/// The quality-vs-NFE table of every sampler on the analytic mixtures (`docs/methods.md` §5).
package enum SamplerQuality {
    package struct Row: Sendable {
        package var mixture: String
        package var sampler: String
        package var targetNFE: Int
        package var nfe: Int
        /// RMS distance to the ground-truth ODE solution from the same noise (deterministic samplers).
        package var odeError: Double?
        /// Sliced-W2 to exact samples.
        package var slicedW2: Double
    }

    /// Runs every diffusion sampler on EDM's ρ = 7 grid (VP-linear process, t = 1 → 1e-3, then
    /// a final denoise) with the plan for each target NFE, on `samples` points of the 2-D ring
    /// of 8 Gaussians and of the 64-D mixture. Adaptive samplers are left out (their NFE is
    /// not a budget).
    package static func run(nfes: [Int] = [5, 10, 20, 50], samples: Int = 2000, progress: ((Row) -> Void)? = nil) throws -> [Row] {
        let process = DiffusionProcess.vpLinear()
        var rows: [Row] = []
        for (name, gmm) in [("ring8 (2-D)", GaussianMixture.ring8()), ("gmm64 (64-D)", GaussianMixture.highDimensional64())] {
            let teacher = TrainedModel(exact: gmm)
            var rng = Philox(seed: 42)
            let noise = try rng.normal([samples, gmm.dimension]) * Float(process.sigma(1))
            let (truth, _) = try gmm.solveProbabilityFlow(noise, from: (process.alpha(1), process.sigma(1)), to: (1, 0))
            let (exact, _) = try gmm.sample(samples, seed: 7)
            let (data, _) = try gmm.sample(1000, seed: 8)
            for kind in SamplerKind.allCases where ![.rk45, .dpmSolverAdaptive, .consistency].contains(kind) {
                for target in nfes {
                    let r = try teacher.sample(from: noise, plan: SamplingPlan(sampler: kind, nfe: target), seed: 3, data: data)
                    let err = kind.isStochastic ? nil : rmsDistance(r.sample, truth)
                    let row = Row(mixture: name, sampler: kind.rawValue, targetNFE: target, nfe: r.evaluations, odeError: err,
                                  slicedW2: try slicedWasserstein2(r.sample, exact, seed: 1))
                    rows.append(row)
                    progress?(row)
                }
            }
        }
        return rows
    }

    /// The rows as a markdown table (one line per sampler and mixture, columns per target NFE).
    package static func markdown(_ rows: [Row]) -> String {
        let nfes = Array(Set(rows.map(\.targetNFE))).sorted()
        var out = "| mixture | sampler | " + nfes.map { "NFE≤\($0): ODE err / SW2 (NFE)" }.joined(separator: " | ") + " |\n"
        out += "|---|---|" + nfes.map { _ in "---|" }.joined() + "\n"
        var seen: [String] = []
        for r in rows where !seen.contains(r.mixture + r.sampler) {
            seen.append(r.mixture + r.sampler)
            let cells = nfes.map { n -> String in
                guard let c = rows.first(where: { $0.mixture == r.mixture && $0.sampler == r.sampler && $0.targetNFE == n }) else { return "" }
                return (c.odeError.map { String(format: "%.3g", $0) } ?? "—") + " / " + String(format: "%.3g", c.slicedW2) + " (\(c.nfe))"
            }
            out += "| \(r.mixture) | \(r.sampler) | " + cells.joined(separator: " | ") + " |\n"
        }
        return out
    }
}
