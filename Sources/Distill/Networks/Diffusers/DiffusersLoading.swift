import Foundation
import DistillCore

extension DiffusersUNet2D {
    /// The weights file diffusers' `save_pretrained` writes (unsharded, no variant suffix).
    static let weightsFileName = "diffusion_pytorch_model.safetensors"

    /// Loads a diffusers `UNet2DModel` from a pipeline folder (the one holding
    /// `model_index.json` and `unet/`) or from its `unet/` folder itself: `config.json` is
    /// read and validated, then `diffusion_pytorch_model.safetensors` (F32, F16 or BF16
    /// tensors, all converted to Float32) must hold exactly the configured network's
    /// tensors, each with its shape.
    ///
    /// Nothing is allocated from a size before it is checked: the safetensors reader checks
    /// the file, and the network is built only when the parameter count the config implies
    /// is at most twice the values the weights file holds (plus 2²⁰), so a config with
    /// enormous sizes next to a small weights file fails before any allocation. Within that
    /// bound every mismatch is reported by tensor name.
    ///
    /// - Throws: ``IOError`` for unreadable or malformed files, ``DiffusersError`` naming the
    ///   config field or tensor otherwise.
    package static func load(from folder: String) throws -> DiffusersUNet2D {
        let nested = (folder as NSString).appendingPathComponent("unet")
        let dir = FileManager.default.fileExists(atPath: (nested as NSString).appendingPathComponent("config.json")) ? nested : folder
        let configuration = try DiffusersUNetConfiguration.read((dir as NSString).appendingPathComponent("config.json"))
        let weightsPath = (dir as NSString).appendingPathComponent(weightsFileName)
        let tensors = try SafeTensors.read(weightsPath).tensors
        let held = tensors.values.reduce(0.0) { $0 + Double($1.count) }
        let needed = configuration.parameterCount
        guard needed <= 2 * held + Double(1 << 20) else {
            throw DiffusersError.sizeMismatch(file: weightsPath, detail: "the config describes a network of \(needed) parameters, "
                                              + "but the weights hold only \(Int(held)) values; expected the weights of that network")
        }
        let network = try DiffusersUNet2D(configuration)
        try network.loadWeights(tensors, file: weightsPath)
        return network
    }

    /// Sets every parameter from `tensors` (by diffusers name) with ``Module/load(_:)``: each
    /// must be present with its shape and nothing else may be there. Nothing is changed when it
    /// throws; the error names `file` and the tensor.
    package func loadWeights(_ tensors: [String: Tensor], file: String) throws {
        do { try load(tensors) } catch let error as ModuleError {
            switch error {
            case let .missingParameter(name):
                let expected = namedParameters.first { $0.name == name }?.parameter.value.shape ?? []
                throw DiffusersError.missingTensor(file: file, name: name, expected: expected)
            case let .unexpectedParameter(name): throw DiffusersError.unexpectedTensor(file: file, name: name)
            case let .shapeMismatch(name, expected, got): throw DiffusersError.tensorShape(file: file, name: name, found: got, expected: expected)
            }
        }
    }
}
