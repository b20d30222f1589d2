import Distill
import DistillSupport
import Foundation

/// The benchmark suite behind `distill bench`: machine ceilings, GEMM, fused linear,
/// elementwise kernels and the MLP training step against PyTorch, each reported with a ratio
/// measured in the same run.
package enum BenchmarkSuite {
    package struct Options: Sendable {
        /// Smaller sizes and fewer repetitions (a smoke run).
        package var quick: Bool
        /// Benchmark groups to run (nil: all but the long "sampler-quality" table, which runs
        /// only when asked for by name).
        package var groups: Set<String>?
        package var pytorchScript: String
        package var python: String
        /// The digits group's teacher checkpoint: reused when it exists, written otherwise.
        package var digitsTeacher: String?
        /// The evidence groups' work folder: each finished seed (distillation, generators) and
        /// method run (digits) is kept in a subfolder per page and read back on a rerun with the
        /// same settings, and so is the digits teacher's checkpoint unless ``digitsTeacher`` is given.
        package var work: String?

        /// The work subfolder of `page` (created), or nil without a work folder.
        func workFolder(_ page: String) throws -> String? {
            guard let work else { return nil }
            let dir = "\(work)/\(page)"
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            return dir
        }
        /// Seeds of the evidence groups (distillation, generators): each figure is reported as
        /// mean ± sd over them.
        package var seeds = 5
        /// Progress lines of the long evidence groups.
        package var log: (@Sendable (String) -> Void)?

        package init(quick: Bool = false, groups: Set<String>? = nil,
                    pytorchScript: String = "benchmarks/pytorch/mlp_dsm.py", python: String = "python3") {
            self.quick = quick
            self.groups = groups
            self.pytorchScript = pytorchScript
            self.python = python
        }
    }

    package static let groupNames = ["gemm", "linear", "elementwise", "mlp", "sampler-step", "sampling", "conv", "attention", "unet",
                                     "sampler-quality", "distillation", "generators", "digits"]
    /// The long evidence groups (minutes each): they run only when named.
    package static let onRequest: Set<String> = ["sampler-quality", "distillation", "generators", "digits"]

    /// Runs the selected groups, calling `emit` as each figure is measured and `table` with each
    /// result table (sampler quality, distillation, generators) when its group ran.
    package static func run(_ o: Options, table: ((BenchmarkTable) -> Void)? = nil, emit: (BenchmarkRecord) -> Void) throws {
        func wanted(_ g: String) -> Bool { o.groups?.contains(g) ?? !onRequest.contains(g) }
        let elements = o.quick ? 1 << 22 : 1 << 26
        let probes = MachineProbes.measure(elements: elements, reps: o.quick ? 2 : 10)
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
        if wanted("sampler-quality") {
            let rows = try SamplerQuality.run(nfes: o.quick ? [5, 10] : [5, 10, 20, 50], samples: o.quick ? 300 : 2000)
            table?(BenchmarkTable(name: "sampler-quality", group: "sampler-quality", title: "Sampler quality vs NFE",
                                  description: "Each cell: RMS error against the ground-truth probability-flow ODE solution from the same " +
                                      "noise (deterministic samplers; — for stochastic ones) / sliced-W2 to exact samples, and the NFE " +
                                      "actually used. VP-linear process, EDM ρ = 7 grid from t = 1 to t = 1e-3 plus a final denoise, with the " +
                                      "steps each sampler's SamplingPlan fits into the NFE budget.",
                                  table: SamplerQuality.markdown(rows)))
            for row in rows {
                let tag = row.mixture.hasPrefix("ring8") ? "ring8" : "gmm64"
                if let e = row.odeError {
                    emit(BenchmarkRecord(name: "quality_\(tag)_\(row.sampler)_nfe\(row.nfe)_ode_error", value: e, unit: "rms"))
                }
                emit(BenchmarkRecord(name: "quality_\(tag)_\(row.sampler)_nfe\(row.nfe)_sw2", value: row.slicedW2, unit: "SW2"))
            }
        }
        let mixtures = [("ring8", GaussianMixture.ring8(), [128, 128, 128]), ("gmm64", GaussianMixture.highDimensional64(), [256, 256, 256])]
        if wanted("distillation") {
            for (name, gmm, hidden) in mixtures {
                let steps = o.quick ? 300 : 3000
                var runs: [[DistillationExperiment.Row]] = []
                let folder = try o.workFolder("distillation-\(name)")
                for seed in 1...o.seeds {
                    o.log?("distillation on \(name), seed \(seed) of \(o.seeds): \(steps) steps per stage")
                    var experiment = DistillationExperiment(mixture: gmm, steps: steps, hidden: hidden, samples: o.quick ? 500 : 4000, log: o.log)
                    experiment.seed = UInt64(seed)
                    runs.append(try WorkRecord.reuse(folder, "seed\(seed).json", fingerprint: try workFingerprint(experiment.settings, " samples \(experiment.samples)"),
                                                     log: o.log, isValid: DistillationExperiment.areValid) { try experiment.run() }.payload)
                }
                table?(BenchmarkTable(name: "distillation-\(name)", group: "distillation", title: "Distillation on the \(name) mixture",
                                      description: "The exact mixture is the teacher; students are MLPs (\(hidden.map(String.init).joined(separator: "×"))) " +
                                          "trained \(steps) steps per stage by each method. Every figure is mean ± sd over \(o.seeds) seeds; a seed " +
                                          "sets the training, the data stream, the \(o.quick ? 500 : 4000) evaluation noises and the exact draws. " +
                                          "Exact measures first: for students that map noise deterministically the teacher's way, the RMS distance " +
                                          "to the exact ODE map of the same noise; the samples' mean log-likelihood under the mixture minus that of " +
                                          "an exact draw (0 is ideal; negative: mass between modes; positive: mass crowded at the modes' centres); " +
                                          "modes covered (a mode counts when it receives ≥ 0.2 × its expected share); the fraction of samples " +
                                          "inside the 99.9% ellipsoid of their most likely component. Then the sliced-W2 to exact samples, whose " +
                                          "floor is the first row (two exact draws). Guided rows are scored against the guided exact teacher's " +
                                          "samples by SW2 only.",
                                      table: try DistillationExperiment.markdown(runs)))
                var seen: [String: Int] = [:]
                for r in try SeedSpread.combine(runs, key: { "\($0.method)|\($0.nfe)|\($0.note)" }, figures: { [$0.slicedW2, $0.mapError] }) {
                    let record = unique("distill_\(name)_\(slug(r.row.method))_nfe\(r.row.nfe)", &seen)
                    emit(BenchmarkRecord(name: record + "_sw2", value: r.spreads[0]!.mean, unit: "SW2", reference: r.row.method))
                    if let e = r.spreads[1] { emit(BenchmarkRecord(name: record + "_map_error", value: e.mean, unit: "rms", reference: r.row.method)) }
                }
            }
        }
        if wanted("generators") {
            for (name, gmm, hidden) in mixtures {
                var experiment = GeneratorExperiment(mixture: gmm, steps: o.quick ? 200 : 4000, hidden: hidden)
                experiment.log = o.log
                let settings = experiment.settings
                experiment.samples = o.quick ? 500 : 4000
                var runs: [[GeneratorExperiment.Row]] = []
                // Pictures of the first seed's samples (kept with its run in the work folder).
                var firstSamples: [[Float]] = []
                let folder = try o.workFolder("generators-\(name)")
                for seed in 1...o.seeds {
                    o.log?("generators on \(name), seed \(seed) of \(o.seeds): \(settings.steps) steps each")
                    experiment.seed = UInt64(seed)
                    var samples: [[Float]] = []
                    experiment.onSamples = gmm.dimension == 2 && seed == 1 ? { _, x in samples.append(x.scalars) } : nil
                    let kept = try WorkRecord<GeneratorRunRecord>.reuse(folder, "seed\(seed).json",
                                                                        fingerprint: try workFingerprint(settings, " samples \(experiment.samples)"),
                                                                        log: o.log, isValid: { GeneratorExperiment.areValid($0.rows) && $0.samples.allSatisfy { $0.allSatisfy(\.isFinite) } }) {
                        GeneratorRunRecord(rows: try experiment.run(), samples: samples)
                    }.payload
                    runs.append(kept.rows)
                    if seed == 1 { firstSamples = kept.samples }
                }
                var pictures: [(name: String, image: RGBImage)] = []
                for (row, x) in zip(runs[0], firstSamples) where x.count % 2 == 0 && !x.isEmpty {
                    pictures.append((slug(row.method), try Pictures.scatter(try Tensor(shape: [x.count / 2, 2], scalars: x), range: -5...5, size: 260)))
                }
                table?(BenchmarkTable(name: "generators-\(name)", group: "generators", title: "One-step generators on the \(name) mixture",
                                      description: "Generators trained from the exact mixture's scores alone (no data): an MLP generator " +
                                          "(latent → x) per method, then SDS and VSD on free particles; the teacher's own samples at 1, 4 and " +
                                          "35 NFE for comparison. Every figure is mean ± sd over \(o.seeds) seeds (training, evaluation noise " +
                                          "and exact draws), \(experiment.samples) samples each. Log-likelihood gap: the samples' mean " +
                                          "log-likelihood under the mixture minus that of an exact draw (0 is ideal); a mode counts as covered " +
                                          "when the samples it is the most likely component of number at least 0.2 × its expected share; in-mode " +
                                          "fraction: samples inside the 99.9% ellipsoid of that component; sliced-W2 to exact samples, whose floor " +
                                          "is the first row. \(settings.steps) generator steps, batch \(settings.batch). Pictures: seed 1.",
                                      table: try GeneratorExperiment.markdown(runs), pictures: pictures))
                for r in try SeedSpread.combine(runs, key: { "\($0.method)|\($0.nfe)" }, figures: { [$0.slicedW2, Double($0.modesCovered)] }) {
                    emit(BenchmarkRecord(name: "generator_\(name)_\(slug(r.row.method))_nfe\(r.row.nfe)_sw2", value: r.spreads[0]!.mean, unit: "SW2",
                                         reference: "modes \(r.spreads[1]!.countText(of: r.row.modes))"))
                }
            }
        }
        if wanted("digits") {
            var settings = DigitsExperiment.Settings()
            if o.quick {
                settings.teacherSteps = 30
                settings.students.steps = 20
                settings.students.batch = 32
                settings.students.hidden = [64, 64]
                settings.generator.steps = 20
                settings.generator.hidden = [64, 64]
                settings.samples = 200
            }
            settings.seeds = o.seeds
            let folder = try o.workFolder("digits")
            var experiment = DigitsExperiment(settings: settings, teacherCheckpoint: o.digitsTeacher ?? folder.map { $0 + "/teacher.safetensors" })
            experiment.workDirectory = folder
            experiment.log = o.log
            // A progress line every tenth of each training phase.
            experiment.progress = { phase, step, total in
                if step == total || step % max(total / 10, 1) == 0 { o.log?("  \(phase): step \(step) of \(total)") }
            }
            var grids: [(name: String, image: RGBImage)] = []
            var pictureNames: [String: Int] = [:]
            experiment.onSamples = { method, nfe, x in
                let tag = unique(slug(method) + (nfe > 0 ? "-nfe\(nfe)" : ""), &pictureNames, separator: "-")
                if let img = try? Pictures.imageGrid(x.slice(0..<min(50, x.shape[0])).reshaped([-1, 1, 8, 8]), columns: 10, scale: 3) {
                    grids.append((tag, img))
                }
            }
            let rows = try experiment.run()
            table?(BenchmarkTable(name: "digits", group: "digits", title: "Distillation on the 8×8 digits with a U-Net teacher",
                                  description: "A class-conditional U-Net teacher (\(settings.teacherSteps) DSM steps, label dropout 0.1, " +
                                      "VP-linear, ε-prediction) and every method distilled from it. Students of " +
                                      "\(settings.teacherArchitecture.map(\.rawValue).sorted().joined(separator: ", ")) are copies of the teacher's U-Net " +
                                      "started from its weights (on the teacher's process and time input; their own output parameterization); " +
                                      "the other D2F students and the D2G generators are fresh MLPs over the 64 pixels " +
                                      "(\(settings.students.hidden.map(String.init).joined(separator: "×"))). \(settings.students.steps) steps per stage " +
                                      "at batch \(settings.students.batch); generators \(settings.generator.steps) steps. FID and KID ×10³ (the unbiased MMD² " +
                                      "of the cubic kernel, times 1000) on the in-project digit classifier's 64 features against the 899 " +
                                      "even-indexed real digits; the floor row scores the 898 odd-indexed ones, disjoint from them. " +
                                      "\(settings.samples) generated images per row (unconditional unless a guidance weight is given; class " +
                                      "accuracy = the classifier's agreement with the requested class). The generators and consistency students " +
                                      "(\(settings.repeated.map(\.rawValue).sorted().joined(separator: ", "))) are trained with \(settings.seeds) seeds " +
                                      "(training, data order, evaluation noise) and given as mean ± sd; the other rows are one run. Sample " +
                                      "grids below, in table order (seed 1 of repeated rows).",
                                  table: DigitsExperiment.markdown(rows), pictures: grids))
            var seen: [String: Int] = [:]
            for r in rows {
                let name = unique("digits_\(slug(r.method))_nfe\(r.nfe)", &seen)
                emit(BenchmarkRecord(name: name + "_fid", value: r.fid.mean, unit: "FID", reference: String(format: "KID×10³ %.2f", r.kid.mean * 1000)))
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

    /// "diff-instruct (Luo et al. 2023)" → "diff-instruct", "sds particles" → "sds-particles",
    /// "guided (Meng et al. 2023), w = 3" → "guided-w3".
    static func slug(_ method: String) -> String {
        var text = method
        if let open = text.firstIndex(of: "("), let close = text[open...].firstIndex(of: ")") { text.removeSubrange(open...close) }
        text = text.replacingOccurrences(of: "w = ", with: "w")
        return text.split(whereSeparator: { !($0.isLetter || $0.isNumber || $0 == "-" || $0 == ".") }).joined(separator: "-")
    }

    /// `name`, or `name_2`, `name_3`, … when it was taken before (stages at the same NFE).
    static func unique(_ name: String, _ seen: inout [String: Int], separator: String = "_") -> String {
        seen[name, default: 0] += 1
        return seen[name]! > 1 ? "\(name)\(separator)\(seen[name]!)" : name
    }
}

/// One generator seed as the work folder keeps it: its rows and, for the pictured seed, each
/// row's samples (flattened; empty otherwise).
struct GeneratorRunRecord: Codable {
    var rows: [GeneratorExperiment.Row]
    var samples: [[Float]]
}
