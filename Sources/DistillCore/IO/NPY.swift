/// NumPy's `.npy` format (format versions 1.0, 2.0 and 3.0).
///
/// Reading accepts every integer, float and bool dtype in either byte order and Fortran
/// order, converting to Float32; writing produces version 1.0 little-endian float32 that
/// `numpy.load` reads.
public enum NPY {
    static let magic: [UInt8] = [0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59]   // \x93NUMPY

    /// Reads an `.npy` file as a Float32 tensor.
    public static func read(_ path: String) throws -> Tensor {
        try decode(FileIO.read(path), path: path)
    }

    /// Writes `tensor` as a float32 `.npy` file, atomically.
    public static func write(_ tensor: Tensor, to path: String) throws {
        let header = headerBytes(shape: tensor.shape)
        try header.withUnsafeBytes { h in
            try tensor.withUnsafeBufferPointer { d in
                try FileIO.writeAtomically(path, [h, UnsafeRawBufferPointer(d)])
            }
        }
    }

    static func headerBytes(shape: [Int]) -> [UInt8] {
        let dims = shape.map(String.init).joined(separator: ", ") + (shape.count == 1 ? "," : "")
        var dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (\(dims)), }"
        let unpadded = magic.count + 2 + 2 + dict.utf8.count + 1
        dict += String(repeating: " ", count: (64 - unpadded % 64) % 64) + "\n"
        let len = dict.utf8.count
        return magic + [1, 0, UInt8(len & 0xFF), UInt8(len >> 8)] + Array(dict.utf8)
    }

    /// The largest header accepted (NumPy's own reader stops at 10 000 bytes by default).
    static let maxHeaderBytes = 1 << 20

    /// Parses `.npy` bytes (`path` names the source in errors).
    ///
    /// Every size in the header is checked before anything is allocated: the header
    /// length against the file, the header dict (exactly 'descr', 'fortran_order' and
    /// 'shape'), each dimension (0...2³¹−1, at most 64), the element count and byte count
    /// (overflow-checked) against the data bytes present, which must match exactly.
    package static func decode(_ bytes: [UInt8], path: String) throws -> Tensor {
        let r = ByteReader(bytes: bytes, path: path)
        guard bytes.count >= 10 else { throw IOError.truncated(path: path, detail: "\(bytes.count) bytes is shorter than an .npy header") }
        guard Array(bytes[0..<6]) == magic else { throw IOError.corrupt(path: path, detail: "not an .npy file (bad magic bytes)") }
        let major = bytes[6]
        let (lenSize, start): (Int, Int)
        switch major {
        case 1: (lenSize, start) = (2, 10)
        case 2, 3: (lenSize, start) = (4, 12)
        default: throw IOError.unsupported(path: path, detail: ".npy format version \(major).\(bytes[7]); expected 1.0, 2.0 or 3.0")
        }
        let headerLen = Int(try r.uint(at: 8, size: lenSize))
        guard headerLen <= maxHeaderBytes else {
            throw IOError.corrupt(path: path, detail: "header length \(headerLen) exceeds the \(maxHeaderBytes)-byte limit")
        }
        guard start + headerLen <= bytes.count else {
            throw IOError.truncated(path: path, detail: "header of \(headerLen) bytes runs past the end of the \(bytes.count)-byte file")
        }
        // Versions 1 and 2 store the header in Latin-1, version 3 in UTF-8.
        let headerBytes = bytes[start..<(start + headerLen)]
        let header = major == 3 ? String(validating: headerBytes, as: UTF8.self)
                                : String(headerBytes.map { Character(Unicode.Scalar($0)) })
        guard let header else { throw IOError.corrupt(path: path, detail: "header is not UTF-8 text") }
        let (dtype, bigEndian, fortran, shape) = try parseHeader(header, path: path)
        let dataStart = start + headerLen, have = bytes.count - dataStart
        guard let count = Shape.checkedCount(shape, elementSize: max(dtype.size, MemoryLayout<Float>.stride)) else {
            throw IOError.corrupt(path: path, detail: "shape \(shape); expected \(Shape.validShapeDescription)")
        }
        let need = count * dtype.size   // cannot overflow: checked above
        guard have >= need else {
            throw IOError.truncated(path: path, detail: "shape \(shape) of \(dtype) needs \(need) data bytes, the file has \(have)")
        }
        guard have == need else {
            throw IOError.corrupt(path: path, detail: "\(have - need) bytes after the \(need) data bytes that shape \(shape) describes")
        }
        try FileIO.checkDecodedSize(elements: count, path: path)
        let t = Tensor(uninitialized: fortran ? shape.reversed() : shape)
        dtype.decode(bytes, offset: dataStart, count: count, bigEndian: bigEndian, into: t.pointer)
        // Fortran order: the data is the C-order array of the reversed shape, transposed.
        return fortran && shape.count > 1 ? try t.permuted(Array((0..<shape.count).reversed())) : t
    }

    /// Parses the header: a Python dict literal with exactly the keys 'descr' (a dtype
    /// string), 'fortran_order' (True or False) and 'shape' (a tuple of integers).
    static func parseHeader(_ h: String, path: String) throws -> (DType, Bool, Bool, [Int]) {
        func bad(_ what: String) -> IOError { .corrupt(path: path, detail: "header \(what); expected a dict like {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }") }
        var p = PythonLiteralScanner(text: Array(h.unicodeScalars))
        var entries: [String: PythonLiteralScanner.Value] = [:]
        try p.expect("{", or: bad("does not start with '{'"))
        while !p.take("}") {
            guard case let .string(key)? = p.value() else { throw bad("has a key that is not a string") }
            try p.expect(":", or: bad("has no ':' after '\(key)'"))
            guard let v = p.value() else { throw bad("has a bad value for '\(key)'") }
            guard entries.updateValue(v, forKey: key) == nil else { throw bad("repeats '\(key)'") }
            if !p.take(",") { try p.expect("}", or: bad("has no ',' or '}' after '\(key)'")); break }
        }
        guard p.atEnd(allowing: " \n\0") else { throw bad("has text after the dict") }
        guard Set(entries.keys) == ["descr", "fortran_order", "shape"] else {
            throw bad("has the keys \(entries.keys.sorted()) instead of exactly descr, fortran_order, shape")
        }
        guard case let .string(descr)? = entries["descr"] else { throw bad("has a 'descr' that is not a string (structured dtypes are not supported)") }
        guard case let .bool(fortran)? = entries["fortran_order"] else { throw bad("has a 'fortran_order' that is not True or False") }
        guard case let .tuple(dims)? = entries["shape"] else { throw bad("has a 'shape' that is not a tuple") }
        let shape = try dims.map { d -> Int in
            guard let n = Int(d), n >= 0 else { throw bad("has the dimension '\(d)' in 'shape'; each must be a non-negative integer") }
            return n
        }
        let table: [String: DType] = ["f2": .float16, "f4": .float32, "f8": .float64, "i1": .int8, "i2": .int16,
                                      "i4": .int32, "i8": .int64, "u1": .uint8, "u2": .uint16, "u4": .uint32,
                                      "u8": .uint64, "b1": .bool]
        guard let order = descr.first, "<>|=".contains(order), let dtype = table[String(descr.dropFirst())] else {
            throw IOError.unsupported(path: path, detail: "dtype '\(descr)'; expected a float, integer or bool type such as '<f4'")
        }
        return (dtype, order == ">", fortran, shape)
    }
}

