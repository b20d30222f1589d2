/// Errors thrown by tensor operations: each names what was wrong and what was expected.
public enum TensorError: Error, Equatable, CustomStringConvertible {
    /// Two shapes that had to agree (or broadcast) did not.
    case shapeMismatch(operation: String, lhs: [Int], rhs: [Int], expected: String)
    /// A shape was invalid for the operation (negative size, wrong rank, ...).
    case invalidShape(operation: String, shape: [Int], expected: String)
    /// An axis or index outside the valid range.
    case outOfRange(operation: String, value: Int, validRange: String)
    /// A value count that does not match the shape.
    case countMismatch(operation: String, count: Int, expected: Int)
    /// An argument with an invalid value.
    case invalidArgument(operation: String, message: String)

    /// One line naming the operation and what was expected.
    public var description: String {
        switch self {
        case let .shapeMismatch(op, lhs, rhs, expected):
            return "\(op): shapes \(lhs) and \(rhs) do not fit; expected \(expected)"
        case let .invalidShape(op, shape, expected):
            return "\(op): invalid shape \(shape); expected \(expected)"
        case let .outOfRange(op, value, range):
            return "\(op): \(value) is out of range; valid: \(range)"
        case let .countMismatch(op, count, expected):
            return "\(op): got \(count) values; the shape needs \(expected)"
        case let .invalidArgument(op, message):
            return "\(op): \(message)"
        }
    }
}
