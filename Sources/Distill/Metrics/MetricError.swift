/// Errors of the metrics: each names the metric, what was wrong and what was expected.
package enum MetricError: Error, Equatable, CustomStringConvertible {
    /// An input without the shape the metric needs.
    case invalidShape(metric: String, shape: [Int], expected: String)
    /// Two sample sets whose feature dimensions differ.
    case dimensionMismatch(metric: String, lhs: [Int], rhs: [Int])
    /// Too few samples for the estimator.
    case tooFewSamples(metric: String, count: Int, required: Int)
    /// A NaN or infinite input value.
    case nonFinite(metric: String, detail: String)
    /// An argument with an invalid value.
    case invalidArgument(metric: String, message: String)
    /// A numerical routine failed (e.g. LAPACK did not converge).
    case numericalFailure(metric: String, detail: String)

    /// A one-line message naming the metric, what was wrong and what was expected.
    package var description: String {
        switch self {
        case let .invalidShape(m, shape, expected):
            return "\(m): input of shape \(shape); expected \(expected)"
        case let .dimensionMismatch(m, lhs, rhs):
            return "\(m): sample sets of shapes \(lhs) and \(rhs); expected the same number of columns"
        case let .tooFewSamples(m, count, required):
            return "\(m): \(count) samples; the estimator needs at least \(required)"
        case let .nonFinite(m, detail):
            return "\(m): \(detail); expected finite values"
        case let .invalidArgument(m, message):
            return "\(m): \(message)"
        case let .numericalFailure(m, detail):
            return "\(m): \(detail)"
        }
    }
}

/// A sample set (n, d) copied out as Double rows.
struct SampleMatrix {
    let rows: Int
    let columns: Int
    /// Row-major, rows × columns.
    let values: [Double]

    /// Validates and converts `t`: rank 2, at least `minimumRows` rows, one column or more,
    /// every value finite.
    init(_ t: Tensor, metric: String, minimumRows: Int = 1) throws {
        guard t.rank == 2, t.shape[1] >= 1 else {
            throw MetricError.invalidShape(metric: metric, shape: t.shape, expected: "(samples, features) with at least one feature")
        }
        guard t.shape[0] >= minimumRows else {
            throw MetricError.tooFewSamples(metric: metric, count: t.shape[0], required: minimumRows)
        }
        rows = t.shape[0]
        columns = t.shape[1]
        values = try t.withUnsafeBufferPointer { b in
            if let i = b.firstIndex(where: { !$0.isFinite }) {
                throw MetricError.nonFinite(metric: metric, detail: "value \(b[i]) in row \(i / t.shape[1]), column \(i % t.shape[1])")
            }
            return b.map(Double.init)
        }
    }

    /// Two sample sets with the same number of columns.
    static func pair(_ x: Tensor, _ y: Tensor, metric: String, minimumRows: Int = 1) throws -> (SampleMatrix, SampleMatrix) {
        let a = try SampleMatrix(x, metric: metric, minimumRows: minimumRows)
        let b = try SampleMatrix(y, metric: metric, minimumRows: minimumRows)
        guard a.columns == b.columns else { throw MetricError.dimensionMismatch(metric: metric, lhs: x.shape, rhs: y.shape) }
        return (a, b)
    }

    /// The rows at `indices`.
    func gathering(_ indices: [Int]) -> SampleMatrix {
        var out = [Double]()
        out.reserveCapacity(indices.count * columns)
        for i in indices { out.append(contentsOf: values[(i * columns)..<((i + 1) * columns)]) }
        return SampleMatrix(rows: indices.count, columns: columns, values: out)
    }

    private init(rows: Int, columns: Int, values: [Double]) {
        self.rows = rows
        self.columns = columns
        self.values = values
    }
}
