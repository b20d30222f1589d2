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

    public var description: String {
        switch self {
        case let .cannotOpen(p, r): return "\(p): cannot open: \(r)"
        case let .truncated(p, d): return "\(p): truncated: \(d)"
        case let .corrupt(p, d): return "\(p): corrupt: \(d)"
        case let .unsupported(p, d): return "\(p): unsupported: \(d)"
        case let .writeFailed(p, r): return "\(p): write failed: \(r)"
        }
    }
}
