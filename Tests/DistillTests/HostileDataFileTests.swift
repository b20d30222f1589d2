import Distill
import Foundation
import Testing

/// IDX/gzip and mixture files that try to exhaust memory or smuggle in non-finite values.
@Suite struct HostileDataFileTests {
    func idx(_ dims: [UInt32], type: UInt8 = 0x08) -> [UInt8] {
        [0, 0, type, UInt8(dims.count)] + dims.flatMap { d in (0..<4).map { UInt8(truncatingIfNeeded: d >> (8 * (3 - $0))) } }
    }

    /// The inflater produces what is asked for and no more: a reader can stop after the header.
    @Test func inflatingStopsWhereTheReaderStops() throws {
        let bomb = try Gzip.compress([UInt8](repeating: 0, count: 64 << 20))
        #expect(bomb.count < 100_000)
        let inflater = try Gzip.Inflater(bomb, path: "bomb.gz")
        var out: [UInt8] = []
        try inflater.read(10, into: &out)
        #expect(out.count == 10 && !inflater.finished)
        try inflater.read(1000, into: &out)
        #expect(out.count == 1010 && !inflater.finished)
        #expect(throws: IOError.unsupported(path: "bomb.gz", detail: "decompressed data exceeds the limit of 1048576 bytes")) {
            try Gzip.decompress(bomb, path: "bomb.gz", maximumSize: 1 << 20)
        }
        // Exactly at the limit is fine.
        #expect(try Gzip.decompress(Gzip.compress([1, 2, 3]), path: "m", maximumSize: 3) == [1, 2, 3])
    }

    /// Issue 17 (11): the size an IDX header implies is checked as soon as the header is
    /// inflated; the data is inflated only up to that size.
    @Test func idxSizesAreCheckedBeforeInflating() throws {
        // Claims 2^128 bytes: refused as too large (not as truncated: nothing more was inflated).
        let huge = try Gzip.compress(idx([.max, .max, .max, .max]) + [UInt8](repeating: 0, count: 1 << 20))
        do {
            _ = try IDX.decode(huge, path: "huge.idx.gz")
            Issue.record("huge.idx.gz must not load")
        } catch let IOError.unsupported(path, detail) {
            #expect(path == "huge.idx.gz" && detail.contains("expected at most 64 dimensions"), "\(detail)")
        }
        // A valid 4-byte image followed by 64 MiB of zeros: refused as extra data.
        let padded = try Gzip.compress(idx([2, 2]) + [1, 2, 3, 4] + [UInt8](repeating: 0, count: 64 << 20))
        #expect(throws: IOError.corrupt(path: "padded.idx.gz", detail: "the decompressed data has bytes after the 4 data bytes that shape [2, 2] describes")) {
            try IDX.decode(padded, path: "padded.idx.gz")
        }
        // Under the cap, but the stream holds less than the header says.
        let short = try Gzip.compress(idx([1000, 1000]) + [UInt8](repeating: 7, count: 5000))
        #expect(throws: IOError.truncated(path: "short.idx.gz", detail: "shape [1000, 1000] of unsignedByte needs 1000000 data bytes, the decompressed data has 5000")) {
            try IDX.decode(short, path: "short.idx.gz")
        }
        let good = idx([2, 2]) + [1, 2, 3, 4]
        #expect(try IDX.decode(Gzip.compress(good), path: "g").values == [1, 2, 3, 4])
        #expect(try IDX.decode(good, path: "g").shape == [2, 2])
    }

    func mixtureError(_ json: String) -> String {
        do {
            _ = try GaussianMixture.decode(Data(json.utf8), source: "m.json")
            return "loaded"
        } catch {
            return "\(error)"
        }
    }

    @Test func mixtureFieldsAreNamedInErrors() {
        let cases = [
            #"{"weights":[1,1],"means":[[0],[1]],"variances":[[1],[1e-30]]}"#: "m.json: invalid Gaussian mixture: variances[1][0] = 1e-30; expected a number in [1e-20, 1e+20]",
            #"{"weights":[1,1],"means":[[0],[1e11]],"variances":[[1],[1]]}"#: "m.json: invalid Gaussian mixture: means[1][0] = 1e11; expected a finite number in ±10000000000.0",
            #"{"weights":[1,"2"],"means":[[0],[1]],"variances":[[1],[1]]}"#: "m.json: invalid Gaussian mixture: weights[1] is a string; expected a number",
            #"{"weights":[1e308,1e308],"means":[[0],[1]],"variances":[[1],[1]]}"#: "m.json: invalid Gaussian mixture: the weights sum to inf; expected a finite sum",
            #"{"weights":[1,0],"means":[[0],[1]],"variances":[[1],[1]]}"#: "m.json: invalid Gaussian mixture: weights[1] = 0.0, which is 0 relative to the sum 1.0; expected a positive weight",
        ]
        for (json, message) in cases { #expect(mixtureError(json) == message) }
    }

    @Test func mixtureSizeIsCapped() {
        let row = "[" + Array(repeating: "0", count: (1 << 22) + 1).joined(separator: ",") + "]"
        let message = mixtureError(#"{"weights":[1],"means":[\#(row)],"variances":[\#(row)]}"#)
        #expect(message == "m.json: invalid Gaussian mixture: 'means' has 1 rows of 4194305; expected at most 4194304 numbers in all")
    }
}
