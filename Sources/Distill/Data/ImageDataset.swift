/// Errors building a dataset: each names the source and says what was expected.
package enum DatasetError: Error, Equatable, CustomStringConvertible {
    /// The images do not have a shape the dataset can use.
    case invalidShape(source: String, shape: [Int], expected: String)
    /// The number of labels differs from the number of images.
    case labelCountMismatch(source: String, images: Int, labels: Int)
    /// A label that is not a class index.
    case invalidLabel(source: String, index: Int, value: Double, expected: String)
    /// A pixel outside the declared value range (or not finite).
    case pixelOutOfRange(source: String, index: Int, value: Float, expected: String)
    /// An argument with an invalid value.
    case invalidArgument(source: String, message: String)

    /// A one-line message naming the source, what was wrong and what was expected.
    package var description: String {
        switch self {
        case let .invalidShape(s, shape, expected):
            return "\(s): images of shape \(shape); expected \(expected)"
        case let .labelCountMismatch(s, images, labels):
            return "\(s): \(labels) labels for \(images) images; expected one label per image"
        case let .invalidLabel(s, index, value, expected):
            return "\(s): label \(index) is \(value); expected \(expected)"
        case let .pixelOutOfRange(s, index, value, expected):
            return "\(s): pixel value \(value) at element \(index); expected \(expected)"
        case let .invalidArgument(s, message):
            return "\(s): \(message)"
        }
    }
}

/// How the dimensions of a rank-4 image array are ordered in a file.
package enum ImageLayout: String, Sendable, Codable, CaseIterable {
    /// (count, channels, height, width): the package's own layout.
    case channelsFirst
    /// (count, height, width, channels): common in NumPy arrays.
    case channelsLast
}

