// Fuzz harness for every file loader: .npy, safetensors, checkpoints, IDX (plain and
// gzip) and Gaussian-mixture JSON. Run it under AddressSanitizer (scripts/fuzz.sh).
//
//   DistillFuzz LOADER [--seconds S] [--iterations N] [--seed N] [--corpus DIR]... [--crash-dir DIR]
//   DistillFuzz LOADER --replay FILE...
//
// The default mode is a deterministic mutation loop: input i is a function of the seed, i
// and the inputs kept before it (an input is kept when it reaches an outcome not seen
// yet), so a run is reproducible from its seed and iteration count. Every input must load
// or throw one of the library's typed errors, on one line naming the file; a loaded
// mixture must give finite densities and scores. Anything else — a trap, a sanitizer
// report, an untyped or malformed error, more than 10 s on one input — stops the run and
// writes the input to CRASH_DIR/crash-LOADER.bin (replay it with --replay).
// DISTILL_FUZZ_OUTCOMES=1 prints how often each outcome (error kind) was reached.
//
// Built with `-Xswiftc -DLIBFUZZER --sanitize=fuzzer` (scripts/fuzz.sh --libfuzzer), the
// same checks run under libFuzzer's coverage-guided search instead; the loader is named by
// the environment variable DISTILL_FUZZ_LOADER.
import Distill
import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

// MARK: - Loaders and what counts as a correct outcome

enum Loader: String, CaseIterable {
    case npy, safetensors, checkpoint, idx, mixture

    /// The name the input goes by in error messages.
    var path: String { "fuzz-input." + rawValue }

    /// Loads `bytes`; returns nil when it loaded and passed the checks on loaded values,
    /// else a description of what is wrong with the result.
    func load(_ bytes: [UInt8]) throws -> String? {
        switch self {
        case .npy:
            let t = try NPY.decode(bytes, path: path)
            return t.count == t.shape.reduce(1, *) && t.count <= bytes.count ? nil : "tensor \(t.shape) with \(t.count) elements"
        case .safetensors:
            let c = try SafeTensors.decode(bytes, path: path)
            let elements = c.tensors.values.reduce(0) { $0 + $1.count }
            return elements <= bytes.count && c.tensors.values.allSatisfy({ $0.count == $0.shape.reduce(1, *) })
                ? nil : "\(c.tensors.count) tensors holding \(elements) elements in \(bytes.count) bytes"
        case .checkpoint:
            let c = try Checkpoint.decode(bytes, path: path)
            return c.step >= 0 ? nil : "step \(c.step)"
        case .idx:
            let (shape, values) = try IDX.decode(bytes, path: path)
            return values.count == shape.reduce(1, *) ? nil : "shape \(shape) with \(values.count) values"
        case .mixture:
            let m = try GaussianMixture.decode(Data(bytes), source: path)
            let d = m.dimension
            let x = (0..<(3 * d)).map { Double($0 % 7) * 3 - 9 }   // three points
            let logp = m.logDensity(x) + m.logDensity(x, alpha: 0.5, sigma: 2)
            let (den, score) = m.denoiserAndScore(x, alpha: 0.8, sigma: 0.3)
            let (clean, _) = m.denoiserAndScore(x, alpha: 1, sigma: 0)
            let all = logp + den + score + clean
            return all.allSatisfy(\.isFinite) ? nil : "a non-finite density, denoiser or score"
        }
    }
}

/// Loads one input: nil when it loaded (and passed the checks on loaded values), else the
/// error's message, which must be one line starting with the input's name.
func check(_ loader: Loader, _ bytes: [UInt8]) -> String? {
    let message: String
    do {
        if let wrong = try loader.load(bytes) { fail(loader, "loaded, but \(wrong)") }
        return nil
    } catch let e as IOError {
        message = e.description
    } catch let e as GaussianMixtureError {
        message = e.description
    } catch let e as TensorError {
        message = e.description
    } catch {
        fail(loader, "untyped error \(type(of: error)): \(error)")
    }
    guard message.hasPrefix(loader.path + ": "), !message.contains("\n") else {
        fail(loader, "the error is not one line starting with the file's name: \(message)")
    }
    return message
}

