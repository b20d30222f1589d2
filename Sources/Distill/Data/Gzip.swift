import CZlib

/// gzip and zlib streams through the system zlib (Deutsch 1996, RFC 1950–1952).
///
/// ``decompress(_:path:maximumSize:)`` auto-detects the gzip or zlib header
/// (`inflateInit2` with window bits 15 + 32), reads concatenated gzip members as one
/// stream (as `gzip -d` does), and turns every failure into an `IOError` that names the
/// source: corrupt data or a failed checksum (`.corrupt`), input that stops before the end
/// of the stream (`.truncated`), output larger than the limit (`.unsupported`).
package enum Gzip {
    /// The default cap on decompressed output (4 GiB): a guard against decompression bombs.
    package static let defaultMaximumSize = 1 << 32

    /// True when `bytes` start with the gzip magic number (1F 8B).
    package static func isGzip(_ bytes: [UInt8]) -> Bool {
        bytes.count >= 2 && bytes[0] == 0x1F && bytes[1] == 0x8B
    }

    /// Decompresses a gzip (or zlib) stream.
    ///
    /// - Parameters:
    ///   - bytes: the compressed bytes.
    ///   - path: names the source in error messages only.
    ///   - maximumSize: the largest output accepted, in bytes; inflating stops as soon as
    ///     the output would exceed it.
    /// - Returns: the decompressed bytes.
    /// - Throws: `IOError` `.truncated` when the stream ends early, `.corrupt` for bad
    ///   headers, data or checksums and for bytes after the end of the stream, and
    ///   `.unsupported` when the output would exceed `maximumSize`.
    package static func decompress(_ bytes: [UInt8], path: String, maximumSize: Int = defaultMaximumSize) throws -> [UInt8] {
        let inflater = try Inflater(bytes, path: path)
        var out: [UInt8] = []
        // A gzip member ends with its uncompressed size mod 2^32: a good capacity hint.
        if isGzip(bytes), bytes.count >= 18 {
            let n = bytes.count
            let hint = Int(bytes[n - 4]) | Int(bytes[n - 3]) << 8 | Int(bytes[n - 2]) << 16 | Int(bytes[n - 1]) << 24
            out.reserveCapacity(min(hint, maximumSize, Inflater.maximumRatio * n))
        }
        // One byte past the limit tells a stream that exceeds it from one that fills it.
        try inflater.read(maximumSize == Int.max ? maximumSize : maximumSize + 1, into: &out)
        guard out.count <= maximumSize else {
            throw IOError.unsupported(path: path, detail: "decompressed data exceeds the limit of \(maximumSize) bytes")
        }
        return out
    }

    /// Inflates a gzip or zlib stream piece by piece, so a reader can look at a header and
    /// stop before inflating more than it needs. Concatenated gzip members read as one
    /// stream (as `gzip -d` does).
    package final class Inflater {
        /// Deflate expands at most ~1032:1; a bound on honest output per input byte.
        package static let maximumRatio = 1032

        let path: String
        private let stream: UnsafeMutablePointer<z_stream>
        private let input: UnsafeMutableBufferPointer<UInt8>
        private var fed = 0
        private var produced = 0
        /// True once the stream (every member and its checksum) has been read to the end.
        package private(set) var finished = false

        /// Starts inflating `bytes` (`path` names the source in errors).
        package init(_ bytes: [UInt8], path: String) throws {
            guard !bytes.isEmpty else {
                throw IOError.truncated(path: path, detail: "the input is empty; expected a gzip or zlib stream")
            }
            self.path = path
            stream = .allocate(capacity: 1)
            stream.initialize(to: z_stream())
            input = .allocate(capacity: bytes.count)
            _ = input.initialize(from: bytes)
            let status = inflateInit2_(stream, 15 + 32, zlibVersion(), Int32(MemoryLayout<z_stream>.size))
            guard status == Z_OK else {
                stream.deallocate()
                input.deallocate()
                throw IOError.unsupported(path: path, detail: "zlib could not start inflating (status \(status))")
            }
        }

        deinit {
            inflateEnd(stream)
            stream.deallocate()
            input.deallocate()
        }

        /// Appends up to `count` more decompressed bytes to `out`: fewer only when the
        /// stream ends first (then ``finished`` is true).
        ///
        /// - Throws: ``IOError`` `.truncated` when the input stops before the stream's end,
        ///   `.corrupt` for bad data, checksums or bytes after the end.
        package func read(_ count: Int, into out: inout [UInt8]) throws {
            var wanted = count
            var chunk = [UInt8](repeating: 0, count: min(max(wanted, 1), 1 << 16))
            while wanted > 0 && !finished {
                if stream.pointee.avail_in == 0 && fed < input.count {
                    let piece = min(input.count - fed, 1 << 30)
                    stream.pointee.next_in = input.baseAddress! + fed
                    stream.pointee.avail_in = UInt32(piece)
                    fed += piece
                }
                let room = min(wanted, chunk.count)
                let status: Int32 = chunk.withUnsafeMutableBufferPointer { c in
                    stream.pointee.next_out = c.baseAddress
                    stream.pointee.avail_out = UInt32(room)
                    return inflate(stream, Z_NO_FLUSH)
                }
                let n = room - Int(stream.pointee.avail_out)
                out.append(contentsOf: chunk[0..<n])
                wanted -= n
                produced += n
                try handle(status)
            }
        }

        /// Acts on an `inflate` status: the end of a member, truncation or an error.
        private func handle(_ status: Int32) throws {
            switch status {
            case Z_OK:
                return
            case Z_STREAM_END:
                let remaining = Int(stream.pointee.avail_in) + (input.count - fed)
                if remaining == 0 { finished = true; return }
                let at = input.count - remaining
                // Another gzip member follows (`cat a.gz b.gz`): keep going.
                if remaining >= 2 && input[at] == 0x1F && input[at + 1] == 0x8B {
                    inflateReset(stream)
                    return
                }
                throw IOError.corrupt(path: path, detail: "\(remaining) unexpected bytes after the end of the compressed stream")
            case Z_BUF_ERROR where stream.pointee.avail_in == 0 && fed == input.count:
                throw IOError.truncated(path: path,
                                        detail: "the compressed stream stops early (after \(produced) decompressed bytes); expected more data and the end-of-stream checksum")
            case Z_BUF_ERROR:
                return
            case Z_NEED_DICT:
                throw IOError.unsupported(path: path, detail: "the zlib stream needs a preset dictionary")
            case Z_MEM_ERROR:
                throw IOError.unsupported(path: path, detail: "zlib ran out of memory")
            default:
                let reason = stream.pointee.msg.map { String(cString: $0) } ?? "zlib status \(status)"
                throw IOError.corrupt(path: path, detail: "bad compressed data (\(reason)); expected a valid gzip or zlib stream")
            }
        }
    }

    /// The container around deflated data.
    package enum Container: Sendable {
        /// A gzip member (RFC 1952), as in .gz files.
        case gzip
        /// A zlib stream (RFC 1950), as in PNG image data.
        case zlib
    }

    /// Compresses `bytes` into a single gzip member (or a zlib stream).
    ///
    /// - Parameter level: 0 (store) to 9 (smallest output).
    /// - Throws: `IOError` `.unsupported` for a level outside 0...9 or a zlib failure.
    package static func compress(_ bytes: [UInt8], level: Int = 9, container: Container = .gzip) throws -> [UInt8] {
        guard (0...9).contains(level) else {
            throw IOError.unsupported(path: "gzip", detail: "compression level \(level); expected 0...9")
        }
        var stream = z_stream()
        let windowBits: Int32 = container == .gzip ? 15 + 16 : 15
        let initStatus = deflateInit2_(&stream, Int32(level), Z_DEFLATED, windowBits, 8, Z_DEFAULT_STRATEGY,
                                       zlibVersion(), Int32(MemoryLayout<z_stream>.size))
        guard initStatus == Z_OK else {
            throw IOError.unsupported(path: "gzip", detail: "zlib could not start deflating (status \(initStatus))")
        }
        defer { deflateEnd(&stream) }
        var out: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        var input = bytes
        if input.isEmpty { input = [0] }   // a valid base address; nothing of it is fed
        let total = bytes.count
        try input.withUnsafeMutableBufferPointer { buf in
            let base = buf.baseAddress!
            var fed = 0
            while true {
                if stream.avail_in == 0 && fed < total {
                    let piece = min(total - fed, 1 << 30)
                    stream.next_in = base + fed
                    stream.avail_in = UInt32(piece)
                    fed += piece
                }
                let flush = fed == total ? Z_FINISH : Z_NO_FLUSH
                let status: Int32 = chunk.withUnsafeMutableBufferPointer { c in
                    stream.next_out = c.baseAddress
                    stream.avail_out = UInt32(c.count)
                    return deflate(&stream, flush)
                }
                out.append(contentsOf: chunk[0..<(chunk.count - Int(stream.avail_out))])
                if status == Z_STREAM_END { return }
                guard status == Z_OK || status == Z_BUF_ERROR else {
                    throw IOError.unsupported(path: "gzip", detail: "zlib deflate failed (status \(status))")
                }
            }
        }
        return out
    }
}
