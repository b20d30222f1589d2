import Distill
import Foundation
import Testing

/// Students of the teacher's architecture (``Distiller/Students/teacher``): a tiny
/// class-conditional U-Net teacher over 4×4 images.
@Suite struct DistillerStudentsTests {
    let config: UNet.Configuration = {
        var c = UNet.Configuration(imageSize: 4, imageChannels: 1, baseChannels: 8, channelMultipliers: [1, 2], blocksPerLevel: 1,
                                   attentionResolutions: [], headCount: 1, groups: 4, classCount: 3)
        c.middleAttention = false
        c.embeddingDim = 16
        return c
    }()

    /// The teacher with every weight random (no zero-initialized layer), its card and the model
    /// made of them (which shares the network).
    func teacher(_ config: UNet.Configuration? = nil, consistency: Bool = false) throws -> (UNet, ModelCard, TrainedModel) {
        let config = config ?? self.config
        let net = try UNet(config, seed: 1)
        try UNetTests.randomize(net, seed: 2)
        let card = ModelCard(architecture: consistency ? .consistencyUNet(config, sigmaMax: 80) : .unet(config), process: .vpLinear(),
                             parameterization: .epsilon, dataShape: [1, 4, 4], dataSource: "test", classCount: config.classCount)
        return (net, card, TrainedModel(network: net, card: card))
    }

    /// Settings of a run with students of the teacher's architecture, batches of 16.
    func settings(steps: Int, lr: Float = 1e-3) -> Distiller.Settings {
        var s = Distiller.Settings()
        s.steps = steps
        s.batch = 16
        s.learningRate = lr
        s.students = .teacher
        return s
    }

    /// A distiller of `teacher` over random "images" with labels, students of the teacher's U-Net.
    func distiller(_ teacher: TrainedModel? = nil, steps: Int, lr: Float = 1e-3) throws -> Distiller {
        var rng = Philox(seed: 3)
        let rows = try rng.uniform([64, 16], low: -1, high: 1)
        return try Distiller(teacher: teacher ?? self.teacher().2, dataName: "test", settings: settings(steps: steps, lr: lr)) { n, s in
            (try rows.slice((s % 4) * 16..<(s % 4) * 16 + n), (0..<n).map { $0 % 3 })
        }
    }

    func maxDifference(_ a: any Module, _ b: any Module) -> Float {
        let sa = a.stateDictionary(), sb = b.stateDictionary()
        return sa.keys.map { k in zip(sa[k]!.scalars, sb[k]!.scalars).map { abs($0 - $1) }.max() ?? 0 }.max() ?? 0
    }