/// A coarse signature of the code path an input took: "ok", or its error message without
/// numbers (hex bytes included) and with everything between the first and the last quote
/// or bracket (names and values quoted from the input) cut out.
func signature(_ message: String?) -> String {
    guard let message else { return "ok" }
    let hexByte = { (w: Substring) in w.count <= 2 && w.unicodeScalars.allSatisfy { "0123456789ABCDEF".unicodeScalars.contains($0) } }
    let words = message.split(separator: " ", omittingEmptySubsequences: false).filter { !hexByte($0) }
    let text = Array(words.joined(separator: " ").unicodeScalars.filter { !("0"..."9").contains($0) })
    let special = "'\"[](){}".unicodeScalars
    func string(_ s: ArraySlice<Unicode.Scalar>) -> String { String(String.UnicodeScalarView(s)) }
    guard let first = text.firstIndex(where: special.contains), let last = text.lastIndex(where: special.contains) else {
        return string(text[...])
    }
    return string(text[..<first].prefix(80)) + "…" + string(text[(last + 1)...].suffix(80))
}

// MARK: - Crash reporting

/// The input being run, copied where a signal handler can write it out.
nonisolated(unsafe) var current = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 20, alignment: 1)
nonisolated(unsafe) var currentCount = 0
nonisolated(unsafe) var crashPath: UnsafeMutablePointer<CChar>? = nil

func setCurrent(_ bytes: [UInt8]) {
    if bytes.count > current.count {
        current.deallocate()
        current = .allocate(byteCount: bytes.count, alignment: 1)
    }
    bytes.withUnsafeBytes { src in
        if let from = src.baseAddress { current.baseAddress!.copyMemory(from: from, byteCount: src.count) }
    }
    currentCount = bytes.count
}

