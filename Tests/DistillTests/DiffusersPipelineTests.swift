import Distill
import Foundation
import Testing

/// diffusers pipeline folders load as a ``TrainedModel`` that samples as diffusers' DDIM does
/// (fixtures and references from scripts/diffusers-fixtures.py, diffusers 0.42.1); scheduler
/// configs are read field by field and what cannot be honoured is refused by name.
@Suite struct DiffusersPipelineTests {
    static let names = DiffusersUNetTests.names

    static func schedulerConfig(_ name: String) -> String { DiffusersUNetTests.folder(name) + "/scheduler/scheduler_config.json" }

    /// max_i |y_i − r_i| / RMS(r) over every value of the batch.
    static func relativeError(_ y: Tensor, _ r: Tensor) -> Double {
        let ref = r.scalars.map(Double.init)
        let rms = (ref.reduce(0) { $0 + $1 * $1 } / Double(ref.count)).squareRoot()
        return zip(y.scalars, ref).reduce(0.0) { max($0, abs(Double($1.0) - $1.1)) } / rms
    }

    /// Each fixture folder, loaded with `TrainedModel.load`, sampled with this library's DDIM
    /// (η = 0) on the levels of diffusers' 5 timesteps (``DiffusersScheduler/ddimLevels(steps:)``)
    /// from diffusers' initial noise (and labels): max |ours − diffusers| ≤ 1e-4 · RMS(diffusers'
    /// final sample), the reference being DDIMScheduler (clip_sample off) with the fixture's
    /// schedule — scaled_linear, squaredcos_cap_v2 and linear β, ε and v prediction,
    /// steps_offset 1, set_alpha_to_one false.
    @Test(arguments: names) func samplesLikeDiffusersDDIM(_ name: String) throws {
        let folder = DiffusersUNetTests.folder(name)
        let model = try TrainedModel.load(folder)
        let t = try SafeTensors.read(folder + "/reference.safetensors").tensors
        let noise = try #require(t["ddim_noise"]), expected = try #require(t["ddim_sample"])
        let scheduler = try DiffusersScheduler.read(Self.schedulerConfig(name))
        #expect(try scheduler.timesteps(steps: 5) == (try #require(t["ddim_timesteps"])).scalars.map { Int($0) })
        let plan = SamplingPlan(sampler: .ddim, levels: try scheduler.ddimLevels(steps: 5))
        let labels = t["class_labels"].map { $0.scalars.map { Int($0) } }
        let result = try model.sample(from: noise, plan: plan, labels: labels)
        #expect(result.evaluations == 5)
        #expect(result.sample.shape == expected.shape)
        let error = Self.relativeError(result.sample, expected)
        print("diffusers DDIM fixture \(name): max |ours − diffusers| / RMS = \(String(format: "%.2e", error))")
        #expect(error <= 1e-4, "\(name): relative error \(error)")
        // Without steps_offset and with set_alpha_to_one, the library's own "leading" grid is
        // diffusers' DDIM grid.
        if scheduler.stepsOffset == 0, scheduler.setAlphaToOne {
            let spaced = try model.sample(from: noise, plan: SamplingPlan(sampler: .ddim, nfe: 5, spacing: .leading), labels: labels)
            #expect(Self.relativeError(spaced.sample, expected) <= 1e-4, "\(name): the leading plan differs")
        }
    }

