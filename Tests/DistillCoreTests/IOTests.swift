import DistillCore
import Foundation
import Testing

let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures").path

/// A fresh empty directory under the system temp dir.
func temporaryDirectory() throws -> String {
    let dir = NSTemporaryDirectory() + "distill-tests-" + UUID().uuidString
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    return dir
}

@Suite struct IOTests {
    struct Expected: Decodable {
        struct Entry: Decodable { let shape: [Int]; let values: [Double] }
        let tensors: [String: Entry]
        let safetensors_metadata: [String: String]
    }

    func expected() throws -> Expected {
        try JSONDecoder().decode(Expected.self, from: Data(contentsOf: URL(fileURLWithPath: fixtures + "/expected.json")))
    }

    @Test func readsNumPyFilesWrittenByNumPy() throws {
        let exp = try expected()
        for name in ["f4_c", "f8_fortran", "u1", "i8_big", "scalar"] {
            let t = try NPY.read(fixtures + "/\(name).npy")
            let e = try #require(exp.tensors["npy/\(name)"])
            #expect(t.shape == e.shape, "\(name)")
            #expect(t.scalars == e.values.map(Float.init), "\(name)")
        }
    }

    @Test func readsSafetensorsWrittenByPython() throws {
        let exp = try expected()
        let c = try SafeTensors.read(fixtures + "/reference.safetensors")
        #expect(c.metadata == exp.safetensors_metadata)
        for (key, e) in exp.tensors where key.hasPrefix("safetensors/") {
            let t = try #require(c.tensors[String(key.dropFirst("safetensors/".count))], "\(key)")
            #expect(t.shape == e.shape, "\(key)")
            #expect(t.scalars == e.values.map(Float.init), "\(key)")
        }
    }

    @Test(arguments: ["truncated.npy", "bad_magic.npy"])
    func corruptNumPyFilesThrow(_ file: String) throws {
        do {
            _ = try NPY.read(fixtures + "/" + file)
            Issue.record("\(file) must not load")
        } catch let e as IOError {
            #expect(e.description.contains(file), "the error names the file: \(e)")
        }
    }

    @Test(arguments: ["st_bad_dtype.safetensors", "st_bad_json.safetensors", "st_huge_header.safetensors",
                      "st_offsets_out_of_range.safetensors", "st_overlap.safetensors", "st_truncated.safetensors"])
    func corruptSafetensorsThrow(_ file: String) throws {
        do {
            _ = try SafeTensors.read(fixtures + "/" + file)
            Issue.record("\(file) must not load")
        } catch let e as IOError {
            #expect(e.description.contains(file), "the error names the file: \(e)")
        }
    }

    @Test func missingFileAndDirectoryThrow() throws {
        #expect(throws: IOError.self) { try NPY.read("/nonexistent/x.npy") }
        #expect(throws: IOError.self) { try SafeTensors.read(NSTemporaryDirectory()) }
    }

    @Test func roundTrips() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var rng = Philox(seed: 3)
        let t = try rng.normal([3, 5, 2])
        try NPY.write(t, to: dir + "/t.npy")
        #expect(try NPY.read(dir + "/t.npy").scalars == t.scalars)
        try NPY.write(Tensor([1, 2, 3]), to: dir + "/v.npy")
        #expect(try NPY.read(dir + "/v.npy").shape == [3])
        try NPY.write(Tensor(4), to: dir + "/s.npy")
        #expect(try NPY.read(dir + "/s.npy").shape == [])

        let contents = SafeTensors.Contents(tensors: ["w": t, "b": Tensor([1, 2]), "empty": try Tensor.zeros([0])],
                                            metadata: ["k": "v"])
        try SafeTensors.write(contents, to: dir + "/m.safetensors")
        let back = try SafeTensors.read(dir + "/m.safetensors")
        #expect(back.metadata == ["k": "v"])
        #expect(back.tensors["w"]?.scalars == t.scalars && back.tensors["w"]?.shape == [3, 5, 2])
        #expect(back.tensors["empty"]?.shape == [0])
        // Atomic writes leave no temporary files behind.
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir).sorted() == ["m.safetensors", "s.npy", "t.npy", "v.npy"])
    }

    @Test func failedWriteKeepsTheOldFile() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try NPY.write(Tensor([1, 2]), to: dir + "/a.npy")
        // A target that is a directory cannot be replaced: the write fails, nothing changes.
        try FileManager.default.createDirectory(atPath: dir + "/d.npy", withIntermediateDirectories: false)
        try FileManager.default.createDirectory(atPath: dir + "/d.npy/x", withIntermediateDirectories: false)
        #expect(throws: IOError.self) { try NPY.write(Tensor([3]), to: dir + "/d.npy") }
        #expect(throws: IOError.self) { try NPY.write(Tensor([3]), to: dir + "/missing/a.npy") }
        #expect(try NPY.read(dir + "/a.npy").scalars == [1, 2])
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir).sorted() == ["a.npy", "d.npy"])
    }

    /// Python's safetensors and numpy read what we write. Required on CI
    /// (DISTILL_REQUIRE_PYTHON=1); elsewhere it runs when python3 has both modules.
    @Test func pythonReadsOurFiles() throws {
        let required = ProcessInfo.processInfo.environment["DISTILL_REQUIRE_PYTHON"] == "1"
        guard required || (try? run("python3", ["-c", "import safetensors, numpy"])) == 0 else { return }
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let w = try Tensor(shape: [2, 3], scalars: [1, -2, 3.5, 0, 1e-3, -7])
        try SafeTensors.write(.init(tensors: ["w": w, "b": Tensor([5])], metadata: ["step": "3"]), to: dir + "/m.safetensors")
        try NPY.write(w, to: dir + "/w.npy")
        let script = """
        import numpy as np, sys
        from safetensors import safe_open
        with safe_open(sys.argv[1], framework="np") as f:
            assert f.metadata() == {"step": "3"}, f.metadata()
            w = f.get_tensor("w"); b = f.get_tensor("b")
        want = np.array([[1, -2, 3.5], [0, 1e-3, -7]], dtype=np.float32)
        assert w.dtype == np.float32 and (w == want).all() and (b == [5]).all()
        n = np.load(sys.argv[2]); assert n.dtype == np.float32 and (n == want).all()
        """
        #expect(try run("python3", ["-c", script, dir + "/m.safetensors", dir + "/w.npy"]) == 0)
    }
}

/// Runs a program and returns its exit status.
func run(_ program: String, _ args: [String]) throws -> Int32 {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    p.arguments = [program] + args
    try p.run()
    p.waitUntilExit()
    return p.terminationStatus
}
