import CKernels
import Distill
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
        let process = VPLinearProcess()
        let model = DiffusionModel(network: net, process: process, parameterization: .epsilon)
        let grid = try NoiseGrid.logSNRUniform(process, steps: 10)
        var rng = Philox(seed: 1)
        let x = try rng.normal([batch, 2])
        var ours: [Double] = [], theirs: [Double] = []
        var note = ""
        for _ in 0..<rounds {
            let t = try Timing.median(reps: 5, warmup: 1) { _ = try sampleDPMSolverPP2M(model, from: x, grid: grid) }
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

/// The quality-vs-NFE table of every sampler on the analytic mixtures (`METHODS.md` §5).
public enum SamplerQuality {
    public struct Row: Sendable {
        public var mixture: String
        public var sampler: String
        public var targetNFE: Int
        public var nfe: Int
        /// RMS distance to the ground-truth ODE solution from the same noise (deterministic samplers).
        public var odeError: Double?
        /// Sliced-W2 to exact samples.
        public var slicedW2: Double
    }

    /// Runs every sampler on EDM's ρ = 7 grid (VP-linear process, t = 1 → 1e-3, then a final
    /// denoise) with the step count that brings its NFE closest to each target, on `samples`
    /// points of the 2-D ring of 8 Gaussians and of the 64-D mixture.
    public static func run(nfes: [Int] = [5, 10, 20, 50], samples: Int = 2000, progress: ((Row) -> Void)? = nil) throws -> [Row] {
        let process = VPLinearProcess()
        var rows: [Row] = []
        for (name, gmm) in [("ring8 (2-D)", GaussianMixture.ring8()), ("gmm64 (64-D)", GaussianMixture.highDimensional64())] {
            var rng = Philox(seed: 42)
            let noise = try rng.normal([samples, gmm.dimension]) * Float(process.sigma(1))
            let (truth, _) = try gmm.solveProbabilityFlow(noise, from: (process.alpha(1), process.sigma(1)), to: (1, 0))
            let (exact, _) = try gmm.sample(samples, seed: 7)
            let (data, _) = try gmm.sample(1000, seed: 8)
            for kind in SamplerKind.allCases where kind != .rk45 && kind != .dpmSolverAdaptive {
                for target in nfes {
                    let (grid, orders) = try plan(kind, target: target, process: process, gmm: gmm)
                    let moments = kind == .analyticDPM ? try analyticDPMMoments(gmm, grid: grid, data: data) : nil
                    let r = kind == .dpmSolver3 || kind == .dpmSolver2
                        ? try sampleDPMSolver(gmm, from: noise, grid: grid, orders: orders)
                        : try kind.sample(gmm, from: noise, grid: grid, options: .init(seed: 3), analyticMoments: moments)
                    let err = kind.isStochastic ? nil : rms(r.sample, truth)
                    let row = Row(mixture: name, sampler: kind.rawValue, targetNFE: target, nfe: r.evaluations, odeError: err,
                                  slicedW2: try slicedWasserstein2(r.sample, exact, seed: 1))
                    rows.append(row)
                    progress?(row)
                }
            }
        }
        return rows
    }

    /// The grid (and DPM-Solver orders) whose NFE is closest to `target`.
    static func plan(_ kind: SamplerKind, target: Int, process: VPLinearProcess, gmm: GaussianMixture) throws -> (NoiseGrid, [Int]) {
        let sigmaMin = process.sigma(1e-3) / process.alpha(1e-3)
        func grid(_ steps: Int) throws -> NoiseGrid { try NoiseGrid.karras(process, steps: steps, sigmaMin: sigmaMin) }
        if kind == .dpmSolver2 || kind == .dpmSolver3 {
            // The official allocation for the noisy steps, plus the final denoise (1 NFE).
            let orders = try dpmSolverSinglestepOrders(nfe: max(target - 1, 1), order: kind == .dpmSolver2 ? 2 : 3)
            return (try grid(orders.count + 1), orders + [1])
        }
        var best: (Int, Int) = (1, Int.max)
        let probe = try Tensor.zeros([1, gmm.dimension])
        for steps in 1...max(2, target + 2) {
            let g = try grid(steps)
            let moments = kind == .analyticDPM ? Array(repeating: 0.5, count: g.levels.count) : nil
            let nfe = try kind.sample(gmm, from: probe, grid: g, analyticMoments: moments).evaluations
            if abs(nfe - target) < best.1 { best = (steps, abs(nfe - target)) }
        }
        return (try grid(best.0), [])
    }

    static func rms(_ a: Tensor, _ b: Tensor) -> Double {
        (zip(a.scalars, b.scalars).reduce(0.0) { $0 + Double($1.0 - $1.1) * Double($1.0 - $1.1) } / Double(a.count)).squareRoot()
    }

    /// The rows as a markdown table (one line per sampler and mixture, columns per target NFE).
    public static func markdown(_ rows: [Row]) -> String {
        let nfes = Array(Set(rows.map(\.targetNFE))).sorted()
        var out = "| mixture | sampler | " + nfes.map { "NFE≈\($0): ODE err / SW2 (NFE)" }.joined(separator: " | ") + " |\n"
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
