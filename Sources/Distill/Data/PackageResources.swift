import Foundation

/// The data files shipped with the package as SwiftPM resources: the 8×8 digits (the UCI
/// "Optical Recognition of Handwritten Digits" test set as shipped in scikit-learn, CC BY 4.0,
/// as gzipped IDX files) and the weights of the default digit classifier.
enum PackageResources {
    static let digitImages = "digits8x8-images-idx3-ubyte.gz"
    static let digitLabels = "digits8x8-labels-idx1-ubyte.gz"
    static let digitClassifier = "digits8x8-classifier.safetensors"

    /// The bytes of the resource called `name`.
    static func bytes(_ name: String) throws -> [UInt8] {
        guard let url = Bundle.module.url(forResource: name, withExtension: nil) else {
            throw IOError.cannotOpen(path: name, reason: "the package's resource is missing from its bundle")
        }
        return try FileIO.read(url.path)
    }
}