    /// The configs map as they say: process, parameterization, timestep input, plan, classes.
    @Test func foldersMapToTheirSchedulers() throws {
        let vpred = try TrainedModel.load(DiffusersUNetTests.folder("vpred"))
        let card = try #require(vpred.card)
        #expect(card.parameterization == .v && card.conditioning == .diffusersTimestep && card.dataShape == [3, 8, 8])
        #expect(vpred.process == .ddpm() && vpred.kind == .diffusion)
        #expect(vpred.defaultPlan == SamplingPlan(sampler: .ddim, nfe: 50, spacing: .leading))
        let shifted = try #require(try TrainedModel.load(DiffusersUNetTests.folder("attention-f16")).defaultPlan)
        #expect(shifted.sampler == .ddim && shifted.nfe == nil)
        #expect(try shifted.resolve(process: DiffusionProcess.ddpm()).grid.levels.first?.time == 982.0 / 1000)   // timestep 981 = 980 + steps_offset
        let plain = try DiffusersScheduler.read(Self.schedulerConfig("plain"))
        #expect(plain.betaSchedule == .scaledLinear && plain.parameterization == .epsilon && plain.className == "DDPMScheduler")
        #expect(try DiffusersScheduler.read(Self.schedulerConfig("attention")).betaSchedule == .squaredCosine)
        let bf16 = try DiffusersScheduler.read(Self.schedulerConfig("attention-bf16"))
        #expect(bf16.stepsOffset == 1 && !bf16.setAlphaToOne)
        #expect(try bf16.ddimLevels(steps: 5).last!.sigma > 0)
        #expect(try TrainedModel.load(DiffusersUNetTests.folder("classcond")).classCount == 10)
        // Diffusers' linspace DDIM steps to t − ⌊N/steps⌋, not to the next timestep: refused.
        var linspace = plain
        linspace.spacing = .linspace
        #expect(throws: SamplerError.self) { try linspace.ddimLevels(steps: 5) }
    }

    /// `set_timesteps` as diffusers 0.42.1's DDIMScheduler gives it (values printed by diffusers
    /// for N = 1000), halves rounded to even ("trailing" 16 has 811); the library's own
    /// trailing grid picks the same training steps.
    @Test func timestepsAsDiffusers() throws {
        var s = try DiffusersScheduler.read(Self.schedulerConfig("vpred"))
        let cases: [(NoiseGrid.DiscreteSpacing, Int, Int, [Int])] = [
            (.trailing, 16, 0, [999, 937, 874, 811, 749, 687, 624, 561, 499, 437, 374, 311, 249, 187, 124, 61]),
            (.linspace, 9, 0, [999, 874, 749, 624, 500, 375, 250, 125, 0]),
            (.leading, 7, 3, [855, 713, 571, 429, 287, 145, 3]),
            (.trailing, 3, 0, [999, 666, 332])]
        for (spacing, k, offset, expected) in cases {
            s.spacing = spacing
            s.stepsOffset = offset
            #expect(try s.timesteps(steps: k) == expected, "\(spacing) \(k)")
        }
        let grid = try NoiseGrid.discrete(DiscreteDDPMProcess(), steps: 16, spacing: .trailing, finalDenoise: false)
        #expect(grid.levels.map { Int(($0.time! * 1000).rounded()) - 1 } == cases[0].3)
    }

    /// A pipeline model written as a checkpoint reloads as the same model.
    @Test func pipelineCheckpointRoundTrip() throws {
        let folder = DiffusersUNetTests.folder("classcond")
        let model = try TrainedModel.load(folder)
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("diffusers-\(UUID().uuidString).safetensors").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        try model.write(to: path)
        let again = try TrainedModel.load(path)
        #expect(again.card == model.card)
        let plan = SamplingPlan(sampler: .ddim, nfe: 3, spacing: .trailing)
        let a = try model.sample(count: 2, plan: plan, labels: [1, 2], seed: 3)
        let b = try again.sample(count: 2, plan: plan, labels: [1, 2], seed: 3)
        #expect(a.scalars == b.scalars)
    }

    /// A pipeline is a teacher like any other: KD into an MLP student, and PD into students of
    /// its own architecture started from its weights, whose checkpoints reload and sample with
    /// the same bits (smoke sizes: 10 steps per stage at batch 4, data drawn at random).
    @Test func pipelinesTeachStudents() throws {
        let teacher = try TrainedModel.load(DiffusersUNetTests.folder("attention"))
        var settings = Distiller.Settings()
        settings.steps = 10
        settings.batch = 4
        settings.hidden = [32]
        let d = teacher.itemShape.reduce(1, *)
        let kd = try Distiller(teacher: teacher, settings: settings).run(.kd)
        #expect(kd.count == 1 && kd[0].nfe == 1)
        var rng = Philox(seed: 9)
        let rows = try rng.uniform([32, d]) * 2 - 1
        settings.students = .teacher
        let pd = try Distiller(teacher: teacher, data: Dataset(name: "random", rows: rows, itemShape: teacher.itemShape, labels: nil, classCount: nil,
                                                               mixture: nil, valueRange: -1...1), settings: settings).run(.pd)
        #expect(pd.map { $0.nfe } == [16, 8, 4, 2, 1])
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("diffusers-students-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        for stage in [kd[0], pd[4]] {
            let path = dir + "/\(stage.name).safetensors"
            try stage.model.write(to: path)
            let again = try TrainedModel.load(path)
            let a = try stage.model.sample(count: 2, seed: 4), b = try again.sample(count: 2, seed: 4)
            #expect(a.shape == [2] + teacher.itemShape && a.scalars.allSatisfy(\.isFinite) && a.scalars == b.scalars, "\(stage.name): shape \(a.shape)")
        }
    }

