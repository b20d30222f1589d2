import Distill
import Foundation

/// Command-line usage errors (printed as one line).
enum CLIError: Error, CustomStringConvertible {
    case usage(String)
    var description: String {
        switch self { case let .usage(m): return m }
    }
}

/// Parses "256,256,256" for the option `name`: 1 to 64 whole numbers in 1...`maximum`.
func parseInts(_ s: String, name: String, maximum: Int = 65_536) throws -> [Int] {
    let v = s.split(separator: ",", omittingEmptySubsequences: false).map { Int($0.trimmingCharacters(in: .whitespaces)) }
    guard (1...64).contains(v.count), v.allSatisfy({ $0.map { (1...maximum).contains($0) } ?? false }) else {
        throw CLIError.usage("\(name) '\(s)': expected 1 to 64 whole numbers in 1...\(maximum), separated by commas")
    }
    return v.map { $0! }
}

/// Parses "1,0,3" for the option `name`: finite numbers.
func parseFloats(_ s: String, name: String) throws -> [Float] {
    let v = s.split(separator: ",", omittingEmptySubsequences: false).map { Float($0.trimmingCharacters(in: .whitespaces)) }
    guard (1...64).contains(v.count), v.allSatisfy({ $0?.isFinite ?? false }) else {
        throw CLIError.usage("\(name) '\(s)': expected 1 to 64 finite numbers separated by commas")
    }
    return v.map { $0! }
}

/// Throws unless `value` lies in `range`, naming the option.
func check<T: Comparable>(_ value: T, in range: ClosedRange<T>, _ option: String) throws {
    guard range.contains(value) else { throw CLIError.usage("\(option) must be in \(range.lowerBound)...\(range.upperBound); got \(value)") }
}

/// Throws unless `value` is finite and in `range`, naming the option.
func check(_ value: Float, in range: ClosedRange<Float>, _ option: String) throws {
    guard value.isFinite, range.contains(value) else {
        throw CLIError.usage("\(option) must be a finite number in \(range.lowerBound)...\(range.upperBound); got \(value)")
    }
}

/// Creates the folder for outputs, or fails with one line.
func makeFolder(_ path: String) {
    do { try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true) } catch {
        fail("cannot create folder '\(path)': \(error.localizedDescription)")
    }
}

/// Runs `body`, turning any thrown error into one clear line and exit code 1.
func reporting<T>(_ body: () throws -> T) -> T {
    do { return try body() } catch { fail("\(error)") }
}

/// The same file, by its resolved absolute path (so `a/../x` and `x` compare equal).
func sameFile(_ a: String, _ b: String) -> Bool {
    URL(fileURLWithPath: a).standardizedFileURL.resolvingSymlinksInPath().path
        == URL(fileURLWithPath: b).standardizedFileURL.resolvingSymlinksInPath().path
}
