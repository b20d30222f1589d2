import Foundation

/// A small MLP image classifier whose penultimate-layer activations are the features of the
/// package's FID and KID (in place of the Inception network of Heusel et al. 2017).
///
/// Architecture (default): flattened image (64 = 8×8) → 128 → 64 (the features) → 10
/// logits, SiLU activations, trained with softmax cross-entropy and AdamW. The input size is
/// configurable, so the same class trains on 28×28 MNIST (784 inputs) read with
/// `ImageDataset/idx(images:labels:maxValue:layout:)`. Images are expected in [-1, 1],
/// as `ImageDataset` holds them.
///
/// ``pretrainedDigits8x8()`` loads weights shipped with the package as a resource, trained by
/// `trainDefault()` on the first 1500 of the 1797 8×8 digits; it classifies 286 of the
/// held-out last 297 correctly (96.3%, `pretrainedDigits8x8HeldOutAccuracy()`).
public final class DigitClassifier: Module {
    /// Everything that determines the architecture; saved with the weights.
    package struct Configuration: Sendable, Codable, Equatable {
        /// Values per input image (channels · height · width).
        package var inputSize: Int
        /// Widths of the hidden layers; the last is the feature dimension.
        package var hiddenWidths: [Int]
        /// Number of classes (logits).
        package var classCount: Int
        /// Activation after every hidden layer.
        package var activation: Activation

        /// The default is the 8×8-digits classifier: 64 → 128 → 64 → 10, SiLU.
        package init(inputSize: Int = 64, hiddenWidths: [Int] = [128, 64], classCount: Int = 10,
                    activation: Activation = .silu) {
            self.inputSize = inputSize
            self.hiddenWidths = hiddenWidths
            self.classCount = classCount
            self.activation = activation
        }
    }

    /// The architecture.
    package let configuration: Configuration
    let hidden: [Linear]
    let output: Linear

    /// A classifier with weights drawn from `seed` (PyTorch's default initialization).
    ///
    /// - Throws: ``TensorError`` unless every size is positive, there is at least one hidden
    ///   layer and at least two classes.
    package init(_ configuration: Configuration = .init(), seed: UInt64 = 0) throws {
        let c = configuration
        guard c.inputSize >= 1, !c.hiddenWidths.isEmpty, c.hiddenWidths.allSatisfy({ $0 >= 1 }), c.classCount >= 2 else {
            throw TensorError.invalidArgument(operation: "DigitClassifier",
                                              message: "needs inputSize >= 1, at least one positive hidden width and classCount >= 2; got \(c)")
        }
        self.configuration = c
        var rng = Philox(seed: seed, stream: 0x4443)
        var layers: [Linear] = []
        var width = c.inputSize
        for w in c.hiddenWidths {
            layers.append(try Linear(width, w, activation: c.activation, rng: &rng))
            width = w
        }
        hidden = layers
        output = try Linear(width, c.classCount, rng: &rng)
    }

    /// Length of a feature vector: the last hidden width.
    package var featureDimension: Int { configuration.hiddenWidths.last! }

    /// The parameters: `hidden.0.weight`, `hidden.0.bias`, …, `output.weight`, `output.bias`.
    public func visitParameters(_ visit: (String, Parameter) throws -> Void) rethrows {
        for (i, layer) in hidden.enumerated() { try visitChild(layer, as: "hidden.\(i)", visit) }
        try visitChild(output, as: "output", visit)
    }

    // MARK: - Inference

    /// Images (N, C, H, W) with C·H·W = inputSize, or rows (N, inputSize), as rows.
    func rows(_ images: Tensor) throws -> Tensor {
        let n = configuration.inputSize
        guard images.rank >= 2, images.shape.dropFirst().reduce(1, *) == n else {
            throw TensorError.invalidShape(operation: "DigitClassifier", shape: images.shape,
                                           expected: "(N, C, H, W) with C·H·W = \(n), or (N, \(n))")
        }
        return try images.reshaped([images.shape[0], n])
    }

