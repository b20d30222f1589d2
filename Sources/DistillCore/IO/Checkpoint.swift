/// A training checkpoint: model weights, optional EMA weights, optimizer state, the step,
/// the run's configuration (JSON text) and free-form extra strings (e.g. RNG positions).
///
/// Stored as one safetensors file — tensors `model/NAME`, `ema/NAME`, `optim/KEY`, `aux/NAME`; the
/// scalars in its metadata — written atomically, so an interrupted save leaves the previous
/// checkpoint intact. Python's `safetensors` can open it.
package struct Checkpoint {
    package static let format = "distill.checkpoint"
    package static let formatVersion = "1"

    package var model: [String: Tensor]
    package var ema: [String: Tensor]?
    package var optimizerTensors: [String: Tensor]
    package var optimizerScalars: [String: String]
    package var step: Int
    /// The configuration that built the model and run, as JSON text.
    package var config: String
    package var extra: [String: String]
    /// Further tensors of a run, e.g. the networks and optimizer moments of auxiliary modules
    /// (stored as `aux/NAME`).
    package var auxiliary: [String: Tensor] = [:]

    package init(model: [String: Tensor], ema: [String: Tensor]? = nil, optimizerTensors: [String: Tensor] = [:],
                optimizerScalars: [String: String] = [:], step: Int, config: String = "{}", extra: [String: String] = [:]) {
        self.model = model
        self.ema = ema
        self.optimizerTensors = optimizerTensors
        self.optimizerScalars = optimizerScalars
        self.step = step
        self.config = config
        self.extra = extra
    }

    /// Captures a module, its optimizer and (optionally) its EMA.
    package init(model: Module, optimizer: Optimizer?, ema: ExponentialMovingAverage? = nil, step: Int,
                config: String = "{}", extra: [String: String] = [:]) {
        self.init(model: model.stateDictionary(), ema: ema?.shadow, optimizerTensors: optimizer?.stateTensors() ?? [:],
                  optimizerScalars: optimizer?.stateScalars() ?? [:], step: step, config: config, extra: extra)
    }

    /// Puts the saved state back into a module, its optimizer and EMA.
    package func restore(model m: Module, optimizer: Optimizer?, ema e: ExponentialMovingAverage? = nil) throws {
        try m.load(model)
        if let optimizer { try optimizer.loadState(tensors: optimizerTensors, scalars: optimizerScalars) }
        if let e {
            guard let ema else { throw IOError.unsupported(path: "checkpoint", detail: "it holds no EMA weights") }
            try e.load(ema)
        }
    }

    /// Writes the checkpoint atomically.
    package func write(to path: String) throws {
        var tensors: [String: Tensor] = [:]
        for (k, v) in model { tensors["model/" + k] = v }
        for (k, v) in ema ?? [:] { tensors["ema/" + k] = v }
        for (k, v) in optimizerTensors { tensors["optim/" + k] = v }
        for (k, v) in auxiliary { tensors["aux/" + k] = v }
        let optimizerJSON = String(decoding: JSONValue.object(optimizerScalars.keys.sorted(by: SafeTensors.utf8Order).map {
            (key: $0, value: JSONValue.string(optimizerScalars[$0]!))
        }).serialized, as: UTF8.self)
        var meta = ["format": Checkpoint.format, "format_version": Checkpoint.formatVersion, "step": String(step),
                    "config": config, "optimizer": optimizerJSON, "has_ema": ema == nil ? "false" : "true"]
        for (k, v) in extra { meta["extra." + k] = v }
        try SafeTensors.write(SafeTensors.Contents(tensors: tensors, metadata: meta), to: path)
    }

    /// Reads a checkpoint written by ``write(to:)``.
    package static func read(from path: String) throws -> Checkpoint {
        try decode(FileIO.read(path), path: path)
    }

    /// Parses checkpoint bytes (`path` names the source in errors): a safetensors file
    /// (checked as ``SafeTensors/decode(_:path:)`` does) whose metadata says it is a
    /// checkpoint of this format version, with a non-negative step, tensors named
    /// `model/…`, `optim/…` and, when `has_ema` is "true", `ema/…`, and optimizer scalars as
    /// a JSON object of strings.
    package static func decode(_ bytes: [UInt8], path: String) throws -> Checkpoint {
        let c = try SafeTensors.decode(bytes, path: path)
        guard c.metadata["format"] == format else {
            throw IOError.corrupt(path: path, detail: "not a distill checkpoint (metadata 'format' is \(c.metadata["format"].map { "'\($0)'" } ?? "missing"))")
        }
        guard c.metadata["format_version"] == formatVersion else {
            throw IOError.unsupported(path: path, detail: "checkpoint format version \(c.metadata["format_version"] ?? "?") (expected \(formatVersion))")
        }
        guard let stepText = c.metadata["step"], let step = Int(stepText), step >= 0 else {
            throw IOError.corrupt(path: path, detail: "metadata 'step' is missing or not a non-negative integer")
        }
        let hasEMA: Bool
        switch c.metadata["has_ema"] {
        case "true": hasEMA = true
        case "false", nil: hasEMA = false
        case let v?: throw IOError.corrupt(path: path, detail: "metadata 'has_ema' is '\(v)'; expected 'true' or 'false'")
        }
        var model: [String: Tensor] = [:], ema: [String: Tensor] = [:], optim: [String: Tensor] = [:], aux: [String: Tensor] = [:]
        for (k, v) in c.tensors {
            let slash = k.firstIndex(of: "/") ?? k.endIndex
            let name = String(k[slash...].dropFirst())
            switch k[..<slash] {
            case "model" where !name.isEmpty: model[name] = v
            case "ema" where !name.isEmpty && hasEMA: ema[name] = v
            case "optim" where !name.isEmpty: optim[name] = v
            case "aux" where !name.isEmpty: aux[name] = v
            default:
                throw IOError.corrupt(path: path, detail: "unexpected tensor '\(k)'; expected model/NAME, optim/NAME, aux/NAME\(hasEMA ? " or ema/NAME" : " (and ema/NAME only when metadata 'has_ema' is 'true')")")
            }
        }
        var scalars: [String: String] = [:]
        if let o = c.metadata["optimizer"] {
            guard case let .object(members)? = try? JSONValue.parse(ArraySlice(o.utf8)) else {
                throw IOError.corrupt(path: path, detail: "metadata 'optimizer' is not a JSON object of strings")
            }
            for (k, v) in members {
                guard case let .string(s) = v else {
                    throw IOError.corrupt(path: path, detail: "metadata 'optimizer': '\(k)' is \(v.kind); expected a string")
                }
                scalars[k] = s
            }
        }
        var extra: [String: String] = [:]
        for (k, v) in c.metadata where k.hasPrefix("extra.") { extra[String(k.dropFirst(6))] = v }
        var checkpoint = Checkpoint(model: model, ema: hasEMA ? ema : nil, optimizerTensors: optim,
                                    optimizerScalars: scalars, step: step, config: c.metadata["config"] ?? "{}", extra: extra)
        checkpoint.auxiliary = aux
        return checkpoint
    }
}
