import Distill
import Foundation
import Testing

@Suite struct UNetTests {
    /// A tiny class- and guidance-conditioned U-Net over 8×8 images: 2 levels (8, 4), attention
    /// at 4×4 and in the middle.
    static func tinyConfiguration(dropout: Float = 0) -> UNet.Configuration {
        UNet.Configuration(imageSize: 8, imageChannels: 1, baseChannels: 8, channelMultipliers: [1, 2], blocksPerLevel: 1,
                           attentionResolutions: [4], middleAttention: true, headCount: 2, groups: 4, timeEmbedding: nil, embeddingDim: 16,
                           classCount: 10, guidanceEmbeddingDim: 8, dropout: dropout, downsampling: .stridedConvolution)
    }

    /// Sets every trainable parameter to small random values, so that no zero-initialized layer
    /// blocks the gradient of the layers before it.
    static func randomize(_ net: UNet, seed: UInt64) throws {
        var rng = Philox(seed: seed, stream: 7)
        for (name, p) in net.namedParameters where p.isTrainable {
            let r = try rng.uniform(p.value.shape, low: -0.4, high: 0.4)
            p.value = name.contains("norm") && name.hasSuffix("weight") ? r + 1 : r   // GroupNorm gammas ~ 1 ± 0.4
        }
    }

    @Test func shapesAndParameters() throws {
        let net = try UNet(Self.tinyConfiguration(), seed: 1)
        var rng = Philox(seed: 2)
        let x = try rng.normal([3, 1, 8, 8])
        let y = try net(x, time: Tensor([0.1, 0.5, 0.9]), labels: [0, 9, 10], guidance: Tensor([0, 1, 3]))
        #expect(y.shape == [3, 1, 8, 8])
        // The output convolution starts at zero (ADM's zero module): the initial output is 0.
        #expect(y.scalars.allSatisfy { $0 == 0 })
        let names = net.namedParameters.map(\.name)
        #expect(Set(names).count == names.count, "parameter names must be unique")
        #expect(net.parameterCount == net.parameters.reduce(0) { $0 + $1.value.count })
        #expect(names.contains("middle.attn.qkv.weight") && names.contains("up.0.0.res.skip.weight") && names.contains("out_conv.weight"))

        // The default configuration: a U-Net for 28×28 images with 3 levels.
        let mnist = try UNet(.init(), seed: 0)
        #expect(mnist.configuration.resolutions == [28, 14, 7])
        let out = try mnist(Tensor.zeros([2, 1, 28, 28]), time: Tensor([0.3, 0.7]))
        #expect(out.shape == [2, 1, 28, 28])
        // Average-pool downsampling has no parameters; everything else is the same.
        var pooled = UNet.Configuration()
        pooled.downsampling = .averagePool
        let pooledNet = try UNet(pooled, seed: 0)
        #expect(mnist.parameterCount - pooledNet.parameterCount == (32 * 32 * 9 + 32) + (64 * 64 * 9 + 64))
    }

