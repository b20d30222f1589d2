import Distill
import Foundation
import Testing

/// A diagonal affine generator x = a ⊙ z + b: its output distribution at any noise level is
/// the Gaussian N(α b, diag(α²a² + σ²)), so its exact score is known.
final class AffineGenerator: Generator {
    let a: Parameter, b: Parameter
    init(a: [Float], b: [Float]) { self.a = Parameter(Tensor(a)); self.b = Parameter(Tensor(b)) }
    var latentDimension: Int { a.value.count }
    var dataDimension: Int { a.value.count }
    func generate(_ z: Tensor) throws -> Tensor { try z * a.value + b.value }
    func visitParameters(_ visit: (String, Parameter) throws -> Void) rethrows { try visit("a", a); try visit("b", b) }
    var asMixture: GaussianMixture {
        try! GaussianMixture(weights: [1], means: [b.value.scalars.map(Double.init)], variances: [a.value.scalars.map { Double($0 * $0) }])
    }
}

@Suite struct GeneratorDistillationTests {
    /// Generator settings as the tests were calibrated with: batch 256, an MLP of widths
    /// [128, 128], generator learning rate 1e-3, seed 3.
    func generatorSettings(steps: Int) -> Distiller.Settings {
        var s = Distiller.Settings()
        s.steps = steps
        s.batch = 256
        s.hidden = [128, 128]
        s.generator.generatorLearningRate = 1e-3
        s.seed = 3
        return s
    }

    /// The one-step generator `method` trains from `teacher`, checked to be one.
    func trainGenerator(_ method: DistillationMethod, teacher: TrainedModel, settings: Distiller.Settings) throws -> TrainedModel {
        let stages = try Distiller(teacher: teacher, settings: settings).run(method)
        let stage = try #require(stages.first)
        #expect(stages.count == 1 && stage.nfe == 1 && stage.model.kind == .generator && stage.name == "\(method.rawValue)-nfe1")
        return stage.model
    }

    /// Diff-Instruct's surrogate gradient is the integral-KL gradient: at one noise level, with
    /// w = 1, d/dθ KL(p_θ,t ‖ q_t) = E (s_p - s_q)ᵀ ∂x_t/∂θ. The KL is estimated by Monte Carlo
    /// on fixed draws (common random numbers) and differentiated by central differences; the
    /// two agree up to the Monte-Carlo noise of the score-of-parameter term (mean zero, std
    /// ~1/√N: 2% at N = 200k with these values).
    @Test func surrogateGradientIsTheIntegralKLGradient() throws {
        let teacher = GaussianMixture.ring8()
        let gen = AffineGenerator(a: [0.7, 1.3], b: [0.4, -0.2])
        let n = 200_000
        let t = 0.3
        let process = DiffusionProcess.vpLinear()
        let (alpha, sigma) = (process.alpha(t), process.sigma(t))
        var rng = Philox(seed: 5)
        let z = try rng.normal([n, 2]), eps = try rng.normal([n, 2])
        // KL(p_θ,t ‖ q_t) ≈ mean over fixed draws of log p_θ,t(x_t) - log q_t(x_t).
        func kl(_ a: [Double], _ b: [Double]) throws -> Double {
            let g = try GaussianMixture(weights: [1], means: [b], variances: [a.map { $0 * $0 }])
            let zs = z.scalars, es = eps.scalars
            let xt = (0..<(2 * n)).map { i in alpha * (a[i % 2] * Double(zs[i]) + b[i % 2]) + sigma * Double(es[i]) }
            let lp = g.logDensity(xt, alpha: alpha, sigma: sigma), lq = teacher.logDensity(xt, alpha: alpha, sigma: sigma)
            return zip(lp, lq).reduce(0.0) { $0 + $1.0 - $1.1 } / Double(n)
        }
        // Diff-Instruct's surrogate sg(s_fake - s_teacher)·x_t on the same draws, through the tape.
        let fake = gen.asMixture
        let (_, grads) = try valueWithGradient(at: [gen.a.value, gen.b.value]) { v in
            let x = try z * v[0] + v[1]
            let xt = try x * Float(alpha) + eps * Float(sigma)
            let direction = try withoutGradient { () throws -> Tensor in
                let lv = NoiseLevels(alpha: alpha, sigma: sigma, batch: n)
                let et = try teacher.predict(xt.detached(), at: lv, labels: nil).noise
                let ef = try fake.predict(xt.detached(), at: lv, labels: nil).noise
                return try (et - ef) * Float(1 / sigma)
            }
            return try (direction * xt).sum() * (1 / Float(n))
        }
        let h = 1e-3
        let (a0, b0) = ([0.7, 1.3], [0.4, -0.2])
        for j in 0..<2 {
            var ap = a0, am = a0
            ap[j] += h; am[j] -= h
            let fdA = (try kl(ap, b0) - kl(am, b0)) / (2 * h)
            var bp = b0, bm = b0
            bp[j] += h; bm[j] -= h
            let fdB = (try kl(a0, bp) - kl(a0, bm)) / (2 * h)
            #expect(abs(Double(grads[0].scalars[j]) - fdA) <= 0.02 * abs(fdA) + 0.01, "d/da\(j): surrogate \(grads[0].scalars[j]), FD \(fdA)")
            #expect(abs(Double(grads[1].scalars[j]) - fdB) <= 0.02 * abs(fdB) + 0.01, "d/db\(j): surrogate \(grads[1].scalars[j]), FD \(fdB)")
        }
        // The library's surrogate gives the same gradient direction for this generator (up to
        // the sampled times): its loss is differentiable and finite.
        var r3 = Philox(seed: 2)
        let lossValue = try gen.valueWithGradient {
            try ScoreDistillation.diffInstructLoss(generated: gen.generate(z.slice(0..<512)), teacher: teacher, fake: fake, process: process,
                                                   weighting: .uniform, timeRange: t...t, rng: &r3)
        }
        #expect(lossValue.isFinite && gen.a.grad != nil && gen.b.grad != nil)
    }

