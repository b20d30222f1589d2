import DistillCore
import Foundation
import Testing

/// Reads refuse what is not a regular file or is too large; atomic writes clean up after
/// writers that were killed; safetensors and checkpoint files are byte-reproducible.
@Suite struct FileIOTests {
    /// The id of a process that has exited (and been reaped): no process has it now,
    /// unless the system reused it in between, which the test then notices.
    func deadPID() throws -> Int32 {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/true")
        try p.run()
        p.waitUntilExit()
        return p.processIdentifier
    }

    @Test func temporaryNamesAreRecognizedExactly() {
        #expect(FileIO.temporaryFileOwner(FileIO.temporaryName(for: "model.safetensors", pid: 4242, random: 7)) == 4242)
        #expect(FileIO.temporaryFileOwner(".a-b.tmp-1-2.tmp-77-0") == 77)
        #expect(FileIO.temporaryFileOwner(".x.tmp-\(Int32.max)-\(UInt32.max)") == Int32.max)
        for name in ["model.safetensors.tmp-12-3", ".model.safetensors.tmp-12-", ".model.safetensors.tmp--3",
                     "..tmp-12-3", ".model.safetensors.tmp-012-3", ".model.safetensors.tmp-12-03", ".m.tmp-0-3",
                     ".m.tmp-12-3x", ".m.tmp-1x2-3", ".m.tmp-2147483648-1", ".m.tmp-1-4294967296", ".m.tmp-12", ".m.tmp12-3",
                     ".m.TMP-12-3", ".m.tmp-+12-3", ".m.tmp-12-3.npy"] {
            #expect(FileIO.temporaryFileOwner(name) == nil, "\(name)")
        }
    }

