import Foundation

// Distances between two sample sets (n, d): sliced Wasserstein-2, MMD with RBF kernels and the
// energy distance. Everything is computed in Double; parallel work is split into fixed blocks
// summed in order, so results do not depend on the thread count.

/// Sliced Wasserstein-2 distance between two sample sets (Rabin et al. 2011; Bonneel et al. 2015).
///
/// Draws `directions` unit vectors θ uniformly on the sphere (normalized Gaussian vectors from
/// `Philox(seed: seed, stream: 0x5357)`), projects both sets on each, and computes the exact
/// squared 2-Wasserstein distance between the two 1-D empirical distributions: the integral
/// over t ∈ (0, 1) of (F⁻¹(t) − G⁻¹(t))² for the two quantile functions. With equal set
/// sizes this is the mean squared difference of the sorted projections; with unequal sizes
/// the two step quantile functions are merged exactly (no interpolation). Returns
/// SW₂ = sqrt(mean over θ of W₂²(θᵀx, θᵀy)), in the units of the data.
///
/// For a shift, SW₂(N(0, I), N(m, I)) = |m| / √d: a unit direction u drawn uniformly has
/// E[(uᵀm)²] = |m|² / d.
///
/// - Parameters:
///   - x: samples (n, d).
///   - y: samples (m, d).
///   - directions: number of random directions (at least 1).
///   - seed: the key of the directions; the same seed gives the same directions.
/// - Throws: `MetricError` for shapes that are not (samples, d) with equal d, empty sets,
///   non-finite values or a non-positive direction count.
public func slicedWasserstein2(_ x: Tensor, _ y: Tensor, directions: Int = 256, seed: UInt64 = 0) throws -> Double {
    let metric = "slicedWasserstein2"
    guard directions >= 1 else {
        throw MetricError.invalidArgument(metric: metric, message: "directions \(directions) must be at least 1")
    }
    let (a, b) = try SampleMatrix.pair(x, y, metric: metric)
    let d = a.columns
    var rng = Philox(seed: seed, stream: 0x5357)
    let raw = try rng.normal([directions, d]).scalars.map(Double.init)
    var theta = [Double](repeating: 0, count: directions * d)
    for k in 0..<directions {
        var norm = 0.0
        for j in 0..<d { norm += raw[k * d + j] * raw[k * d + j] }
        norm = norm.squareRoot()
        for j in 0..<d { theta[k * d + j] = norm > 0 ? raw[k * d + j] / norm : (j == 0 ? 1 : 0) }
    }
    let perDirection = parallelMap(directions) { k -> Double in
        let pa = sortedProjection(a, theta, k), pb = sortedProjection(b, theta, k)
        return wasserstein2Squared1D(pa, pb)
    }
    return (perDirection.reduce(0, +) / Double(directions)).squareRoot()
}

/// θ_kᵀ row for every row of `m`, sorted.
private func sortedProjection(_ m: SampleMatrix, _ theta: [Double], _ k: Int) -> [Double] {
    let d = m.columns
    var p = [Double](repeating: 0, count: m.rows)
    m.values.withUnsafeBufferPointer { v in
        theta.withUnsafeBufferPointer { t in
            let dir = t.baseAddress! + k * d
            for i in 0..<m.rows {
                var s = 0.0
                let row = v.baseAddress! + i * d
                for j in 0..<d { s += row[j] * dir[j] }
                p[i] = s
            }
        }
    }
    p.sort()
    return p
}

/// ∫₀¹ (F⁻¹(t) − G⁻¹(t))² dt for sorted samples `a` (n) and `b` (m): the quantile functions
/// step at i/n and j/m; the breakpoints are compared exactly in integers.
func wasserstein2Squared1D(_ a: [Double], _ b: [Double]) -> Double {
    let n = a.count, m = b.count
    if n == m {
        var s = 0.0
        for i in 0..<n { s += (a[i] - b[i]) * (a[i] - b[i]) }
        return s / Double(n)
    }
    var i = 0, j = 0
    var t = 0.0, total = 0.0
    while i < n && j < m {
        // Next breakpoint: min((i+1)/n, (j+1)/m).
        let ai = (i + 1) * m, bj = (j + 1) * n      // both over the common denominator n·m
        let next = Double(Swift.min(ai, bj)) / Double(n * m)
        let diff = a[i] - b[j]
        total += (next - t) * diff * diff
        t = next
        if ai <= bj { i += 1 }
        if bj <= ai { j += 1 }
    }
    return total
}

