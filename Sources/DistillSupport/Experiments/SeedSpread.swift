import Foundation

/// One figure measured once per seed: its mean and sample standard deviation, as the evidence
/// pages print it ("0.0688 ± 0.0040"; a single seed prints its value alone).
package struct SeedSpread: Sendable, Equatable {
    package var values: [Double]

    package init(_ values: [Double]) {
        precondition(!values.isEmpty, "a spread needs at least one value")
        self.values = values
    }

    package var mean: Double { values.reduce(0, +) / Double(values.count) }

    /// The sample standard deviation (divisor n − 1); 0 for one value.
    package var standardDeviation: Double {
        guard values.count > 1 else { return 0 }
        let m = mean
        return (values.map { ($0 - m) * ($0 - m) }.reduce(0, +) / Double(values.count - 1)).squareRoot()
    }

    /// "mean ± sd" with `decimals` digits after the point (the value alone for one seed).
    package func text(decimals: Int) -> String {
        let f = "%.\(decimals)f"
        return values.count == 1 ? String(format: f, values[0]) : String(format: "\(f) ± \(f)", mean, standardDeviation)
    }

    /// "8/8" when every seed gives the same count, "7–8/8" otherwise: counts out of `total`.
    package func countText(of total: Int) -> String {
        let (lo, hi) = (Int(values.min()!.rounded()), Int(values.max()!.rounded()))
        return lo == hi ? "\(lo)/\(total)" : "\(lo)–\(hi)/\(total)"
    }

    /// Combines several seeds' runs of one experiment column by column. Each run yields the same
    /// rows in the same order (checked by `key`); `figures` reads a row's measured figures, nil
    /// where a row has none. The result lists, per row, the first run's row and one spread per
    /// figure (nil where any seed lacks it).
    package static func combine<Row>(_ runs: [[Row]], key: (Row) -> String, figures: (Row) -> [Double?]) throws -> [(row: Row, spreads: [SeedSpread?])] {
        guard let first = runs.first else { return [] }
        for (i, run) in runs.enumerated() where run.map(key) != first.map(key) {
            throw SeedSpreadError.rowsDiffer(seedIndex: i)
        }
        return first.indices.map { r in
            let columns = runs.map { figures($0[r]) }
            let spreads = columns[0].indices.map { c -> SeedSpread? in
                let values = columns.compactMap { $0[c] }
                return values.count == runs.count ? SeedSpread(values) : nil
            }
            return (first[r], spreads)
        }
    }
}

/// Why the runs of several seeds cannot be put in one table.
package enum SeedSpreadError: Error, CustomStringConvertible {
    /// Run `seedIndex` produced other rows (methods, NFE or notes) than the first run.
    case rowsDiffer(seedIndex: Int)

    package var description: String {
        switch self {
        case let .rowsDiffer(i): return "the run of seed index \(i) produced other rows than the first; the seeds cannot be combined"
        }
    }
}
