import Distill
import Foundation
import Testing

/// diffusers `UNet2DModel` folders (written by scripts/diffusers-fixtures.py with diffusers
/// 0.42.1 and torch 2.13.0, CPU) load and give diffusers' outputs; bad folders give errors
/// naming the field or tensor.
@Suite struct DiffusersUNetTests {
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("Fixtures").appendingPathComponent("diffusers")
    static let names = ["plain", "attention", "classcond", "vpred", "attention-f16", "attention-bf16"]

    static func folder(_ name: String) -> String { fixtures.appendingPathComponent(name).path }

    /// The recorded inputs and diffusers outputs of a fixture.
    struct Reference {
        let sample: Tensor
        let timesteps: [[Float]]
        let labels: [Int]?
        let outputs: [Tensor]

        init(_ name: String) throws {
            let t = try SafeTensors.read(DiffusersUNetTests.folder(name) + "/reference.safetensors").tensors
            sample = try #require(t["sample"])
            let steps = try #require(t["timesteps"])
            timesteps = (0..<steps.shape[0]).map { Array(steps.scalars[(2 * $0)..<(2 * $0 + 2)]) }
            labels = t["class_labels"].map { $0.scalars.map { Int($0) } }
            let out = try #require(t["output"])
            outputs = try (0..<out.shape[0]).map { try out.row($0) }
        }
    }

    /// For each recorded evaluation k: max_i |y_i − r_i| / RMS(r), where r is diffusers'
    /// output (both rows of the batch) and y ours, on the same input, timesteps and labels.
    static func relativeErrors(_ net: DiffusersUNet2D, _ ref: Reference) throws -> [Double] {
        try zip(ref.timesteps, ref.outputs).map { steps, expected in
            let y = try withoutGradient { try net(ref.sample, time: Tensor(steps), labels: ref.labels, guidance: nil) }
            #expect(y.shape == expected.shape)
            let r = expected.scalars.map(Double.init)
            let rms = (r.reduce(0) { $0 + $1 * $1 } / Double(r.count)).squareRoot()
            let maxError = zip(y.scalars, r).reduce(0.0) { max($0, abs(Double($1.0) - $1.1)) }
            return maxError / rms
        }
    }

