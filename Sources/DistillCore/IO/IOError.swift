/// Errors reading or writing files: each names the file and what was wrong.
public enum IOError: Error, Equatable, CustomStringConvertible {
    /// The file could not be opened.
    case cannotOpen(path: String, reason: String)
    /// The file ended before the format said it would.
    case truncated(path: String, detail: String)
    /// The bytes do not follow the format.
    case corrupt(path: String, detail: String)
    /// Valid for the format, but not something this library reads (e.g. a dtype).
    case unsupported(path: String, detail: String)
    /// Writing failed; nothing was left at the destination.
    case writeFailed(path: String, reason: String)

    /// One line, whatever the path and the names quoted from a file hold (control
    /// characters are escaped).
    public var description: String {
        let text: String
        switch self {
        case let .cannotOpen(p, r): text = "\(p): cannot open: \(r)"
        case let .truncated(p, d): text = "\(p): truncated: \(d)"
        case let .corrupt(p, d): text = "\(p): corrupt: \(d)"
        case let .unsupported(p, d): text = "\(p): unsupported: \(d)"
        case let .writeFailed(p, r): text = "\(p): write failed: \(r)"
        }
        return Self.oneLine(text)
    }

    /// `text` with control characters (newlines included) written as escapes.
    package static func oneLine(_ text: String) -> String {
        guard text.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) else { return text }
        var out = ""
        for u in text.unicodeScalars {
            if u.properties.generalCategory == .control { out += u.escaped(asASCII: true) } else { out.unicodeScalars.append(u) }
        }
        return out
    }
}
