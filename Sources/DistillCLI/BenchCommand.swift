import ArgumentParser
import Distill
import DistillBenchmarks
import Foundation

/// Kernel and model benchmarks with ratios measured in the same run.
struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Benchmark kernels and training steps; every figure with its in-run reference.",
        discussion: """
        Groups: \(BenchmarkSuite.groupNames.joined(separator: ", ")). The machine's peak FP32 FLOP/s and
        triad bandwidth are measured first, in-process; GEMM is also compared with OpenBLAS
        using its own threads, and the MLP training step with the PyTorch reference script
        (benchmarks/pytorch/mlp_dsm.py, torch 2.13.0+cpu) at the same thread count.
        Build with -c release: a debug build runs the C kernels unoptimized.

        Examples:
          swift run -c release distill bench
          swift run -c release distill bench --group mlp --json
        """
    )

    @Option(name: .customLong("group"), help: "Run only these groups (repeatable).")
    var groups: [String] = []

    @Flag(help: "Small sizes and few repetitions (a smoke test).")
    var quick = false

    @Flag(help: "One JSON object per line: name, value, unit, ratio, reference.")
    var json = false

    @Option(help: "Threads (default: DISTILL_NUM_THREADS or all CPUs).")
    var threads: Int?

    @Option(help: "The PyTorch reference script.")
    var pytorchScript = "benchmarks/pytorch/mlp_dsm.py"

    @Option(help: "Python interpreter for the reference script.")
    var python = "python3"

    @Option(help: "Also write the records as JSON lines to this file (atomically).")
    var output: String?

    @Option(help: "With --group sampler-quality: write the quality-vs-NFE table as markdown to this file.")
    var markdown: String?

    func run() throws {
        if let bad = groups.first(where: { !BenchmarkSuite.groupNames.contains($0) }) {
            fail("unknown benchmark group '\(bad)'; valid: \(BenchmarkSuite.groupNames.joined(separator: ", "))")
        }
        if let threads {
            guard threads >= 1 else { fail("--threads must be at least 1") }
            Runtime.threadCount = threads
        }
        let options = BenchmarkSuite.Options(quick: quick, groups: groups.isEmpty ? nil : Set(groups),
                                             pytorchScript: pytorchScript, python: python)
        if !json { print(BenchmarkRecord.tableHeader) }
        var records: [BenchmarkRecord] = []
        try BenchmarkSuite.run(options, qualityTable: { rows in
            guard let markdown else { return }
            let text = "# Sampler quality vs NFE\n\nWritten by `distill bench --group sampler-quality --markdown \(markdown)`.\n" +
                "Each cell: RMS error against the ground-truth probability-flow ODE solution from the same noise (deterministic samplers; " +
                "— for stochastic ones) / sliced-W2 to exact samples, and the NFE actually used. VP-linear process, EDM ρ = 7 grid from " +
                "t = 1 to t = 1e-3 plus a final denoise.\n\n" + SamplerQuality.markdown(rows)
            do { try FileIO.writeAtomically(markdown, Array(text.utf8)) } catch { fail("cannot write \(markdown): \(error)") }
        }, distillationTable: { name, rows in
            guard let markdown else { return }
            let path = markdown.replacingOccurrences(of: ".md", with: "") + "-\(name).md"
            let text = "# Distillation on the \(name) mixture\n\nWritten by `distill bench --group distillation --markdown \(markdown)`: " +
                "the exact mixture is the teacher; students are MLPs trained by each method; sliced-W2 to exact samples, and for " +
                "students that map the same noise deterministically the teacher's way, the RMS distance to the teacher's exact ODE map.\n\n" +
                DistillationExperiment.markdown(rows)
            do { try FileIO.writeAtomically(path, Array(text.utf8)) } catch { fail("cannot write \(path): \(error)") }
        }) { r in
            records.append(r)
            print(json ? r.jsonLine : r.tableRow)
            flushStandardOutput()
        }
        if let output {
            try FileIO.writeAtomically(output, Array(records.map { $0.jsonLine + "\n" }.joined().utf8))
        }
    }
}
