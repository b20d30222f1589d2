import Foundation

/// A progress line for long work, on standard error: redrawn in place on a terminal, printed
/// every `plainEvery` updates otherwise (logs, pipes), silent when quiet.
struct ProgressLine {
    let total: Int
    let quiet: Bool
    let plainEvery: Int
    let start = Date()
    private let isTerminal = isatty(STDERR_FILENO) != 0

    init(total: Int, quiet: Bool, plainEvery: Int = 100) {
        self.total = total
        self.quiet = quiet
        self.plainEvery = max(plainEvery, 1)
    }

    /// Reports `done` of `total` units with a message.
    func update(_ done: Int, _ message: String) {
        guard !quiet else { return }
        let elapsed = Date().timeIntervalSince(start)
        let rate = elapsed > 0 ? Double(done) / elapsed : 0
        let eta = rate > 0 ? Double(total - done) / rate : 0
        let line = "[\(done)/\(total)] \(message)  \(String(format: "%.1f", rate)) it/s  ETA \(Self.clock(eta))"
        if isTerminal {
            status("\r\u{1B}[2K" + line, terminator: done == total ? "\n" : "")
        } else if done % plainEvery == 0 || done == total {
            status(line)
        }
    }

    static func clock(_ s: Double) -> String {
        let t = Int(s.rounded())
        return t >= 3600 ? String(format: "%d:%02d:%02d", t / 3600, t / 60 % 60, t % 60) : String(format: "%d:%02d", t / 60, t % 60)
    }
}

/// Writes a status line to standard error (progress and notes; results go to standard output).
func status(_ text: String, terminator: String = "\n") {
    FileHandle.standardError.write(Data((text + terminator).utf8))
}

/// Prints a one-line error to stderr and exits non-zero.
func fail(_ message: String) -> Never {
    FileHandle.standardError.write(Data(("distill: error: " + message + "\n").utf8))
    exit(1)
}

/// Flushes stdout (streamed records appear at once, even in pipes).
func flushStandardOutput() { fflush(nil) }
