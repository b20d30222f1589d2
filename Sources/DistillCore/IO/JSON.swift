/// A JSON value (RFC 8259) read strictly, for the file formats that embed JSON: nesting is
/// limited (no deep recursion on hostile input), an object may not repeat a key, strings
/// must be valid UTF-8, and numbers keep their text, so an integer is read exactly or not
/// at all (never through a Double).
package indirect enum JSONValue {
    case null
    case bool(Bool)
    /// The number's text, as it stands in the file (valid JSON number syntax).
    case number(String)
    case string(String)
    case array([JSONValue])
    /// Members in file order (keys are distinct).
    case object([(key: String, value: JSONValue)])

    /// What the value is, for error messages ("a string", "an array", ...).
    package var kind: String {
        switch self {
        case .null: return "null"
        case .bool: return "a boolean"
        case .number: return "a number"
        case .string: return "a string"
        case .array: return "an array"
        case .object: return "an object"
        }
    }

    /// An object's members by key (nil when the value is not an object).
    package var fields: [String: JSONValue]? {
        guard case let .object(members) = self else { return nil }
        return Dictionary(members.map { ($0.key, $0.value) }, uniquingKeysWith: { first, _ in first })
    }

    /// The value as an exact integer (a number written without fraction or exponent that
    /// fits in `Int`), else nil.
    package var integer: Int? {
        guard case let .number(text) = self, !text.contains(where: { $0 == "." || $0 == "e" || $0 == "E" }) else { return nil }
        return Int(text)
    }

    /// The value as a Double (infinite when the number is too large for one), else nil.
    package var double: Double? {
        guard case let .number(text) = self else { return nil }
        return Double(text)
    }

    /// The UTF-8 text of the value, compact, members in the order given (callers that
    /// need a canonical form sort them first).
    package var serialized: [UInt8] {
        var out: [UInt8] = []
        Self.append(self, to: &out)
        return out
    }

    /// The serialized text, cut to `limit` characters, for error messages.
    package func excerpt(_ limit: Int = 40) -> String {
        let text = String(decoding: serialized.prefix(limit + 1), as: UTF8.self)
        return text.count > limit ? String(text.prefix(limit)) + "…" : text
    }

    private static func append(_ v: JSONValue, to out: inout [UInt8]) {
        switch v {
        case .null: out += Array("null".utf8)
        case let .bool(b): out += Array((b ? "true" : "false").utf8)
        case let .number(text): out += Array(text.utf8)
        case let .string(s): appendString(s, to: &out)
        case let .array(items):
            out.append(UInt8(ascii: "["))
            for (i, item) in items.enumerated() {
                if i > 0 { out.append(UInt8(ascii: ",")) }
                append(item, to: &out)
            }
            out.append(UInt8(ascii: "]"))
        case let .object(members):
            out.append(UInt8(ascii: "{"))
            for (i, m) in members.enumerated() {
                if i > 0 { out.append(UInt8(ascii: ",")) }
                appendString(m.key, to: &out)
                out.append(UInt8(ascii: ":"))
                append(m.value, to: &out)
            }
            out.append(UInt8(ascii: "}"))
        }
    }

    private static func appendString(_ s: String, to out: inout [UInt8]) {
        let hex = Array("0123456789abcdef".utf8)
        out.append(UInt8(ascii: "\""))
        for b in s.utf8 {
            switch b {
            case UInt8(ascii: "\""), UInt8(ascii: "\\"): out += [UInt8(ascii: "\\"), b]
            case 0x0A: out += Array("\\n".utf8)
            case 0x0D: out += Array("\\r".utf8)
            case 0x09: out += Array("\\t".utf8)
            case 0..<0x20: out += Array("\\u00".utf8) + [hex[Int(b >> 4)], hex[Int(b & 15)]]
            default: out.append(b)
            }
        }
        out.append(UInt8(ascii: "\""))
    }

    /// Parses `bytes` as one JSON value (surrounding white space allowed).
    ///
    /// - Throws: ``JSONSyntaxError`` naming the byte offset and what was expected.
    package static func parse(_ bytes: ArraySlice<UInt8>, maximumDepth: Int = 64) throws -> JSONValue {
        try bytes.withUnsafeBufferPointer { buffer in
            var p = JSONParser(bytes: buffer, maximumDepth: maximumDepth)
            p.skipSpace()
            let v = try p.value(depth: 0)
            p.skipSpace()
            guard p.at == buffer.count else { throw p.error("the end of the text after the value") }
            return v
        }
    }
}

/// Where JSON text broke the grammar and what was expected there.
package struct JSONSyntaxError: Error, CustomStringConvertible {
    package let offset: Int
    package let expected: String
    package var description: String { IOError.oneLine("invalid JSON at byte \(offset): expected \(expected)") }
}

/// A recursive-descent JSON parser over bytes, depth-limited.
private struct JSONParser {
    let bytes: UnsafeBufferPointer<UInt8>
    let maximumDepth: Int
    var at = 0

    init(bytes: UnsafeBufferPointer<UInt8>, maximumDepth: Int) {
        self.bytes = bytes
        self.maximumDepth = maximumDepth
    }

    func error(_ expected: String) -> JSONSyntaxError { JSONSyntaxError(offset: at, expected: expected) }

    var peek: UInt8? { at < bytes.count ? bytes[at] : nil }

    mutating func skipSpace() {
        while let c = peek, c == 0x20 || c == 0x09 || c == 0x0A || c == 0x0D { at += 1 }
    }

    mutating func expect(_ c: UInt8, _ what: String) throws {
        guard peek == c else { throw error(what) }
        at += 1
    }

