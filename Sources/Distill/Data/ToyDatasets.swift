import Foundation

/// Procedurally generated 2-D datasets, seeded (the rest arrive with the diffusion core).
public enum ToyDataset: String, Sendable, CaseIterable, Codable {
    /// Eight Gaussians (std 0.1) on a circle of radius 2.
    case eightGaussians = "8gaussians"
    /// Two interleaved half circles with Gaussian jitter (std 0.05), scaled to about [-2, 2].
    case twoMoons = "moons"

    /// `count` points (count, 2), reproducible from `seed`.
    public func sample(_ count: Int, seed: UInt64) throws -> Tensor {
        var rng = Philox(seed: seed, stream: 0x7079)
        let u = try rng.uniform([count]).scalars
        let z = try rng.normal([count, 2]).scalars
        var out = [Float](repeating: 0, count: 2 * count)
        for i in 0..<count {
            switch self {
            case .eightGaussians:
                let k = min(Int(u[i] * 8), 7)
                let a = Double(k) * Double.pi / 4
                out[2 * i] = Float(2 * cos(a)) + 0.1 * z[2 * i]
                out[2 * i + 1] = Float(2 * sin(a)) + 0.1 * z[2 * i + 1]
            case .twoMoons:
                let upper = u[i] < 0.5
                let a = Double(upper ? u[i] * 2 : (u[i] - 0.5) * 2) * Double.pi
                let (x, y) = upper ? (cos(a), sin(a)) : (1 - cos(a), 0.5 - sin(a))
                out[2 * i] = Float(x - 0.5) * 1.6 + 0.05 * z[2 * i]
                out[2 * i + 1] = Float(y - 0.25) * 1.6 + 0.05 * z[2 * i + 1]
            }
        }
        return try Tensor(shape: [count, 2], scalars: out)
    }
}
