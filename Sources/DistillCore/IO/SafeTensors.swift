/// The safetensors format (Hugging Face): an 8-byte little-endian header length, a JSON
/// header mapping names to {dtype, shape, data_offsets} plus optional string
/// `__metadata__`, then the tensor bytes, which must be covered exactly, without holes or
/// overlaps.
///
/// Reading converts F16, BF16, F32, F64, integer and BOOL tensors to Float32 and rejects
/// malformed files with a clear error; writing produces F32 tensors that Python's
/// `safetensors` reads, atomically (temporary file, then rename).
public enum SafeTensors {
    /// The largest header accepted (the reference implementation's limit).
    package static let maxHeaderBytes = 100_000_000

    /// A file's tensors and metadata.
    public struct Contents {
        /// The tensors by name.
        public var tensors: [String: Tensor]
        /// The header's `__metadata__` strings.
        public var metadata: [String: String]

        /// Contents to write.
        public init(tensors: [String: Tensor], metadata: [String: String] = [:]) {
            self.tensors = tensors
            self.metadata = metadata
        }
    }

    static let dtypes: [String: DType] = ["F16": .float16, "BF16": .bfloat16, "F32": .float32, "F64": .float64,
                                          "I8": .int8, "I16": .int16, "I32": .int32, "I64": .int64, "U8": .uint8,
                                          "U16": .uint16, "U32": .uint32, "U64": .uint64, "BOOL": .bool]

    /// Reads a safetensors file.
    public static func read(_ path: String) throws -> Contents {
        try decode(FileIO.read(path), path: path)
    }

    /// Parses safetensors bytes (`path` names the source in errors).
    ///
    /// Checked before anything is allocated: the header length (at most
    /// ``maxHeaderBytes``, inside the file), the header JSON (strict: no repeated names),
    /// each tensor's dtype, shape (0...2³¹−1 per dimension) and data offsets (inside the
    /// data section, matching shape × dtype size, overflow-checked), and that the tensors
    /// cover the data section exactly, without gaps or overlaps.
    package static func decode(_ bytes: [UInt8], path: String) throws -> Contents {
        func corrupt(_ detail: String) -> IOError { .corrupt(path: path, detail: detail) }
        guard bytes.count >= 8 else { throw IOError.truncated(path: path, detail: "\(bytes.count) bytes; a safetensors file starts with an 8-byte header length") }
        let n64 = try ByteReader(bytes: bytes, path: path).uint(at: 0, size: 8)
        guard n64 <= UInt64(maxHeaderBytes) else {
            throw corrupt("header length \(n64) exceeds the \(maxHeaderBytes)-byte limit")
        }
        let n = Int(n64)
        guard 8 + n <= bytes.count else {
            throw IOError.truncated(path: path, detail: "header of \(n) bytes runs past the end of the \(bytes.count)-byte file")
        }
        guard n >= 2, bytes[8] == UInt8(ascii: "{") else { throw corrupt("the header is not a JSON object") }
        let json: JSONValue
        do { json = try JSONValue.parse(bytes[8..<(8 + n)]) } catch let e as JSONSyntaxError {
            throw corrupt("header: \(e)")
        }
        guard case let .object(members) = json else { throw corrupt("the header is not a JSON object") }
        let dataStart = 8 + n, dataLen = bytes.count - dataStart
        var metadata: [String: String] = [:]
        var entries: [(name: String, dtype: DType, shape: [Int], begin: Int, end: Int)] = []
        var total = 0
        for (name, value) in members {
            if name == "__metadata__" {
                guard case let .object(m) = value else { throw corrupt("__metadata__ is \(value.kind); expected an object of strings") }
                for (k, v) in m {
                    guard case let .string(s) = v else { throw corrupt("metadata '\(k)' is \(v.kind); expected a string") }
                    metadata[k] = s
                }
                continue
            }
            let entry = try tensorEntry(name, value, dataLen: dataLen, path: path)
            total += entry.count   // each count <= dataLen, so the sum cannot overflow
            entries.append((name, entry.dtype, entry.shape, entry.begin, entry.end))
        }
        // The data section must be covered exactly: sorted by offset, each starts where the last ended.
        var at = 0
        for e in entries.sorted(by: { ($0.begin, $0.end) < ($1.begin, $1.end) }) {
            guard e.begin == at else {
                throw corrupt(e.begin < at ? "tensor '\(e.name)' overlaps another" : "a gap before tensor '\(e.name)'")
            }
            at = e.end
        }
        guard at == dataLen else { throw corrupt("\(dataLen - at) bytes after the last tensor") }
        try FileIO.checkDecodedSize(elements: total, path: path)
        var tensors: [String: Tensor] = [:]
        for e in entries {
            let t = Tensor(uninitialized: e.shape)
            e.dtype.decode(bytes, offset: dataStart + e.begin, count: t.count, bigEndian: false, into: t.pointer)
            tensors[e.name] = t
        }
        return Contents(tensors: tensors, metadata: metadata)
    }

