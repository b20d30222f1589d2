import Foundation

/// How well a sample set covers a mixture's modes (`docs/methods.md` §8).
public struct ModeCoverage: Sendable, Equatable {
    /// Samples assigned to each component (by the largest posterior under p0).
    package var counts: [Int]
    /// Components holding at least `minimumFraction` of their expected share.
    package var coveredModes: Int
    package var modeCount: Int
    /// Fraction of samples within the 99.9% ellipsoid of their component
    /// (Mahalanobis² ≤ χ²₀.₉₉₉(d), by the Wilson–Hilferty approximation).
    package var highQualityFraction: Double
}

extension GaussianMixture {
    /// The average exact log-likelihood log p0(x) of the samples (nats per sample).
    package func averageLogLikelihood(_ samples: Tensor) throws -> Double {
        guard samples.rank == 2, samples.shape[1] == dimension, samples.shape[0] > 0 else {
            throw TensorError.invalidShape(operation: "averageLogLikelihood", shape: samples.shape, expected: "[n > 0, \(dimension)]")
        }
        let ll = logDensity(samples.scalars.map(Double.init))
        return ll.reduce(0, +) / Double(ll.count)
    }

    /// For each row of `x` (flat n × d), the component with the largest posterior under p0.
    package func mostLikelyComponents(_ x: [Double]) -> [Int] {
        let d = dimension
        return (0..<(x.count / d)).map { i in
            let terms = logTerms(x[(i * d)..<((i + 1) * d)], alpha: 1, sigma: 0)
            return terms.indices.max(by: { terms[$0] < terms[$1] })!
        }
    }

    /// The fraction of rows of `a` and `b` (paired samples, e.g. a student's and the exact ODE
    /// map of the same noise) that fall in the same component (largest posterior under p0).
    package func modeAgreement(_ a: Tensor, _ b: Tensor) throws -> Double {
        guard a.rank == 2, a.shape == b.shape, a.shape[1] == dimension, a.shape[0] > 0 else {
            throw TensorError.invalidShape(operation: "modeAgreement", shape: b.shape, expected: "\(a.shape), [n > 0, \(dimension)]")
        }
        let (ka, kb) = (mostLikelyComponents(a.scalars.map(Double.init)), mostLikelyComponents(b.scalars.map(Double.init)))
        return Double(zip(ka, kb).filter { $0 == $1 }.count) / Double(ka.count)
    }

    /// Mode coverage of the samples: a mode is covered when it receives at least
    /// `minimumFraction` × its expected count n·π_k.
    public func modeCoverage(_ samples: Tensor, minimumFraction: Double = 0.2) throws -> ModeCoverage {
        guard samples.rank == 2, samples.shape[1] == dimension, samples.shape[0] > 0 else {
            throw TensorError.invalidShape(operation: "modeCoverage", shape: samples.shape, expected: "[n > 0, \(dimension)]")
        }
        let d = dimension, n = samples.shape[0]
        let xs = samples.scalars.map(Double.init)
        // χ²_{0.999}(d) ≈ d·(1 - 2/(9d) + z·√(2/(9d)))³, z = 3.0902 (Wilson & Hilferty 1931).
        let c = 2 / (9 * Double(d))
        let threshold = Double(d) * pow(1 - c + 3.0902 * c.squareRoot(), 3)
        var counts = [Int](repeating: 0, count: componentCount)
        var good = 0
        for (i, k) in mostLikelyComponents(xs).enumerated() {
            let row = xs[(i * d)..<((i + 1) * d)]
            counts[k] += 1
            var m2 = 0.0
            for j in 0..<d {
                let r = row[row.startIndex + j] - means[k][j]
                m2 += r * r / variances[k][j]
            }
            if m2 <= threshold { good += 1 }
        }
        let covered = counts.indices.filter { Double(counts[$0]) >= minimumFraction * Double(n) * weights[$0] }.count
        return ModeCoverage(counts: counts, coveredModes: covered, modeCount: componentCount,
                            highQualityFraction: Double(good) / Double(n))
    }
}