    /// The penultimate-layer activations (N, featureDimension): the FID/KID features.
    ///
    /// - Throws: `TensorError` for images that do not have inputSize values each.
    public func features(_ images: Tensor) throws -> Tensor {
        var h = try rows(images)
        for layer in hidden { h = try layer(h) }
        return h
    }

    /// Unnormalized class scores (N, classCount).
    ///
    /// - Throws: ``TensorError`` for images that do not have inputSize values each.
    package func logits(_ images: Tensor) throws -> Tensor {
        try output(features(images))
    }

    /// The most likely class of each image (the first on ties).
    package func predictions(_ images: Tensor) throws -> [Int] {
        let l = try withoutGradient { try logits(images) }
        let k = configuration.classCount
        return l.withUnsafeBufferPointer { b in
            (0..<l.shape[0]).map { i in
                var best = 0
                for j in 1..<k where b[i * k + j] > b[i * k + best] { best = j }
                return best
            }
        }
    }

    /// Fraction of `images` whose predicted class is `labels`' (0 for no images).
    ///
    /// - Throws: `TensorError` for bad shapes or a label count that differs from the
    ///   image count.
    public func accuracy(images: Tensor, labels: [Int]) throws -> Double {
        let predicted = try predictions(images)
        guard predicted.count == labels.count else {
            throw TensorError.countMismatch(operation: "DigitClassifier.accuracy", count: labels.count, expected: predicted.count)
        }
        guard !labels.isEmpty else { return 0 }
        return Double(zip(predicted, labels).filter { $0 == $1 }.count) / Double(labels.count)
    }

    /// Mean softmax cross-entropy of the logits against `labels`:
    /// −(1/N) Σᵢ log softmax(logitsᵢ)[labelᵢ], written as a one-hot product (differentiable).
    ///
    /// - Throws: ``TensorError`` for bad shapes or a label outside 0..<classCount.
    package func crossEntropyLoss(images: Tensor, labels: [Int]) throws -> Tensor {
        let k = configuration.classCount
        guard labels.count == images.shape.first ?? -1 else {
            throw TensorError.countMismatch(operation: "DigitClassifier.crossEntropyLoss", count: labels.count,
                                            expected: images.shape.first ?? 0)
        }
        if let bad = labels.first(where: { $0 < 0 || $0 >= k }) {
            throw TensorError.outOfRange(operation: "DigitClassifier.crossEntropyLoss", value: bad, validRange: "0..<\(k)")
        }
        var oneHot = [Float](repeating: 0, count: labels.count * k)
        for (i, y) in labels.enumerated() { oneHot[i * k + y] = 1 }
        let target = try Tensor(shape: [labels.count, k], scalars: oneHot)
        let logProbabilities = try logits(images).logSoftmax(axis: -1)
        return try (logProbabilities * target).sum() * (-1 / Float(Swift.max(labels.count, 1)))
    }

    // MARK: - Training