    /// The fake score network, trained by DSM on samples of a fixed generator whose output is a
    /// Gaussian mixture, converges to that mixture's exact score: its explicit score-matching
    /// error falls below a tenth of the untrained network's.
    @Test func fakeScoreConvergesToTheGeneratorsScore() throws {
        let target = try GaussianMixture(weights: [1, 2], means: [[-1, 0.5], [1, -0.5]], variances: [[0.2, 0.1], [0.1, 0.3]])
        let net = try MLPScoreNetwork(.init(hiddenWidths: [64, 64, 64]), seed: 4)
        let fake = DiffusionModel(network: net, process: .vpLinear(), parameterization: .epsilon)
        func esm() throws -> Float {
            var r = Philox(seed: 33)
            return try withoutGradient { try explicitScoreMatchingLoss(model: fake, mixture: target, batch: 4096, process: .vpLinear(), rng: &r).item() }
        }
        let before = try esm()
        let opt = try Adam.adamW(net, learningRate: 2e-3, weightDecay: 0)
        for s in 0..<1500 {
            var rng = Philox(seed: 8, stream: UInt64(s))
            let (x, _) = try target.sample(256, seed: 1, stream: UInt64(s))
            try net.valueWithGradient { try ScoreDistillation.fakeScoreLoss(fake: fake, generated: x, rng: &rng) }
            try opt.update()
        }
        let after = try esm()
        #expect(after < 0.1 * before, "ESM \(before) → \(after)")
    }

    /// No gradient reaches the teacher: its parameters' gradients stay zero while the
    /// generator's do not, for every method.
    @Test func noGradientReachesTheTeacher() throws {
        let teacherNet = try MLPScoreNetwork(.init(hiddenWidths: [16]), seed: 1)
        let teacher = DiffusionModel(network: teacherNet, process: .vpLinear(), parameterization: .epsilon)
        let gen = try MLPGenerator(latentDimension: 2, dataDimension: 2, hidden: [16])
        let fake = GaussianMixture.ring8()
        for method in DistillationMethod.allCases.filter(\.makesGenerator) {
            var rng = Philox(seed: 3)
            try valueWithGradient(of: gen.parameters + teacherNet.parameters) {
                let x = try gen.sample(64, rng: &rng)
                switch method {
                case .diffInstruct: return try diffInstructLoss(generated: x, teacher: teacher, fake: fake, process: .vpLinear(), rng: &rng)
                case .sds: return try sdsLoss(generated: x, teacher: teacher, process: .vpLinear(), rng: &rng)
                default: return try vsdLoss(generated: x, teacher: teacher, fake: fake, process: .vpLinear(), rng: &rng)
                }
            }
            #expect(teacherNet.trainableParameters.allSatisfy { p in p.grad.map { $0.scalars.allSatisfy { $0 == 0 } } ?? true }, "\(method)")
            #expect(gen.trainableParameters.contains { p in p.grad.map { $0.scalars.contains { $0 != 0 } } ?? false }, "\(method)")
        }
    }

    /// Diff-Instruct covers every mode of the ring; SDS, mode-seeking, collapses onto few of
    /// them (Poole et al. 2022 note its mode-seeking; Wang et al. 2023 fix it with VSD).
    @Test func diffInstructCoversModesAndSDSCollapses() throws {
        let s = generatorSettings(steps: 800)
        let mixture = GaussianMixture.ring8()
        func coverage(_ m: DistillationMethod) throws -> Int {
            let generator = try trainGenerator(m, teacher: TrainedModel(exact: mixture), settings: s)
            return try mixture.modeCoverage(generator.sample(count: 2000, seed: 1)).coveredModes
        }
        let di = try coverage(.diffInstruct), sds = try coverage(.sds)
        #expect(di == 8 && sds < 8, "modes covered: Diff-Instruct \(di), SDS \(sds)")
    }