    /// Cards written before the other β schedules existed decode unchanged, and the linear
    /// schedule is still written without a schedule field.
    @Test func ddpmCardsStayCompatible() throws {
        let old = #"{"ddpm":{"steps":1000,"betaStart":0.0001,"betaEnd":0.02}}"#
        let decoded = try JSONDecoder().decode(DiffusionProcess.self, from: Data(old.utf8))
        #expect(decoded == .ddpm())
        let written = String(decoding: try JSONEncoder().encode(DiffusionProcess.ddpm()), as: UTF8.self)
        #expect(!written.contains("schedule"))
        let cosine = DiffusionProcess.ddpm(steps: 1000, betaStart: 1e-4, betaEnd: 0.02, schedule: .squaredCosine)
        let back = try JSONDecoder().decode(DiffusionProcess.self, from: JSONEncoder().encode(cosine))
        #expect(back == cosine && back != .ddpm())
        #expect(abs(back.alpha(1) - DiffusionProcess.ddpm().alpha(1)) > 1e-3)
    }

    /// A pipeline folder whose model_index names other components, or that lacks its
    /// scheduler config, fails with an error naming the file (and the field).
    @Test func badPipelineFolders() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("pipeline-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try FileManager.default.copyItem(atPath: DiffusersUNetTests.folder("plain"), toPath: dir)
        let index = dir + "/model_index.json"
        let original = try String(contentsOfFile: index, encoding: .utf8)
        func message() -> String {
            do { _ = try TrainedModel.load(dir); return "no error" } catch { return "\(error)" }
        }
        for (from, to, field) in [("\"UNet2DModel\"", "\"UNet2DConditionModel\"", "unet"), ("\"DDPMScheduler\"", "\"PNDMScheduler\"", "scheduler"),
                                  ("\"diffusers\",\n    \"DDPMScheduler\"", "\"transformers\",\n    \"DDPMScheduler\"", "scheduler")] {
            try original.replacingOccurrences(of: from, with: to).write(toFile: index, atomically: true, encoding: .utf8)
            let text = message()
            #expect(text.contains("model_index.json") && text.contains("'\(field)'"), "\(to): \(text)")
        }
        try original.write(toFile: index, atomically: true, encoding: .utf8)
        #expect(message() == "no error")
        try FileManager.default.removeItem(atPath: dir + "/scheduler/scheduler_config.json")
        #expect(message().contains("scheduler_config.json"))
    }

    /// Scheduler fields that cannot be honoured are refused naming the file and the field.
    @Test func schedulerConfigErrors() throws {
        let base = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: Self.schedulerConfig("vpred")))) as! [String: Any]
        func error(_ key: String, _ value: Any) -> DiffusersError? {
            var fields = base
            fields[key] = value
            let bytes = try! JSONSerialization.data(withJSONObject: fields)
            do { _ = try DiffusersScheduler.decode(Array(bytes), file: "s.json"); return nil } catch { return error as? DiffusersError }
        }
        let cases: [(String, Any)] = [("_class_name", "PNDMScheduler"), ("beta_schedule", "sigmoid"), ("trained_betas", [0.1, 0.2]),
                                      ("thresholding", true), ("rescale_betas_zero_snr", true), ("prediction_type", "flow"),
                                      ("timestep_spacing", "karras"), ("num_train_timesteps", 1), ("beta_end", 1.5),
                                      ("beta_start", -0.1), ("steps_offset", 1000), ("clip_sample", "yes")]
        for (key, value) in cases {
            let e = error(key, value)
            let text = e.map { "\($0)" } ?? "no error"
            #expect(text.contains("s.json") && text.contains("'\(key)'"), "\(key) = \(value): \(text)")
        }
        #expect(error("clip_sample", false) == nil && error("variance_type", "fixed_large") == nil)
    }
}
