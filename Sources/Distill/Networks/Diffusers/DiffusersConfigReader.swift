import DistillCore

/// Typed access to the fields of a diffusers `config.json`: every getter checks the kind and
/// range of its field and throws a ``DiffusersError`` naming the file and the field. A field
/// that is absent (or `null`, where diffusers' default is not `None`) takes the default
/// given, as diffusers' `from_config` does; a getter without a default makes it required.
struct DiffusersConfigReader {
    let file: String
    let fields: [String: JSONValue]

    /// Parses `bytes` (the text of `file`) as a JSON object.
    init(bytes: [UInt8], file: String) throws {
        let json: JSONValue
        do { json = try JSONValue.parse(bytes[...]) } catch let e as JSONSyntaxError {
            throw IOError.corrupt(path: file, detail: "\(e)")
        }
        guard let fields = json.fields else {
            throw IOError.corrupt(path: file, detail: "the config is \(json.kind); expected a JSON object")
        }
        self.file = file
        self.fields = fields
    }

    func invalid(_ key: String, _ expected: String) -> DiffusersError {
        let found: String
        switch fields[key] {
        case nil: found = "absent"
        case .null?: found = "null"
        case let v?: found = "\(v.kind) \(v.excerpt())"
        }
        return .invalidField(file: file, field: key, found: found, expected: expected)
    }

    func unsupported(_ key: String, _ supported: String) -> DiffusersError {
        .unsupported(file: file, field: key, found: fields[key]?.excerpt() ?? "absent", supported: supported)
    }

    /// The value, nil when absent or null; throws when absent and there is no default.
    private func value(_ key: String, required: Bool, expected: String) throws -> JSONValue? {
        switch fields[key] {
        case nil where required: throw DiffusersError.missingField(file: file, field: key, expected: expected)
        case nil, .null?: return nil
        case let v?: return v
        }
    }

    /// An integer in `range`; `default` nil makes the field required.
    func int(_ key: String, in range: ClosedRange<Int>, default def: Int? = nil) throws -> Int {
        let expected = "an integer in \(range.lowerBound)...\(range.upperBound)"
        guard let v = try value(key, required: def == nil, expected: expected) else {
            guard let def else { throw invalid(key, expected) }
            return def
        }
        guard let i = v.integer, range.contains(i) else { throw invalid(key, expected) }
        return i
    }

    /// An integer in `range` or null (nil); absent means null.
    func optionalInt(_ key: String, in range: ClosedRange<Int>) throws -> Int? {
        switch fields[key] {
        case nil, .null?: return nil
        default: return try int(key, in: range)
        }
    }

    /// A finite number satisfying `valid` (described by `expected`).
    func number(_ key: String, default def: Double, expected: String, _ valid: (Double) -> Bool) throws -> Double {
        guard let v = try value(key, required: false, expected: expected) else { return def }
        guard let d = v.double, d.isFinite, valid(d) else { throw invalid(key, "a number, \(expected)") }
        return d
    }

    func bool(_ key: String, default def: Bool) throws -> Bool {
        guard let v = try value(key, required: false, expected: "true or false") else { return def }
        guard case let .bool(b) = v else { throw invalid(key, "true or false") }
        return b
    }

    /// A string, nil when null; `default` is used when absent.
    func string(_ key: String, default def: String?) throws -> String? {
        guard let v = fields[key] else { return def }
        switch v {
        case .null: return nil
        case let .string(s): return s
        default: throw invalid(key, "a string or null")
        }
    }

    /// A required non-empty array whose items `item` converts (nil: invalid item).
    func array<T>(_ key: String, expected: String, _ item: (JSONValue) -> T?) throws -> [T] {
        guard case let .array(items)? = try value(key, required: true, expected: expected), !items.isEmpty, items.count <= 64 else {
            throw invalid(key, expected)
        }
        return try items.map { v in
            guard let t = item(v) else { throw invalid(key, expected) }
            return t
        }
    }
}