    /// A writer killed mid-write (kill -9) leaves `.NAME.tmp-PID-RANDOM`; the next atomic
    /// write into that folder removes it, and nothing else.
    @Test func staleTemporaryFilesOfDeadWritersAreRemoved() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let dead = try deadPID()
        try #require(kill(dead, 0) != 0 && errno == ESRCH, "pid \(dead) was reused already")
        let fm = FileManager.default
        let stale = [".model.safetensors.tmp-\(dead)-12345", ".samples.npy.tmp-\(dead)-0"]
        let kept = [".model.safetensors.tmp-1-99",                       // pid 1 is alive
                    ".model.safetensors.tmp-\(getpid())-5",             // this process
                    "model.safetensors.tmp-\(dead)-1",                   // no leading dot
                    ".model.safetensors.tmp-\(dead)-01",                 // not a number we write
                    ".model.safetensors.tmp-\(dead)-1.bak",
                    ".model.safetensors.tmp-\(dead)"]
        for name in stale + kept { #expect(fm.createFile(atPath: dir + "/" + name, contents: Data([1, 2, 3]))) }
        // A matching directory and a matching symbolic link (to a file elsewhere) stay too.
        try fm.createDirectory(atPath: dir + "/.d.tmp-\(dead)-1", withIntermediateDirectories: false)
        let outside = try temporaryDirectory()
        defer { try? fm.removeItem(atPath: outside) }
        #expect(fm.createFile(atPath: outside + "/target", contents: Data([9])))
        try fm.createSymbolicLink(atPath: dir + "/.l.tmp-\(dead)-1", withDestinationPath: outside + "/target")

        try NPY.write(Tensor([1, 2]), to: dir + "/x.npy")

        let left = Set(try fm.contentsOfDirectory(atPath: dir))
        for name in stale { #expect(!left.contains(name), "\(name) should be removed") }
        for name in kept + [".d.tmp-\(dead)-1", ".l.tmp-\(dead)-1", "x.npy"] { #expect(left.contains(name), "\(name) should stay") }
        #expect(fm.fileExists(atPath: outside + "/target"))
    }

    @Test(.timeLimit(.minutes(1))) func fifosAndDevicesAreRefusedWithoutHanging() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let fifo = dir + "/data.npy"
        try #require(mkfifo(fifo, 0o600) == 0)
        for (path, kind) in [(fifo, "FIFO"), ("/dev/zero", "character device"), ("/dev/null", "character device")] {
            do {
                _ = try NPY.read(path)
                Issue.record("\(path) must not be read")
            } catch let e as IOError {
                guard case .cannotOpen = e else { Issue.record("\(e)"); continue }
                #expect(e.description.hasPrefix(path + ":") && e.description.contains(kind) && e.description.contains("expected a regular file"), "\(e)")
            }
        }
    }

    @Test func readsStopAtTheSizeCap() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/eleven"
        try FileIO.writeAtomically(path, [UInt8](repeating: 7, count: 11))
        #expect(try FileIO.read(path, maximumSize: 11).count == 11)
        #expect(throws: IOError.unsupported(path: path, detail: "the file has 11 bytes; expected at most 10")) {
            try FileIO.read(path, maximumSize: 10)
        }
        #expect(try FileIO.read(dir + "/eleven") == [UInt8](repeating: 7, count: 11))
    }

    /// Same contents, same bytes: tensor names and metadata keys sorted, whatever order
    /// the dictionaries hold them in.
    @Test func safetensorsAndCheckpointsAreByteReproducible() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let names = (0..<40).map { "layer\($0 * 7 % 40).w" } + ["é", "e\u{301}x", "Z", "a/b", "quote\"name"]
        var forward: [String: Tensor] = [:], backward: [String: Tensor] = [:]
        var metaForward: [String: String] = [:], metaBackward: [String: String] = [:]
        backward.reserveCapacity(1000)
        metaBackward.reserveCapacity(1000)
        for (i, n) in names.enumerated() { forward[n] = Tensor([Float(i), 1]); metaForward["k" + n] = "v\(i)\n" }
        for (i, n) in names.enumerated().reversed() { backward[n] = Tensor([Float(i), 1]); metaBackward["k" + n] = "v\(i)\n" }
        try #require(Array(forward.keys) != Array(backward.keys), "the two dictionaries should iterate differently")
        try SafeTensors.write(.init(tensors: forward, metadata: metaForward), to: dir + "/a.safetensors")
        try SafeTensors.write(.init(tensors: backward, metadata: metaBackward), to: dir + "/b.safetensors")
        let a = try FileIO.read(dir + "/a.safetensors"), b = try FileIO.read(dir + "/b.safetensors")
        #expect(a == b)
        // The header lists tensors, then __metadata__ among them, in UTF-8 byte order.
        let n = Int(a[0..<8].reversed().reduce(UInt64(0)) { $0 << 8 | UInt64($1) })
        guard case let .object(members) = try JSONValue.parse(a[8..<(8 + n)]), case let .object(meta)? = members.first(where: { $0.key == "__metadata__" })?.value else {
            Issue.record("the header is not an object with __metadata__")
            return
        }
        let byBytes = { (x: String, y: String) in x.utf8.lexicographicallyPrecedes(y.utf8) }
        #expect(members.map(\.key) == (names + ["__metadata__"]).sorted(by: byBytes))
        #expect(meta.map(\.key) == metaForward.keys.sorted(by: byBytes))
        #expect(try SafeTensors.read(dir + "/b.safetensors").metadata == metaForward)

        let scalars = Dictionary(uniqueKeysWithValues: names.map { ($0, "1") })
        let c1 = Checkpoint(model: forward, optimizerTensors: backward, optimizerScalars: scalars, step: 3, extra: metaForward)
        let c2 = Checkpoint(model: backward, optimizerTensors: forward, optimizerScalars: scalars, step: 3, extra: metaBackward)
        try c1.write(to: dir + "/c1.safetensors")
        try c2.write(to: dir + "/c2.safetensors")
        #expect(try FileIO.read(dir + "/c1.safetensors") == FileIO.read(dir + "/c2.safetensors"))
        #expect(try Checkpoint.read(from: dir + "/c2.safetensors").optimizerScalars == scalars)
    }

    @Test func shapesAreCheckedWithoutWrapping() throws {
        #expect(Shape.checkedCount([2, 3, 4]) == 24)
        #expect(Shape.checkedCount([]) == 1)
        #expect(Shape.checkedCount([0, 5]) == 0)
        #expect(Shape.checkedCount([1 << 20, 1 << 20]) == 1 << 40)
        for bad in [[(1 << 62) + 1, 4], [1 << 32, 1 << 32], [0, 1 << 62], [-1, 4], [Int(Int32.max), Int(Int32.max), 2],
                    [Int(Int32.max) + 1], [Int](repeating: 1, count: 65)] {
            #expect(Shape.checkedCount(bad) == nil, "\(bad)")
            #expect(throws: TensorError.self) { try Tensor.zeros(bad) }
        }
        // 2^61 elements of 8 bytes wrap to 0 bytes; the element size is part of the check.
        #expect(Shape.checkedCount([1 << 30, 1 << 30, 2], elementSize: 1) == 1 << 61)
        #expect(Shape.checkedCount([1 << 30, 1 << 30, 2], elementSize: 8) == nil)
        // The unchecked count saturates instead of wrapping (a wrapped 0 would match an empty tensor).
        #expect(Shape.count([1 << 32, 1 << 32]) == Int.max)
        #expect(Shape.count([1 << 32, 1 << 32, 0]) == 0)
        #expect(throws: TensorError.self) { try Tensor.zeros([0]).reshaped([1 << 32, 1 << 32]) }
    }
}