    /// One tensor's header entry `{"dtype": .., "shape": [..], "data_offsets": [begin, end]}`,
    /// checked against a data section of `dataLen` bytes.
    static func tensorEntry(_ name: String, _ value: JSONValue, dataLen: Int,
                            path: String) throws -> (dtype: DType, shape: [Int], count: Int, begin: Int, end: Int) {
        func corrupt(_ detail: String) -> IOError { .corrupt(path: path, detail: "tensor '\(name)': \(detail)") }
        guard !name.isEmpty else { throw IOError.corrupt(path: path, detail: "a tensor has an empty name") }
        guard let info = value.fields else { throw corrupt("its entry is \(value.kind); expected an object") }
        guard Set(info.keys) == ["dtype", "shape", "data_offsets"] else {
            throw corrupt("has the fields \(info.keys.sorted()); expected exactly dtype, shape, data_offsets")
        }
        guard case let .string(dt)? = info["dtype"] else { throw corrupt("dtype is not a string") }
        guard let dtype = dtypes[dt] else {
            throw IOError.unsupported(path: path, detail: "tensor '\(name)' has dtype \(dt) (expected one of \(dtypes.keys.sorted().joined(separator: ", ")))")
        }
        guard case let .array(dims)? = info["shape"], case let .array(offsets)? = info["data_offsets"], offsets.count == 2 else {
            throw corrupt("expected a shape array and two data_offsets")
        }
        let shape = try dims.map { d -> Int in
            guard let i = d.integer, i >= 0 else { throw corrupt("shape has \(d.kind) \(d.excerpt()); expected non-negative integers") }
            return i
        }
        guard let count = Shape.checkedCount(shape, elementSize: max(dtype.size, MemoryLayout<Float>.stride)) else {
            throw corrupt("shape \(shape); expected \(Shape.validShapeDescription)")
        }
        guard let b = offsets[0].integer, let e = offsets[1].integer, 0 <= b, b <= e, e <= dataLen else {
            throw corrupt("data_offsets \(offsets.map { $0.excerpt() }); expected integers 0 <= begin <= end <= \(dataLen), the size of the data section")
        }
        guard count * dtype.size == e - b else {   // no overflow: checked above
            throw corrupt("shape \(shape) of \(dt) needs \(count * dtype.size) bytes; its data_offsets [\(b), \(e)] hold \(e - b)")
        }
        return (dtype, shape, count, b, e)
    }

    /// Writes tensors (as F32, in name order) and string metadata, atomically. The bytes
    /// depend only on the contents: header keys and metadata keys are sorted (by UTF-8
    /// bytes) and the header JSON is compact, padded with spaces to 8 bytes.
    public static func write(_ contents: Contents, to path: String) throws {
        let names = contents.tensors.keys.sorted(by: utf8Order)
        var header: [(key: String, value: JSONValue)] = []
        var at = 0
        for name in names {
            let t = contents.tensors[name]!
            let int = { (i: Int) in JSONValue.number(String(i)) }
            header.append((name, .object([("dtype", .string("F32")), ("shape", .array(t.shape.map(int))),
                                          ("data_offsets", .array([int(at), int(at + 4 * t.count)]))])))
            at += 4 * t.count
        }
        if !contents.metadata.isEmpty {
            let meta = contents.metadata.keys.sorted(by: utf8Order).map { (key: $0, value: JSONValue.string(contents.metadata[$0]!)) }
            header.append(("__metadata__", .object(meta)))
        }
        header.sort { utf8Order($0.key, $1.key) }
        var json = JSONValue.object(header).serialized
        json += [UInt8](repeating: UInt8(ascii: " "), count: (8 - json.count % 8) % 8)
        var len = UInt64(json.count).littleEndian
        let lenBytes = withUnsafeBytes(of: &len) { Array($0) }
        let prefix = lenBytes + json
        let tensors = names.map { contents.tensors[$0]! }
        try prefix.withUnsafeBytes { p in
            let pieces = [p] + tensors.map { UnsafeRawBufferPointer(start: $0.pointer, count: 4 * $0.count) }
            try FileIO.writeAtomically(path, pieces)
        }
    }

    /// Orders strings by their UTF-8 bytes (not by Unicode canonical equivalence, under
    /// which distinct strings can compare equal).
    static func utf8Order(_ a: String, _ b: String) -> Bool { a.utf8.lexicographicallyPrecedes(b.utf8) }
}
