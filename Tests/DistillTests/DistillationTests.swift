import Distill
import Foundation
import Testing

extension DiffusionProcess {
    /// Progressive distillation's α = cos(πt/2) over λ ∈ [-10, 10] (Salimans & Ho 2022).
    static let progressiveDistillation = DiffusionProcess(.vpCosine(.progressiveDistillation()))
}

/// Tiny runs of each D2F objective against the exact mixture teacher.
@Suite struct DistillationTests {
    let gmm = orderMixture   // four modes of std 0.3 (SamplerTests.swift)

    func mlp(_ seed: UInt64) throws -> MLPScoreNetwork {
        try MLPScoreNetwork(.init(hiddenWidths: [64, 64]), seed: seed)
    }

    /// Trains `module` for `steps` AdamW steps on `loss` and returns (first 20 mean, last 20 mean).
    func train(_ module: Module, steps: Int, lr: Float = 2e-3, _ loss: (Int, inout Philox) throws -> Tensor) throws -> (Float, Float) {
        let opt = try Adam.adamW(module, learningRate: lr, weightDecay: 0)
        var values: [Float] = []
        for s in 0..<steps {
            var rng = Philox(seed: 100, stream: UInt64(s))
            values.append(try module.valueWithGradient { try loss(s, &rng) })
            try opt.update()
        }
        return (values.prefix(20).reduce(0, +) / 20, values.suffix(20).reduce(0, +) / 20)
    }

    /// PD's target is exactly what makes one student DDIM step reproduce two teacher steps.
    @Test func progressiveTargetEqualsTwoTeacherSteps() throws {
        let p = VPCosineProcess.progressiveDistillation()
        var rng = Philox(seed: 1)
        let z = try rng.normal([64, 2])
        let (t, m, e) = (0.6, 0.5, 0.4)
        let lt = NoiseLevels(process: p, times: Array(repeating: t, count: 64)), lm = NoiseLevels(process: p, times: Array(repeating: m, count: 64))
        let le = NoiseLevels(process: p, times: Array(repeating: e, count: 64))
        let target = try ProgressiveDistillation.target(teacher: gmm, z: z, at: lt, mid: lm, end: le)
        // Two teacher DDIM steps on a grid t → m → e.
        let grid = try NoiseGrid(levels: [t, m, e].map { NoiseLevel(alpha: p.alpha($0), sigma: p.sigma($0), time: $0) }, process: p)
        let twoSteps = try sampleDDIM(gmm, from: z, grid: grid).sample
        // One DDIM step t → e with x̂ = target.
        let oneStep = try z * Float(p.sigma(e) / p.sigma(t)) + target * Float(p.alpha(e) - p.sigma(e) / p.sigma(t) * p.alpha(t))
        #expect(zip(oneStep.scalars, twoSteps.scalars).allSatisfy { abs($0 - $1) < 1e-4 })
        // At a clean end the target is the teacher's x̂ at the midpoint.
        var clean = le
        clean.alpha = Array(repeating: 1, count: 64); clean.sigma = Array(repeating: 0, count: 64)
        let zMid = try sampleDDIM(gmm, from: z, grid: NoiseGrid(levels: Array(grid.levels.prefix(2)), process: p)).sample
        let x2 = try gmm.predict(zMid, at: lm, labels: nil).data
        let cleanTarget = try ProgressiveDistillation.target(teacher: gmm, z: z, at: lt, mid: lm, end: clean)
        #expect(zip(cleanTarget.scalars, x2.scalars).allSatisfy { abs($0 - $1) < 1e-4 })
    }

