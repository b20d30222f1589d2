import Foundation

/// Errors describing an invalid Gaussian mixture.
package enum GaussianMixtureError: Error, CustomStringConvertible {
    case invalid(source: String, reason: String)

    package var description: String {
        switch self {
        case let .invalid(source, reason): return "\(source): invalid Gaussian mixture: \(reason)"
        }
    }
}

/// A Gaussian mixture p0 = Σ_k π_k N(μ_k, diag(Σ_k)) in any dimension: the exact teacher
/// (`docs/methods.md` §4). Under x_t = α·x0 + σ·ε its marginal stays a mixture,
/// p_t = Σ_k π_k N(αμ_k, α²Σ_k + σ²I), so the score, the denoiser E[x0 | x_t], the
/// log-density and samples are all exact, and the probability-flow ODE can be solved to any
/// accuracy (`solveProbabilityFlow(_:from:to:tolerance:)`). All arithmetic is in Double.
public struct GaussianMixture: Sendable, Encodable, Equatable {
    /// Mixture weights π_k, normalized to sum to 1.
    package let weights: [Double]
    /// Means μ_k (K × d).
    package let means: [[Double]]
    /// Diagonal covariances Σ_k (K × d), all positive.
    package let variances: [[Double]]

    /// The number of components K.
    public var componentCount: Int { weights.count }
    /// The dimension d of the data.
    public var dimension: Int { means.first?.count ?? 0 }

    /// A validated mixture; weights are normalized. `source` names the origin in errors.
    public init(weights: [Double], means: [[Double]], variances: [[Double]], source: String = "mixture") throws {
        func bad(_ reason: String) -> GaussianMixtureError { .invalid(source: source, reason: reason) }
        guard !weights.isEmpty else { throw bad("no components (empty 'weights')") }
        guard means.count == weights.count, variances.count == weights.count else {
            throw bad("\(weights.count) weights but \(means.count) means and \(variances.count) variance rows; expected one of each per component")
        }
        let d = means[0].count
        guard d >= 1 else { throw bad("means have dimension 0") }
        for (k, (m, v)) in zip(means, variances).enumerated() {
            guard m.count == d, v.count == d else {
                throw bad("component \(k) has a mean of length \(m.count) and variances of length \(v.count); expected \(d) (ragged rows)")
            }
            if let j = m.firstIndex(where: { !$0.isFinite }) { throw bad("mean \(k)[\(j)] is not finite") }
            if let j = v.firstIndex(where: { !($0 > 0) || !$0.isFinite }) {
                throw bad("variance \(k)[\(j)] = \(v[j]); variances must be positive and finite")
            }
        }
        if let k = weights.firstIndex(where: { !($0 >= 0) || !$0.isFinite }) {
            throw bad("weight \(k) = \(weights[k]); weights must be non-negative and finite")
        }
        let total = weights.reduce(0, +)
        guard total > 0 else { throw bad("the weights sum to 0") }
        self.weights = weights.map { $0 / total }
        self.means = means
        self.variances = variances
    }

    /// The largest mixture file read (64 MiB).
    static let maximumFileBytes = 64 << 20
    /// The most numbers a loaded mixture may hold: components × dimension.
    static let maximumEntries = 1 << 22
    /// Loaded means lie in ±1e10 and variances in [1e-20, 1e20]: every exact quantity is
    /// then finite in Double for any Float32 input (no silent NaN from a legal file).
    static let meanLimit = 1e10, varianceRange = 1e-20...1e20

    /// Reads `{"weights": [..], "means": [[..], ..], "variances": [[..], ..]}` from a
    /// regular file of at most 64 MiB (see `decode(_:source:)`).
    public static func load(_ path: String) throws -> GaussianMixture {
        try decode(Data(FileIO.read(path, maximumSize: maximumFileBytes)), source: path)
    }

