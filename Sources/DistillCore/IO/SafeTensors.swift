import Foundation

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
    public static let maxHeaderBytes = 100_000_000

    /// A file's tensors and metadata.
    public struct Contents {
        public var tensors: [String: Tensor]
        public var metadata: [String: String]

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
    public static func decode(_ bytes: [UInt8], path: String) throws -> Contents {
        let r = ByteReader(bytes: bytes, path: path)
        guard bytes.count >= 8 else { throw IOError.truncated(path: path, detail: "\(bytes.count) bytes; a safetensors file starts with an 8-byte header length") }
        let n64 = try r.uint(at: 0, size: 8)
        guard n64 <= UInt64(maxHeaderBytes) else {
            throw IOError.corrupt(path: path, detail: "header length \(n64) exceeds the \(maxHeaderBytes)-byte limit")
        }
        let n = Int(n64)
        guard 8 + n <= bytes.count else {
            throw IOError.truncated(path: path, detail: "header of \(n) bytes runs past the end of the \(bytes.count)-byte file")
        }
        guard n >= 2, bytes[8] == UInt8(ascii: "{") else {
            throw IOError.corrupt(path: path, detail: "the header is not a JSON object")
        }
        let json: Any
        do { json = try JSONSerialization.jsonObject(with: Data(bytes[8..<(8 + n)])) } catch {
            throw IOError.corrupt(path: path, detail: "the header is not valid JSON")
        }
        guard let header = json as? [String: Any] else { throw IOError.corrupt(path: path, detail: "the header is not a JSON object") }
        let dataStart = 8 + n, dataLen = bytes.count - dataStart
        var metadata: [String: String] = [:]
        var entries: [(name: String, dtype: DType, shape: [Int], begin: Int, end: Int)] = []
        for (name, value) in header {
            if name == "__metadata__" {
                guard let m = value as? [String: Any] else { throw IOError.corrupt(path: path, detail: "__metadata__ is not an object") }
                for (k, v) in m {
                    guard let s = v as? String else { throw IOError.corrupt(path: path, detail: "metadata '\(k)' is not a string") }
                    metadata[k] = s
                }
                continue
            }
            guard let info = value as? [String: Any], let dt = info["dtype"] as? String,
                  let shapeAny = info["shape"] as? [Any], let offsAny = info["data_offsets"] as? [Any], offsAny.count == 2 else {
                throw IOError.corrupt(path: path, detail: "tensor '\(name)' needs dtype, shape and two data_offsets")
            }
            guard let dtype = dtypes[dt] else {
                throw IOError.unsupported(path: path, detail: "tensor '\(name)' has dtype \(dt) (expected one of \(dtypes.keys.sorted().joined(separator: ", ")))")
            }
            let shape = try shapeAny.map { v -> Int in
                guard let d = integer(v), d >= 0 else { throw IOError.corrupt(path: path, detail: "tensor '\(name)' has a bad shape") }
                return d
            }
            guard let b = integer(offsAny[0]), let e = integer(offsAny[1]), 0 <= b, b <= e, e <= dataLen else {
                throw IOError.corrupt(path: path, detail: "tensor '\(name)' has data offsets outside the \(dataLen)-byte data section")
            }
            let (count, overflow) = shape.reduce((1, false)) { acc, d in
                let (m, o) = acc.0.multipliedReportingOverflow(by: d)
                return (m, acc.1 || o)
            }
            guard !overflow, count.multipliedReportingOverflow(by: dtype.size).partialValue == e - b else {
                throw IOError.corrupt(path: path, detail: "tensor '\(name)': shape \(shape) of \(dt) needs a different byte count than its offsets [\(b), \(e)] give")
            }
            entries.append((name, dtype, shape, b, e))
        }
        // The data section must be covered exactly: sorted by offset, each starts where the last ended.
        var at = 0
        for e in entries.sorted(by: { ($0.begin, $0.end) < ($1.begin, $1.end) }) {
            guard e.begin == at else {
                throw IOError.corrupt(path: path, detail: e.begin < at ? "tensor '\(e.name)' overlaps another" : "a gap before tensor '\(e.name)'")
            }
            at = e.end
        }
        guard at == dataLen else { throw IOError.corrupt(path: path, detail: "\(dataLen - at) bytes after the last tensor") }
        var tensors: [String: Tensor] = [:]
        for e in entries {
            let t = Tensor(uninitialized: e.shape)
            e.dtype.decode(bytes, offset: dataStart + e.begin, count: t.count, bigEndian: false, into: t.pointer)
            tensors[e.name] = t
        }
        return Contents(tensors: tensors, metadata: metadata)
    }

    static func integer(_ v: Any) -> Int? {
        if let i = v as? Int { return i }
        if let d = v as? Double, d == d.rounded(), abs(d) < 9e15 { return Int(d) }
        return nil
    }

    /// Writes tensors (as F32, in name order) and string metadata, atomically.
    public static func write(_ contents: Contents, to path: String) throws {
        let names = contents.tensors.keys.sorted()
        var header: [String: Any] = [:]
        var at = 0
        for name in names {
            let t = contents.tensors[name]!
            header[name] = ["dtype": "F32", "shape": t.shape, "data_offsets": [at, at + 4 * t.count]] as [String: Any]
            at += 4 * t.count
        }
        if !contents.metadata.isEmpty { header["__metadata__"] = contents.metadata }
        var json = Array(try JSONSerialization.data(withJSONObject: header, options: [.sortedKeys]))
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
}
