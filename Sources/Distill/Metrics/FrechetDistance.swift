import CKernels

/// The mean and covariance of a feature set, in Double: what the Fréchet distance compares.
package struct FeatureStatistics: Sendable, Equatable {
    /// Number of feature vectors summarized.
    package let count: Int
    /// The mean feature vector (f).
    package let mean: [Double]
    /// The unbiased covariance (divided by count − 1), f × f row-major, exactly symmetric.
    package let covariance: [Double]

    /// Feature dimension f.
    package var dimension: Int { mean.count }

    /// The statistics of features (n, f), n ≥ 2.
    ///
    /// - Throws: ``MetricError`` for a shape that is not (n, f), fewer than 2 rows, or
    ///   non-finite values.
    package init(features: Tensor) throws {
        let x = try SampleMatrix(features, metric: "FeatureStatistics", minimumRows: 2)
        let n = x.rows, f = x.columns
        var mean = [Double](repeating: 0, count: f)
        for i in 0..<n { for j in 0..<f { mean[j] += x.values[i * f + j] } }
        for j in 0..<f { mean[j] /= Double(n) }
        var centered = x.values
        for i in 0..<n { for j in 0..<f { centered[i * f + j] -= mean[j] } }
        var cov = [Double](repeating: 0, count: f * f)
        ck_dgemm(1, 0, Int64(f), Int64(f), Int64(n), 1 / Double(n - 1), centered, Int64(f), centered, Int64(f), 0, &cov, Int64(f))
        Self.symmetrize(&cov, f)
        self.count = n
        self.mean = mean
        self.covariance = cov
    }

    /// Statistics given directly (e.g. saved reference statistics).
    ///
    /// - Throws: ``MetricError`` unless `covariance` is f × f for f = mean.count ≥ 1, symmetric
    ///   (to 1e-9 relative) and finite, and count ≥ 2.
    package init(mean: [Double], covariance: [Double], count: Int) throws {
        let f = mean.count
        let metric = "FeatureStatistics"
        guard f >= 1, covariance.count == f * f else {
            throw MetricError.invalidShape(metric: metric, shape: [covariance.count], expected: "\(f)×\(f) = \(f * f) covariance entries for a mean of \(f) (f ≥ 1)")
        }
        guard count >= 2 else { throw MetricError.tooFewSamples(metric: metric, count: count, required: 2) }
        guard (mean + covariance).allSatisfy({ $0.isFinite }) else {
            throw MetricError.nonFinite(metric: metric, detail: "a non-finite mean or covariance entry")
        }
        let scale = covariance.map { Swift.abs($0) }.max() ?? 0
        for i in 0..<f {
            for j in 0..<i where Swift.abs(covariance[i * f + j] - covariance[j * f + i]) > 1e-9 * scale {
                throw MetricError.invalidArgument(metric: metric, message: "covariance entries (\(i), \(j)) and (\(j), \(i)) differ; expected a symmetric matrix")
            }
        }
        var cov = covariance
        Self.symmetrize(&cov, f)
        self.count = count
        self.mean = mean
        self.covariance = cov
    }

    static func symmetrize(_ m: inout [Double], _ f: Int) {
        for i in 0..<f {
            for j in 0..<i {
                let v = 0.5 * (m[i * f + j] + m[j * f + i])
                m[i * f + j] = v
                m[j * f + i] = v
            }
        }
    }
}

