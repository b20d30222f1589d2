/// What is wrong with a diffusers model folder: each case names the file and the config
/// field or the tensor at fault, what it holds and what this library accepts there.
///
/// Malformed JSON or safetensors bytes, unreadable files and oversized tensors are reported
/// by the readers as ``IOError``; this type covers what is well-formed but does not describe
/// a `UNet2DModel` this library can run.
package enum DiffusersError: Error, Equatable, CustomStringConvertible {
    /// A config field without a diffusers default is absent.
    case missingField(file: String, field: String, expected: String)
    /// A config field holds a value of the wrong kind or out of range.
    case invalidField(file: String, field: String, found: String, expected: String)
    /// A config field holds a valid diffusers value that this library does not implement.
    case unsupported(file: String, field: String, found: String, supported: String)
    /// The weights lack a tensor the configured network has.
    case missingTensor(file: String, name: String, expected: [Int])
    /// The weights hold a tensor the configured network does not have.
    case unexpectedTensor(file: String, name: String)
    /// A tensor's shape differs from the configured network's.
    case tensorShape(file: String, name: String, found: [Int], expected: [Int])
    /// The weights are far smaller than the network the config describes (checked before
    /// the network is allocated).
    case sizeMismatch(file: String, detail: String)

    /// One line naming the file, the field or tensor, and what was expected.
    package var description: String {
        let text: String
        switch self {
        case let .missingField(f, field, e): text = "\(f): field '\(field)' is missing; expected \(e)"
        case let .invalidField(f, field, found, e): text = "\(f): field '\(field)' is \(found); expected \(e)"
        case let .unsupported(f, field, found, s): text = "\(f): field '\(field)' is \(found), which is not supported; supported: \(s)"
        case let .missingTensor(f, name, e): text = "\(f): tensor '\(name)' (shape \(e)) is missing"
        case let .unexpectedTensor(f, name): text = "\(f): tensor '\(name)' is not a parameter of the configured UNet2DModel"
        case let .tensorShape(f, name, found, e): text = "\(f): tensor '\(name)' has shape \(found); expected \(e)"
        case let .sizeMismatch(f, d): text = "\(f): \(d)"
        }
        return IOError.oneLine(text)
    }
}
