import Foundation

/// Procedurally generated 2-D datasets, reproducible from a seed.
///
/// Each case draws `count` points (count, 2) from `Philox(seed: seed, stream: 0x7079)`, so a
/// sample is a pure function of (case, count, seed) whatever the thread count. All lie
/// within about [-4, 4]² (Gaussian tails aside). The mixture-shaped cases expose their
/// exact components through ``mixtureMeans`` and ``mixtureStandardDeviation``.
package enum ToyDataset: String, Sendable, CaseIterable, Codable {
    /// Eight Gaussians (std 0.1) on a circle of radius 2, equally weighted.
    case eightGaussians = "8gaussians"
    /// Two interleaved half circles with Gaussian jitter (std 0.05), scaled to about [-2, 2].
    case twoMoons = "moons"
    /// A swiss roll: the spiral r = t, angle t, for t uniform in [1.5π, 4.5π], divided by 5
    /// (radius up to 2.83), with isotropic Gaussian noise of std 0.2.
    case swissRoll = "swissroll"
    /// A 4 × 4 checkerboard on [-4, 4]² with squares of side 2: uniform on the 8 squares
    /// whose row and column indices have an even sum (the lower-left square is filled).
    case checkerboard = "checkerboard"
    /// Four concentric rings of radii 0.75, 1.5, 2.25 and 3, equally likely, with radial
    /// Gaussian noise of std 0.08 and a uniform angle.
    case rings = "rings"
    /// A pinwheel of 5 arms: a point (1 + 0.3·z₁, 0.1·z₂), z standard normal, is rotated by
    /// 2πk/5 + 0.25·exp(1 + 0.3·z₁) for arm k, then scaled by 2 (radius about 2 ± 0.6, rarely
    /// beyond 4).
    case pinwheel = "pinwheel"
    /// 25 Gaussians (std 0.1) on the 5 × 5 grid {-3, -1.5, 0, 1.5, 3}², equally weighted.
    case twentyFiveGaussians = "25gaussians"

    /// The Philox stream every toy dataset draws from.
    static let stream: UInt64 = 0x7079

    /// Component means of the mixture-shaped datasets (8 and 25 Gaussians), else nil.
    package var mixtureMeans: [[Double]]? {
        switch self {
        case .eightGaussians:
            return (0..<8).map { k in
                let a = Double(k) * Double.pi / 4
                return [2 * cos(a), 2 * sin(a)]
            }
        case .twentyFiveGaussians:
            return (0..<25).map { (k: Int) -> [Double] in
                let row: Int = k / 5 - 2, column: Int = k % 5 - 2
                return [1.5 * Double(row), 1.5 * Double(column)]
            }
        default:
            return nil
        }
    }

    /// The components' isotropic standard deviation for the mixture-shaped datasets, else nil.
    package var mixtureStandardDeviation: Double? {
        switch self {
        case .eightGaussians, .twentyFiveGaussians: return 0.1
        default: return nil
        }
    }

    /// `count` points (count, 2), reproducible from `seed`.
    ///
    /// - Throws: ``TensorError`` for a negative count.
    package func sample(_ count: Int, seed: UInt64) throws -> Tensor {
        guard count >= 0 else {
            throw TensorError.invalidArgument(operation: "ToyDataset.sample", message: "count \(count) must be non-negative")
        }
        var rng = Philox(seed: seed, stream: ToyDataset.stream)
        let u = try rng.uniform([count]).scalars
        let z = try rng.normal([count, 2]).scalars
        var out = [Float](repeating: 0, count: 2 * count)
        switch self {
        case .eightGaussians, .twoMoons:
            for i in 0..<count {
                let (x, y) = self == .eightGaussians ? eightGaussians(u[i]) : twoMoons(u[i])
                let jitter: Float = self == .eightGaussians ? 0.1 : 0.05
                out[2 * i] = x + jitter * z[2 * i]
                out[2 * i + 1] = y + jitter * z[2 * i + 1]
            }
        case .swissRoll:
            for i in 0..<count {
                let t = 1.5 * Double.pi * (1 + 2 * Double(u[i]))
                out[2 * i] = Float(t * cos(t) / 5) + 0.2 * z[2 * i]
                out[2 * i + 1] = Float(t * sin(t) / 5) + 0.2 * z[2 * i + 1]
            }
        case .checkerboard:
            let v = try rng.uniform([count, 2]).scalars
            for i in 0..<count {
                let column = Swift.min(Int(u[i] * 4), 3)
                let row = column % 2 + (v[2 * i] < 0.5 ? 0 : 2)      // rows with column + row even
                out[2 * i] = -4 + 8 * u[i]                          // exact: u has 24 bits
                let low = -4 + 2 * Float(row)
                // Rounding may reach the square's upper edge; keep the point inside it.
                out[2 * i + 1] = Swift.min(low + 2 * v[2 * i + 1], (low + 2).nextDown)
            }
        case .rings:
            let v = try rng.uniform([count]).scalars
            for i in 0..<count {
                let ring = Swift.min(Int(u[i] * 4), 3)
                let r = 0.75 * Double(ring + 1) + 0.08 * Double(z[2 * i])
                let a = 2 * Double.pi * Double(v[i])
                out[2 * i] = Float(r * cos(a))
                out[2 * i + 1] = Float(r * sin(a))
            }
        case .pinwheel:
            for i in 0..<count {
                let arm = Swift.min(Int(u[i] * 5), 4)
                let radial = 1 + 0.3 * Double(z[2 * i]), tangential = 0.1 * Double(z[2 * i + 1])
                let a = 2 * Double.pi * Double(arm) / 5 + 0.25 * Foundation.exp(radial)
                out[2 * i] = Float(2 * (radial * cos(a) - tangential * sin(a)))
                out[2 * i + 1] = Float(2 * (radial * sin(a) + tangential * cos(a)))
            }
        case .twentyFiveGaussians:
            let means = mixtureMeans!
            for i in 0..<count {
                let m = means[Swift.min(Int(u[i] * 25), 24)]
                out[2 * i] = Float(m[0]) + 0.1 * z[2 * i]
                out[2 * i + 1] = Float(m[1]) + 0.1 * z[2 * i + 1]
            }
        }
        return try Tensor(shape: [count, 2], scalars: out)
    }

    /// The centre of the eight-Gaussians component picked by a uniform u.
    private func eightGaussians(_ u: Float) -> (Float, Float) {
        let k = Swift.min(Int(u * 8), 7)
        let a = Double(k) * Double.pi / 4
        return (Float(2 * cos(a)), Float(2 * sin(a)))
    }

    /// The point of the two moons at a uniform u (first half: upper moon).
    private func twoMoons(_ u: Float) -> (Float, Float) {
        let upper = u < 0.5
        let a = Double(upper ? u * 2 : (u - 0.5) * 2) * Double.pi
        let (x, y) = upper ? (cos(a), sin(a)) : (1 - cos(a), 0.5 - sin(a))
        return (Float(x - 0.5) * 1.6, Float(y - 0.25) * 1.6)
    }
}