/// The Fréchet distance between the Gaussians fitted to two feature sets — FID when the
/// features are a classifier's (Heusel et al. 2017):
/// ‖μ₁ − μ₂‖² + Tr(Σ₁ + Σ₂ − 2 (Σ₁Σ₂)^{1/2}).
///
/// The trace term is computed with symmetric eigendecompositions only (LAPACK `dsyevd`), in
/// Double: with A = Σ₁^{1/2}, (Σ₁Σ₂)^{1/2} is similar to (AΣ₂A)^{1/2}, so
/// Tr((Σ₁Σ₂)^{1/2}) = Σᵢ √λᵢ(AΣ₂A). Eigenvalues that rounding makes slightly negative are
/// clamped to 0.
///
/// - Throws: ``MetricError`` when the dimensions differ or LAPACK fails.
package func frechetDistance(_ a: FeatureStatistics, _ b: FeatureStatistics) throws -> Double {
    let metric = "frechetDistance"
    guard a.dimension == b.dimension else {
        throw MetricError.dimensionMismatch(metric: metric, lhs: [a.count, a.dimension], rhs: [b.count, b.dimension])
    }
    let f = a.dimension
    var meanTerm = 0.0
    for j in 0..<f { meanTerm += (a.mean[j] - b.mean[j]) * (a.mean[j] - b.mean[j]) }
    var traces = 0.0
    for j in 0..<f { traces += a.covariance[j * f + j] + b.covariance[j * f + j] }
    // A = Σ₁^{1/2} = V diag(√max(λ, 0)) Vᵀ.
    let (lambda, v) = try symmetricEigen(a.covariance, f, vectors: true, metric: metric)
    var scaled = v   // V diag(√λ): column k times √λ_k
    for i in 0..<f { for k in 0..<f { scaled[i * f + k] *= Swift.max(lambda[k], 0).squareRoot() } }
    var root = [Double](repeating: 0, count: f * f)
    ck_dgemm(0, 1, Int64(f), Int64(f), Int64(f), 1, scaled, Int64(f), v, Int64(f), 0, &root, Int64(f))
    FeatureStatistics.symmetrize(&root, f)
    // M = A Σ₂ A.
    var tmp = [Double](repeating: 0, count: f * f), m = [Double](repeating: 0, count: f * f)
    ck_dgemm(0, 0, Int64(f), Int64(f), Int64(f), 1, root, Int64(f), b.covariance, Int64(f), 0, &tmp, Int64(f))
    ck_dgemm(0, 0, Int64(f), Int64(f), Int64(f), 1, tmp, Int64(f), root, Int64(f), 0, &m, Int64(f))
    FeatureStatistics.symmetrize(&m, f)
    let (mu, _) = try symmetricEigen(m, f, vectors: false, metric: metric)
    let traceRoot = mu.reduce(0.0) { $0 + Swift.max($1, 0).squareRoot() }
    return meanTerm + traces - 2 * traceRoot
}

/// The Fréchet distance between two feature sets (n, f) and (m, f): FID on a classifier's
/// features (Heusel et al. 2017): the Fréchet distance between Gaussians with the sets' means
/// and covariances (`docs/methods.md` §8.6).
///
/// - Throws: `MetricError` for bad shapes, fewer than 2 rows, non-finite values, or when
///   LAPACK fails.
public func frechetDistance(_ x: Tensor, _ y: Tensor) throws -> Double {
    if x.rank == 2, y.rank == 2, x.shape[1] != y.shape[1] {
        throw MetricError.dimensionMismatch(metric: "frechetDistance", lhs: x.shape, rhs: y.shape)
    }
    return try frechetDistance(FeatureStatistics(features: x), FeatureStatistics(features: y))
}

/// Eigenvalues (ascending) and, when asked, eigenvectors (the columns of a row-major f × f
/// matrix) of a symmetric matrix, through LAPACK's divide-and-conquer `dsyevd`.
func symmetricEigen(_ matrix: [Double], _ f: Int, vectors: Bool, metric: String) throws -> (values: [Double], vectors: [Double]) {
    var a = matrix
    var w = [Double](repeating: 0, count: f)
    let info = ck_dsyevd(vectors ? 1 : 0, Int64(f), &a, &w)
    guard info == 0 else {
        throw MetricError.numericalFailure(metric: metric,
                                           detail: "LAPACK dsyevd failed (info \(info)) on a \(f)×\(f) symmetric matrix; expected convergence")
    }
    return (w, vectors ? a : [])
}

/// The result of ``kernelInceptionDistance(_:_:subsets:subsetSize:seed:)``.
public struct KernelInceptionDistance: Sendable, Equatable {
    /// Mean of the per-subset unbiased MMD² estimates: the KID.
    package let mean: Double
    /// Standard deviation of the per-subset estimates (population form, dividing by the
    /// number of subsets, as torch-fidelity reports it).
    package let standardDeviation: Double
    /// The per-subset estimates, in subset order.
    package let subsetValues: [Double]
}