    @Test func clearErrors() throws {
        func message(_ body: () throws -> Void) -> String? {
            do { try body() } catch let e as TensorError { return e.description } catch { return "not a TensorError: \(error)" }
            return nil
        }
        // 28 cannot be halved 3 times.
        let m = message { _ = try UNet(.init(imageSize: 28, channelMultipliers: [1, 2, 2, 2], attentionResolutions: [])) }
        #expect(m?.contains("image size 28") == true && m?.contains("divisible by 8") == true && m?.contains("24 or 32") == true
                && m?.contains("at most 3 levels") == true, "\(m ?? "no error")")
        #expect(message { _ = try UNet(.init(imageSize: 30, channelMultipliers: [1, 2, 2], attentionResolutions: [])) }?
            .contains("divisible by 4") == true)
        #expect(message { _ = try UNet(.init(baseChannels: 20, groups: 8)) }?.contains("GroupNorm groups") == true)
        #expect(message { _ = try UNet(.init(headCount: 5)) }?.contains("heads") == true)
        #expect(message { _ = try UNet(.init(attentionResolutions: [8])) }?.contains("[28, 14, 7]") == true)
        #expect(message { _ = try UNet(.init(dropout: 1)) } != nil)

        let net = try UNet(Self.tinyConfiguration(), seed: 0)
        let t = Tensor([0.5, 0.5])
        let wrongChannels = message { _ = try net(Tensor.zeros([2, 3, 8, 8]), time: t, labels: [1, 2], guidance: t) }
        #expect(wrongChannels?.contains("[batch, 1, 8, 8]") == true, "\(wrongChannels ?? "no error")")
        let wrongSize = message { _ = try net(Tensor.zeros([2, 1, 28, 28]), time: t, labels: [1, 2], guidance: t) }
        #expect(wrongSize?.contains("built for 8×8") == true, "\(wrongSize ?? "no error")")
        #expect(message { _ = try net(Tensor.zeros([2, 1, 8, 8]), time: Tensor([0.5]), labels: [1, 2], guidance: t) } != nil)
        #expect(message { _ = try net(Tensor.zeros([2, 1, 8, 8]), time: t, labels: [1], guidance: t) }?.contains("label") == true)
        // No labels means the null class.
        var lr = Philox(seed: 3)
        let xl = try lr.normal([2, 1, 8, 8])
        #expect(try net(xl, time: t, labels: nil, guidance: t).scalars == net(xl, time: t, labels: [10, 10], guidance: t).scalars)
        #expect(message { _ = try net(Tensor.zeros([2, 1, 8, 8]), time: t, labels: [1, 11], guidance: t) } != nil)
        #expect(message { _ = try net(Tensor.zeros([2, 1, 8, 8]), time: t, labels: [1, 2]) }?.contains("guidance") == true)
        let plain = try UNet(.init(imageSize: 8, baseChannels: 8, channelMultipliers: [1, 2], blocksPerLevel: 1,
                                   attentionResolutions: [], headCount: 2, groups: 4), seed: 0)
        #expect(message { _ = try plain(Tensor.zeros([2, 1, 8, 8]), time: t, labels: [1, 2]) }?.contains("unconditional") == true)
    }

    /// Finite differences of Σ w·UNet(x, t, labels, w_guidance) against the tape's gradients,
    /// for a few elements of parameters spread over the whole network (embeddings, input conv,
    /// residual blocks with their scale-shift norms and skip convs, attention, resampling,
    /// output) and for the input image. Float32 forward, step h = 3e-3: the rounding noise of
    /// the sum (~1e-7·|L|·√n / h with n = 192 outputs) stays near 1e-4, far below the
    /// tolerance 5e-3 + 3e-2·|fd|; a wrong backward rule misses by far more.
    @Test func endToEndGradients() throws {
        let net = try UNet(Self.tinyConfiguration(), seed: 3)
        try Self.randomize(net, seed: 4)
        var rng = Philox(seed: 5)
        let x = try rng.normal([3, 1, 8, 8]), t = Tensor([0.2, 0.6, 0.95]), g = Tensor([0, 1.5, 4])
        let labels = [3, 10, 7]
        let w = try rng.normal([3, 1, 8, 8])
        func loss(_ input: Tensor) throws -> Double {
            let y = try withoutGradient { try net(input, time: t, labels: labels, guidance: g) }
            return zip(y.scalars, w.scalars).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
        }
        try net.valueWithGradient { try (net(x, time: t, labels: labels, guidance: g) * w).sum() }
        let h: Float = 3e-3
        let checked = ["time_mlp.0.weight", "class_embedding.table", "guidance_projection.weight", "input_conv.weight",
                       "down.0.res.conv1.weight", "down.0.res.emb.weight", "down.0.res.norm2.weight", "down.1.downsample.conv.weight",
                       "down.2.res.skip.weight", "down.2.attn.qkv.weight", "down.2.attn.proj.bias", "middle.attn.norm.bias",
                       "middle.res2.conv2.weight", "up.0.0.res.norm1.bias", "up.0.1.attn.qkv.bias", "up.0.upsample.conv.weight",
                       "up.1.1.res.skip.bias", "out_norm.weight", "out_conv.weight"]
        let params = Dictionary(uniqueKeysWithValues: net.namedParameters.map { ($0.name, $0.parameter) })
        var probes = 0
        for name in checked {
            let p = try #require(params[name], "no parameter \(name)")
            let grad = try #require(p.grad, "no gradient for \(name)").scalars
            let original = p.value
            for i in Swift.stride(from: 0, to: original.count, by: max(1, original.count / 3)) {
                var plus = original.scalars, minus = original.scalars
                plus[i] += h
                minus[i] -= h
                p.value = try Tensor(shape: original.shape, scalars: plus)
                let lp = try loss(x)
                p.value = try Tensor(shape: original.shape, scalars: minus)
                let lm = try loss(x)
                p.value = original
                let fd = (lp - lm) / Double(2 * h)
                #expect(abs(Double(grad[i]) - fd) <= 5e-3 + 3e-2 * abs(fd), "\(name)[\(i)]: tape \(grad[i]), finite difference \(fd)")
                probes += 1
            }
        }
        #expect(probes >= 50)
        // The input image.
        let (_, dx) = try valueWithGradient(at: x) { try (net($0, time: t, labels: labels, guidance: g) * w).sum() }
        for i in Swift.stride(from: 0, to: x.count, by: 17) {
            var plus = x.scalars, minus = x.scalars
            plus[i] += h
            minus[i] -= h
            let fd = (try loss(Tensor(shape: x.shape, scalars: plus)) - loss(Tensor(shape: x.shape, scalars: minus))) / Double(2 * h)
            #expect(abs(Double(dx.scalars[i]) - fd) <= 5e-3 + 3e-2 * abs(fd), "x[\(i)]: tape \(dx.scalars[i]), finite difference \(fd)")
        }
    }

    /// Two DSM training steps (forward, backward, AdamW; dropout 0.1 from the network's Philox
    /// stream) give bit-identical parameters at 1 and 2 threads.
    @Test func trainingStepIsThreadCountInvariant() throws {
        let data = try ImageDataset.digits8x8()
        let (x0, labels) = try data.batch(Array(0..<16))
        func train(threads: Int) throws -> [[Float]] {
            let old = Runtime.threadCount
            Runtime.threadCount = threads
            defer { Runtime.threadCount = old }
            let net = try UNet(Self.tinyConfiguration(dropout: 0.1), seed: 11)
            let model = DiffusionModel(network: net, process: .vpLinear(), parameterization: .epsilon)
            let opt = try Adam.adamW(net, learningRate: 1e-3)
            var rng = Philox(seed: 12)
            for _ in 0..<2 {
                try net.valueWithGradient {
                    try denoisingScoreMatchingLoss(model: model.withGuidance(2), x0: x0, labels: labels, rng: &rng)
                }
                try opt.update()
            }
            return net.parameters.map(\.value.scalars)
        }
        let one = try train(threads: 1), two = try train(threads: 2)
        #expect(one.count == two.count)
        for (a, b) in zip(one, two) { #expect(a.map(\.bitPattern) == b.map(\.bitPattern)) }
    }

    /// DSM training of a small U-Net on the 8×8 digits for 300 steps (batch 64, AdamW 2e-3).
    ///
    /// The loss is evaluated on a fixed batch (fixed images, times and noise) before and after.
    /// Before, the output is exactly zero (zero-initialized output conv), so the ε-loss is
    /// E‖ε‖²/d ≈ 1. The bound is the loss of the best denoiser that knows only each pixel's
    /// mean and variance — the exact posterior mean ε̂ = σ(x_t − α·m)/(α²·v + σ²) of a
    /// diagonal Gaussian with the data's per-pixel moments, evaluated on the same batch: a
    /// network that beats it has learned the images' spatial structure, not just their
    /// per-pixel statistics. (That baseline is ≈ 0.37 here; the trained U-Net reaches ≈ 0.2.)
    @Test func learnsDigitsByDenoisingScoreMatching() throws {
        let data = try ImageDataset.digits8x8()
        let config = UNet.Configuration(imageSize: 8, baseChannels: 16, channelMultipliers: [1, 2], blocksPerLevel: 1,
                                        attentionResolutions: [4], headCount: 2, groups: 8)
        let net = try UNet(config, seed: 21)
        let process = DiffusionProcess.vpLinear()
        let model = DiffusionModel(network: net, process: process, parameterization: .epsilon)
        let opt = try Adam.adamW(net, learningRate: 2e-3, weightDecay: 0)
        let sampler = try BatchSampler(count: data.count, batchSize: 64, seed: 22)

        // The fixed evaluation batch: 256 images, times, noise.
        let (evalX, _) = try data.batch(Array(0..<256))
        func evalLoss() throws -> Double {
            var rng = Philox(seed: 23)
            return Double(try withoutGradient { try denoisingScoreMatchingLoss(model: model, x0: evalX, rng: &rng) }.item())
        }
        let before = try evalLoss()
        var rng = Philox(seed: 24)
        for step in 0..<300 {
            let (x0, _) = try data.batch(sampler.indices(forStep: step))
            try net.valueWithGradient { try denoisingScoreMatchingLoss(model: model, x0: x0, rng: &rng) }
            try opt.update()
        }
        let after = try evalLoss()

        // The per-pixel Gaussian baseline on the same batch (same draws as evalLoss).
        let all = data.images.scalars, d = 64, n = data.count
        var mean = [Double](repeating: 0, count: d), variance = mean
        for i in 0..<n { for j in 0..<d { mean[j] += Double(all[i * d + j]) / Double(n) } }
        for i in 0..<n { for j in 0..<d { variance[j] += pow(Double(all[i * d + j]) - mean[j], 2) / Double(n) } }
        var brng = Philox(seed: 23)
        let times = try TimeSampling.uniform.draw(256, process: process, rng: &brng)
        let eps = try brng.normal(evalX.shape).scalars, xs = evalX.scalars
        var baseline = 0.0
        for i in 0..<256 {
            let (a, s) = (process.alpha(times[i]), process.sigma(times[i]))
            for j in 0..<d {
                let e = Double(eps[i * d + j]), xt = a * Double(xs[i * d + j]) + s * e
                let pred = s * (xt - a * mean[j]) / (a * a * variance[j] + s * s)
                baseline += (pred - e) * (pred - e)
            }
        }
        baseline /= Double(256 * d)
        #expect(abs(before - 1) < 0.1, "initial loss \(before): the zero output should give E‖ε‖²/d ≈ 1")
        #expect(after < baseline, "after 300 steps the loss is \(after); the per-pixel Gaussian denoiser reaches \(baseline)")
        print("digits DSM: loss \(before) → \(after); per-pixel Gaussian baseline \(baseline)")
    }

    /// A U-Net model card round-trips through a checkpoint and TrainedModel.load.
    @Test func savedModelRoundTrip() throws {
        let config = Self.tinyConfiguration()
        let net = try UNet(config, seed: 31)
        try Self.randomize(net, seed: 32)
        let card = ModelCard(architecture: .unet(config), process: .vpLinear(), parameterization: .epsilon,
                             dataShape: [1, 8, 8], dataSource: "digits8x8", classCount: 10)
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("unet-\(UUID().uuidString).safetensors").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        try Checkpoint(model: net, optimizer: nil, step: 5, config: card.json).write(to: path)
        let saved = try TrainedModel.load(path)
        #expect(saved.card == card && saved.kind == .diffusion && saved.itemShape == [1, 8, 8] && saved.classCount == 10)
        #expect(try Checkpoint.read(from: path).step == 5)
        let loaded = try #require(saved.network as? UNet)
        #expect(loaded.configuration == config)
        var rng = Philox(seed: 33)
        let x = try rng.normal([2, 1, 8, 8]), t = Tensor([0.3, 0.8]), g = Tensor([1, 2])
        let a = try net(x, time: t, labels: [1, 10], guidance: g), b = try loaded(x, time: t, labels: [1, 10], guidance: g)
        #expect(a.scalars == b.scalars)
        guard case let .diffusion(model, _) = saved.body else {
            Issue.record("a U-Net diffusion card loads as \(saved.kind)")
            return
        }
        let p = try model.withGuidance(2).predict(x, alpha: 0.8, sigma: 0.6, labels: [1, 2])
        #expect(p.data.shape == [2, 1, 8, 8])
    }
}
