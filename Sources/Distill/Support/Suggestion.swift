/// " (did you mean 'dpmpp-2m'?)" when one of `names` is within a few edits of `name` (or
/// starts with it), "" otherwise: the tail of an error message for a mistyped name.
package func suggestion(for name: String, among names: [String]) -> String {
    let lowered = name.lowercased()
    let scored = names.map { ($0, editDistance(lowered, $0.lowercased())) }
    guard let best = scored.min(by: { $0.1 < $1.1 }) else { return "" }
    if best.1 <= max(2, lowered.count / 3) { return " (did you mean '\(best.0)'?)" }
    if !lowered.isEmpty, let prefixed = names.first(where: { $0.lowercased().hasPrefix(lowered) }) {
        return " (did you mean '\(prefixed)'?)"
    }
    return ""
}

/// Levenshtein distance: the fewest insertions, deletions and substitutions turning a into b.
package func editDistance(_ a: String, _ b: String) -> Int {
    let (x, y) = (Array(a), Array(b))
    var row = Array(0...y.count)
    for i in 1...max(x.count, 1) where !x.isEmpty {
        var previous = row[0]
        row[0] = i
        for j in stride(from: 1, through: y.count, by: 1) {
            let substitution = previous + (x[i - 1] == y[j - 1] ? 0 : 1)
            previous = row[j]
            row[j] = min(substitution, row[j] + 1, row[j - 1] + 1)
        }
    }
    return x.isEmpty ? y.count : row[y.count]
}