/// Kernel Inception Distance (Bińkowski et al. 2018): the unbiased MMD² between two feature
/// sets with the cubic polynomial kernel k(x, y) = (xᵀy / f + 1)³, averaged over random
/// subsets.
///
/// Subset s takes `subsetSize` rows of each set without replacement: the first rows of the
/// permutations drawn from `Philox(seed: seed, stream: 2s)` (x) and `stream: 2s + 1` (y).
/// When `subsetSize` is at least both set sizes, each subset is a whole set and every subset
/// value is the same MMD² of the full sets. Computed in Double.
///
/// - Parameters:
///   - x: features (n, f).
///   - y: features (m, f).
///   - subsets: number of subsets (at least 1).
///   - subsetSize: rows per subset, capped at min(n, m); at least 2 after capping.
///   - seed: the key of the subset draws.
/// - Throws: `MetricError` for bad shapes, fewer than 2 rows, non-finite values or bad counts.
public func kernelInceptionDistance(_ x: Tensor, _ y: Tensor, subsets: Int = 100, subsetSize: Int = 1000,
                                    seed: UInt64 = 0) throws -> KernelInceptionDistance {
    let metric = "kernelInceptionDistance"
    let (a, b) = try SampleMatrix.pair(x, y, metric: metric, minimumRows: 2)
    guard subsets >= 1 else {
        throw MetricError.invalidArgument(metric: metric, message: "subsets \(subsets) must be at least 1")
    }
    let k = Swift.min(subsetSize, a.rows, b.rows)
    guard k >= 2 else {
        throw MetricError.invalidArgument(metric: metric, message: "subsetSize \(subsetSize) must be at least 2")
    }
    var values: [Double] = []
    for s in 0..<subsets {
        let sa: SampleMatrix, sb: SampleMatrix
        if k == a.rows { sa = a } else {
            var rng = Philox(seed: seed, stream: 2 * UInt64(s))
            sa = a.gathering(Array(rng.permutation(a.rows).prefix(k)))
        }
        if k == b.rows { sb = b } else {
            var rng = Philox(seed: seed, stream: 2 * UInt64(s) + 1)
            sb = b.gathering(Array(rng.permutation(b.rows).prefix(k)))
        }
        values.append(polynomialMMD2(sa, sb))
    }
    let mean = values.reduce(0, +) / Double(values.count)
    let variance = values.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(values.count)
    return KernelInceptionDistance(mean: mean, standardDeviation: variance.squareRoot(), subsetValues: values)
}

/// Unbiased MMD² with k(x, y) = (xᵀy / f + 1)³ between two sets of equal size k ≥ 2.
private func polynomialMMD2(_ a: SampleMatrix, _ b: SampleMatrix) -> Double {
    let n = a.rows, m = b.rows, f = a.columns
    func kernelSum(_ p: SampleMatrix, _ q: SampleMatrix, excludingDiagonal: Bool) -> Double {
        var gram = [Double](repeating: 0, count: p.rows * q.rows)
        ck_dgemm(0, 1, Int64(p.rows), Int64(q.rows), Int64(f), 1 / Double(f), p.values, Int64(f), q.values, Int64(f), 0, &gram, Int64(q.rows))
        var total = 0.0
        for i in 0..<p.rows {
            var row = 0.0
            for j in 0..<q.rows where !(excludingDiagonal && i == j) {
                let t = gram[i * q.rows + j] + 1
                row += t * t * t
            }
            total += row
        }
        return total
    }
    let kxx = kernelSum(a, a, excludingDiagonal: true) / Double(n * (n - 1))
    let kyy = kernelSum(b, b, excludingDiagonal: true) / Double(m * (m - 1))
    let kxy = kernelSum(a, b, excludingDiagonal: false) / Double(n * m)
    return kxx + kyy - 2 * kxy
}