    mutating func literal(_ word: String, _ v: JSONValue) throws -> JSONValue {
        for c in word.utf8 { try expect(c, "'\(word)'") }
        return v
    }

    mutating func value(depth: Int) throws -> JSONValue {
        guard let c = peek else { throw error("a value") }
        switch c {
        case UInt8(ascii: "{"), UInt8(ascii: "["):
            guard depth < maximumDepth else { throw error("at most \(maximumDepth) nested arrays and objects") }
            return c == UInt8(ascii: "{") ? try object(depth: depth + 1) : try array(depth: depth + 1)
        case UInt8(ascii: "\""): return .string(try string())
        case UInt8(ascii: "t"): return try literal("true", .bool(true))
        case UInt8(ascii: "f"): return try literal("false", .bool(false))
        case UInt8(ascii: "n"): return try literal("null", .null)
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return try number()
        default: throw error("a value")
        }
    }

    mutating func object(depth: Int) throws -> JSONValue {
        at += 1   // {
        var members: [(key: String, value: JSONValue)] = []
        var keys = Set<String>()
        skipSpace()
        if peek == UInt8(ascii: "}") { at += 1; return .object(members) }
        while true {
            skipSpace()
            let keyAt = at
            guard peek == UInt8(ascii: "\"") else { throw error("a string key") }
            let key = try string()
            guard keys.insert(key).inserted else {
                throw JSONSyntaxError(offset: keyAt, expected: "distinct keys in an object ('\(key)' appears twice)")
            }
            skipSpace()
            try expect(UInt8(ascii: ":"), "':'")
            skipSpace()
            members.append((key, try value(depth: depth)))
            skipSpace()
            if peek == UInt8(ascii: ",") { at += 1; continue }
            try expect(UInt8(ascii: "}"), "',' or '}'")
            return .object(members)
        }
    }

    mutating func array(depth: Int) throws -> JSONValue {
        at += 1   // [
        var items: [JSONValue] = []
        skipSpace()
        if peek == UInt8(ascii: "]") { at += 1; return .array(items) }
        while true {
            skipSpace()
            items.append(try value(depth: depth))
            skipSpace()
            if peek == UInt8(ascii: ",") { at += 1; continue }
            try expect(UInt8(ascii: "]"), "',' or ']'")
            return .array(items)
        }
    }

    mutating func digits() -> Int {
        let start = at
        while let c = peek, c >= UInt8(ascii: "0"), c <= UInt8(ascii: "9") { at += 1 }
        return at - start
    }

    mutating func number() throws -> JSONValue {
        let start = at
        if peek == UInt8(ascii: "-") { at += 1 }
        if peek == UInt8(ascii: "0") { at += 1 } else {
            guard digits() > 0 else { throw error("a digit") }
        }
        if peek == UInt8(ascii: ".") {
            at += 1
            guard digits() > 0 else { throw error("a digit after '.'") }
        }
        if peek == UInt8(ascii: "e") || peek == UInt8(ascii: "E") {
            at += 1
            if peek == UInt8(ascii: "+") || peek == UInt8(ascii: "-") { at += 1 }
            guard digits() > 0 else { throw error("a digit in the exponent") }
        }
        return .number(String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<at]), as: UTF8.self))
    }

    mutating func hex4() throws -> UInt32 {
        var v: UInt32 = 0
        for _ in 0..<4 {
            guard let c = peek else { throw error("4 hex digits after '\\u'") }
            let d: UInt8
            switch c {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): d = c - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): d = c - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): d = c - UInt8(ascii: "A") + 10
            default: throw error("4 hex digits after '\\u'")
            }
            v = v << 4 | UInt32(d)
            at += 1
        }
        return v
    }

    mutating func string() throws -> String {
        at += 1   // opening quote
        var out: [UInt8] = []
        while true {
            guard let c = peek else { throw error("'\"' closing the string") }
            switch c {
            case UInt8(ascii: "\""):
                at += 1
                guard let s = String(validating: out, as: UTF8.self) else {
                    throw error("valid UTF-8 in the string before this point")
                }
                return s
            case UInt8(ascii: "\\"):
                at += 1
                guard let e = peek else { throw error("an escape after '\\'") }
                at += 1
                switch e {
                case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): out.append(e)
                case UInt8(ascii: "b"): out.append(0x08)
                case UInt8(ascii: "f"): out.append(0x0C)
                case UInt8(ascii: "n"): out.append(0x0A)
                case UInt8(ascii: "r"): out.append(0x0D)
                case UInt8(ascii: "t"): out.append(0x09)
                case UInt8(ascii: "u"):
                    var scalar = try hex4()
                    if (0xD800..<0xDC00).contains(scalar) {
                        try expect(UInt8(ascii: "\\"), "a low surrogate '\\uDC00'...'\\uDFFF'")
                        try expect(UInt8(ascii: "u"), "a low surrogate '\\uDC00'...'\\uDFFF'")
                        let low = try hex4()
                        guard (0xDC00..<0xE000).contains(low) else { throw error("a low surrogate '\\uDC00'...'\\uDFFF'") }
                        scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                    }
                    guard let u = Unicode.Scalar(scalar) else { throw error("a Unicode scalar, not a lone surrogate") }
                    out += Array(String(Character(u)).utf8)
                default:
                    at -= 1
                    throw error("one of the escapes \\\" \\\\ \\/ \\b \\f \\n \\r \\t \\u")
                }
            case 0..<0x20:
                throw error("no control characters inside a string")
            default:
                out.append(c)
                at += 1
            }
        }
    }
}
