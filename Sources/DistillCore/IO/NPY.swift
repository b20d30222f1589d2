import Foundation

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

    /// Parses `.npy` bytes (`path` names the source in errors).
    public static func decode(_ bytes: [UInt8], path: String) throws -> Tensor {
        let r = ByteReader(bytes: bytes, path: path)
        guard bytes.count >= 10 else { throw IOError.truncated(path: path, detail: "\(bytes.count) bytes is shorter than an .npy header") }
        guard Array(bytes[0..<6]) == magic else { throw IOError.corrupt(path: path, detail: "not an .npy file (bad magic bytes)") }
        let major = bytes[6]
        let (lenSize, start): (Int, Int)
        switch major {
        case 1: (lenSize, start) = (2, 10)
        case 2, 3: (lenSize, start) = (4, 12)
        default: throw IOError.unsupported(path: path, detail: ".npy format version \(major).\(bytes[7])")
        }
        let headerLen = Int(try r.uint(at: 8, size: lenSize))
        guard start + headerLen <= bytes.count else {
            throw IOError.truncated(path: path, detail: "header of \(headerLen) bytes runs past the end of the file")
        }
        guard let header = String(bytes: bytes[start..<(start + headerLen)], encoding: .utf8) else {
            throw IOError.corrupt(path: path, detail: "header is not text")
        }
        let (dtype, bigEndian, fortran, shape) = try parseHeader(header, path: path)
        let count = Shape.count(shape)
        let dataStart = start + headerLen
        let need = count * dtype.size
        guard bytes.count - dataStart >= need else {
            throw IOError.truncated(path: path, detail: "shape \(shape) needs \(need) data bytes, the file has \(bytes.count - dataStart)")
        }
        guard bytes.count - dataStart == need else {
            throw IOError.corrupt(path: path, detail: "\(bytes.count - dataStart - need) bytes after the data")
        }
        let t = Tensor(uninitialized: fortran ? shape.reversed() : shape)
        dtype.decode(bytes, offset: dataStart, count: count, bigEndian: bigEndian, into: t.pointer)
        // Fortran order: the data is the C-order array of the reversed shape, transposed.
        return fortran && shape.count > 1 ? try t.permuted(Array((0..<shape.count).reversed())) : t
    }

    static func parseHeader(_ h: String, path: String) throws -> (DType, Bool, Bool, [Int]) {
        func value(_ key: String) throws -> Substring {
            guard let k = h.range(of: "'\(key)'") ?? h.range(of: "\"\(key)\""),
                  let colon = h[k.upperBound...].firstIndex(of: ":") else {
                throw IOError.corrupt(path: path, detail: "header has no '\(key)' entry")
            }
            return h[h.index(after: colon)...].drop(while: { $0 == " " })
        }
        let d = try value("descr")
        guard let q = d.first, q == "'" || q == "\"", let end = d.dropFirst().firstIndex(of: q) else {
            throw IOError.corrupt(path: path, detail: "bad 'descr' entry")
        }
        let descr = String(d[d.index(after: d.startIndex)..<end])
        let f = try value("fortran_order")
        let fortran: Bool
        if f.hasPrefix("True") { fortran = true } else if f.hasPrefix("False") { fortran = false } else {
            throw IOError.corrupt(path: path, detail: "bad 'fortran_order' entry")
        }
        let s = try value("shape")
        guard s.first == "(", let close = s.firstIndex(of: ")") else { throw IOError.corrupt(path: path, detail: "bad 'shape' entry") }
        var shape: [Int] = []
        for part in s[s.index(after: s.startIndex)..<close].split(separator: ",") {
            let trimmed = part.trimmingCharacters(in: .whitespaces)
            if trimmed.isEmpty { continue }
            guard let n = Int(trimmed.hasSuffix("L") ? String(trimmed.dropLast()) : trimmed), n >= 0 else {
                throw IOError.corrupt(path: path, detail: "bad dimension '\(trimmed)' in 'shape'")
            }
            shape.append(n)
        }
        guard descr.count >= 3 else { throw IOError.unsupported(path: path, detail: "dtype '\(descr)'") }
        let order = descr.first!, code = descr.dropFirst()
        let bigEndian = order == ">"
        guard "<>|=".contains(order) else { throw IOError.unsupported(path: path, detail: "dtype '\(descr)'") }
        let table: [Substring: DType] = ["f2": .float16, "f4": .float32, "f8": .float64, "i1": .int8, "i2": .int16,
                                         "i4": .int32, "i8": .int64, "u1": .uint8, "u2": .uint16, "u4": .uint32,
                                         "u8": .uint64, "b1": .bool]
        guard let dtype = table[code] else {
            throw IOError.unsupported(path: path, detail: "dtype '\(descr)' (expected a float, integer or bool type)")
        }
        return (dtype, bigEndian, fortran, shape)
    }
}
