import Distill
import Testing

/// The README's library example, but for a shorter run, must compile and work with the public
/// API only (what `import Distill` gives a package that depends on this one).
@Suite struct ReadmeExampleTests {
    @Test func theTenLineExampleWorks() throws {
        let net = try MLPScoreNetwork(.init(dataDimension: 2, hiddenWidths: [256, 256, 256]), seed: 0)
        let model = DiffusionModel(network: net, process: .vpLinear(), parameterization: .epsilon)
        let optimizer = try Adam.adamW(net, learningRate: 1e-3)
        var rng = Philox(seed: 1)
        for step in 0..<300 {
            let (x0, _) = try GaussianMixture.ring8().sample(512, seed: 2, stream: UInt64(step))
            try net.valueWithGradient { try denoisingScoreMatchingLoss(model: model, x0: x0, rng: &rng) }
            try optimizer.update()
        }
        let plan = SamplingPlan(sampler: .dpmpp2M, nfe: 10)
        let samples = try plan.run(model, process: .vpLinear(), from: rng.normal([1000, 2])).sample
        // After 300 steps the samples already sit on the ring of radius 2 on average (±0.5).
        let v = samples.scalars
        var total: Float = 0
        for i in 0..<1000 { total += (v[2 * i] * v[2 * i] + v[2 * i + 1] * v[2 * i + 1]).squareRoot() }
        let mean = total / 1000
        #expect(abs(mean - 2) < 0.5, "mean radius \(mean)")
    }
}
