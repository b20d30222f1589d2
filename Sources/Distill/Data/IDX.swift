/// The IDX format of the MNIST files (LeCun et al. 1998), plain or gzip-compressed.
///
/// A file is a 4-byte magic number — two zero bytes, an element-type code, the number of
/// dimensions — then one big-endian 32-bit size per dimension, then the elements in
/// row-major order, big-endian. Every element type of the format is read and converted to
/// `Float`: unsigned byte (0x08), signed byte (0x09), 16-bit (0x0B) and 32-bit (0x0C)
/// integers, 32-bit (0x0D) and 64-bit (0x0E) floats. Malformed files are rejected with an
/// `IOError` naming the file.
package enum IDX {
    /// The element types of the format, by their code in the magic number.
    package enum ElementType: UInt8, Sendable, CaseIterable {
        /// Unsigned 8-bit integer (0x08), the type of the MNIST files.
        case unsignedByte = 0x08
        /// Signed 8-bit integer (0x09).
        case signedByte = 0x09
        /// Big-endian signed 16-bit integer (0x0B).
        case short = 0x0B
        /// Big-endian signed 32-bit integer (0x0C).
        case int = 0x0C
        /// Big-endian IEEE 754 32-bit float (0x0D).
        case float = 0x0D
        /// Big-endian IEEE 754 64-bit float (0x0E).
        case double = 0x0E

        /// Bytes per element.
        package var size: Int {
            switch self {
            case .unsignedByte, .signedByte: return 1
            case .short: return 2
            case .int, .float: return 4
            case .double: return 8
            }
        }
    }

    /// Reads an IDX file, gzip-compressed or not (detected from the first bytes).
    ///
    /// - Returns: the dimensions and the elements in row-major order, as `Float`.
    /// - Throws: `IOError` when the file cannot be read, is truncated or corrupt (bad
    ///   magic number, zero dimensions, a size that does not match the data), or holds an
    ///   unknown element type.
    package static func read(_ path: String) throws -> (shape: [Int], values: [Float]) {
        try decode(FileIO.read(path), path: path)
    }

    /// The largest data section accepted (4 GiB), checked as soon as the header is read,
    /// before the rest of a compressed file is inflated.
    package static let maximumDataBytes = 1 << 32

    /// Parses IDX bytes, gzip-compressed or not (`path` names the source in errors).
    ///
    /// The header's sizes are checked before the data is read or inflated: the element
    /// count and byte count (overflow-checked) against ``maximumDataBytes`` and this
    /// machine's memory; a compressed stream is inflated only up to the size the header
    /// declares, and must end right there.
    package static func decode(_ bytes: [UInt8], path: String) throws -> (shape: [Int], values: [Float]) {
        guard Gzip.isGzip(bytes) else {
            let header = try Header(bytes, path: path)
            try header.checkData(bytes.count, path: path, stream: "the file")
            return (header.shape, header.values(bytes))
        }
        let inflater = try Gzip.Inflater(bytes, path: path)
        var raw: [UInt8] = []
        try inflater.read(4, into: &raw)
        try inflater.read(Header.size(of: raw, path: path) - raw.count, into: &raw)
        let header = try Header(raw, path: path)
        let end = header.dataStart + header.count * header.type.size
        raw.reserveCapacity(min(end, Gzip.Inflater.maximumRatio * bytes.count))
        try inflater.read(end - raw.count, into: &raw)
        try inflater.read(1, into: &raw)   // past the end of the data: reads the checksum, or finds extra bytes
        try header.checkData(raw.count, path: path, stream: "the decompressed data")
        return (header.shape, header.values(raw))
    }

    /// An IDX header: element type, dimensions and where the data starts.
    struct Header {
        let type: ElementType
        let shape: [Int]
        let count: Int
        var dataStart: Int { 4 + 4 * shape.count }

        /// The header's length in bytes, from its first 4 bytes.
        static func size(of raw: [UInt8], path: String) throws -> Int {
            guard raw.count >= 4 else {
                throw IOError.truncated(path: path, detail: "\(raw.count) bytes is shorter than the 4-byte IDX magic number")
            }
            return 4 + 4 * Int(raw[3])
        }

        /// Reads and checks the header at the start of `raw`.
        init(_ raw: [UInt8], path: String) throws {
            let dataStart = try Self.size(of: raw, path: path)
            guard raw[0] == 0, raw[1] == 0 else {
                throw IOError.corrupt(path: path, detail: "not an IDX file: the magic number starts \(hex(raw[0])) \(hex(raw[1])); expected 00 00")
            }
            guard let type = ElementType(rawValue: raw[2]) else {
                throw IOError.unsupported(path: path, detail: "IDX element type 0x\(hex(raw[2])); expected one of 08, 09, 0B, 0C, 0D, 0E")
            }
            let rank = Int(raw[3])
            guard rank >= 1 else {
                throw IOError.corrupt(path: path, detail: "the IDX header declares 0 dimensions; expected at least 1")
            }
            guard raw.count >= dataStart else {
                throw IOError.truncated(path: path, detail: "the header needs \(dataStart) bytes for \(rank) dimensions, the file has \(raw.count)")
            }
            let shape = (0..<rank).map { d in
                raw[(4 + 4 * d)..<(8 + 4 * d)].reduce(0) { $0 << 8 | Int($1) }
            }
            guard let count = Shape.checkedCount(shape, elementSize: max(type.size, MemoryLayout<Float>.stride)),
                  count * type.size <= IDX.maximumDataBytes else {
                throw IOError.unsupported(path: path, detail: "dimensions \(shape) of \(type); expected at most \(Shape.maxRank) dimensions of sizes up to \(Shape.maxDimension) and at most \(IDX.maximumDataBytes) data bytes")
            }
            try FileIO.checkDecodedSize(elements: count, path: path)
            (self.type, self.shape, self.count) = (type, shape, count)
        }

        /// Throws unless `available` bytes (header included) are exactly header + data.
        func checkData(_ available: Int, path: String, stream: String) throws {
            let need = count * type.size, have = available - dataStart
            guard have >= need else {
                throw IOError.truncated(path: path, detail: "shape \(shape) of \(type) needs \(need) data bytes, \(stream) has \(have)")
            }
            guard have == need else {
                throw IOError.corrupt(path: path, detail: "\(stream) has bytes after the \(need) data bytes that shape \(shape) describes")
            }
        }

        /// The data of `raw` (checked by ``checkData(_:path:stream:)``) as `Float`s.
        func values(_ raw: [UInt8]) -> [Float] {
            var values = [Float](repeating: 0, count: count)
            let (type, count, dataStart) = (self.type, self.count, self.dataStart)
            raw.withUnsafeBufferPointer { src in
                values.withUnsafeMutableBufferPointer { dst in
                    let p = src.baseAddress! + dataStart
                    func word(_ i: Int, _ size: Int) -> UInt64 {
                        var v: UInt64 = 0
                        for k in 0..<size { v = v << 8 | UInt64(p[i * size + k]) }
                        return v
                    }
                    switch type {
                    case .unsignedByte: for i in 0..<count { dst[i] = Float(p[i]) }
                    case .signedByte: for i in 0..<count { dst[i] = Float(Int8(bitPattern: p[i])) }
                    case .short: for i in 0..<count { dst[i] = Float(Int16(bitPattern: UInt16(word(i, 2)))) }
                    case .int: for i in 0..<count { dst[i] = Float(Int32(bitPattern: UInt32(word(i, 4)))) }
                    case .float: for i in 0..<count { dst[i] = Float(bitPattern: UInt32(word(i, 4))) }
                    case .double: for i in 0..<count { dst[i] = Float(Double(bitPattern: word(i, 8))) }
                    }
                }
            }
            return values
        }
    }

    /// Two upper-case hex digits.
    static func hex(_ byte: UInt8) -> String {
        let digits = Array("0123456789ABCDEF")
        return String([digits[Int(byte >> 4)], digits[Int(byte & 15)]])
    }

    /// Encodes values as uncompressed IDX bytes of element type `type`.
    ///
    /// Integer types round each value to the nearest integer.
    /// - Throws: `TensorError` when the shape is empty, has more than 255 dimensions or a
    ///   size outside 0...2³²−1, when `values` does not fill it, or when a value is not
    ///   finite or does not fit an integer type.
    package static func encode(shape: [Int], values: [Float], type: ElementType) throws -> [UInt8] {
        guard (1...255).contains(shape.count), shape.allSatisfy({ (0...Int(UInt32.max)).contains($0) }) else {
            throw TensorError.invalidShape(operation: "IDX.encode", shape: shape, expected: "1 to 255 dimensions of sizes 0...4294967295")
        }
        var count = 1
        for d in shape {
            let (product, overflow) = count.multipliedReportingOverflow(by: d)
            guard !overflow else {
                throw TensorError.invalidShape(operation: "IDX.encode", shape: shape, expected: "an element count that fits in Int")
            }
            count = product
        }
        guard values.count == count else {
            throw TensorError.countMismatch(operation: "IDX.encode", count: values.count, expected: count)
        }
        let range: ClosedRange<Double>?
        switch type {
        case .unsignedByte: range = 0...255
        case .signedByte: range = -128...127
        case .short: range = -32768...32767
        case .int: range = -2147483648...2147483647
        case .float, .double: range = nil
        }
        func fits(_ v: Float) -> Bool {
            guard v.isFinite else { return false }
            guard let range else { return true }
            return range.contains(Double(v).rounded())
        }
        if let bad = values.first(where: { !fits($0) }) {
            throw TensorError.invalidArgument(operation: "IDX.encode",
                                              message: "value \(bad) does not fit the IDX element type \(type)")
        }
        var out: [UInt8] = [0, 0, type.rawValue, UInt8(shape.count)]
        out.reserveCapacity(out.count + 4 * shape.count + count * type.size)
        func append(_ v: UInt64, _ size: Int) {
            for k in stride(from: size - 1, through: 0, by: -1) { out.append(UInt8(truncatingIfNeeded: v >> (8 * UInt64(k)))) }
        }
        for d in shape { append(UInt64(d), 4) }
        for v in values {
            switch type {
            case .unsignedByte: append(UInt64(UInt8(v.rounded())), 1)
            case .signedByte: append(UInt64(UInt8(bitPattern: Int8(v.rounded()))), 1)
            case .short: append(UInt64(UInt16(bitPattern: Int16(v.rounded()))), 2)
            case .int: append(UInt64(UInt32(bitPattern: Int32(v.rounded()))), 4)
            case .float: append(UInt64(v.bitPattern), 4)
            case .double: append(Double(v).bitPattern, 8)
            }
        }
        return out
    }
}