    /// A stage's network and card (students of the teacher's architecture always have both).
    func parts(_ stage: DistilledStage) throws -> (network: any ConditionalNetwork, card: ModelCard) {
        (try #require(stage.model.network), try #require(stage.model.card))
    }

    /// KD and PD students start from the teacher's weights: with a negligible learning rate
    /// they are still the teacher after training (within what 1e-9-sized Adam steps can move).
    @Test func kdAndPDStudentsStartFromTheTeacher() throws {
        let (teacherNet, _, _) = try teacher()
        let d = try distiller(steps: 10, lr: 1e-9)
        for method in [DistillationMethod.kd, .pd] {
            for stage in try d.run(method) {
                let (network, card) = try parts(stage)
                #expect(network is UNet)
                #expect(maxDifference(network, teacherNet) < 1e-6)
                #expect(card.architecture == .unet(config))
                #expect(card.process == .vpLinear())
            }
        }
        // A fresh student of the same architecture is far from the teacher.
        let fresh = try UNet(config, seed: 9)
        #expect(maxDifference(fresh, teacherNet) > 0.1)
    }

    /// A guided student adds a guidance input: the teacher's weights are copied, the new
    /// guidance projection starts at zero (its fixed sinusoidal frequencies do not, or w could
    /// never be told apart), and the card records the guidance input.
    @Test func guidedStudentAddsAZeroGuidanceInput() throws {
        let (teacherNet, _, _) = try teacher()
        var d = try distiller(steps: 10, lr: 1e-9)
        d.settings.guidanceWeights = [1]
        let (network, card) = try parts(try #require(try d.run(.guided).first))
        let student = network.stateDictionary(), original = teacherNet.stateDictionary()
        let added = student.keys.filter { original[$0] == nil }
        #expect(!added.isEmpty)
        let frozen = Set(network.namedParameters.filter { !$0.parameter.isTrainable }.map(\.name))
        #expect(added.contains { frozen.contains($0) } && added.contains { !frozen.contains($0) })
        for k in added { #expect(student[k]!.scalars.allSatisfy { abs($0) < 1e-6 } != frozen.contains(k), "\(k)") }
        for (k, v) in original { #expect(zip(student[k]!.scalars, v.scalars).allSatisfy { abs($0 - $1) < 1e-6 }) }
        var guided = config
        guided.guidanceEmbeddingDim = 16
        #expect(card.architecture == .unet(guided))
    }

    /// Every stage reaches `onStage` as it is finished, already written to the run's directory,
    /// and its file reloads with the same card (for CD: a consistency U-Net). PD emits its
    /// 16-, 8-, 4-, 2- and 1-step students, and its loss falls.
    @Test func stagesAreHandedOverAsTheyFinish() throws {
        var d = try distiller(steps: 40)
        var seen: [Int] = []
        var losses: [Float] = []
        d.progress = { name, p in if name == "pd, 16 steps" { losses.append(p.loss) } }
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let onStage: (DistilledStage) throws -> Void = { stage in
            seen.append(stage.nfe)
            let loaded = try TrainedModel.load(dir + "/\(stage.name).safetensors")
            #expect(loaded.card?.json == stage.model.card?.json, "\(stage.name)")
        }
        let stages = try d.run(.pd, directory: dir, onStage: onStage)
        #expect(seen == [16, 8, 4, 2, 1])
        #expect(stages.map(\.nfe) == seen)
        #expect(losses.count == 40 && losses.suffix(5).reduce(0, +) < losses.prefix(5).reduce(0, +))

        let cd = try parts(try #require(try d.run(.cd, directory: dir, onStage: onStage).first)).card
        #expect(cd.architecture == .consistencyUNet(config, sigmaMax: 80) && cd.consistencyReadsDenoiser == true)
        #expect(seen == [16, 8, 4, 2, 1, 1, 2, 4])
        let ct = try parts(try #require(try d.run(.ct).first)).card
        #expect(ct.architecture == .consistencyUNet(config, sigmaMax: 80) && ct.consistencyReadsDenoiser == nil)
    }

    /// A CD student copied from the teacher reads the network as the teacher's denoiser: before
    /// it learns anything its one-step sample is c_skip(T)·x + (1 - c_skip(T))·D_teacher(x, T),
    /// and its checkpoint reloads to the same function, bit for bit.
    @Test func cdStudentStartsAsTheTeachersDenoiser() throws {
        let (teacherNet, _, teacherModel) = try teacher()
        let d = try distiller(steps: 10, lr: 1e-9)
        let stage = try #require(try d.run(.cd).first { $0.nfe == 1 })
        #expect(maxDifference(try parts(stage).network, teacherNet) < 1e-6)
        var rng = Philox(seed: 8)
        let z = try rng.normal([6, 16])
        let T = 80.0, skip = Float(0.25 / ((T - 0.002) * (T - 0.002) + 0.25))
        let x = z * Float(T)
        let expected = try x * skip + teacherModel.denoiser!.predict(x, alpha: 1, sigma: T).data * (1 - skip)
        let got = try stage.model.sample(fromUnitNoise: z).sample
        #expect(zip(got.scalars, expected.scalars).allSatisfy { abs($0 - $1) <= 1e-3 * max(1, abs($1)) })

        let path = FileManager.default.temporaryDirectory.appendingPathComponent("cd-\(UUID().uuidString).safetensors").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        try stage.model.write(to: path)
        let loaded = try TrainedModel.load(path)
        #expect(try loaded.denoiser!.predict(x, alpha: 1, sigma: T).data.scalars == got.scalars)
    }

    /// Reloaded stages sample exactly as the stage itself (the same DDIM grid on the card's process).
    @Test func reloadedPDStudentSamplesIdentically() throws {
        let d = try distiller(steps: 10)
        let stage = try #require(try d.run(.pd).first { $0.nfe == 2 })
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("pd2-\(UUID().uuidString).safetensors").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        try stage.model.write(to: path)
        let loaded = try TrainedModel.load(path)
        var rng = Philox(seed: 6)
        let noise = try rng.normal([8, 16])
        let grid = try ProgressiveDistillation.grid(process: try #require(loaded.card).process, steps: 2)
        let again = try sampleDDIM(loaded.denoiser!, from: noise * Float(grid.levels[0].sigma), grid: grid).sample
        #expect(try stage.model.sample(fromUnitNoise: noise).sample.scalars == again.scalars)
        #expect(try loaded.sample(fromUnitNoise: noise).sample.scalars == again.scalars)
    }

    /// `copySharedParameters` into an MLP with a guidance input (features appended to the
    /// first layer's input): shared values copied, the new guidance columns zero, so the
    /// student computes exactly what the teacher does; a source with parameters the student
    /// lacks, or with other shapes, is refused and the student left as it was.
    @Test func sharedParametersCopyAndNewOnesStartAtZero() throws {
        let plain = try MLPScoreNetwork(.init(hiddenWidths: [8, 8]), seed: 1)
        let guided = try MLPScoreNetwork(.init(dataDimension: 2, hiddenWidths: [8, 8], classCount: nil, classEmbeddingDim: 32, guidanceEmbeddingDim: 4),
                                         seed: 2)
        let zeroed = try guided.copySharedParameters(from: plain)
        #expect(zeroed == ["layers.0.weight"])
        let g = guided.stateDictionary(), p = plain.stateDictionary()
        for (k, v) in p where k != "layers.0.weight" { #expect(g[k]!.scalars == v.scalars) }
        let w = g["layers.0.weight"]!, w0 = p["layers.0.weight"]!
        for i in 0..<8 {
            #expect(Array(w.scalars[i * 70..<i * 70 + 66]) == Array(w0.scalars[i * 66..<(i + 1) * 66]))
            #expect(w.scalars[i * 70 + 66..<(i + 1) * 70].allSatisfy { $0 == 0 })
        }
        var rng = Philox(seed: 4)
        let x = try rng.normal([5, 2]), t = try rng.uniform([5])
        let a = try plain(x, time: t), b = try guided(x, time: t, guidance: Tensor([0, 1, 2, 3, 4]))
        #expect(zip(a.scalars, b.scalars).allSatisfy { abs($0 - $1) < 1e-5 })

        let before = plain.stateDictionary()
        #expect(throws: ModuleError.self) { try plain.copySharedParameters(from: guided) }
        let wider = try MLPScoreNetwork(.init(hiddenWidths: [9, 8]), seed: 3)
        #expect(throws: ModuleError.self) { try plain.copySharedParameters(from: wider) }
        for (k, v) in plain.stateDictionary() { #expect(before[k]!.scalars == v.scalars) }
    }

    /// Students the teacher can't give: a consistency teacher, an exact mixture (no network to
    /// copy), a mismatched data size, a guided student from an unconditional teacher — each a
    /// clear configuration error.
    @Test func impossibleStudentsAreClearErrors() throws {
        #expect(throws: TrainingError.self) { try distiller(teacher(consistency: true).2, steps: 10).run(.kd) }
        #expect(throws: TrainingError.self) { try distiller(TrainedModel(exact: .ring8()), steps: 10).run(.kd) }

        var unconditional = config
        unconditional.classCount = nil
        #expect(throws: TrainingError.self) { try distiller(teacher(unconditional).2, steps: 10).run(.guided) }

        let (_, _, model) = try teacher()
        #expect(throws: TrainingError.self) {
            try Distiller(teacher: model, data: Dataset(rows: Tensor.zeros([4, 9])), settings: settings(steps: 10)).run(.pd)
        }
        // BOOT's student reads noise and time: it cannot be the teacher's network.
        #expect(throws: TrainingError.self) { try distiller(model, steps: 10).run(.boot) }
        #expect(throws: TrainingError.self) { try distiller(model, steps: 10).run(.dsno) }
    }
}