    /// Trains on the ``Trainer`` with AdamW on shuffled mini-batches drawn by a `BatchSampler` keyed by
    /// `seed`, with a linear warmup (100 steps, or a tenth of the run) and cosine decay of
    /// the learning rate to 1% of its peak. Optionally Gaussian noise is added to every
    /// training image (a regularizer that also makes the features less sensitive to the
    /// pixel noise of generated samples). Deterministic given the initial weights and `seed`.
    ///
    /// - Parameters:
    ///   - dataset: labeled images with inputSize values each and labels below classCount.
    ///   - steps: optimizer steps.
    ///   - seed: the key of the batch order and of the noise.
    ///   - batchSize: images per step.
    ///   - learningRate: the peak learning rate.
    ///   - weightDecay: AdamW's decoupled weight decay.
    ///   - inputNoise: the standard deviation of Gaussian noise added to each training image
    ///     (0: none), in the [-1, 1] pixel scale.
    ///   - onStep: called after each step with (step, loss).
    /// - Returns: the loss of the last step.
    /// - Throws: ``DatasetError`` for an unlabeled dataset or one whose images or classes do
    ///   not fit the configuration; ``TensorError`` for a non-positive step or batch count.
    @discardableResult
    package func train(on dataset: ImageDataset, steps: Int, seed: UInt64, batchSize: Int = 128,
                      learningRate: Float = 2e-3, weightDecay: Float = 0.01, inputNoise: Float = 0,
                      onStep: ((Int, Float) -> Void)? = nil) throws -> Float {
        guard dataset.labels != nil else {
            throw DatasetError.invalidArgument(source: "DigitClassifier.train", message: "the dataset has no labels; expected labeled images")
        }
        guard dataset.featureCount == configuration.inputSize else {
            throw DatasetError.invalidShape(source: "DigitClassifier.train", shape: dataset.images.shape,
                                            expected: "images of \(configuration.inputSize) values (the classifier's inputSize)")
        }
        guard dataset.classCount <= configuration.classCount else {
            throw DatasetError.invalidArgument(source: "DigitClassifier.train",
                                               message: "the dataset has \(dataset.classCount) classes; the classifier has \(configuration.classCount)")
        }
        guard steps >= 1, inputNoise >= 0 else {
            throw TensorError.invalidArgument(operation: "DigitClassifier.train",
                                              message: "steps \(steps) must be at least 1 and inputNoise \(inputNoise) non-negative")
        }
        let sampler = try BatchSampler(count: dataset.count, batchSize: batchSize, seed: seed)
        let schedule = LearningRateSchedule.warmupCosine(peak: learningRate, warmupSteps: Swift.min(100, steps / 10),
                                                         totalSteps: steps, minimum: learningRate / 100)
        let configuration = TrainingConfiguration(steps: steps, learningRate: schedule, weightDecay: weightDecay, gradientClip: nil,
                                                  emaDecay: nil, seed: seed, checkpointEvery: Int.max, logEvery: Int.max)
        let trainer = try Trainer(model: self, configuration: configuration)
        var loss: Float = .nan
        // The input noise keeps its own Philox streams (the shipped weights were trained so).
        try trainer.run(progress: { p in
            loss = p.loss
            onStep?(p.step - 1, p.loss)
        }) { step, _ in
            var (x, y) = try sampler.batch(forStep: step, from: dataset)
            if inputNoise > 0 {
                var rng = Philox(seed: seed, stream: 0x4E4F_0000_0000 &+ UInt64(step))
                x = try x + rng.normal(x.shape, std: inputNoise)
            }
            return try crossEntropyLoss(images: x, labels: y!)
        }
        zeroGradients()
        return loss
    }

    /// Images of the 8×8 digits held out from ``trainDefault()``: the last 297 of 1797.
    package static let digits8x8HeldOutCount = 297

    /// The recipe of the embedded weights: a default classifier (seed 0) trained for 8000
    /// steps of 128 images (seed 1, peak learning rate 2e-3, weight decay 0.01, input noise
    /// of std 0.5) on the first 1500 8×8 digits. The step count and noise level were chosen
    /// on a validation split (train on the first 1200, validate on the next 300), never on
    /// the held-out 297.
    ///
    /// - Returns: the classifier and its accuracy on the held-out last 297 digits.
    package static func trainDefault() throws -> (classifier: DigitClassifier, heldOutAccuracy: Double) {
        let digits = try ImageDataset.digits8x8()
        let split = digits.count - digits8x8HeldOutCount
        let train = try digits.subset(0..<split), test = try digits.subset(split..<digits.count)
        let classifier = try DigitClassifier(.init(), seed: 0)
        try classifier.train(on: train, steps: 8000, seed: 1, learningRate: 2e-3, weightDecay: 0.01, inputNoise: 0.5)
        return (classifier, try classifier.accuracy(images: test.images, labels: test.labels!))
    }

    // MARK: - Weights

    /// The `format` metadata of a saved classifier.
    package static let fileFormat = "distill.digit-classifier"

