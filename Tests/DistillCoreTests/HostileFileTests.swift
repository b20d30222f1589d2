import DistillCore
import Foundation
import Testing

/// Crafted `.npy`, safetensors and checkpoint files: refused before anything is
/// allocated, with one line naming the file and what was expected.
@Suite struct HostileFileTests {
    /// Writes `bytes` to a fresh folder and returns the error `load` throws on it.
    func error(_ name: String, _ bytes: [UInt8], _ load: (String) throws -> Any) throws -> IOError? {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/" + name
        try FileIO.writeAtomically(path, bytes)
        do {
            _ = try load(path)
            Issue.record("\(name) must not load")
            return nil
        } catch let e as IOError {
            #expect(e.description.hasPrefix(path + ": ") && !e.description.contains("\n"), "\(e)")
            return e
        }
    }

    func npy(_ header: String, _ data: [UInt8]) -> [UInt8] {
        var dict = Array(header.utf8)
        dict += [UInt8](repeating: 0x20, count: (64 - (10 + dict.count + 1) % 64) % 64) + [0x0A]
        return [0x93] + Array("NUMPY".utf8) + [1, 0, UInt8(dict.count & 0xFF), UInt8(dict.count >> 8)] + dict + data
    }

    func safetensors(_ header: String, _ data: [UInt8]) -> [UInt8] {
        let h = Array(header.utf8)
        return (0..<8).map { UInt8(truncatingIfNeeded: h.count >> (8 * $0)) } + h + data
    }

    /// The case of issue 17: it loaded as 2^62 + 1 rows and later reads ran off the buffer.
    @Test func npyWithAHugeShapeAndSixteenBytesIsRefused() throws {
        let bytes = npy("{'descr': '<f4', 'fortran_order': False, 'shape': (4611686018427387905, 4), }", [UInt8](repeating: 0, count: 16))
        let e = try error("huge.npy", bytes) { try NPY.read($0) }
        guard case .corrupt(_, let detail)? = e else { Issue.record("\(String(describing: e))"); return }
        #expect(detail.contains("[4611686018427387905, 4]") && detail.contains("expected at most 64 dimensions of sizes 0...2147483647"), "\(detail)")
    }

    @Test func npyCountsAreCheckedAgainstTheBytesPresent() throws {
        // 2^32 × 2^32 elements wrap to 0 in 64-bit arithmetic: an empty file would "match".
        let wraps = npy("{'descr': '<f4', 'fortran_order': False, 'shape': (4294967296, 4294967296), }", [])
        #expect(try error("wraps.npy", wraps) { try NPY.read($0) } != nil)
        let short = npy("{'descr': '<f8', 'fortran_order': False, 'shape': (100000, 3), }", [UInt8](repeating: 0, count: 24))
        guard case .truncated(_, let detail)? = try error("short.npy", short, { try NPY.read($0) }) else { Issue.record("expected truncated"); return }
        #expect(detail == "shape [100000, 3] of float64 needs 2400000 data bytes, the file has 24")
    }