/// A set of images (N, C, H, W) with values in [-1, 1], with optional class labels.
///
/// Pixels read from files are mapped by x / maxValue · 2 − 1, so 0 becomes −1 and
/// `maxValue` becomes 1. ``digits8x8()`` needs no file: the data ships inside the package.
/// Batches are gathered with ``batch(_:)`` or ``BatchSampler``.
package struct ImageDataset: Sendable {
    /// The images, (count, channels, height, width), values in [-1, 1] when read from files.
    package let images: Tensor
    /// One class index per image in 0..<``classCount``, or nil for an unlabeled set.
    package let labels: [Int]?
    /// The number of classes (0 for an unlabeled set).
    package let classCount: Int

    /// A dataset of already normalized images.
    ///
    /// - Parameters:
    ///   - images: (count, channels, height, width).
    ///   - labels: one class index per image, or nil.
    ///   - classCount: the number of classes; by default the largest label + 1 (0 without labels).
    ///   - source: names the data in error messages.
    /// - Throws: ``DatasetError`` for a shape that is not rank 4 with positive image sizes, a
    ///   label count that differs from the image count, or a label outside 0..<classCount.
    package init(images: Tensor, labels: [Int]?, classCount: Int? = nil, source: String = "ImageDataset") throws {
        guard images.rank == 4, images.shape.dropFirst().allSatisfy({ $0 > 0 }) else {
            throw DatasetError.invalidShape(source: source, shape: images.shape,
                                            expected: "(count, channels, height, width) with positive image sizes")
        }
        let classes: Int
        if let labels {
            guard labels.count == images.shape[0] else {
                throw DatasetError.labelCountMismatch(source: source, images: images.shape[0], labels: labels.count)
            }
            classes = classCount ?? ((labels.max() ?? -1) + 1)
            if let i = labels.firstIndex(where: { $0 < 0 || $0 >= classes }) {
                throw DatasetError.invalidLabel(source: source, index: i, value: Double(labels[i]),
                                                expected: "a class index in 0..<\(classes)")
            }
        } else {
            classes = classCount ?? 0
        }
        guard classes >= 0 else {
            throw DatasetError.invalidArgument(source: source, message: "classCount \(classes) must be non-negative")
        }
        self.images = images.detached()
        self.labels = labels
        self.classCount = classes
    }

    /// Number of images.
    package var count: Int { images.shape[0] }
    /// Channels per image.
    package var channels: Int { images.shape[1] }
    /// Image height in pixels.
    package var height: Int { images.shape[2] }
    /// Image width in pixels.
    package var width: Int { images.shape[3] }
    /// (channels, height, width).
    package var imageShape: [Int] { Array(images.shape.dropFirst()) }
    /// Values per image: channels · height · width.
    package var featureCount: Int { channels * height * width }

    /// The images as rows, (count, channels · height · width) (no copy).
    package func flattenedImages() throws -> Tensor { try images.reshaped([count, featureCount]) }

    // MARK: - Constructors

    /// The 1,797 handwritten 8×8 digits embedded in the package (UCI "Optical Recognition of
    /// Handwritten Digits" test set, as shipped in scikit-learn; CC BY 4.0): images
    /// (1797, 1, 8, 8) from pixel values 0…16, labels 0…9, 10 classes. Needs no file.
    package static func digits8x8() throws -> ImageDataset {
        let source = "the package's 8x8 digits"
        let images = try IDX.decode(PackageResources.bytes(PackageResources.digitImages), path: PackageResources.digitImages)
        let labels = try IDX.decode(PackageResources.bytes(PackageResources.digitLabels), path: PackageResources.digitLabels)
        return try make(images: images, labels: labels, maxValue: 16, layout: .channelsFirst,
                        imageSource: source + " images", labelSource: source + " labels")
    }

    /// Images (and labels) from IDX files such as MNIST's, gzip-compressed or not.
    ///
    /// - Parameters:
    ///   - images: an IDX file of shape (N, H, W) — one channel — or (N, C, H, W) / (N, H, W, C)
    ///     as `layout` says.
    ///   - labels: an IDX file of shape (N) holding class indices, or nil.
    ///   - maxValue: the pixel value that maps to 1 (255 for MNIST, 16 for the 8×8 digits).
    ///   - layout: the dimension order of a rank-4 file.
    /// - Throws: ``IOError`` for unreadable or malformed files, ``DatasetError`` for shapes,
    ///   labels or pixel values that do not fit (every pixel must lie in 0...maxValue).
    package static func idx(images: String, labels: String?, maxValue: Float = 255,
                           layout: ImageLayout = .channelsFirst) throws -> ImageDataset {
        let x = try IDX.read(images)
        let y = try labels.map { try IDX.read($0) }
        return try make(images: x, labels: y, maxValue: maxValue, layout: layout, imageSource: images,
                        labelSource: labels ?? "")
    }

    /// Images (and labels) from NumPy `.npy` files.
    ///
    /// - Parameters:
    ///   - images: shape (N, H, W), (N, C, H, W) or (N, H, W, C) as `layout` says, or
    ///     (N, D) with D a perfect square (flattened square single-channel images).
    ///   - labels: shape (N) of whole, non-negative numbers, or nil.
    ///   - maxValue: the pixel value that maps to 1.
    ///   - layout: the dimension order of a rank-4 array.
    /// - Throws: as ``idx(images:labels:maxValue:layout:)``.
    package static func npy(images: String, labels: String?, maxValue: Float = 255,
                           layout: ImageLayout = .channelsFirst) throws -> ImageDataset {
        let x = try NPY.read(images)
        let y = try labels.map { try NPY.read($0) }
        return try make(images: (x.shape, x.scalars), labels: y.map { ($0.shape, $0.scalars) }, maxValue: maxValue,
                        layout: layout, imageSource: images, labelSource: labels ?? "")
    }

    /// Shapes, validates and normalizes raw pixels and labels.
    static func make(images: (shape: [Int], values: [Float]), labels: (shape: [Int], values: [Float])?,
                     maxValue: Float, layout: ImageLayout, imageSource: String, labelSource: String) throws -> ImageDataset {
        guard maxValue.isFinite, maxValue > 0 else {
            throw DatasetError.invalidArgument(source: imageSource, message: "maxValue \(maxValue) must be finite and positive")
        }
        let s = images.shape
        var nchw: [Int]
        var needsTranspose = false
        switch s.count {
        case 2:
            let side = Int(Double(s[1]).squareRoot().rounded())
            guard side > 0, side * side == s[1] else {
                throw DatasetError.invalidShape(source: imageSource, shape: s,
                                                expected: "(N, D) with D a perfect square, (N, H, W) or rank 4")
            }
            nchw = [s[0], 1, side, side]
        case 3:
            nchw = [s[0], 1, s[1], s[2]]
        case 4:
            nchw = layout == .channelsFirst ? s : [s[0], s[3], s[1], s[2]]
            needsTranspose = layout == .channelsLast
        default:
            throw DatasetError.invalidShape(source: imageSource, shape: s, expected: "(N, H, W), (N, C, H, W) or (N, H, W, C)")
        }
        guard nchw.dropFirst().allSatisfy({ $0 > 0 }) else {
            throw DatasetError.invalidShape(source: imageSource, shape: s, expected: "positive image sizes")
        }
        if let i = images.values.firstIndex(where: { !($0 >= 0 && $0 <= maxValue) }) {
            throw DatasetError.pixelOutOfRange(source: imageSource, index: i, value: images.values[i],
                                               expected: "a value in 0...\(maxValue) (maxValue)")
        }
        let scale = 2 / maxValue
        var tensor = try Tensor(shape: needsTranspose ? s : nchw, scalars: images.values.map { $0 * scale - 1 })
        if needsTranspose { tensor = try tensor.permuted([0, 3, 1, 2]) }
        // x·(2/maxValue) − 1 can round to just outside [-1, 1]; clamp to the exact ends.
        tensor.withUnsafeMutableBufferPointer { b in
            for i in b.indices { b[i] = Swift.min(Swift.max(b[i], -1), 1) }
        }
        var labelList: [Int]?
        if let labels {
            guard labels.shape.count == 1 else {
                throw DatasetError.invalidShape(source: labelSource, shape: labels.shape, expected: "labels of shape (N)")
            }
            labelList = try labels.values.enumerated().map { i, v in
                guard v >= 0, v == v.rounded(), v < 1e6 else {
                    throw DatasetError.invalidLabel(source: labelSource, index: i, value: Double(v),
                                                    expected: "a whole number in 0..<1000000")
                }
                return Int(v)
            }
        }
        return try ImageDataset(images: tensor, labels: labelList, source: imageSource)
    }

    // MARK: - Subsets and batches

    /// The images and labels at `indices`, in that order (a copy).
    ///
    /// - Throws: ``TensorError`` for an index outside 0..<count.
    package func batch(_ indices: [Int]) throws -> (images: Tensor, labels: [Int]?) {
        let rows = try flattenedImages().gatherRows(indices)
        return (try rows.reshaped([indices.count] + imageShape), labels.map { l in indices.map { l[$0] } })
    }

    /// The dataset restricted to `indices` (same class count).
    package func subset(_ indices: [Int]) throws -> ImageDataset {
        let (x, y) = try batch(indices)
        return try ImageDataset(images: x, labels: y, classCount: classCount)
    }

    /// The dataset restricted to the images in `range` (a view, same class count).
    ///
    /// - Throws: ``TensorError`` for a range outside 0..<count.
    package func subset(_ range: Range<Int>) throws -> ImageDataset {
        let x = try images.slice(range)
        return try ImageDataset(images: x, labels: labels.map { Array($0[range]) }, classCount: classCount)
    }
}
