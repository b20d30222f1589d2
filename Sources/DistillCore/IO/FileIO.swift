#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Whole-file reads and atomic writes over POSIX calls.
public enum FileIO {
    /// The bytes of a file.
    public static func read(_ path: String) throws -> [UInt8] {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw IOError.cannotOpen(path: path, reason: String(cString: strerror(errno))) }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw IOError.cannotOpen(path: path, reason: String(cString: strerror(errno))) }
        if (st.st_mode & S_IFMT) == S_IFDIR { throw IOError.cannotOpen(path: path, reason: "is a directory") }
        var out = [UInt8]()
        out.reserveCapacity(Int(st.st_size))
        var chunk = [UInt8](repeating: 0, count: 1 << 20)
        while true {
            let n = chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                throw IOError.cannotOpen(path: path, reason: String(cString: strerror(errno)))
            }
            if n == 0 { break }
            out.append(contentsOf: chunk[0..<n])
        }
        return out
    }

    /// Writes a file atomically: the pieces go to a temporary file in the same directory,
    /// which is flushed to disk and then renamed over `path`. A reader (or a crash) sees
    /// either the old file or the complete new one, never a partial file.
    public static func writeAtomically(_ path: String, _ pieces: [UnsafeRawBufferPointer]) throws {
        let dir = directory(of: path)
        let tmp = "\(dir)/.\(basename(of: path)).tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        let fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw IOError.writeFailed(path: path, reason: String(cString: strerror(errno))) }
        var ok = false
        defer {
            if !ok { close(fd); unlink(tmp) }
        }
        for piece in pieces {
            var done = 0
            while done < piece.count {
                let n = write(fd, piece.baseAddress! + done, piece.count - done)
                if n < 0 {
                    if errno == EINTR { continue }
                    throw IOError.writeFailed(path: path, reason: String(cString: strerror(errno)))
                }
                done += n
            }
        }
        guard fsync(fd) == 0 else { throw IOError.writeFailed(path: path, reason: String(cString: strerror(errno))) }
        guard close(fd) == 0 else {
            let reason = String(cString: strerror(errno))
            unlink(tmp)
            ok = true
            throw IOError.writeFailed(path: path, reason: reason)
        }
        ok = true
        guard rename(tmp, path) == 0 else {
            let reason = String(cString: strerror(errno))
            unlink(tmp)
            throw IOError.writeFailed(path: path, reason: reason)
        }
        let dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if dfd >= 0 { _ = fsync(dfd); close(dfd) }
    }

    /// Writes `bytes` atomically.
    public static func writeAtomically(_ path: String, _ bytes: [UInt8]) throws {
        try bytes.withUnsafeBytes { try writeAtomically(path, [$0]) }
    }

    /// The folder part of a path ("." when there is none).
    public static func directory(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        return slash == path.startIndex ? "/" : String(path[..<slash])
    }

    static func basename(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return path }
        return String(path[path.index(after: slash)...])
    }
}

/// Little-endian reads from a byte array with bounds checks.
struct ByteReader {
    let bytes: [UInt8]
    let path: String

    func uint(at offset: Int, size: Int, bigEndian: Bool = false) throws -> UInt64 {
        guard offset >= 0, offset + size <= bytes.count else {
            throw IOError.truncated(path: path, detail: "needs \(offset + size) bytes, the file has \(bytes.count)")
        }
        var v: UInt64 = 0
        for i in 0..<size {
            let b = UInt64(bytes[offset + (bigEndian ? i : size - 1 - i)])
            v = v << 8 | b
        }
        return v
    }
}
