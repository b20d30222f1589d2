import Distill
import Foundation

/// The benchmark suite behind `distill bench`: machine ceilings, GEMM, fused linear,
/// elementwise kernels and the MLP training step against PyTorch, each reported with a ratio
/// measured in the same run.
public enum BenchmarkSuite {
    public struct Options: Sendable {
        /// Smaller sizes and fewer repetitions (a smoke run).
        public var quick: Bool
        /// Benchmark groups to run (nil: all but the long "sampler-quality" table, which runs
        /// only when asked for by name).
        public var groups: Set<String>?
        public var pytorchScript: String
        public var python: String

        public init(quick: Bool = false, groups: Set<String>? = nil,
                    pytorchScript: String = "benchmarks/pytorch/mlp_dsm.py", python: String = "python3") {
            self.quick = quick
            self.groups = groups
            self.pytorchScript = pytorchScript
            self.python = python
        }
    }

    public static let groupNames = ["gemm", "linear", "elementwise", "mlp", "sampler-step", "sampling", "sampler-quality", "distillation",
                                     "conv", "attention", "unet"]

    /// Runs the selected groups, calling `emit` as each figure is measured (and `qualityTable`
    /// with the sampler-quality rows when that group ran).
    public static func run(_ o: Options, qualityTable: (([SamplerQuality.Row]) -> Void)? = nil,
                           distillationTable: ((String, [DistillationExperiment.Row]) -> Void)? = nil,
                           emit: (BenchmarkRecord) -> Void) throws {
        func wanted(_ g: String) -> Bool { o.groups?.contains(g) ?? true }
        let elements = o.quick ? 1 << 22 : 1 << 26
        let probes = MachineProbes.measure(elements: elements, reps: o.quick ? 2 : 5)
        emit(BenchmarkRecord(name: "peak_fp32", value: probes.peakFlops / 1e9, unit: "GFLOP/s",
                             reference: "\(probes.peakISA) FMA chains, \(Runtime.threadCount) threads"))
        emit(BenchmarkRecord(name: "triad_bandwidth", value: probes.triadBytesPerSecond / 1e9, unit: "GB/s",
                             reference: "\(elements) floats per array"))
        if wanted("gemm") { KernelBenchmarks.gemm(sizes: o.quick ? [256] : [256, 512, 1024, 2048], probes: probes, emit: emit) }
        if wanted("linear") { KernelBenchmarks.linear(batch: o.quick ? 512 : 4096, width: 256, probes: probes, emit: emit) }
        if wanted("elementwise") { KernelBenchmarks.elementwise(elements: elements, probes: probes, emit: emit) }
        if wanted("sampler-step") { SamplerBenchmarks.fusedStep(elements: elements, probes: probes, emit: emit) }
        if wanted("sampling") {
            try SamplerBenchmarks.throughput(batch: o.quick ? 2048 : 16384, rounds: o.quick ? 1 : 3,
                                             script: o.pytorchScript.replacingOccurrences(of: "mlp_dsm.py", with: "mlp_sample.py"),
                                             python: o.python, emit: emit)
        }
        if wanted("sampler-quality") && o.groups?.contains("sampler-quality") == true {
            let rows = try SamplerQuality.run(nfes: o.quick ? [5, 10] : [5, 10, 20, 50], samples: o.quick ? 300 : 2000)
            qualityTable?(rows)
            for row in rows {
                let tag = row.mixture.hasPrefix("ring8") ? "ring8" : "gmm64"
                if let e = row.odeError {
                    emit(BenchmarkRecord(name: "quality_\(tag)_\(row.sampler)_nfe\(row.nfe)_ode_error", value: e, unit: "rms"))
                }
                emit(BenchmarkRecord(name: "quality_\(tag)_\(row.sampler)_nfe\(row.nfe)_sw2", value: row.slicedW2, unit: "SW2"))
            }
        }
        if o.groups?.contains("distillation") == true {
            for (name, gmm, hidden) in [("ring8", GaussianMixture.ring8(), [128, 128, 128]), ("gmm64", GaussianMixture.highDimensional64(), [256, 256, 256])] {
                let budget = Distiller.Budget(steps: o.quick ? 300 : 3000, batch: 512, hidden: hidden)
                let rows = try DistillationExperiment(mixture: gmm, budget: budget, samples: o.quick ? 500 : 2000).run()
                distillationTable?(name, rows)
                for r in rows {
                    let tag = r.method.split(separator: " ").first.map(String.init) ?? r.method
                    emit(BenchmarkRecord(name: "distill_\(name)_\(tag)_nfe\(r.nfe)_sw2", value: r.slicedW2, unit: "SW2", reference: r.method))
                }
            }
        }
        if wanted("conv") { ImageBenchmarks.convolution(batch: 64, probes: probes, quick: o.quick, emit: emit) }
        if wanted("attention") { ImageBenchmarks.attention(batch: 64, probes: probes, quick: o.quick, emit: emit) }
        if wanted("unet") {
            try ImageBenchmarks.unetStep(batch: 64, rounds: o.quick ? 1 : 3, quick: o.quick,
                                         script: o.pytorchScript.replacingOccurrences(of: "mlp_dsm.py", with: "unet_step.py"),
                                         python: o.python, emit: emit)
        }
        if wanted("mlp") { try MLPBenchmark.run(batches: o.quick ? [256] : [4096, 256], rounds: o.quick ? 1 : 3, script: o.pytorchScript,
                                                 python: o.python, emit: emit) }
    }
}