    /// Parses the JSON form (`source` names the origin in errors).
    ///
    /// The object must have exactly the keys `weights` (K positive numbers), `means` and
    /// `variances` (K rows of d numbers each, K × d at most 4 194 304); means in ±1e10,
    /// variances in [1e-20, 1e20]. Every error names the source and the field.
    package static func decode(_ json: Data, source: String) throws -> GaussianMixture {
        func bad(_ reason: String) -> GaussianMixtureError { .invalid(source: source, reason: reason) }
        let expected = #"expected JSON {"weights": [...], "means": [[...]], "variances": [[...]]}"#
        let value: JSONValue
        do { value = try JSONValue.parse(ArraySlice(json)) } catch let e as JSONSyntaxError {
            throw bad("\(e); \(expected)")
        }
        guard let fields = value.fields else { throw bad("the text is \(value.kind); \(expected)") }
        guard Set(fields.keys) == ["weights", "means", "variances"] else {
            throw bad("the keys are \(fields.keys.sorted()); \(expected)")
        }
        func numbers(_ v: JSONValue, _ field: String, _ allowed: (Double) -> Bool, _ rule: String) throws -> [Double] {
            guard case let .array(items) = v else { throw bad("'\(field)' is \(v.kind); expected an array of numbers") }
            return try items.enumerated().map { i, item in
                guard let x = item.double else { throw bad("\(field)[\(i)] is \(item.kind); expected a number") }
                guard x.isFinite, allowed(x) else { throw bad("\(field)[\(i)] = \(item.excerpt()); expected \(rule)") }
                return x
            }
        }
        func rows(_ field: String, _ allowed: (Double) -> Bool, _ rule: String) throws -> [[Double]] {
            guard case let .array(items)? = fields[field] else { throw bad("'\(field)' is \(fields[field]!.kind); expected an array of rows") }
            let d = items.first.flatMap { if case let .array(r) = $0 { return r.count } else { return nil } } ?? 0
            guard items.count * max(d, 1) <= maximumEntries else {
                throw bad("'\(field)' has \(items.count) rows of \(d); expected at most \(maximumEntries) numbers in all")
            }
            return try items.enumerated().map { k, row in try numbers(row, "\(field)[\(k)]", allowed, rule) }
        }
        let weights = try numbers(fields["weights"]!, "weights", { $0 >= 0 }, "a positive finite number")
        let means = try rows("means", { abs($0) <= meanLimit }, "a finite number in ±\(meanLimit)")
        let variances = try rows("variances", { varianceRange.contains($0) }, "a number in [\(varianceRange.lowerBound), \(varianceRange.upperBound)]")
        // Weights: each positive (all zero is reported by the initializer as "sum to 0"),
        // with a finite sum, and none vanishing when normalized (log π_k stays finite).
        let total = weights.reduce(0, +)
        guard total.isFinite else { throw bad("the weights sum to \(total); expected a finite sum") }
        if total > 0, let k = weights.firstIndex(where: { !($0 / total > 0) }) {
            throw bad("weights[\(k)] = \(weights[k]), which is 0 relative to the sum \(total); expected a positive weight")
        }
        return try GaussianMixture(weights: weights, means: means, variances: variances, source: source)
    }

    /// Writes the JSON form atomically.
    package func write(to path: String) throws {
        let enc = JSONEncoder()
        enc.outputFormatting = [.sortedKeys]
        try FileIO.writeAtomically(path, Array(try enc.encode(self)))
    }

    // MARK: - Built-in mixtures

    /// The exact mixture behind a toy dataset that is one (``ToyDataset/mixtureMeans``).
    package init?(toy: ToyDataset) {
        guard let means = toy.mixtureMeans, let std = toy.mixtureStandardDeviation else { return nil }
        try? self.init(weights: Array(repeating: 1, count: means.count), means: means,
                       variances: Array(repeating: Array(repeating: std * std, count: means[0].count), count: means.count))
    }

    /// Eight Gaussians on a circle of radius 2, std 0.1 (`ToyDataset/eightGaussians`).
    package static func ring8() -> GaussianMixture { GaussianMixture(toy: .eightGaussians)! }

    /// The 5×5 grid of Gaussians 1.5 apart, std 0.1 (`ToyDataset/twentyFiveGaussians`).
    package static func grid25() -> GaussianMixture { GaussianMixture(toy: .twentyFiveGaussians)! }

    /// A 64-dimensional mixture (the size of an 8×8 image): 10 components with means in
    /// [-0.8, 0.8] and per-pixel variances in [0.005, 0.05], drawn from a fixed seed.
    package static func highDimensional64(seed: UInt64 = 64) -> GaussianMixture {
        var rng = Philox(seed: seed, stream: 0x6d6978)
        let m = (try! rng.uniform([10, 64], low: -0.8, high: 0.8)).scalars.map(Double.init)
        let v = (try! rng.uniform([10, 64], low: 0.005, high: 0.05)).scalars.map(Double.init)
        return try! GaussianMixture(weights: Array(repeating: 1, count: 10),
                                    means: (0..<10).map { Array(m[($0 * 64)..<(($0 + 1) * 64)]) },
                                    variances: (0..<10).map { Array(v[($0 * 64)..<(($0 + 1) * 64)]) })
    }