    /// Writes the weights and configuration as a safetensors file, atomically.
    ///
    /// - Parameter metadata: extra strings stored alongside (e.g. the held-out accuracy).
    package func write(to path: String, metadata: [String: String] = [:]) throws {
        let config = String(decoding: try JSONEncoder().encode(configuration), as: UTF8.self)
        var meta = metadata
        meta["format"] = DigitClassifier.fileFormat
        meta["config"] = config
        try SafeTensors.write(SafeTensors.Contents(tensors: stateDictionary(), metadata: meta), to: path)
    }

    /// Reads a classifier written by `write(to:metadata:)`.
    ///
    /// - Throws: `IOError` for an unreadable or malformed file or one that is not a saved
    ///   classifier, `ModuleError` when its tensors do not fit its configuration.
    public static func read(from path: String) throws -> DigitClassifier {
        try decode(FileIO.read(path), path: path).classifier
    }

    static func decode(_ bytes: [UInt8], path: String) throws -> (classifier: DigitClassifier, metadata: [String: String]) {
        let contents = try SafeTensors.decode(bytes, path: path)
        guard contents.metadata["format"] == fileFormat else {
            throw IOError.corrupt(path: path, detail: "metadata 'format' is \(contents.metadata["format"].map { "'\($0)'" } ?? "missing"); expected '\(fileFormat)'")
        }
        guard let text = contents.metadata["config"],
              let config = try? JSONDecoder().decode(Configuration.self, from: Data(text.utf8)) else {
            throw IOError.corrupt(path: path, detail: "metadata 'config' is missing or not a classifier configuration")
        }
        let classifier = try DigitClassifier(config)
        try classifier.load(contents.tensors)
        return (classifier, contents.metadata)
    }

    /// The classifier trained by `trainDefault()` on the 8×8 digits, from the weights shipped
    /// with the package (a resource; no file of yours is needed).
    public static func pretrainedDigits8x8() throws -> DigitClassifier {
        try decode(PackageResources.bytes(PackageResources.digitClassifier), path: PackageResources.digitClassifier).classifier
    }

    /// Held-out accuracy of ``pretrainedDigits8x8()`` on the last 297 of the 8×8 digits,
    /// measured when the shipped weights were trained (stored in their file).
    package static func pretrainedDigits8x8HeldOutAccuracy() throws -> Double {
        let meta = try decode(PackageResources.bytes(PackageResources.digitClassifier), path: PackageResources.digitClassifier).metadata
        guard let accuracy = meta["held_out_accuracy"].flatMap(Double.init) else {
            throw IOError.corrupt(path: PackageResources.digitClassifier, detail: "metadata 'held_out_accuracy' is missing")
        }
        return accuracy
    }

    // MARK: - Distances on features

    /// FID between two image sets on this classifier's features:
    /// ``frechetDistance(_:_:)-(Tensor,Tensor)`` of ``features(_:)``.
    public func frechetDistance(_ real: Tensor, _ generated: Tensor) throws -> Double {
        try Distill.frechetDistance(withoutGradient { try features(real) }, withoutGradient { try features(generated) })
    }

    /// KID between two image sets on this classifier's features (see
    /// ``kernelInceptionDistance(_:_:subsets:subsetSize:seed:)``).
    public func kernelInceptionDistance(_ real: Tensor, _ generated: Tensor, subsets: Int = 100, subsetSize: Int = 1000,
                                        seed: UInt64 = 0) throws -> KernelInceptionDistance {
        try Distill.kernelInceptionDistance(withoutGradient { try features(real) }, withoutGradient { try features(generated) },
                                            subsets: subsets, subsetSize: subsetSize, seed: seed)
    }
}

/// Classifier accuracy of class-conditional samples: the fraction of `samples` whose
/// predicted class is the class they were generated for.
///
/// - Parameters:
///   - classifier: a trained classifier for the samples' image size.
///   - samples: generated images (N, C, H, W) in [-1, 1].
///   - labels: the intended class of each sample.
/// - Throws: ``TensorError`` for shapes that do not fit or a label count other than N.
package func classifierAccuracy(_ classifier: DigitClassifier, samples: Tensor, labels: [Int]) throws -> Double {
    try classifier.accuracy(images: samples, labels: labels)
}