/// Scans the Python literals of an `.npy` header: 'strings' or "strings", True, False,
/// and tuples of integers (a trailing comma and Python 2's `L` suffix allowed).
struct PythonLiteralScanner {
    enum Value { case string(String), bool(Bool), tuple([String]) }

    let text: [Unicode.Scalar]
    var at = 0

    mutating func skipSpace() {
        while at < text.count, text[at] == " " || text[at] == "\t" || text[at] == "\n" { at += 1 }
    }

    /// Consumes `c` (after white space) when it is next.
    mutating func take(_ c: Unicode.Scalar) -> Bool {
        skipSpace()
        guard at < text.count, text[at] == c else { return false }
        at += 1
        return true
    }

    mutating func expect(_ c: Unicode.Scalar, or error: IOError) throws {
        guard take(c) else { throw error }
    }

    /// True when only characters of `trailing` are left.
    func atEnd(allowing trailing: String) -> Bool {
        text[at...].allSatisfy { trailing.unicodeScalars.contains($0) }
    }

    mutating func word() -> String {
        skipSpace()
        var w = ""
        while at < text.count, text[at].properties.isAlphabetic || ("0"..."9").contains(text[at]) || text[at] == "-" || text[at] == "+" {
            w.unicodeScalars.append(text[at])
            at += 1
        }
        return w
    }

    mutating func value() -> Value? {
        skipSpace()
        guard at < text.count else { return nil }
        let c = text[at]
        if c == "'" || c == "\"" {
            guard let end = text[(at + 1)...].firstIndex(of: c) else { return nil }
            var s = ""
            s.unicodeScalars.append(contentsOf: text[(at + 1)..<end])
            at = end + 1
            return .string(s)
        }
        if c == "(" {
            at += 1
            var dims: [String] = []
            while !take(")") {
                var d = word()
                if d.hasSuffix("L") { d.removeLast() }
                guard !d.isEmpty else { return nil }
                dims.append(d)
                if !take(",") { guard take(")") else { return nil }; break }
            }
            return .tuple(dims)
        }
        switch word() {
        case "True": return .bool(true)
        case "False": return .bool(false)
        default: return nil
        }
    }
}
