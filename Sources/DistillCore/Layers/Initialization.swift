/// Weight initialization shared by the layers.
enum Initialization {
    /// PyTorch's default for linear and convolution weights: U(-1/√fanIn, 1/√fanIn)
    /// (kaiming-uniform with a = √5), used for the bias too.
    static func uniformFanIn(_ shape: [Int], fanIn: Int, rng: inout Philox) throws -> Tensor {
        let bound = 1 / Float(max(fanIn, 1)).squareRoot()
        return try rng.uniform(shape, low: -bound, high: bound)
    }
}