    /// The convolutional generator is trainable end to end and has the capacity to draw 8×8
    /// patterns: fitted by squared error from two fixed latents to a vertical bar and a square
    /// ring (±1 pixels), its error falls below 1% of the untrained one's in 300 Adam steps. (The
    /// D2G dynamics themselves are tested above with MLP generators, which share the code path.)
    @Test func convGeneratorFitsImages() throws {
        let bar = (0..<64).map { Float(($0 % 8 == 3 || $0 % 8 == 4) ? 1 : -1) }
        let ring = (0..<64).map { i -> Float in
            let (y, x) = (i / 8, i % 8)
            return (y == 1 || y == 6 || x == 1 || x == 6) && (1...6).contains(y) && (1...6).contains(x) ? 1 : -1
        }
        let target = try Tensor(shape: [2, 64], scalars: bar + ring)
        let gen = try ConvGenerator(.init(imageSize: 8, latentDimension: 4, baseChannels: 8), seed: 1)
        var r = Philox(seed: 2)
        let z = try r.normal([2, 4])
        func loss() throws -> Tensor {
            let d = try gen.generate(z) - target
            return try (d * d).mean()
        }
        let before = try withoutGradient { try loss() }.item()
        let opt = try Adam(gen, learningRate: 1e-2)
        for _ in 0..<300 {
            try gen.valueWithGradient { try loss() }
            try opt.update()
        }
        let after = try withoutGradient { try loss() }.item()
        #expect(after < 0.01 * before, "squared error \(before) → \(after)")
    }

    /// Stochastic generators use their noise input; cards rebuild generators exactly; a wrong
    /// input width is a clear error.
    @Test func stochasticGeneratorsAndCards() throws {
        let mlp = try MLPGenerator(latentDimension: 2, noiseDimension: 3, dataDimension: 2, hidden: [8], seed: 1)
        let conv = try ConvGenerator(.init(imageSize: 8, latentDimension: 4, baseChannels: 8, stochastic: true), seed: 2)
        #expect(conv.noiseDimension == 64 && conv.dataDimension == 64)
        let cards = [GeneratorCard(method: "x", latentDimension: 2, dataDimension: 2, hidden: [8], noiseDimension: 3),
                     GeneratorCard(method: "x", latentDimension: 4, dataDimension: 64, hidden: [], convolutional: conv.configuration)]
        for (gen, card) in zip([mlp, conv] as [any Generator], cards) {
            var r = Philox(seed: 7)
            let z = try r.normal([5, gen.latentDimension + gen.noiseDimension])
            // The same latent with other noise: other items.
            let latent = try z.slice(0..<gen.latentDimension, axis: 1)
            let z2 = try Tensor.concat([latent, try r.normal([5, gen.noiseDimension])], axis: 1)
            let (a, b) = (try gen.generate(z), try gen.generate(z2))
            #expect(a.scalars != b.scalars, "\(type(of: gen)) ignores its noise")
            let json = try JSONEncoder().encode(card)
            let rebuilt = try JSONDecoder().decode(GeneratorCard.self, from: json).makeGenerator()
            try rebuilt.load(gen.stateDictionary())
            #expect(try rebuilt.generate(z).scalars == a.scalars)
            #expect(throws: TensorError.self) { try gen.generate(latent) }
        }
        #expect(throws: TensorError.self) { try ConvGenerator(.init(imageSize: 28, latentDimension: 4)).generate(Tensor.zeros([1, 5])) }
        #expect(throws: TensorError.self) { try ConvGenerator(.init(imageSize: 30)) }
    }

    /// A class and a guidance weight for the teacher: Diff-Instruct from the class-conditional
    /// ring asked for class 2 (the component at (0, 2)) puts the generator's samples there: all
    /// nearest to it, mean within 0.25 of (0, 2) (a sixth of the 1.53 between neighbouring
    /// components; 600 steps leave some bias); with guidance w = 1 they stay in class 2 but move outwards, away
    /// from the other classes (classifier-free guidance sharpens p(c | x)): mean radius larger.
    @Test func teacherClassAndGuidance() throws {
        let ring = GaussianMixture.ring8()
        let teacher = TrainedModel(exact: ring)
        func run(guidance: Float?) throws -> (x: Double, y: Double, inClass: Double) {
            var s = generatorSettings(steps: 600)
            s.teacherClass = 2
            s.teacherGuidance = guidance
            let t = try trainGenerator(.diffInstruct, teacher: teacher, settings: s).sample(count: 1000, seed: 9)
            let x = t.scalars
            let mx = stride(from: 0, to: x.count, by: 2).map { Double(x[$0]) }.reduce(0, +) / 1000
            let my = stride(from: 1, to: x.count, by: 2).map { Double(x[$0]) }.reduce(0, +) / 1000
            let counts = try ring.modeCoverage(t).counts
            return (mx, my, Double(counts[2]) / 1000)
        }
        let plain = try run(guidance: nil), guided = try run(guidance: 1)
        #expect(abs(plain.x) < 0.25 && abs(plain.y - 2) < 0.25 && plain.inClass > 0.95, "class 2 only: \(plain)")
        #expect(guided.inClass > 0.95 && guided.y > plain.y + 0.1, "guided: \(guided), unguided: \(plain)")
        var bad = generatorSettings(steps: 10)
        bad.teacherGuidance = 1
        #expect(throws: TrainingError.self) { try Distiller(teacher: teacher, settings: bad).run(.sds) }
    }
}