    /// The built-in mixtures by name: "ring8", "grid25", "gmm64".
    public static func named(_ name: String) -> GaussianMixture? {
        switch name {
        case "ring8", "8gaussians": return ring8()
        case "grid25", "25gaussians": return grid25()
        case "gmm64": return highDimensional64()
        default: return nil
        }
    }

    package static let builtInNames = ["ring8", "grid25", "gmm64"]

    // MARK: - Exact quantities (rows of a flat n × d Double array)

    /// Per point: log p_t(x), the responsibilities' log-normalizer pieces, and per-component
    /// log terms, at state scales (α, σ).
    func logTerms(_ x: ArraySlice<Double>, alpha: Double, sigma: Double) -> [Double] {
        let d = dimension
        return (0..<componentCount).map { k in
            var q = 0.0, logdet = 0.0
            for j in 0..<d {
                let v = alpha * alpha * variances[k][j] + sigma * sigma
                let r = x[x.startIndex + j] - alpha * means[k][j]
                q += r * r / v
                logdet += log(v)
            }
            return log(weights[k]) - 0.5 * (q + logdet + Double(d) * log(2 * Double.pi))
        }
    }

    static func logSumExp(_ v: [Double]) -> Double {
        let m = v.max()!
        return m.isInfinite ? m : m + log(v.reduce(0) { $0 + exp($1 - m) })
    }

    /// log p_t(x) for each of the n rows of x (flat n × d).
    package func logDensity(_ x: [Double], alpha: Double = 1, sigma: Double = 0) -> [Double] {
        let d = dimension
        return (0..<(x.count / d)).map { i in Self.logSumExp(logTerms(x[(i * d)..<((i + 1) * d)], alpha: alpha, sigma: sigma)) }
    }

    /// The exact denoiser E[x0 | x_t = x] and score ∇log p_t(x) for each row.
    package func denoiserAndScore(_ x: [Double], alpha: Double, sigma: Double) -> (denoised: [Double], score: [Double]) {
        let d = dimension, n = x.count / d
        var den = [Double](repeating: 0, count: x.count), sc = den
        for i in 0..<n {
            let row = x[(i * d)..<((i + 1) * d)]
            let terms = logTerms(row, alpha: alpha, sigma: sigma)
            let lse = Self.logSumExp(terms)
            for k in 0..<componentCount {
                let r = exp(terms[k] - lse)
                if r == 0 { continue }
                for j in 0..<d {
                    let v = alpha * alpha * variances[k][j] + sigma * sigma
                    let resid = row[row.startIndex + j] - alpha * means[k][j]
                    den[i * d + j] += r * (means[k][j] + alpha * variances[k][j] / v * resid)
                    sc[i * d + j] -= r * resid / v
                }
            }
        }
        return (den, sc)
    }

    /// Exact samples of p0 (n × d) and the component each came from.
    public func sample(_ n: Int, seed: UInt64, stream: UInt64 = 0) throws -> (samples: Tensor, components: [Int]) {
        var rng = Philox(seed: seed, stream: stream)
        let u = try rng.uniform([n]).scalars
        let z = try rng.normal([n, dimension]).scalars
        var cumulative: [Double] = []
        var acc = 0.0
        for w in weights { acc += w; cumulative.append(acc) }
        var out = [Float](repeating: 0, count: n * dimension)
        var comps: [Int] = []
        for i in 0..<n {
            let k = cumulative.firstIndex(where: { Double(u[i]) < $0 }) ?? componentCount - 1
            comps.append(k)
            for j in 0..<dimension {
                out[i * dimension + j] = Float(means[k][j] + variances[k][j].squareRoot() * Double(z[i * dimension + j]))
            }
        }
        return (try Tensor(shape: [n, dimension], scalars: out), comps)
    }

    // MARK: - The ground-truth probability-flow ODE

