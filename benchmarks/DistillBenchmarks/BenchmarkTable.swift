import Distill

/// A result table a benchmark group produces besides its records (sampler quality, distillation,
/// generators): `distill bench --markdown-dir DIR` writes it as `DIR/<name>.md`, with its
/// pictures as `DIR/<name>-<picture>.png` linked from the page.
public struct BenchmarkTable {
    /// File name without extension, e.g. "distillation-ring8".
    public var name: String
    /// The group that produced it (for the "written by" line).
    public var group: String
    public var title: String
    /// What the cells mean and how they were measured.
    public var description: String
    /// The markdown table itself.
    public var table: String
    /// Pictures by name, in the order they appear on the page.
    public var pictures: [(name: String, image: RGBImage)] = []

    /// The whole page, saying which command wrote it.
    public func markdown(command: String) -> String {
        var page = "# \(title)\n\nWritten by `\(command)`. \(description)\n\n\(table)"
        if !pictures.isEmpty {
            page += "\n" + pictures.map { "![\($0.name)](\(name)-\($0.name).png)" }.joined(separator: "\n") + "\n"
        }
        return page
    }
}