/// Writes the current input to the crash file (async-signal-safe).
func dumpCurrent() {
    guard let crashPath else { return }
    let fd = open(crashPath, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
    guard fd >= 0 else { return }
    var done = 0
    while done < currentCount {
        let n = write(fd, current.baseAddress! + done, currentCount - done)
        if n <= 0 { break }
        done += n
    }
    close(fd)
    let note = "DistillFuzz: the failing input is in "
    _ = write(2, note, note.utf8.count)
    _ = write(2, crashPath, strlen(crashPath))
    _ = write(2, "\n", 1)
}

/// Reports a wrong outcome and aborts (the SIGABRT handler, or libFuzzer, saves the input).
func fail(_ loader: Loader, _ message: String) -> Never {
    FileHandle.standardError.write(Data("DistillFuzz \(loader.rawValue): \(message)\n".utf8))
    abort()
}

func installCrashHandlers(crashDir: String, loader: Loader) {
    crashPath = strdup("\(crashDir)/crash-\(loader.rawValue).bin")
    for sig in [SIGILL, SIGTRAP, SIGABRT, SIGSEGV, SIGBUS, SIGFPE, SIGALRM] {
        signal(sig) { sig in
            if sig == SIGALRM {
                let note = "DistillFuzz: one input ran for more than 10 s (a hang)\n"
                _ = write(2, note, note.utf8.count)
            }
            dumpCurrent()
            signal(sig == SIGALRM ? SIGABRT : sig, SIG_DFL)
            raise(sig == SIGALRM ? SIGABRT : sig)
        }
    }
    // Under a sanitizer, its reports end the process without a signal: dump there too.
    typealias SetDeathCallback = @convention(c) (@convention(c) () -> Void) -> Void
    if let sym = dlsym(nil, "__sanitizer_set_death_callback") {
        unsafeBitCast(sym, to: SetDeathCallback.self)({ dumpCurrent() })
    }
}

// MARK: - Deterministic mutations

struct SplitMix64 {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    mutating func below(_ n: Int) -> Int { n <= 1 ? 0 : Int(next() % UInt64(n)) }
    mutating func chance(_ percent: Int) -> Bool { below(100) < percent }
    mutating func pick<T>(_ items: [T]) -> T { items[below(items.count)] }
}

let interestingIntegers: [UInt64] = [0, 1, 2, 0x7F, 0x80, 0xFF, 0x100, 0x7FFF, 0x8000, 0xFFFF, 0x1_0000, 0x7FFF_FFFF,
                                     0x8000_0000, 0xFFFF_FFFF, 1 << 32, 100_000_000, 100_000_001, (1 << 62) + 1,
                                     UInt64(Int64.max), 1 << 63, UInt64.max, UInt64.max - 7]
let interestingNumbers = ["0", "-1", "1", "-0", "2", "3", "7", "64", "255", "256", "65535", "65536", "2147483647",
                          "2147483648", "4294967295", "4294967296", "4611686018427387905", "9223372036854775807",
                          "9223372036854775808", "18446744073709551615", "99999999999999999999999", "1e308", "1e999",
                          "-1e999", "1e-320", "1e-400", "1.5", "0.0", "1e20", "1e-20", "1e10", "-1e10", "2.5e-21",
                          "NaN", "Infinity", "0x10", "1L", "-9223372036854775808"]
let tokens = ["{", "}", "[", "]", ",", ":", "\"", "'", "(", ")", " ", "\n", "\\", "\\u0000", "\\ud800", "\\udc00",
              "True", "False", "true", "false", "null", "\"shape\"", "\"dtype\"", "\"data_offsets\"", "\"__metadata__\"",
              "'shape'", "'descr'", "'fortran_order'", "'<f4'", "'>f8'", "'|u1'", "'<c8'", "\"F32\"", "\"BF16\"",
              "\"weights\"", "\"means\"", "\"variances\"", "\"format\"", "\"distill.checkpoint\"", "\"has_ema\"",
              "\"model/w\"", "\"ema/w\"", "\"optim/x\"", "\"step\"", "\"optimizer\"", "[[", "]]", "[]", "{}", "()", "(0,)",
              "\u{FF}", "\u{7F}", "é"]

/// Little- or big-endian bytes of `v` in `width` bytes.
func bytes(of v: UInt64, width: Int, bigEndian: Bool) -> [UInt8] {
    let le = (0..<width).map { UInt8(truncatingIfNeeded: v >> (8 * UInt64($0))) }
    return bigEndian ? le.reversed() : le
}

/// One random edit of `b`; `other` is another input to splice from.
func mutateOnce(_ b: inout [UInt8], other: [UInt8], rng: inout SplitMix64) {
    let n = b.count
    switch rng.below(11) {
    case 0 where n > 0:   // flip a bit
        b[rng.below(n)] ^= 1 << UInt8(rng.below(8))
    case 1 where n > 0:   // an interesting byte
        b[rng.below(n)] = rng.pick([0, 1, 0x7F, 0x80, 0xFF, 0x20, 0x22, 0x27, 0x5C, 0x0A])
    case 2:   // insert random bytes
        let at = rng.below(n + 1)
        b.insert(contentsOf: (0..<(1 + rng.below(8))).map { _ in UInt8(truncatingIfNeeded: rng.next()) }, at: at)
    case 3 where n > 0:   // delete a range
        let at = rng.below(n), len = 1 + rng.below(min(n - at, 64))
        b.removeSubrange(at..<(at + len))
    case 4 where n > 0:   // duplicate a range
        let at = rng.below(n), len = 1 + rng.below(min(n - at, 256))
        b.insert(contentsOf: Array(b[at..<(at + len)]), at: rng.below(n + 1))
    case 5:   // an interesting binary integer
        let width = rng.pick([1, 2, 4, 8])
        guard n >= width else { return }
        let at = rng.below(n - width + 1)
        b.replaceSubrange(at..<(at + width), with: bytes(of: rng.pick(interestingIntegers), width: width, bigEndian: rng.chance(50)))
    case 6:   // replace a decimal number of text
        var runs: [Range<Int>] = []
        var i = 0
        while i < n {
            if (48...57).contains(b[i]) || b[i] == 45 {
                var j = i + 1
                while j < n, (48...57).contains(b[j]) || b[j] == 46 || b[j] == 101 || b[j] == 69 || b[j] == 43 || b[j] == 45 { j += 1 }
                runs.append(i..<j)
                i = j
            } else { i += 1 }
        }
        guard !runs.isEmpty else { return }
        b.replaceSubrange(rng.pick(runs), with: Array(rng.pick(interestingNumbers).utf8))
    case 7:   // insert a token
        b.insert(contentsOf: Array(rng.pick(tokens).utf8), at: rng.below(n + 1))
    case 8 where !other.isEmpty:   // splice from another input
        let from = rng.below(other.count), len = 1 + rng.below(min(other.count - from, 512))
        let at = rng.below(n + 1), cut = min(n - at, rng.below(len + 1))
        b.replaceSubrange(at..<(at + cut), with: other[from..<(from + len)])
    case 9 where n > 0:   // truncate
        b.removeLast(1 + rng.below(min(n, 32)))
    default:   // append bytes
        b += (0..<(1 + rng.below(16))).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
    }
}

func mutateSome(_ b: inout [UInt8], other: [UInt8], rng: inout SplitMix64) {
    for _ in 0..<(1 + rng.below(4)) { mutateOnce(&b, other: other, rng: &rng) }
}

/// A mutation that knows the container: edits the header of an .npy or safetensors file
/// and fixes its length field, or edits the content of a gzip stream and recompresses it.
func mutate(_ input: [UInt8], other: [UInt8], loader: Loader, rng: inout SplitMix64) -> [UInt8] {
    var b = input
    if loader == .idx, Gzip.isGzip(b), rng.chance(60), var inner = try? Gzip.decompress(b, path: "seed", maximumSize: 1 << 20) {
        mutateSome(&inner, other: other, rng: &rng)
        b = (try? Gzip.compress(inner, level: 1)) ?? b
        if rng.chance(20) { mutateSome(&b, other: other, rng: &rng) }
        return b
    }
    // The header: .npy version 1 (a 2-byte length at 8) or safetensors (8 bytes at 0).
    let npy = loader == .npy && b.count >= 10 && b[6] == 1
    let st = (loader == .safetensors || loader == .checkpoint) && b.count >= 8
    if (npy || st) && rng.chance(60) {
        let (lenAt, width, start) = npy ? (8, 2, 10) : (0, 8, 8)
        let len = b[lenAt..<(lenAt + width)].reversed().reduce(0) { $0 << 8 | Int($1) }
        if len >= 0 && len <= b.count - start {
            var header = Array(b[start..<(start + len)])
            mutateSome(&header, other: other, rng: &rng)
            let fixed = rng.chance(85) ? bytes(of: UInt64(header.count), width: width, bigEndian: false) : Array(b[lenAt..<(lenAt + width)])
            return Array(b[..<lenAt]) + fixed + Array(b[(lenAt + width)..<start]) + header + Array(b[(start + len)...])
        }
    }
    mutateSome(&b, other: other, rng: &rng)
    return b
}

// MARK: - Driver

struct Options {
    var loader: Loader
    var seconds = 10.0
    var iterations = Int.max
    var seed: UInt64 = 1
    var corpus: [String] = []
    var crashDir = "."
    var replay: [String] = []
}

func parseOptions() -> Options {
    var args = Array(CommandLine.arguments.dropFirst())
    func usage() -> Never {
        FileHandle.standardError.write(Data("""
        usage: DistillFuzz \(Loader.allCases.map(\.rawValue).joined(separator: "|")) [--seconds S] [--iterations N] [--seed N] [--corpus DIR]... [--crash-dir DIR]
               DistillFuzz LOADER --replay FILE...

        """.utf8))
        exit(64)
    }
    guard let first = args.first, let loader = Loader(rawValue: first) else { usage() }
    args.removeFirst()
    var o = Options(loader: loader)
    while let flag = args.first {
        args.removeFirst()
        if flag == "--replay" { o.replay = args; break }
        guard let value = args.first else { usage() }
        args.removeFirst()
        switch flag {
        case "--seconds": guard let v = Double(value), v >= 0 else { usage() }; o.seconds = v
        case "--iterations": guard let v = Int(value), v >= 0 else { usage() }; o.iterations = v
        case "--seed": guard let v = UInt64(value) else { usage() }; o.seed = v
        case "--corpus": o.corpus.append(value)
        case "--crash-dir": o.crashDir = value
        default: usage()
        }
    }
    return o
}

/// The files of the corpus folders, sorted by path (so the order is reproducible).
func readCorpus(_ dirs: [String]) -> [[UInt8]] {
    dirs.flatMap { dir -> [String] in
        ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []).sorted().map { dir + "/" + $0 }
    }.compactMap { try? FileIO.read($0) }
}

