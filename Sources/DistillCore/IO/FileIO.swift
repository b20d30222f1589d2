#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Whole-file reads and atomic writes over POSIX calls.
package enum FileIO {
    /// The bytes of a file.
    ///
    /// Only regular files are read: a FIFO, device, socket or directory is refused with an
    /// ``IOError`` (a FIFO is opened without blocking, so it cannot hang the read), and so
    /// is a file larger than this machine's physical memory.
    package static func read(_ path: String) throws -> [UInt8] {
        try read(path, maximumSize: physicalMemory)
    }

    /// The bytes of a regular file of at most `maximumSize` bytes (see ``read(_:)``).
    package static func read(_ path: String, maximumSize: Int) throws -> [UInt8] {
        func failure(_ reason: String) -> IOError { .cannotOpen(path: path, reason: reason) }
        // O_NONBLOCK: opening a FIFO with no writer would otherwise wait forever.
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)
        guard fd >= 0 else { throw failure(lastError()) }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw failure(lastError()) }
        guard (st.st_mode & S_IFMT) == S_IFREG else {
            throw failure("it is \(fileKind(st.st_mode)); expected a regular file")
        }
        let size = Int(st.st_size)
        guard size <= maximumSize else {
            throw IOError.unsupported(path: path, detail: "the file has \(size) bytes; expected at most \(maximumSize)")
        }
        var out = [UInt8](repeating: 0, count: size)
        var done = 0
        while done < size {
            let n = out.withUnsafeMutableBytes { readSome(fd, $0.baseAddress! + done, size - done) }
            if n < 0 { throw failure(lastError()) }
            if n == 0 { break }
            done += n
        }
        var probe: UInt8 = 0
        let more = readSome(fd, &probe, 1)
        if more < 0 { throw failure(lastError()) }
        guard done == size, more == 0 else {
            throw IOError.truncated(path: path, detail: "the file changed size while being read (\(size) bytes before); expected a file nobody writes to meanwhile")
        }
        return out
    }

    /// `read(2)` retried on EINTR.
    private static func readSome(_ fd: Int32, _ buffer: UnsafeMutableRawPointer, _ count: Int) -> Int {
        while true {
            #if canImport(Glibc)
            let n = Glibc.read(fd, buffer, count)
            #elseif canImport(Musl)
            let n = Musl.read(fd, buffer, count)
            #else
            let n = Darwin.read(fd, buffer, count)
            #endif
            if n < 0 && errno == EINTR { continue }
            return n
        }
    }

    private static func lastError() -> String { String(cString: strerror(errno)) }

    private static func fileKind(_ mode: mode_t) -> String {
        switch mode & S_IFMT {
        case S_IFDIR: return "a directory"
        case S_IFIFO: return "a FIFO"
        case S_IFCHR: return "a character device"
        case S_IFBLK: return "a block device"
        case S_IFSOCK: return "a socket"
        default: return "not a regular file"
        }
    }

    /// Bytes of physical memory: no file larger than this can be loaded.
    package static let physicalMemory: Int = {
        let pages = sysconf(Int32(_SC_PHYS_PAGES)), pageSize = sysconf(Int32(_SC_PAGESIZE))
        guard pages > 0, pageSize > 0 else { return Int.max }
        let (bytes, overflow) = pages.multipliedReportingOverflow(by: pageSize)
        return overflow ? Int.max : bytes
    }()

    /// Throws unless `elements` Float32 values (the tensors decoded from `path`) fit in
    /// half of this machine's physical memory.
    package static func checkDecodedSize(elements: Int, path: String) throws {
        let limit = physicalMemory / 2
        let (bytes, overflow) = elements.multipliedReportingOverflow(by: MemoryLayout<Float>.stride)
        guard !overflow, bytes <= limit else {
            throw IOError.unsupported(path: path, detail: "\(elements) values would need \(overflow ? "more than \(Int.max)" : String(bytes)) bytes as Float32; expected at most \(limit) (half of this machine's memory)")
        }
    }

    /// Writes a file atomically: the pieces go to a temporary file `.NAME.tmp-PID-RANDOM`
    /// in the same directory, which is flushed to disk and then renamed over `path`. A
    /// reader (or a crash) sees either the old file or the complete new one, never a
    /// partial file. A process killed mid-write leaves its temporary file behind: every
    /// write first removes such leftovers in its directory (see
    /// ``removeStaleTemporaryFiles(in:)``).
    package static func writeAtomically(_ path: String, _ pieces: [UnsafeRawBufferPointer]) throws {
        let dir = directory(of: path)
        removeStaleTemporaryFiles(in: dir)
        let tmp = "\(dir)/\(temporaryName(for: basename(of: path), pid: getpid(), random: UInt32.random(in: 0...UInt32.max)))"
        let fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw IOError.writeFailed(path: path, reason: lastError()) }
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
                    throw IOError.writeFailed(path: path, reason: lastError())
                }
                done += n
            }
        }
        guard fsync(fd) == 0 else { throw IOError.writeFailed(path: path, reason: lastError()) }
        guard close(fd) == 0 else {
            let reason = lastError()
            unlink(tmp)
            ok = true
            throw IOError.writeFailed(path: path, reason: reason)
        }
        ok = true
        guard rename(tmp, path) == 0 else {
            let reason = lastError()
            unlink(tmp)
            throw IOError.writeFailed(path: path, reason: reason)
        }
        let dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if dfd >= 0 { _ = fsync(dfd); close(dfd) }
    }

    /// Writes `bytes` atomically.
    package static func writeAtomically(_ path: String, _ bytes: [UInt8]) throws {
        try bytes.withUnsafeBytes { try writeAtomically(path, [$0]) }
    }

    /// The name of the temporary file that an atomic write of `name` goes through.
    package static func temporaryName(for name: String, pid: Int32, random: UInt32) -> String {
        ".\(name).tmp-\(pid)-\(random)"
    }

    /// The writer's process id when `name` is exactly a ``temporaryName(for:pid:random:)``.
    package static func temporaryFileOwner(_ name: String) -> Int32? {
        let u = Array(name.utf8)
        // ".NAME.tmp-PID-RANDOM": NAME non-empty, PID and RANDOM decimal without leading zeros.
        guard u.first == UInt8(ascii: "."), let dash2 = u.lastIndex(of: UInt8(ascii: "-")), dash2 > 0,
              let dash1 = u[..<dash2].lastIndex(of: UInt8(ascii: "-")) else { return nil }
        let suffix = Array(".tmp".utf8)
        guard dash1 >= 1 + 1 + suffix.count, Array(u[(dash1 - suffix.count)..<dash1]) == suffix else { return nil }
        func decimal(_ s: ArraySlice<UInt8>) -> UInt64? {
            guard !s.isEmpty, s.count <= 10, s.allSatisfy({ (48...57).contains($0) }),
                  s.first != 48 || s.count == 1 else { return nil }
            return s.reduce(0) { $0 * 10 + UInt64($1 - 48) }
        }
        guard let pid = decimal(u[(dash1 + 1)..<dash2]), pid > 0, pid <= UInt64(Int32.max),
              let random = decimal(u[(dash2 + 1)...]), random <= UInt64(UInt32.max) else { return nil }
        return Int32(pid)
    }

    /// Removes the temporary files of atomic writes (named exactly as
    /// ``temporaryName(for:pid:random:)``) in `directory` whose writing process no longer
    /// exists (`kill(pid, 0)` fails with ESRCH): what a process killed mid-write left
    /// behind. Files of live processes, symbolic links and every other name are left alone.
    package static func removeStaleTemporaryFiles(in directory: String) {
        guard let d = opendir(directory) else { return }
        defer { closedir(d) }
        let own = getpid()
        while let entry = readdir(d) {
            // d_name is read in place, up to its NUL: the record may be shorter than
            // `dirent` (copying the whole field reads past the end of readdir's buffer).
            let field = UnsafeRawPointer(entry) + MemoryLayout<dirent>.offset(of: \dirent.d_name)!
            let name = String(cString: field.assumingMemoryBound(to: CChar.self))
            guard let pid = temporaryFileOwner(name), pid != own else { continue }
            guard kill(pid, 0) != 0, errno == ESRCH else { continue }
            let path = "\(directory)/\(name)"
            var st = stat()
            guard lstat(path, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG else { continue }
            unlink(path)
        }
    }

    /// The folder part of a path ("." when there is none).
    package static func directory(of path: String) -> String {
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
        guard offset >= 0, size <= bytes.count, offset <= bytes.count - size else {
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