    /// Solves the probability-flow ODE exactly (to `tolerance`) from states x at noise level
    /// (α0, σ0) to level (α1, σ1) (σ1 may be 0: the clean end). It integrates the
    /// process-independent σ-form dx̃/d(log σ̃) = x̃ - D(x̃; σ̃), x̃ = x/α, σ̃ = σ/α (Karras et al.
    /// 2022, eq. 4 with s = 1), by adaptive Dormand–Prince in Double; x̃ - D is O(σ̃²) near 0,
    /// so stopping at σ̃ = 1e-7 when σ1 = 0 leaves an error far below the tolerance.
    /// Returns the states at (α1, σ1) and the number of right-hand-side evaluations.
    package func solveProbabilityFlow(_ x: Tensor, from start: (alpha: Double, sigma: Double),
                                     to end: (alpha: Double, sigma: Double), tolerance: Double = 1e-9) throws -> (Tensor, Int) {
        guard x.rank == 2, x.shape[1] == dimension else {
            throw TensorError.invalidShape(operation: "solveProbabilityFlow", shape: x.shape, expected: "[n, \(dimension)]")
        }
        let s0 = log(start.sigma / start.alpha), s1 = log(max(end.sigma / end.alpha, 1e-7))
        let y0 = x.scalars.map { Double($0) / start.alpha }
        let result = try DormandPrince.integrate(y0, from: s0, to: s1, rtol: tolerance, atol: tolerance) { s, y in
            let (den, _) = denoiserAndScore(y, alpha: 1, sigma: exp(s))
            return zip(y, den).map { $0 - $1 }
        }
        let out = result.state.map { Float($0 * end.alpha) }
        return (try Tensor(shape: x.shape, scalars: out), result.evaluations)
    }
}

extension GaussianMixture: Denoiser {
    /// The exact x̂0 = E[x0 | x] and ε̂ = (x - αx̂0)/σ at each row's level. Rows run in
    /// parallel on the kernel pool (each row's result depends on that row only).
    public func predict(_ x: Tensor, at levels: NoiseLevels, labels: [Int]?) throws -> Prediction {
        guard x.rank == 2, x.shape[1] == dimension, levels.count == x.shape[0] else {
            throw TensorError.invalidShape(operation: "GaussianMixture.predict", shape: x.shape,
                                           expected: "[\(levels.count), \(dimension)] (one noise level per row)")
        }
        let d = dimension, n = x.shape[0], kCount = componentCount
        let xs = x.scalars
        var x0 = [Float](repeating: 0, count: xs.count), eps = x0
        let logWeights = weights.map { log($0) }
        let flatMeans = means.flatMap { $0 }, flatVars = variances.flatMap { $0 }
        x0.withUnsafeMutableBufferPointer { x0p in
            eps.withUnsafeMutableBufferPointer { epsp in
                let (x0b, epsb) = (x0p.baseAddress!, epsp.baseAddress!)
                Runtime.parallelFor((n + 63) / 64) { block in
                    var terms = [Double](repeating: 0, count: kCount)
                    var inv = [Double](repeating: 0, count: kCount * d), gain = inv
                    var logNorm = [Double](repeating: 0, count: kCount)
                    var cached: (Double, Double) = (.nan, .nan)
                    for i in (block * 64)..<min(n, block * 64 + 64) {
                        let (a, s) = (levels.alpha[i], levels.sigma[i])
                        if cached != (a, s) {   // per-level constants, shared by rows at the same level
                            for k in 0..<kCount {
                                var logdet = 0.0
                                for j in 0..<d {
                                    let v = a * a * flatVars[k * d + j] + s * s
                                    inv[k * d + j] = 1 / v
                                    gain[k * d + j] = a * flatVars[k * d + j] / v
                                    logdet += log(v)
                                }
                                logNorm[k] = logWeights[k] - 0.5 * (logdet + Double(d) * log(2 * Double.pi))
                            }
                            cached = (a, s)
                        }
                        let row = i * d
                        for k in 0..<kCount {
                            var q = 0.0
                            for j in 0..<d {
                                let r = Double(xs[row + j]) - a * flatMeans[k * d + j]
                                q += r * r * inv[k * d + j]
                            }
                            terms[k] = logNorm[k] - 0.5 * q
                        }
                        let lse = GaussianMixture.logSumExp(terms)
                        for j in 0..<d {
                            var acc = 0.0
                            for k in 0..<kCount {
                                let w = exp(terms[k] - lse)
                                if w == 0 { continue }
                                acc += w * (flatMeans[k * d + j] + gain[k * d + j] * (Double(xs[row + j]) - a * flatMeans[k * d + j]))
                            }
                            x0b[row + j] = Float(acc)
                            epsb[row + j] = s > 0 ? Float((Double(xs[row + j]) - a * acc) / s) : 0
                        }
                    }
                }
            }
        }
        return Prediction(data: try Tensor(shape: x.shape, scalars: x0), noise: try Tensor(shape: x.shape, scalars: eps))
    }
}