func now() -> Double {
    var t = timespec()
    clock_gettime(CLOCK_MONOTONIC, &t)
    return Double(t.tv_sec) + Double(t.tv_nsec) * 1e-9
}

/// Runs one input with the hang alarm set; returns its error message (nil: it loaded).
func run(_ loader: Loader, _ bytes: [UInt8]) -> String? {
    setCurrent(bytes)
    alarm(10)
    defer { alarm(0) }
    return check(loader, bytes)
}

#if LIBFUZZER
// Built with --sanitize=fuzzer the module is parsed as a library: libFuzzer's own main
// runs the search and calls this entry point.

/// The loader under test, from DISTILL_FUZZ_LOADER.
let fuzzLoader: Loader = {
    guard let name = ProcessInfo.processInfo.environment["DISTILL_FUZZ_LOADER"], let loader = Loader(rawValue: name) else {
        FileHandle.standardError.write(Data("DistillFuzz: set DISTILL_FUZZ_LOADER to one of \(Loader.allCases.map(\.rawValue))\n".utf8))
        exit(64)
    }
    return loader
}()

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    _ = check(fuzzLoader, size == 0 ? [] : Array(UnsafeBufferPointer(start: data, count: size)))
    return 0
}
#else
/// The deterministic mutation loop (see the top of this file).
@main enum FuzzMain {
    static func main() {
        let options = parseOptions()
        let loader = options.loader
        installCrashHandlers(crashDir: options.crashDir, loader: loader)

        if !options.replay.isEmpty {
            for file in options.replay {
                guard let bytes = try? FileIO.read(file) else { fail(loader, "cannot read \(file)") }
                print("\(file): \(run(loader, bytes) ?? "loaded")")
            }
            exit(0)
        }

        var pool = readCorpus(options.corpus)
        if pool.isEmpty { pool = [[]] }
        var seen: [String: Int] = [:]
        for seed in pool { seen[signature(run(loader, seed)), default: 0] += 1 }   // the corpus itself first
        let start = now(), maxLength = max(1 << 16, pool.map(\.count).max() ?? 0)
        var iteration = 0
        while iteration < options.iterations {
            if iteration % 32 == 0 && now() - start >= options.seconds { break }
            var rng = SplitMix64(state: options.seed &* 0x100_0000_01B3 ^ UInt64(iteration))
            let base = pool[rng.below(pool.count)], other = pool[rng.below(pool.count)]
            var input = mutate(base, other: other, loader: loader, rng: &rng)
            if input.count > maxLength { input.removeLast(input.count - maxLength) }
            let result = signature(run(loader, input))
            if seen[result] == nil && pool.count < 4096 { pool.append(input) }
            seen[result, default: 0] += 1
            iteration += 1
        }
        if ProcessInfo.processInfo.environment["DISTILL_FUZZ_OUTCOMES"] == "1" {
            for (outcome, count) in seen.sorted(by: { $0.value > $1.value }) { print(count, outcome) }
        }
        let loaded = seen["ok"] ?? 0
        let elapsed = ((now() - start) * 10).rounded() / 10
        print("DistillFuzz \(loader.rawValue): \(iteration) inputs in \(elapsed) s (seed \(options.seed)), \(loaded) loaded, \(seen.count) distinct outcomes, \(pool.count) inputs kept")
    }
}
#endif
