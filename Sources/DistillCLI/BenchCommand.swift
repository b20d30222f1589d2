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
        Groups: \(BenchmarkSuite.groupNames.joined(separator: ", ")). Without --group all run but \
        \(BenchmarkSuite.onRequest.sorted().joined(separator: ", ")), which take minutes each and run only when named.

        The machine's peak FP32 FLOP/s and triad bandwidth are measured first, in-process; GEMM is also \
        compared with OpenBLAS using its own threads, and the MLP and U-Net training steps and MLP sampling \
        with the PyTorch reference scripts in benchmarks/pytorch (torch 2.13.0+cpu) at the same thread count. \
        Build with -c release: a debug build runs the C kernels unoptimized.

        Examples:
          swift run -c release distill bench
          swift run -c release distill bench --group mlp --json
          swift run -c release distill bench --group unet --simd avx2
          swift run -c release distill bench --group generators --markdown-dir benchmarks/results
        """
    )

    @Option(name: .customLong("group"), help: "Run only these groups (repeatable).")
    var groups: [String] = []

    @Flag(help: "Small sizes and few repetitions (a smoke test).")
    var quick = false

    @Flag(help: "One JSON object per line: name, value, unit, ratio, reference.")
    var json = false

    @Option(parsing: .unconditional, help: "Threads (default: DISTILL_NUM_THREADS or all CPUs).")
    var threads: Int?

    @Option(help: "Cap the kernels' SIMD level: scalar, avx2, avx512 or neon (default: DISTILL_SIMD or the best the CPU has). PyTorch references are restricted to the same ISA.")
    var simd: String?

    @Option(help: "The PyTorch reference script.")
    var pytorchScript = "benchmarks/pytorch/mlp_dsm.py"

    @Option(help: "Python interpreter for the reference script.")
    var python = "python3"

    @Option(help: "Also write the records as JSON lines to this file (atomically).")
    var output: String?

    @Option(help: "Write the result tables of sampler-quality, distillation and generators as markdown pages (and pictures) into this folder.")
    var markdownDir: String?

    @Option(help: "With --group digits: the U-Net teacher's checkpoint, reused when it exists (trained and written otherwise).")
    var digitsTeacher: String?

    @Option(help: "A work folder for the evidence groups: each finished seed (distillation, generators) or method run (digits), and the digits teacher's checkpoint unless --digits-teacher is given, is kept there; the same command resumes after the last finished piece.")
    var work: String?

    @Option(help: "Seeds of the evidence groups distillation, generators and digits' generator and consistency rows; figures are mean ± sd over them (default 5; 2 with --quick).")
    var seeds: Int?

    @Flag(help: "Leave out the evidence groups' progress lines (printed to stderr by default).")
    var quiet = false

    func run() throws {
        if let bad = groups.first(where: { !BenchmarkSuite.groupNames.contains($0) }) {
            fail("unknown benchmark group '\(bad)'; valid: \(BenchmarkSuite.groupNames.joined(separator: ", "))")
        }
        if let threads {
            guard threads >= 1 else { fail("--threads must be at least 1") }
            Runtime.threadCount = threads
        }
        if let simd {
            guard let level = SIMDLevel(rawValue: simd) else {
                fail("--simd \(simd): expected one of \(SIMDLevel.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            guard Runtime.supportedSIMDLevels.contains(level) else {
                fail("--simd \(simd): not available on this CPU; supported: \(Runtime.supportedSIMDLevels.map(\.rawValue).joined(separator: ", "))")
            }
            Runtime.simdLevel = level
        }
        var options = BenchmarkSuite.Options(quick: quick, groups: groups.isEmpty ? nil : Set(groups),
                                             pytorchScript: pytorchScript, python: python)
        options.digitsTeacher = digitsTeacher
        if let work {
            do { try FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true) } catch {
                fail("--work \(work): cannot create the folder: \(error)")
            }
            options.work = work
        }
        if let seeds {
            guard (1...100).contains(seeds) else { fail("--seeds \(seeds): expected 1 to 100") }
            options.seeds = seeds
        } else if quick {
            options.seeds = 2
        }
        if !quiet { options.log = { FileHandle.standardError.write(Data(($0 + "\n").utf8)) } }
        if !json { print(BenchmarkRecord.tableHeader) }
        var records: [BenchmarkRecord] = []
        if let markdownDir {
            do { try FileManager.default.createDirectory(atPath: markdownDir, withIntermediateDirectories: true) } catch {
                fail("cannot create \(markdownDir): \(error)")
            }
        }
        try BenchmarkSuite.run(options, table: { table in
            guard let markdownDir else { return }
            let page = table.markdown(command: "distill bench --group \(table.group) --markdown-dir \(markdownDir)")
            let path = "\(markdownDir)/\(table.name).md"
            do {
                for picture in table.pictures { try picture.image.writePNG(to: "\(markdownDir)/\(table.name)-\(picture.name).png") }
                try FileIO.writeAtomically(path, Array(page.utf8))
            } catch { fail("cannot write \(path): \(error)") }
            if !json { print("wrote \(path)") }
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