/// Squared maximum mean discrepancy with a multi-bandwidth Gaussian (RBF) kernel, unbiased
/// estimator (Gretton et al. 2012, eq. 3):
/// MMD²ᵤ = Σ_{i≠j} k(xᵢ, xⱼ) / (n(n−1)) + Σ_{i≠j} k(yᵢ, yⱼ) / (m(m−1)) − 2 Σ_{i,j} k(xᵢ, yⱼ) / (nm),
/// with k(x, y) = mean over bandwidths h of exp(−|x − y|² / (2h²)).
///
/// Unbiased, so it fluctuates around 0 (and can be slightly negative) when both sets come
/// from the same distribution. Cost O((n + m)² d).
///
/// - Parameters:
///   - x: the first sample set (n, d).
///   - y: the second sample set (m, d).
///   - bandwidths: the kernel bandwidths h; nil uses `defaultRBFBandwidths(_:_:)`
///     (the median heuristic times 1/4, 1/2, 1, 2, 4).
/// - Throws: `MetricError` for bad shapes, fewer than 2 samples in a set, non-finite
///   values or non-positive bandwidths.
public func maximumMeanDiscrepancy(_ x: Tensor, _ y: Tensor, bandwidths: [Double]? = nil) throws -> Double {
    let metric = "maximumMeanDiscrepancy"
    let (a, b) = try SampleMatrix.pair(x, y, metric: metric, minimumRows: 2)
    let h = bandwidths ?? medianBandwidths(a, b)
    guard !h.isEmpty, h.allSatisfy({ $0 > 0 && $0.isFinite }) else {
        throw MetricError.invalidArgument(metric: metric, message: "bandwidths \(h); expected at least one positive finite value")
    }
    let gammas = h.map { 1 / (2 * $0 * $0) }
    let scale = 1 / Double(gammas.count)
    let kernel = { (r2: Double) -> Double in
        var s = 0.0
        for g in gammas { s += Foundation.exp(-g * r2) }
        return s * scale
    }
    let n = Double(a.rows), m = Double(b.rows)
    let kxx = pairwiseSum(a, a, excludingDiagonal: true, kernel) / (n * (n - 1))
    let kyy = pairwiseSum(b, b, excludingDiagonal: true, kernel) / (m * (m - 1))
    let kxy = pairwiseSum(a, b, excludingDiagonal: false, kernel) / (n * m)
    return kxx + kyy - 2 * kxy
}

/// The default RBF bandwidths of ``maximumMeanDiscrepancy(_:_:bandwidths:)``: the median
/// distance between distinct points of the pooled sample (up to 500 evenly spaced points of
/// each set), times 1/4, 1/2, 1, 2 and 4. Falls back to a median of 1 when every distance is 0.
///
/// - Throws: ``MetricError`` for bad shapes or non-finite values.
package func defaultRBFBandwidths(_ x: Tensor, _ y: Tensor) throws -> [Double] {
    let (a, b) = try SampleMatrix.pair(x, y, metric: "defaultRBFBandwidths")
    return medianBandwidths(a, b)
}