    /// Every fixture, at every recorded timestep (999, 500, 10, 123.5, and 999/0 per row):
    /// max |ours − diffusers| ≤ 1e-4 · RMS(diffusers output). The half-precision fixtures
    /// carry outputs computed in float32 from the rounded weights, so they check the F16 and
    /// BF16 conversion exactly as the float32 ones check the network.
    @Test(arguments: names) func matchesDiffusers(_ name: String) throws {
        let net = try DiffusersUNet2D.load(from: Self.folder(name))
        #expect(Double(net.parameterCount) == net.configuration.parameterCount)
        let errors = try Self.relativeErrors(net, Reference(name))
        print("diffusers fixture \(name): max relative error per timestep \(errors.map { String(format: "%.2e", $0) })")
        for (k, e) in errors.enumerated() { #expect(e <= 1e-4, "\(name), evaluation \(k): relative error \(e)") }
    }

    /// The fixtures exercise what they are meant to: centering, every block kind, the
    /// class embedding, scale-shift blocks with a GroupNorm-less middle attention, both
    /// timestep-feature conventions, and half-precision files (the unet folder also loads
    /// directly).
    @Test func fixturesCoverTheOptions() throws {
        let c = try (0..<4).map { try DiffusersUNetConfiguration.read(Self.folder(Self.names[$0]) + "/unet/config.json") }
        #expect(c[0].centerInputSample && c[0].layersPerBlock == 2 && !c[0].addAttention && c[0].inChannels == 3)
        #expect(c[1].downBlockTypes.contains(.attention) && c[1].attnNormNumGroups == 4 && c[1].midBlockScaleFactor == 1.5)
        #expect(c[2].numClassEmbeds == 10)
        #expect(!c[3].flipSinToCos && c[3].freqShift == 1 && c[3].scaleShift && c[3].midAttentionGroups == nil)
        let direct = try DiffusersUNet2D.load(from: Self.folder("attention") + "/unet")
        #expect(direct.configuration == c[1])
        for half in ["attention-f16", "attention-bf16"] {
            let bytes = try Data(contentsOf: URL(fileURLWithPath: Self.folder(half) + "/unet/diffusion_pytorch_model.safetensors"))
            let dtype = half.hasSuffix("bf16") ? "\"BF16\"" : "\"F16\""
            #expect(String(decoding: bytes.prefix(4096), as: UTF8.self).contains(dtype), "\(half) is not stored as \(dtype)")
        }
    }

    /// Gradients reach every parameter (none is identically zero) and agree with central
    /// finite differences of L = Σ w·UNet(x) on a few elements of every tenth parameter
    /// tensor and of the input. Float32 forward, h = 3e-3; tolerance 5e-3 + 3e-2·|fd| (as the
    /// project's U-Net test): float rounding moves the difference quotient by ~1e-4 here.
    @Test(arguments: ["attention", "classcond", "vpred"]) func gradients(_ name: String) throws {
        let net = try DiffusersUNet2D.load(from: Self.folder(name))
        let ref = try Reference(name)
        let x = ref.sample, t = Tensor([700, 30.5]), labels = ref.labels
        var rng = Philox(seed: 9)
        let w = try rng.normal(x.shape.with(1, net.configuration.outChannels))
        func loss() throws -> Double {
            let y = try withoutGradient { try net(x, time: t, labels: labels, guidance: nil) }
            return zip(y.scalars, w.scalars).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
        }
        try net.valueWithGradient { try (net(x, time: t, labels: labels, guidance: nil) * w).sum() }
        let h: Float = 3e-3
        var probes = 0
        for (index, (name, p)) in net.namedParameters.enumerated() {
            let grad = try #require(p.grad, "no gradient for \(name)").scalars
            #expect(grad.contains { $0 != 0 }, "the gradient of \(name) is zero")
            guard index % 10 == 0 else { continue }
            for i in Swift.stride(from: 0, to: p.value.count, by: max(1, p.value.count / 2)) {
                let fd = try p.centralDifference(at: i, step: h, loss)
                #expect(abs(Double(grad[i]) - fd) <= 5e-3 + 3e-2 * abs(fd), "\(name)[\(i)]: tape \(grad[i]), finite difference \(fd)")
                probes += 1
            }
        }
        #expect(probes >= 15)
        let (_, dx) = try valueWithGradient(at: x) { try (net($0, time: t, labels: labels, guidance: nil) * w).sum() }
        #expect(dx.scalars.contains { $0 != 0 })
    }

    /// Wrong inputs give errors, not crashes.
    @Test func inputErrors() throws {
        let conditional = try DiffusersUNet2D.load(from: Self.folder("classcond"))
        let plain = try DiffusersUNet2D.load(from: Self.folder("attention"))
        let x = try Tensor.zeros([2, 1, 8, 8]), t = Tensor([10, 20])
        #expect(throws: TensorError.self) { try conditional(x, time: t, labels: nil, guidance: nil) }
        #expect(throws: TensorError.self) { try conditional(x, time: t, labels: [1, 10], guidance: nil) }
        #expect(throws: TensorError.self) { try plain(x, time: t, labels: [1, 2], guidance: nil) }
        #expect(throws: TensorError.self) { try plain(x, time: t, labels: nil, guidance: t) }
        #expect(throws: TensorError.self) { try plain(x, time: Tensor([10]), labels: nil, guidance: nil) }
        #expect(throws: TensorError.self) { try plain(Tensor.zeros([2, 1, 6, 6]), time: t, labels: nil, guidance: nil) }
        // Flattened rows give flattened predictions; larger images of allowed sides work too.
        let rows = try plain(Tensor.zeros([2, 64]), time: t, labels: nil, guidance: nil)
        #expect(rows.shape == [2, 64])
        #expect(try plain(Tensor.zeros([1, 1, 16, 8]), time: Tensor([5]), labels: nil, guidance: nil).shape == [1, 1, 16, 8])
    }

    /// A copy of the "attention" fixture's unet folder with its config edited by `edit` and
    /// its weights edited by `weights`, loaded; returns the error's description.
    static func loadError(config edit: (inout [String: Any]) -> Void = { _ in },
                          weights: (inout [String: Tensor]) throws -> Void = { _ in }) throws -> (any Error)? {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("diffusers-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let source = folder("attention") + "/unet/"
        var config = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: source + "config.json"))) as? [String: Any])
        edit(&config)
        try JSONSerialization.data(withJSONObject: config).write(to: dir.appendingPathComponent("config.json"))
        var tensors = try SafeTensors.read(source + "diffusion_pytorch_model.safetensors").tensors
        try weights(&tensors)
        try SafeTensors.write(.init(tensors: tensors), to: dir.appendingPathComponent("diffusion_pytorch_model.safetensors").path)
        do { _ = try DiffusersUNet2D.load(from: dir.path) } catch { return error }
        return nil
    }

    /// Each hostile config or weights file gives the typed error naming the field or tensor
    /// (and the file); an unedited copy loads.
    @Test func hostileFolders() throws {
        #expect(try Self.loadError() == nil)
        func fieldError(_ edit: (inout [String: Any]) -> Void) throws -> DiffusersError? {
            try Self.loadError(config: edit) as? DiffusersError
        }
        func check(_ e: DiffusersError?, _ expected: (DiffusersError) -> Bool, _ words: [String]) {
            guard let e else { Issue.record("no DiffusersError"); return }
            #expect(expected(e), "\(e)")
            for w in words + ["config.json"] { #expect(e.description.contains(w), "'\(w)' not in: \(e)") }
        }
        func isMissing(_ f: String) -> (DiffusersError) -> Bool { { if case .missingField(_, f, _) = $0 { true } else { false } } }
        func isInvalid(_ f: String) -> (DiffusersError) -> Bool { { if case .invalidField(_, f, _, _) = $0 { true } else { false } } }
        func isUnsupported(_ f: String) -> (DiffusersError) -> Bool { { if case .unsupported(_, f, _, _) = $0 { true } else { false } } }

        check(try fieldError { $0["block_out_channels"] = nil }, isMissing("block_out_channels"), ["block_out_channels"])
        check(try fieldError { $0["layers_per_block"] = nil }, isMissing("layers_per_block"), ["layers_per_block"])
        check(try fieldError { $0["down_block_types"] = ["DownBlock2D", "CrossAttnDownBlock2D", "AttnDownBlock2D"] },
              isUnsupported("down_block_types"), ["CrossAttnDownBlock2D", "AttnDownBlock2D"])
        check(try fieldError { $0["up_block_types"] = ["AttnUpBlock2D", "UpBlock2D"] }, isInvalid("up_block_types"), ["one per entry"])
        check(try fieldError { $0["norm_num_groups"] = 3 }, isInvalid("norm_num_groups"), ["norm_num_groups", "4 channels"])
        check(try fieldError { $0["attention_head_dim"] = 3 }, isInvalid("attention_head_dim"), ["attention_head_dim", "8 channels"])
        check(try fieldError { $0["attn_norm_num_groups"] = 3 }, isInvalid("attn_norm_num_groups"), ["attn_norm_num_groups"])
        check(try fieldError { $0["time_embedding_type"] = "fourier" }, isUnsupported("time_embedding_type"), ["fourier", "positional"])
        check(try fieldError { $0["time_embedding_type"] = "learned" }, isUnsupported("time_embedding_type"), ["learned"])
        check(try fieldError { $0["class_embed_type"] = "timestep" }, isUnsupported("class_embed_type"), ["timestep", "null"])
        check(try fieldError { $0["act_fn"] = "gelu" }, isUnsupported("act_fn"), ["gelu", "silu"])
        check(try fieldError { $0["downsample_type"] = "resnet" }, isUnsupported("downsample_type"), ["resnet", "conv"])
        check(try fieldError { $0["upsample_type"] = "resnet" }, isUnsupported("upsample_type"), ["resnet", "conv"])
        check(try fieldError { $0["resnet_time_scale_shift"] = "spatial" }, isUnsupported("resnet_time_scale_shift"), ["spatial"])
        check(try fieldError { $0["downsample_padding"] = 0 }, isUnsupported("downsample_padding"), ["downsample_padding"])
        check(try fieldError { $0["_class_name"] = "UNet2DConditionModel" }, isUnsupported("_class_name"), ["UNet2DModel"])
        check(try fieldError { $0["sample_size"] = 6 }, isInvalid("sample_size"), ["multiple of 4"])
        check(try fieldError { $0["sample_size"] = [8, 16] }, isUnsupported("sample_size"), ["square"])
        check(try fieldError { $0["layers_per_block"] = 0 }, isInvalid("layers_per_block"), ["1...64"])
        check(try fieldError { $0["in_channels"] = -1 }, isInvalid("in_channels"), ["in_channels", "a number -1"])
        check(try fieldError { $0["out_channels"] = NSNull() }, isInvalid("out_channels"), ["is null", "1...1048576"])
        check(try fieldError { $0["norm_eps"] = "small" }, isInvalid("norm_eps"), ["norm_eps"])
        check(try fieldError { $0["center_input_sample"] = 1 }, isInvalid("center_input_sample"), ["true or false"])
        check(try fieldError { $0["freq_shift"] = 2 }, isInvalid("freq_shift"), ["freq_shift"])
        check(try fieldError { $0["block_out_channels"] = [4, 8, 4_194_304] }, isInvalid("block_out_channels"), ["block_out_channels"])
        // Fields diffusers added later take diffusers' defaults when absent.
        #expect(try Self.loadError { $0["add_attention"] = nil; $0["dropout"] = nil; $0["class_embed_type"] = nil } == nil)

        // Sizes that fit the limits but not the weights: refused before the network is allocated.
        let huge = try Self.loadError { $0["block_out_channels"] = [4096, 8192, 8192] } as? DiffusersError
        guard case .sizeMismatch? = huge else { Issue.record("expected sizeMismatch, got \(String(describing: huge))"); return }

        // Weights: a missing tensor, a wrong shape, an extra tensor.
        let name = "mid_block.attentions.0.to_k.weight"
        let missing = try Self.loadError(weights: { $0[name] = nil }) as? DiffusersError
        #expect(missing == .missingTensor(file: missing.map(Self.file) ?? "", name: name, expected: [8, 8]), "\(String(describing: missing))")
        let shape = try Self.loadError(weights: { $0[name] = try Tensor.zeros([8, 4]) }) as? DiffusersError
        #expect(shape.map { if case .tensorShape(_, name, [8, 4], [8, 8]) = $0 { true } else { false } } == true, "\(String(describing: shape))")
        let extra = try Self.loadError(weights: { $0["mid_block.attentions.1.to_k.weight"] = try Tensor.zeros([8, 8]) }) as? DiffusersError
        #expect(extra.map { if case .unexpectedTensor(_, "mid_block.attentions.1.to_k.weight") = $0 { true } else { false } } == true)
        #expect(extra?.description.contains("diffusion_pytorch_model.safetensors") == true)
        // Malformed JSON is the reader's error.
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("diffusers-bad-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        try Data("{\"sample_size\": 8,".utf8).write(to: dir.appendingPathComponent("config.json"))
        #expect(throws: IOError.self) { try DiffusersUNet2D.load(from: dir.path) }
    }

    static func file(_ e: DiffusersError) -> String {
        switch e {
        case let .missingTensor(f, _, _), let .unexpectedTensor(f, _), let .tensorShape(f, _, _, _), let .sizeMismatch(f, _),
             let .missingField(f, _, _), let .invalidField(f, _, _, _), let .unsupported(f, _, _, _):
            return f
        }
    }
}

extension Parameter {
    /// (L(v + h·e_i) − L(v − h·e_i)) / 2h for the element i of this parameter's value v; the
    /// value is restored afterwards.
    fileprivate func centralDifference(at i: Int, step h: Float, _ loss: () throws -> Double) throws -> Double {
        let original = value
        defer { value = original }
        func evaluate(shiftedBy d: Float) throws -> Double {
            var shifted = original.scalars
            shifted[i] += d
            value = try Tensor(shape: original.shape, scalars: shifted)
            return try loss()
        }
        return (try evaluate(shiftedBy: h) - evaluate(shiftedBy: -h)) / Double(2 * h)
    }
}

extension Array where Element == Int {
    /// The array with element `index` replaced by `value`.
    fileprivate func with(_ index: Int, _ value: Int) -> [Int] {
        var copy = self
        copy[index] = value
        return copy
    }
}