    /// TRACT's target (§6.10) with the teacher as its own self-teacher is PD's, bit for bit;
    /// one student DDIM step with it lands on the teacher step followed by the self-teacher's
    /// jump; rows whose teacher step reaches the segment end skip the self-teacher, and at the
    /// clean end the target is the teacher's x̂.
    @Test func tractTargetChainsTheTeacherAndTheSelfTeacher() throws {
        let p = VPCosineProcess.progressiveDistillation()
        let other = GaussianMixture.ring8()   // a self-teacher that differs from the teacher
        var rng = Philox(seed: 2)
        let z = try rng.normal([64, 2])
        func at(_ t: Double) -> NoiseLevels { NoiseLevels(process: p, times: Array(repeating: t, count: 64)) }
        let (t, m, e) = (0.6, 0.55, 0.4)
        let all = Array(repeating: true, count: 64), none = Array(repeating: false, count: 64)
        let same = try TransitiveClosureDistillation.target(teacher: gmm, selfTeacher: gmm, z: z, at: at(t), mid: at(m), end: at(e), selfRows: all)
        #expect(same.scalars == (try ProgressiveDistillation.target(teacher: gmm, z: z, at: at(t), mid: at(m), end: at(e))).scalars)
        // Teacher DDIM t → m, then the self-teacher's DDIM m → e.
        let level = { (u: Double) in NoiseLevel(alpha: p.alpha(u), sigma: p.sigma(u), time: u) }
        let z1 = try sampleDDIM(gmm, from: z, grid: NoiseGrid(levels: [level(t), level(m)], process: p)).sample
        let z2 = try sampleDDIM(other, from: z1, grid: NoiseGrid(levels: [level(m), level(e)], process: p)).sample
        let mixed = try TransitiveClosureDistillation.target(teacher: gmm, selfTeacher: other, z: z, at: at(t), mid: at(m), end: at(e), selfRows: all)
        let oneStep = try z * Float(p.sigma(e) / p.sigma(t)) + mixed * Float(p.alpha(e) - p.sigma(e) / p.sigma(t) * p.alpha(t))
        #expect(zip(oneStep.scalars, z2.scalars).allSatisfy { abs($0 - $1) < 1e-4 })
        // Half the rows end at mid: their targets are those of a single teacher step t → m.
        let half = (0..<64).map { $0 % 2 == 0 }
        let ends = NoiseLevels(process: p, times: half.map { $0 ? e : m })
        let split = try TransitiveClosureDistillation.target(teacher: gmm, selfTeacher: other, z: z, at: at(t), mid: at(m), end: ends, selfRows: half)
        let single = try TransitiveClosureDistillation.target(teacher: gmm, selfTeacher: other, z: z, at: at(t), mid: at(m), end: at(m), selfRows: none)
        let oneTeacherStep = try z * Float(p.sigma(m) / p.sigma(t)) + single * Float(p.alpha(m) - p.sigma(m) / p.sigma(t) * p.alpha(t))
        #expect(zip(oneTeacherStep.scalars, z1.scalars).allSatisfy { abs($0 - $1) < 1e-4 })
        for r in 0..<64 {
            let want = try (half[r] ? mixed : single).slice(r..<(r + 1)).scalars
            #expect(try split.slice(r..<(r + 1)).scalars == want, "row \(r)")
        }
        // A step to the clean end: the teacher's x̂ at z.
        let clean = NoiseLevels(alpha: 1, sigma: 0, batch: 64)
        let last = try TransitiveClosureDistillation.target(teacher: gmm, selfTeacher: other, z: z, at: at(t), mid: clean, end: clean, selfRows: none)
        let x = try gmm.predict(z, at: at(t), labels: nil).data
        #expect(zip(last.scalars, x.scalars).allSatisfy { abs($0 - $1) < 1e-5 })
        #expect(throws: (any Error).self) {
            var rng = Philox(seed: 3)
            let student = DiffusionModel(network: try mlp(1), process: .progressiveDistillation, parameterization: .v)
            _ = try TransitiveClosureDistillation.loss(student: student, teacher: gmm, selfTeacher: gmm, x0: z, teacherSteps: 12, studentSteps: 8, rng: &rng)
        }
    }

    /// A TRACT run stopped one step into phase 2 has an evaluation EMA that continued from
    /// phase 1's (decay ρ^{1/S} applied to phase 1's final EMA, not restarted from the student:
    /// "always EMA"), and resumed it gives the same students, bit for bit, as a run never stopped.
    @Test func tractKeepsItsEMAAcrossPhasesAndResumesExactly() throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("tract-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: root) }
        for d in ["whole", "cut"] { try FileManager.default.createDirectory(atPath: root + "/" + d, withIntermediateDirectories: true) }
        var settings = Distiller.Settings()
        (settings.steps, settings.batch, settings.hidden, settings.checkpointEvery) = (20, 32, [16, 16], 5)
        let mixture = GaussianMixture.ring8()
        func distiller() throws -> Distiller {
            try Distiller(teacher: TrainedModel(exact: mixture), dataName: "ring8", settings: settings) { b, s in
                try mixture.sample(b, seed: 0xDA7A, stream: UInt64(s))
            }
        }
        try distiller().run(.tract, directory: root + "/whole")
        final class Seen: @unchecked Sendable { var phase2 = 0 }
        let seen = Seen()
        var cut = try distiller()
        cut.progress = { name, p in if name == "tract, phase 2" { seen.phase2 = p.step } }
        cut.shouldStop = { seen.phase2 >= 1 }
        #expect(throws: TrainingError.self) { try cut.run(.tract, directory: root + "/cut") }
        let state = try Checkpoint.read(from: root + "/cut/.tract-phase2.state.safetensors")
        let phase1 = try Checkpoint.read(from: root + "/cut/tract-nfe8.safetensors").model
        let m = TransitiveClosureDistillation.evaluationDecay(stepsPerPhase: 20)
        let ema = try #require(state.ema)
        #expect(state.step == 1 && ema.keys.sorted() == phase1.keys.sorted())
        var (moved, off) = (0.0, 0.0)
        for (name, e) in ema {
            let (a, raw) = (phase1[name]!.scalars, state.model[name]!.scalars)
            for i in a.indices {
                off = max(off, Double(abs(e.scalars[i] - (m * a[i] + (1 - m) * raw[i])) / (1 + abs(a[i]))))
                moved = max(moved, Double(abs(e.scalars[i] - raw[i])))
            }
        }
        #expect(off <= 1e-5, "the phase-2 EMA after one step is not m·(phase-1 EMA) + (1 − m)·student: off by \(off)")
        #expect(moved > 1e-3, "the EMA must differ from the raw student for this check to mean anything")
        try distiller().run(.tract, directory: root + "/cut", resume: true)
        for k in [8, 1] {
            let a = try Checkpoint.read(from: root + "/whole/tract-nfe\(k).safetensors").model
            let b = try Checkpoint.read(from: root + "/cut/tract-nfe\(k).safetensors").model
            #expect(a.keys.sorted() == b.keys.sorted() && a.allSatisfy { b[$0.key]?.scalars == $0.value.scalars }, "tract-nfe\(k) differs")
        }
    }

    /// BOOT's signal step is DDIM's step in signal variables: from x_t = α_t·y_t + σ_t·ε, one
    /// DDIM step with x̂ = D lands on α_s·y_s + σ_s·ε with y_s = y_t + δ·(D − y_t),
    /// δ = 1 − σ̃_s/σ̃_t (and δ = 1 at the clean end). The loss is that step's regression, drawn
    /// and weighted as stated, with ŷ = 0 at the noisiest point.
    @Test func bootLossIsTheSignalStep() throws {
        let p = DiffusionProcess.progressiveDistillation
        var rng = Philox(seed: 4)
        let (y, eps, dhat) = (try rng.normal([16]).scalars, try rng.normal([16]).scalars, try rng.normal([16]).scalars)
        for (t, s) in [(0.7, 0.6), (0.3, 0.1), (0.9, 0.0)] {
            let (at, st) = (p.alpha(t), p.sigma(t))
            let (as_, ss) = s == 0 ? (1.0, 0.0) : (p.alpha(s), p.sigma(s))
            let delta = BootstrappingDistillation.delta(fromAlpha: at, sigma: st, toAlpha: as_, sigma: ss)
            for i in 0..<16 {
                let (yt, e, d) = (Double(y[i]), Double(eps[i]), Double(dhat[i]))
                let xt = at * yt + st * e
                let xs = as_ * d + ss / st * (xt - at * d)
                #expect(abs((xs - ss * e) / as_ - (yt + delta * (d - yt))) < 1e-9)
            }
        }
        // The loss against the formula, with its draw (rows' intervals, then ε) replayed.
        let net = try mlp(1)
        let n = 4
        var a = Philox(seed: 5), b = Philox(seed: 5)
        let loss = try BootstrappingDistillation.loss(student: net, process: p, teacher: gmm, shape: [32, 2], intervals: n, rng: &a).item()
        let idx = try b.uniform([32]).scalars.map { min(Int(Double($0) * Double(n)), n - 1) }
        let e = try b.normal([32, 2])
        let r = p.timeRange
        func time(_ k: Int) -> Double { r.lowerBound + (r.upperBound - r.lowerBound) * Double(k) / Double(n) }
        func delta(_ k: Int) -> Double {
            k == 0 ? 1 : BootstrappingDistillation.delta(fromAlpha: p.alpha(time(k + 1)), sigma: p.sigma(time(k + 1)),
                                                         toAlpha: p.alpha(time(k)), sigma: p.sigma(time(k)))
        }
        let mean = (0..<n).map { 1 / (delta($0) * delta($0)) }.reduce(0, +) / Double(n)
        let yt = try net(e, time: Tensor(idx.map { Float(time($0 + 1)) }), labels: nil, guidance: nil).scalars
        let ys = try net(e, time: Tensor(idx.map { Float(time($0)) }), labels: nil, guidance: nil).scalars
        let levels = NoiseLevels(process: p, times: idx.map { time($0 + 1) })
        var x = [Float](repeating: 0, count: 64)
        for row in 0..<32 {
            for j in 0..<2 {
                let yv = idx[row] == n - 1 ? 0 : Double(yt[2 * row + j])
                x[2 * row + j] = Float(levels.alpha[row] * yv + levels.sigma[row] * Double(e.scalars[2 * row + j]))
            }
        }
        let d = try gmm.predict(Tensor(shape: [32, 2], scalars: x), at: levels, labels: nil).data.scalars
        var want = 0.0
        var targets = [Float](repeating: 0, count: 64)
        for row in 0..<32 {
            for j in 0..<2 {
                let k = 2 * row + j, yv = idx[row] == n - 1 ? 0 : Double(yt[k])
                let target = yv + delta(idx[row]) * (Double(d[k]) - yv)
                targets[k] = Float(target)
                want += (Double(ys[k]) - target) * (Double(ys[k]) - target) / (delta(idx[row]) * delta(idx[row])) / mean
            }
        }
        want /= 64
        #expect(abs(Double(loss) - want) <= 1e-4 * want, "loss \(loss), by hand \(want)")
        // Only ŷ at s carries gradient: the loss's gradient is that of the same regression onto
        // constant targets.
        var c = Philox(seed: 5)
        _ = try net.valueWithGradient { try BootstrappingDistillation.loss(student: net, process: p, teacher: gmm, shape: [32, 2], intervals: n, rng: &c) }
        let full = net.parameters.map { $0.grad?.scalars ?? [] }
        let fixed = try Tensor(shape: [32, 2], scalars: targets)
        let w = try Tensor(shape: [32, 1], scalars: idx.map { Float(1 / (delta($0) * delta($0)) / mean) })
        _ = try net.valueWithGradient {
            try ((net(e, time: Tensor(idx.map { Float(time($0)) }), labels: nil, guidance: nil) - fixed).squared() * w).mean()
        }
        for (g, h) in zip(full, net.parameters.map { $0.grad?.scalars ?? [] }) {
            let scale = h.map { abs($0) }.max() ?? 0
            #expect(zip(g, h).allSatisfy { abs($0 - $1) <= 1e-4 * (scale + 1e-6) }, "gradients differ from the stop-gradient regression's")
        }
    }

    /// A BOOT or DSNO run never asks for data; its generator is written and read back as a
    /// one-step generator sampling the same values; a signal or trajectory card with bad fields
    /// fails naming them.
    @Test(arguments: [DistillationMethod.boot, .dsno])
    func dataFreeGeneratorsReadNoDataAndReload(method: DistillationMethod) throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("boot-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var settings = Distiller.Settings()
        (settings.steps, settings.batch, settings.hidden) = (30, 32, [16, 16])
        final class Reads: @unchecked Sendable { var count = 0 }
        let reads = Reads()
        let distiller = try Distiller(teacher: TrainedModel(exact: .ring8()), dataName: "ring8", settings: settings) { b, s in
            reads.count += 1
            return try GaussianMixture.ring8().sample(b, seed: 1, stream: UInt64(s))
        }
        let stage = try #require(try distiller.run(method, directory: dir).first)
        #expect(reads.count == 0 && stage.name == "\(method.rawValue)-nfe1" && stage.model.kind == .generator)
        let loaded = try TrainedModel.load(dir + "/\(method.rawValue)-nfe1.safetensors")
        var rng = Philox(seed: 9)
        let z = try rng.normal([64, 2])
        #expect(try loaded.sample(fromUnitNoise: z).sample.scalars == stage.model.sample(fromUnitNoise: z).sample.scalars)
        var card = GeneratorCard(method: "boot", latentDimension: 2, dataDimension: 2, hidden: [])
        let mlp = MLPScoreNetwork.Configuration(dataDimension: 2, hiddenWidths: [16])
        let cases: [(SignalGenerator.Configuration, String)] = [
            (.init(architecture: .mlp(mlp), itemShape: [2], time: .nan), "signal.time"),
            (.init(architecture: .mlp(mlp), itemShape: [3], time: 0), "signal.itemShape"),
            (.init(architecture: .consistencyMLP(mlp, sigmaMax: 80), itemShape: [2], time: 0), "signal.architecture")]
        for (bad, field) in cases {
            card.signal = bad
            #expect { try card.validate(source: "g.safetensors", storedValues: nil) } throws: { ($0 as? ModelCardError)?.field == field }
        }
        card.signal = nil
        let good = TrajectoryGenerator.Configuration(dataDimension: 2, hiddenWidths: [16], times: [0.5, 0], startSigma: 1)
        card.trajectory = good
        try card.validate(source: "g.safetensors", storedValues: nil)
        var badTimes = good, badModes = good, badSigma = good
        (badTimes.times, badModes.modes, badSigma.startSigma) = ([0.5, .infinity], 3, 0)
        for (bad, field) in [(badTimes, "trajectory.times"), (badModes, "trajectory.modes"), (badSigma, "trajectory.startSigma")] {
            card.trajectory = bad
            #expect { try card.validate(source: "g.safetensors", storedValues: nil) } throws: { ($0 as? ModelCardError)?.field == field }
        }
    }

    /// CFD's pieces (§6.9): the mixture classifier's softmax is the exact posterior of data noised
    /// to σ_c, and its gradient the analytic one; sharpening the ring's posterior by τ is a
    /// dilation by 1/τ (the KL vanishes there); the dataset term is γ·entropy + (1 − γ)·KL(q̄ ‖ π).
    @Test func classifierFeatureDistillationPieces() throws {
        let ring = GaussianMixture.ring8()
        var rng = Philox(seed: 6)
        let x = try rng.normal([32, 2]) * 2
        for sigma in [0.0, 0.3, 1.0] {
            let c = try MixturePosteriorClassifier(ring, noise: sigma)
            let p = try c.logits(x).softmax(axis: 1).scalars
            for r in 0..<32 {
                let terms = (0..<8).map { k in
                    log(ring.weights[k]) + (0..<2).reduce(0.0) { acc, j in
                        let v = ring.variances[k][j] + sigma * sigma, d = Double(x.scalars[2 * r + j]) - ring.means[k][j]
                        return acc - 0.5 * (d * d / v + log(2 * Double.pi * v))
                    }
                }
                let m = terms.max()!, z = terms.reduce(0) { $0 + exp($1 - m) }
                for k in 0..<8 { #expect(abs(Double(p[8 * r + k]) - exp(terms[k] - m) / z) < 1e-5, "σ_c \(sigma) row \(r)") }
            }
            // d ℓ_k/dx_j = (μ_kj − x_j)/v_kj; summed over k for the gradient of Σ ℓ.
            let g = try valueWithGradient(at: x) { try c.logits($0).sum() }.gradient.scalars
            for r in 0..<4 {
                for j in 0..<2 {
                    let want = (0..<8).reduce(0.0) { $0 + (ring.means[$1][j] - Double(x.scalars[2 * r + j])) / (ring.variances[$1][j] + sigma * sigma) }
                    #expect(abs(Double(g[2 * r + j]) - want) <= 1e-3 * max(1, abs(want)))
                }
            }
        }
        let c = try MixturePosteriorClassifier(ring, noise: 0.3), tau: Float = 0.9
        let dilated = try ClassifierFeatureDistillation.sharpenedKL(teacher: c.logits(x), student: c.logits(x * (1 / tau)), temperature: tau).item()
        let undilated = try ClassifierFeatureDistillation.sharpenedKL(teacher: c.logits(x), student: c.logits(x), temperature: tau).item()
        #expect(abs(dilated) < 1e-4 && undilated > 100 * abs(dilated), "KL at x/τ \(dilated), at x \(undilated)")
        let logits = try rng.normal([16, 5])
        let q = try logits.softmax(axis: 1).scalars
        let qbar = (0..<5).map { k in (0..<16).reduce(0.0) { $0 + Double(q[5 * $1 + k]) } / 16 }
        let prior = [0.1, 0.2, 0.3, 0.2, 0.2]
        let entropy = (0..<16).reduce(0.0) { acc, r in acc - (0..<5).reduce(0.0) { $0 + Double(q[5 * r + $1]) * log(Double(q[5 * r + $1])) } } / 16
        let diversity = (0..<5).reduce(0.0) { $0 + qbar[$1] * log(qbar[$1] / prior[$1]) }
        let term = try ClassifierFeatureDistillation.datasetTerm(logits, prior: prior, entropyShare: 0.75).item()
        #expect(abs(Double(term) - (0.75 * entropy + 0.25 * diversity)) < 1e-5)
    }

    /// One PD stage (N = 4) from an untrained student: the loss falls and the 4-step student
    /// lands far closer to the teacher's 8-step DDIM map than before training (under half the
    /// error: the untrained net maps noise to nothing like the data).
    @Test func progressiveDistillationLearns() throws {
        let p = DiffusionProcess.progressiveDistillation
        let net = try mlp(2)
        let student = DiffusionModel(network: net, process: p, parameterization: .v)
        let (x0, _) = try gmm.sample(4096, seed: 3)
        var rng0 = Philox(seed: 4)
        let noise = try rng0.normal([512, 2])
        let teacherOut = try sampleDDIM(gmm, from: noise, grid: ProgressiveDistillation.grid(process: p, steps: 8)).sample
        func err() throws -> Double {
            let s = try sampleDDIM(student, from: noise, grid: ProgressiveDistillation.grid(process: p, steps: 4)).sample
            return zip(s.scalars, teacherOut.scalars).reduce(0.0) { $0 + Double(($1.0 - $1.1) * ($1.0 - $1.1)) } / Double(s.count)
        }
        let before = try err()
        let (first, last) = try train(net, steps: 600) { s, rng in
            try ProgressiveDistillation.loss(student: student, teacher: gmm, x0: x0.slice((s * 256 % 4096)..<(s * 256 % 4096 + 256)), steps: 4, rng: &rng)
        }
        let after = try err()
        #expect(last < 0.5 * first && after < 0.5 * before, "loss \(first) → \(last); error \(before) → \(after)")
    }

    @Test func outputDistillationLearnsTheTeacherMap() throws {
        let p = DiffusionProcess.vpLinear()
        let grid = try NoiseGrid.logSNRUniform(p, steps: 30, finalDenoise: true)
        let (noise, targets) = try OutputDistillation.pairs(teacher: gmm, sampler: .dpmpp2M, grid: grid, shape: [2048, 2], seed: 5)
        let net = try mlp(6)
        let student = DiffusionModel(network: net, process: p, parameterization: .data)
        let level = grid.levels[0]
        let before = try OutputDistillation.loss(student: student, noise: noise, targets: targets, level: level).item()
        let (first, last) = try train(net, steps: 500) { s, _ in
            let i = s * 256 % 2048
            return try OutputDistillation.loss(student: student, noise: noise.slice(i..<(i + 256)), targets: targets.slice(i..<(i + 256)), level: level)
        }
        let after = try OutputDistillation.loss(student: student, noise: noise, targets: targets, level: level).item()
        #expect(last < 0.5 * first && after < 0.3 * before, "loss \(first) → \(last); full \(before) → \(after)")
        #expect(throws: SamplerError.self) { try OutputDistillation.pairs(teacher: gmm, sampler: .ddpm, grid: grid, shape: [4, 2], seed: 1) }
    }

    @Test func guidedDistillationMatchesTheGuidedTeacher() throws {
        let teacher = ClassConditionalMixture(gmm)
        let p = DiffusionProcess.vpCosine()
        let net = try MLPScoreNetwork(.init(dataDimension: 2, hiddenWidths: [64, 64], classCount: 4, classEmbeddingDim: 8, guidanceEmbeddingDim: 8),
                                      seed: 7)
        let student = DiffusionModel(network: net, process: p, parameterization: .v)
        let (x0, comps) = try gmm.sample(4096, seed: 8)
        let (first, last) = try train(net, steps: 600) { s, rng in
            let i = s * 256 % 4096
            return try GuidedDistillation.loss(student: student, teacher: teacher, x0: x0.slice(i..<(i + 256)),
                                               labels: Array(comps[i..<(i + 256)]), nullLabel: 4, guidance: 0...3, rng: &rng)
        }
        #expect(last < 0.5 * first, "loss \(first) → \(last)")
    }

    @Test func consistencyTargetIsTheEMANetworkWithoutGradient() throws {
        let student = ConsistencyModel(network: try mlp(9)), target = ConsistencyModel(network: try mlp(10))
        let (x0, _) = try gmm.sample(64, seed: 1)
        var r1 = Philox(seed: 2), r2 = Philox(seed: 2)
        let a = try withoutGradient { try ConsistencyDistillation.distillationLoss(student: student, target: target, teacher: gmm, x0: x0, steps: 18, rng: &r1).item() }
        // Changing the target network changes the loss: it is what the student is pulled to.
        let other = ConsistencyModel(network: try mlp(11))
        let b = try withoutGradient { try ConsistencyDistillation.distillationLoss(student: student, target: other, teacher: gmm, x0: x0, steps: 18, rng: &r2).item() }
        #expect(a != b)
        // No gradient reaches the target's parameters.
        for p in target.network.parameters { p.grad = nil }
        var r3 = Philox(seed: 2)
        try valueWithGradient(of: student.network.parameters + target.network.parameters) {
            try ConsistencyDistillation.distillationLoss(student: student, target: target, teacher: gmm, x0: x0, steps: 18, rng: &r3)
        }
        #expect(target.network.trainableParameters.allSatisfy { p in p.grad.map { $0.scalars.allSatisfy { $0 == 0 } } ?? true })
        #expect(student.network.trainableParameters.contains { p in p.grad.map { $0.scalars.contains { $0 != 0 } } ?? false })
        // f(x, ε) = x exactly (the boundary condition).
        let xe = try student(x0, sigma: Array(repeating: student.epsilon, count: 64))
        #expect(zip(xe.scalars, x0.scalars).allSatisfy { abs($0 - $1) < 1e-6 })
    }

    /// The one-step consistency sample f(x, T) from the state x at T (Song et al. 2023, Alg. 1
    /// with one level), through the sampling plan.
    func oneStepSample<N>(_ model: ConsistencyModel<N>, from x: Tensor) throws -> Tensor {
        let r = try SamplingPlan(sampler: .consistency, nfe: 1).run(model, process: .edm(), from: x)
        #expect(r.evaluations == 1)
        return r.sample
    }

    /// A short CD run (θ⁻ = EMA 0.95, N = 18, Heun teacher) cuts the one-step sample's distance
    /// to the exact samples below the untrained model's by more than half.
    @Test func consistencyDistillationAndTrainingLearn() throws {
        let (x0, _) = try gmm.sample(4096, seed: 12)
        let (exact, _) = try gmm.sample(1000, seed: 13)
        var rngZ = Philox(seed: 14)
        let z = try rngZ.normal([1000, 2]) * 80
        for training in [false, true] {
            let student = ConsistencyModel(network: try mlp(15)), target = ConsistencyModel(network: try mlp(15))
            let before = try slicedWasserstein2(oneStepSample(student, from: z), exact)
            let ema = try ExponentialMovingAverage(student.network, decay: 0.95)
            let opt = try Adam.adamW(student.network, learningRate: 1e-3, weightDecay: 0)
            for s in 0..<800 {
                var rng = Philox(seed: 16, stream: UInt64(s))
                let batch = try x0.slice((s * 256 % 4096)..<(s * 256 % 4096 + 256))
                try student.network.valueWithGradient {
                    training ? try ConsistencyDistillation.trainingLoss(student: student, target: target, x0: batch, steps: 18, rng: &rng)
                             : try ConsistencyDistillation.distillationLoss(student: student, target: target, teacher: gmm, x0: batch, steps: 18, rng: &rng)
                }
                try opt.update()
                try ema.update(from: student.network)
                try ema.copy(to: target.network)
            }
            let after = try slicedWasserstein2(oneStepSample(student, from: z), exact)
            #expect(after < 0.5 * before, "\(training ? "CT" : "CD"): SW2 \(before) → \(after)")
        }
        let sched = ConsistencyDistillation.trainingSchedule(step: 0, totalSteps: 100)
        #expect(sched.steps == 2 && abs(sched.emaDecay - 0.9) < 1e-12)
        #expect(ConsistencyDistillation.trainingSchedule(step: 100, totalSteps: 100).steps == 151)
    }

    /// Reflow pairs reproduce the flow's ODE map: for the exact mixture under rectified flow,
    /// RK45 pairs match the ground-truth ODE solution from the same noise.
    @Test func reflowPairsReproduceTheODEMap() throws {
        let rf = DiffusionProcess.rectifiedFlow()
        let grid = try NoiseGrid.timeUniform(rf, steps: 10, start: 1e-4, end: 1 - 1e-4)
        let (z0, z1) = try Reflow.pairs(flow: gmm, grid: grid, shape: [200, 2], seed: 3)
        let start = z0 * Float(rf.sigma(1e-4))   // the state at t = 1e-4 is σ·z (α·x ≈ 0 is below the tolerance)
        let (truth, _) = try gmm.solveProbabilityFlow(start, from: (rf.alpha(1e-4), rf.sigma(1e-4)), to: (rf.alpha(1 - 1e-4), rf.sigma(1 - 1e-4)))
        #expect(zip(z1.scalars, truth.scalars).allSatisfy { abs($0 - $1) < 2e-3 }, "RK45 pairs vs ground truth")
        // A flow trained on the pairs, then distilled to one step, learns the coupling.
        let net = try mlp(17)
        let flow = DiffusionModel(network: net, process: rf, parameterization: .velocity)
        let (first, last) = try train(net, steps: 400) { s, rng in try Reflow.loss(flow: flow, z0: z0, z1: z1, rng: &rng) }
        #expect(last < 0.5 * first)
        let (a, b) = try train(net, steps: 300) { _, _ in try Reflow.oneStepLoss(flow: flow, z0: z0, z1: z1) }
        #expect(b < 0.5 * a)
        #expect(try Reflow.straightness(flow: flow, z0: z0.slice(0..<50), steps: 10).isFinite)
    }
}