    @Test func npyHeadersParseLikePython() throws {
        // Double quotes, Python 2 longs, odd spacing and key order are all valid headers.
        let bytes = npy(#"{"shape":(2L,3L ),  "fortran_order" :False,"descr":"<f4"}"#, (0..<24).map { _ in 0 })
        #expect(try NPY.decode(bytes, path: "p.npy").shape == [2, 3])
        for bad in ["{'descr': '<f4', 'fortran_order': False, 'shape': (1,), 'shape': (9,), }",
                    "{'descr': '<f4', 'fortran_order': 0, 'shape': (1,), }",
                    "{'descr': '<f4', 'fortran_order': False, 'shape': (1,), 'extra': True, }",
                    "{'descr': '<f4', 'fortran_order': False, 'shape': (1 2,), }",
                    "{'descr': '<f4', 'fortran_order': False, 'shape': (1,), } x"] {
            #expect(throws: IOError.self, "\(bad)") { try NPY.decode(npy(bad, [0, 0, 0, 0]), path: "p.npy") }
        }
    }

    @Test func safetensorsOffsetsAndCountsAreChecked() throws {
        let cases: [(String, [UInt8], String)] = [
            (#"{"w":{"dtype":"F32","shape":[4611686018427387905,4],"data_offsets":[0,16]}}"#, [UInt8](repeating: 0, count: 16), "expected at most 64 dimensions"),
            (#"{"w":{"dtype":"U8","shape":[4294967296,4294967296],"data_offsets":[0,0]}}"#, [], "expected at most 64 dimensions"),
            (#"{"w":{"dtype":"F32","shape":[2],"data_offsets":[-8,0]}}"#, [], "expected integers 0 <= begin <= end <= 0"),
            (#"{"w":{"dtype":"F32","shape":[1],"data_offsets":[9223372036854775800,9223372036854775804]}}"#, [0, 0, 0, 0], "the size of the data section"),
            (#"{"w":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}"#, [UInt8](repeating: 0, count: 8), "needs 12 bytes; its data_offsets [0, 8] hold 8"),
            (#"{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#, [0, 0, 0, 0], "appears twice"),
            (#"{"w":{"dtype":"F32","shape":[1.0],"data_offsets":[0,4]}}"#, [0, 0, 0, 0], "expected non-negative integers"),
            (#"{"a\nb":{"dtype":"F32","shape":[9],"data_offsets":[0,36]}}"#, [0, 0, 0, 0], #"tensor 'a\nb'"#),
        ]
        for (header, data, phrase) in cases {
            let e = try error("t.safetensors", safetensors(header, data)) { try SafeTensors.read($0) }
            #expect(e?.description.contains(phrase) == true, "\(String(describing: e)) should say \(phrase)")
        }
    }

    @Test func checkpointMetadataIsChecked() throws {
        let tensors = #""model/w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"ema/w":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}"#
        func file(_ meta: String) -> [UInt8] {
            safetensors(#"{"__metadata__":{"format":"distill.checkpoint","format_version":"1","step":"5",\#(meta)},\#(tensors)}"#,
                        [UInt8](repeating: 0, count: 8))
        }
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try FileIO.writeAtomically(dir + "/ok.safetensors", file(#""has_ema":"true","optimizer":"{\"lr\":\"0.1\"}""#))
        let ok = try Checkpoint.read(from: dir + "/ok.safetensors")
        #expect(ok.step == 5 && ok.ema?.keys.sorted() == ["w"] && ok.optimizerScalars == ["lr": "0.1"])
        for (meta, phrase) in [(#""has_ema":"false""#, "unexpected tensor 'ema/w'"), (#""has_ema":"yes""#, "'has_ema' is 'yes'"),
                               (#""has_ema":"true","optimizer":"{\"lr\":1}""#, "'lr' is a number; expected a string"),
                               (#""has_ema":"true","optimizer":"{\"lr\":\"1\",\"lr\":\"2\"}""#, "not a JSON object of strings")] {
            let e = try error("c.safetensors", file(meta)) { try Checkpoint.read(from: $0) }
            #expect(e?.description.contains(phrase) == true, "\(String(describing: e)) should say \(phrase)")
        }
    }

    @Test func strictJSON() throws {
        func parse(_ s: String) throws -> JSONValue { try JSONValue.parse(ArraySlice(s.utf8)) }
        #expect(try parse("9007199254740993").integer == 9007199254740993)   // not through a Double
        #expect(try parse("1e2").integer == nil && parse("1e2").double == 100)
        #expect(try parse("1e999").double == .infinity)
        #expect(try parse(#""\ud83d\ude00\n\u00e9""#).excerpt() == "\"😀\\né\"")
        let deep = String(repeating: "[", count: 65) + String(repeating: "]", count: 65)
        let shallow = String(repeating: "[", count: 64) + String(repeating: "]", count: 64)
        #expect(throws: JSONSyntaxError.self) { try parse(deep) }
        _ = try parse(shallow)
        for bad in [#"{"a":1,"a":2}"#, #""\ud800""#, #""\udc00x""#, "01", "-", "1.", "+1", "[1,]", "{\"a\" 1}", "nul",
                    "\"tab\there\"", "[1] 2", #""\x""#, "NaN", "Infinity", "{'a':1}"] {
            #expect(throws: JSONSyntaxError.self, "\(bad)") { try parse(bad) }
        }
        // Serialization round-trips, escaping what JSON requires.
        let v = JSONValue.object([("k\"\\\u{01}", .array([.number("-1.5e3"), .bool(true), .null, .string("ü")]))])
        let back = try JSONValue.parse(ArraySlice(v.serialized))
        #expect(back.serialized == v.serialized)
        #expect(String(decoding: v.serialized, as: UTF8.self) == #"{"k\"\\\u0001":[-1.5e3,true,null,"ü"]}"#)
    }
}
