import Distill
import Foundation
import Testing

@Suite struct MLPScoreNetworkTests {
    /// Finite-difference check of every parameter's gradient through the whole network
    /// (time embedding, concat, fused layers), on a tiny configuration. Same tolerance and
    /// reasoning as the per-op checks: h = 3e-3 in Float32, |tape - fd| <= 5e-3 + 2e-2·|fd|.
    @Test(arguments: [false, true])
    func parameterGradientsMatchFiniteDifferences(_ conditional: Bool) throws {
        let config = MLPScoreNetwork.Configuration(dataDimension: 3, hiddenWidths: [8, 6], classCount: conditional ? 3 : nil,
                                                   classEmbeddingDim: 5, guidanceEmbeddingDim: 0, activation: .silu,
                                                   timeEmbedding: .gaussianFourier(dim: 4, scale: 1))
        let net = try MLPScoreNetwork(config, seed: 4)
        var rng = Philox(seed: 5)
        let x = try rng.normal([5, 3]), t = try rng.uniform([5])
        let labels = conditional ? [0, 2, 3, 1, 3] : nil     // 3 = the null class
        let w = try rng.normal([5, 3])
        let named = net.namedParameters.filter { $0.parameter.isTrainable }
        #expect(named.count == (conditional ? 7 : 6))
        func loss() throws -> Tensor { try (net(x, time: t, labels: labels) * w).sum() }
        try net.valueWithGradient { try loss() }
        let h: Float = 3e-3
        for (name, p) in named {
            let g = try #require(p.grad).scalars
            let original = p.value
            for i in Swift.stride(from: 0, to: original.count, by: max(1, original.count / 12)) {
                var plus = original.scalars, minus = original.scalars
                plus[i] += h
                minus[i] -= h
                p.value = try Tensor(shape: original.shape, scalars: plus)
                let lp = Double(try withoutGradient { try loss() }.item())
                p.value = try Tensor(shape: original.shape, scalars: minus)
                let lm = Double(try withoutGradient { try loss() }.item())
                p.value = original
                let fd = (lp - lm) / Double(2 * h)
                #expect(abs(Double(g[i]) - fd) <= 5e-3 + 2e-2 * abs(fd), "\(name)[\(i)]: tape \(g[i]) fd \(fd)")
            }
        }
    }

    @Test func badInputsThrow() throws {
        let net = try MLPScoreNetwork(.init(dataDimension: 2, hiddenWidths: [4]), seed: 0)
        #expect(throws: TensorError.self) { try net(Tensor.zeros([3, 5]), time: Tensor.zeros([3])) }
        #expect(throws: TensorError.self) { try net(Tensor.zeros([3, 2]), time: Tensor.zeros([2])) }
        #expect(throws: TensorError.self) { try net(Tensor.zeros([3, 2]), time: Tensor.zeros([3]), labels: [0, 0, 0]) }
        #expect(throws: TensorError.self) { try MLPScoreNetwork(.init(hiddenWidths: []), seed: 0) }
        let cond = try MLPScoreNetwork(.init(dataDimension: 2, hiddenWidths: [4], classCount: 2), seed: 0)
        #expect(throws: TensorError.self) { try cond(Tensor.zeros([2, 2]), time: Tensor.zeros([2]), labels: [0, 5]) }
        #expect(throws: TensorError.self) { try cond(Tensor.zeros([2, 2]), time: Tensor.zeros([2]), labels: [0]) }
        // No labels means the null class (index classCount) for every row.
        let x = try Tensor(shape: [2, 2], scalars: [0.3, -1, 2, 0.5]), t = Tensor([0.2, 0.7])
        #expect(try cond(x, time: t).scalars == cond(x, time: t, labels: [2, 2]).scalars)
    }

    @Test func defaultArchitectureHasTheDocumentedSize() throws {
        let net = try MLPScoreNetwork(.init(), seed: 0)
        // (66·256 + 256) + 2·(256·256 + 256) + (256·2 + 2) trainable, plus 32 frozen frequencies.
        #expect(net.parameterCount == 66 * 256 + 256 + 2 * (256 * 256 + 256) + 256 * 2 + 2 + 32)
        #expect(net.trainableParameters.count == 8)
    }
}

@Suite struct DenoisingTrainingTests {
    func trainSteps(_ steps: Int, threads: Int) throws -> (losses: [Float], weights: [UInt32]) {
        let old = Runtime.threadCount
        Runtime.threadCount = threads
        defer { Runtime.threadCount = old }
        let net = try MLPScoreNetwork(.init(hiddenWidths: [64, 64]), seed: 1)
        let opt = try Adam.adamW(net, learningRate: 3e-3)
        let data = try ToyDataset.eightGaussians.sample(4096, seed: 2)
        var rng = Philox(seed: 3)
        let model = DiffusionModel(network: net, process: .vpLinear(), parameterization: .epsilon)
        var losses: [Float] = []
        for s in 0..<steps {
            let x0 = try data.slice((s * 256 % 4096)..<(s * 256 % 4096 + 256))
            losses.append(try net.valueWithGradient {
                try denoisingScoreMatchingLoss(model: model, x0: x0, rng: &rng)
            })
            try opt.update()
        }
        return (losses, net.parameters.flatMap { $0.value.scalars.map(\.bitPattern) })
    }

    /// Noise prediction starts near the ε variance (1) and must drop well below it: on this
    /// data most noise levels leave ε partly predictable. 0.8x the early mean is a margin an
    /// untrained or broken loop does not reach.
    @Test func lossDecreases() throws {
        let (losses, _) = try trainSteps(300, threads: Runtime.threadCount)
        let early = losses.prefix(30).reduce(0, +) / 30, late = losses.suffix(30).reduce(0, +) / 30
        #expect(late < 0.8 * early, "loss \(early) → \(late)")
    }

    /// A training run gives the same bits with 1 and 2 threads.
    @Test func trainingIsThreadCountInvariant() throws {
        let one = try trainSteps(5, threads: 1), two = try trainSteps(5, threads: 2)
        #expect(firstBitMismatch(one.losses, two.losses) == nil)
        #expect(one.weights == two.weights)
    }
}

@Suite struct ProcessAndDataTests {
    @Test func vpLinearProcess() {
        let p = VPLinearProcess()
        #expect(abs(p.alpha(0) - 1) < 1e-12)
        for t in stride(from: 0.001, through: 1, by: 0.05) {
            #expect(abs(p.alpha(t) * p.alpha(t) + p.sigma(t) * p.sigma(t) - 1) < 1e-12)
            #expect(p.logSNR(t) > p.logSNR(t + 0.01))
            // α from the closed form of the integral of β: log α = -½∫β.
            let integral = 0.1 * t + 0.5 * (20 - 0.1) * t * t
            #expect(abs(log(p.alpha(t)) + 0.5 * integral) < 1e-12)
        }
    }
}
