import Distill
import DistillSupport

/// A result table a benchmark group produces besides its records (sampler quality, distillation,
/// generators): `distill bench --markdown-dir DIR` writes it as `DIR/<name>.md`, with its
/// pictures as `DIR/<name>-<picture>.png` linked from the page.
package struct BenchmarkTable {
    /// File name without extension, e.g. "distillation-ring8".
    package var name: String
    /// The group that produced it (for the "written by" line).
    package var group: String
    package var title: String
    /// What the cells mean and how they were measured.
    package var description: String
    /// The markdown table itself.
    package var table: String
    /// Pictures by name, in the order they appear on the page.
    package var pictures: [(name: String, image: RGBImage)] = []

    /// The whole page, saying which command wrote it.
    package func markdown(command: String) -> String {
        var page = "# \(title)\n\nWritten by `\(command)`. \(description)\n\n\(table)"
        if !pictures.isEmpty {
            page += "\n" + pictures.map { "![\($0.name)](\(name)-\($0.name).png)" }.joined(separator: "\n") + "\n"
        }
        return page
    }
}