private func medianBandwidths(_ a: SampleMatrix, _ b: SampleMatrix) -> [Double] {
    func pick(_ m: SampleMatrix) -> SampleMatrix {
        let k = Swift.min(m.rows, 500)
        return m.gathering((0..<k).map { $0 * m.rows / k })
    }
    let pa = pick(a), pb = pick(b)
    let pooled = pa.values + pb.values
    let rows = pa.rows + pb.rows, d = a.columns
    var distances: [Double] = []
    distances.reserveCapacity(rows * (rows - 1) / 2)
    for i in 0..<rows {
        for j in (i + 1)..<Swift.max(rows, i + 1) {
            var s = 0.0
            for k in 0..<d {
                let t = pooled[i * d + k] - pooled[j * d + k]
                s += t * t
            }
            distances.append(s.squareRoot())
        }
    }
    distances.sort()
    var median = distances.isEmpty ? 0 : (distances.count % 2 == 1 ? distances[distances.count / 2]
        : 0.5 * (distances[distances.count / 2 - 1] + distances[distances.count / 2]))
    if !(median > 0) { median = 1 }
    return [0.25, 0.5, 1, 2, 4].map { $0 * median }
}

/// The energy distance (Székely & Rizzo 2013): 2 E|X − Y| − E|X − X′| − E|Y − Y′|, with
/// unbiased (U-statistic) averages over distinct pairs for the within-set terms.
///
/// It is zero exactly when the distributions agree, and the estimate fluctuates around 0
/// (possibly slightly negative) for two samples of one distribution. Returned as is, in the
/// units of the data (not square-rooted). Cost O((n + m)² d).
///
/// - Throws: `MetricError` for bad shapes, fewer than 2 samples in a set or non-finite values.
public func energyDistance(_ x: Tensor, _ y: Tensor) throws -> Double {
    let (a, b) = try SampleMatrix.pair(x, y, metric: "energyDistance", minimumRows: 2)
    let n = Double(a.rows), m = Double(b.rows)
    let distance = { (r2: Double) -> Double in r2.squareRoot() }
    let xy = pairwiseSum(a, b, excludingDiagonal: false, distance) / (n * m)
    let xx = pairwiseSum(a, a, excludingDiagonal: true, distance) / (n * (n - 1))
    let yy = pairwiseSum(b, b, excludingDiagonal: true, distance) / (m * (m - 1))
    return 2 * xy - xx - yy
}

/// Σᵢ Σⱼ f(|aᵢ − bⱼ|²), skipping i == j when `excludingDiagonal` (a and b the same set).
/// Rows of `a` are processed in fixed blocks whose sums are added in order.
func pairwiseSum(_ a: SampleMatrix, _ b: SampleMatrix, excludingDiagonal: Bool, _ f: (Double) -> Double) -> Double {
    let d = a.columns, nb = b.rows
    let block = 16
    let blocks = (a.rows + block - 1) / block
    let sums = a.values.withUnsafeBufferPointer { av in
        b.values.withUnsafeBufferPointer { bv in
            parallelMap(blocks) { blk -> Double in
                var total = 0.0
                for i in (blk * block)..<Swift.min((blk + 1) * block, a.rows) {
                    let ai = av.baseAddress! + i * d
                    var rowSum = 0.0
                    for j in 0..<nb where !(excludingDiagonal && i == j) {
                        let bj = bv.baseAddress! + j * d
                        var r2 = 0.0
                        for k in 0..<d {
                            let t = ai[k] - bj[k]
                            r2 += t * t
                        }
                        rowSum += f(r2)
                    }
                    total += rowSum
                }
                return total
            }
        }
    }
    return sums.reduce(0, +)
}

/// `body(i)` for i in 0..<count on the kernels' thread pool; the results in index order.
func parallelMap(_ count: Int, _ body: (Int) -> Double) -> [Double] {
    var out = [Double](repeating: 0, count: count)
    out.withUnsafeMutableBufferPointer { o in
        let base = o.baseAddress
        Runtime.parallelFor(count) { i in base![i] = body(i) }   // each index writes only its own slot
    }
    return out
}

/// The root-mean-square distance between two tensors of the same shape, element by element:
/// the error of a sampler's map against the exact map from the same noise.
package func rmsDistance(_ a: Tensor, _ b: Tensor) -> Double {
    (zip(a.scalars, b.scalars).reduce(0.0) { $0 + Double($1.0 - $1.1) * Double($1.0 - $1.1) } / Double(max(a.count, 1))).squareRoot()
}
