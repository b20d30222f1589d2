import Foundation
import DistillCore

/// One measured figure: a value with its unit, and where there is one, a ratio against a
/// reference measured in the same run.
package struct BenchmarkRecord: Codable, Sendable {
    package var name: String
    package var value: Double
    package var unit: String
    /// value relative to `reference` (see each benchmark for the direction).
    package var ratio: Double?
    /// What the ratio compares against.
    package var reference: String?
    /// The SIMD level the kernels ran at (``Runtime/simdLevel`` when the figure was taken).
    package var simd: String

    package init(name: String, value: Double, unit: String, ratio: Double? = nil, reference: String? = nil,
                 simd: String = Runtime.simdLevel.rawValue) {
        self.name = name
        self.value = value
        self.unit = unit
        self.ratio = ratio
        self.reference = reference
        self.simd = simd
    }

    /// One JSON object on one line.
    package var jsonLine: String {
        let enc = JSONEncoder()
        enc.outputFormatting = [.sortedKeys]
        return String(decoding: (try? enc.encode(self)) ?? Data(), as: UTF8.self)
    }

    /// A fixed-width table row.
    package var tableRow: String {
        let v = value >= 100 ? String(format: "%.1f", value) : String(format: "%.3f", value)
        let r = ratio.map { String(format: "%.3f", $0) } ?? "-"
        return name.padding(toLength: 34, withPad: " ", startingAt: 0) + " " + v.leftPad(12) + " " +
            unit.padding(toLength: 9, withPad: " ", startingAt: 0) + " " + simd.padding(toLength: 7, withPad: " ", startingAt: 0) +
            r.leftPad(8) + "  " + (reference ?? "")
    }

    package static var tableHeader: String {
        "name".padding(toLength: 34, withPad: " ", startingAt: 0) + " " + "value".leftPad(12) + " " +
            "unit".padding(toLength: 9, withPad: " ", startingAt: 0) + " " + "simd".padding(toLength: 7, withPad: " ", startingAt: 0) +
            "ratio".leftPad(8) + "  reference"
    }
}

extension String {
    func leftPad(_ n: Int) -> String { count >= n ? self : String(repeating: " ", count: n - count) + self }
}
