/// A trainable tensor: a named slot of a ``Module``.
///
/// Gradient functions trace ``value`` while they run and store the result in ``grad``;
/// optimizers, EMA and checkpoints reach parameters through ``Module/namedParameters``.
public final class Parameter {
    /// The current value.
    public var value: Tensor
    /// The last gradient computed for it, if any.
    public var grad: Tensor?
    /// False freezes it: gradient functions treat it as a constant and optimizers skip it.
    package var isTrainable: Bool

    /// A parameter holding `value` (detached from any tape); frozen unless `trainable`.
    public init(_ value: Tensor, trainable: Bool = true) {
        self.value = value.detached()
        self.isTrainable = trainable
    }
}

/// A network building block with named, enumerable parameters.
///
/// Conformers list their own parameters and sub-modules in ``visitParameters(_:)``; every
/// other facility (parameter lists, counts, freezing, copying, state dictionaries) derives
/// from it.
public protocol Module: AnyObject {
    /// Calls `visit` with each parameter and its dotted name (`"layers.0.weight"`), in a
    /// fixed order.
    func visitParameters(_ visit: (String, Parameter) throws -> Void) rethrows
}

/// Errors of module state handling.
public enum ModuleError: Error, CustomStringConvertible {
    /// The weights lack a parameter the module has.
    case missingParameter(String)
    /// The weights have a parameter the module does not.
    case unexpectedParameter(String)
    /// A parameter's shape differs from the module's.
    case shapeMismatch(name: String, expected: [Int], got: [Int])

    /// One line naming the parameter and what was wrong.
    public var description: String {
        switch self {
        case let .missingParameter(n): return "module state: parameter '\(n)' is missing from the source"
        case let .unexpectedParameter(n): return "module state: the source has '\(n)', which this module does not"
        case let .shapeMismatch(n, e, g): return "module state: parameter '\(n)' has shape \(g); expected \(e)"
        }
    }
}

extension Module {
    /// Visits a sub-module's parameters under `prefix.`.
    public func visitChild(_ child: Module, as prefix: String, _ visit: (String, Parameter) throws -> Void) rethrows {
        try child.visitParameters { try visit(prefix + "." + $0, $1) }
    }

    /// Every parameter with its name, in visiting order.
    package var namedParameters: [(name: String, parameter: Parameter)] {
        var out: [(String, Parameter)] = []
        visitParameters { out.append(($0, $1)) }
        return out
    }

    /// Every parameter, in visiting order.
    package var parameters: [Parameter] { namedParameters.map { $0.parameter } }

    /// Parameters not frozen.
    package var trainableParameters: [Parameter] { parameters.filter { $0.isTrainable } }

    /// Total number of scalars in all parameters.
    public var parameterCount: Int { parameters.reduce(0) { $0 + $1.value.count } }

    /// Values by name.
    public func stateDictionary() -> [String: Tensor] {
        Dictionary(uniqueKeysWithValues: namedParameters.map { ($0.name, $0.parameter.value) })
    }

    /// Loads values by name; every parameter must be present with its shape, and nothing
    /// else may be present. Nothing is changed when it throws.
    public func load(_ state: [String: Tensor]) throws {
        let named = namedParameters
        let names = Set(named.map { $0.name })
        if let extra = state.keys.sorted().first(where: { !names.contains($0) }) { throw ModuleError.unexpectedParameter(extra) }
        for (name, p) in named {
            guard let v = state[name] else { throw ModuleError.missingParameter(name) }
            guard v.shape == p.value.shape else { throw ModuleError.shapeMismatch(name: name, expected: p.value.shape, got: v.shape) }
        }
        for (name, p) in named { p.value = state[name]!.detached() }
    }

    /// Copies every parameter value of `other` (same names and shapes), e.g. a teacher into
    /// its student. Values are shared copy-on-write, so later training of one leaves the
    /// other intact.
    package func copyParameters(from other: Module) throws { try load(other.stateDictionary()) }

    /// Copies the parameters this module shares with `other` and sets the trainable ones
    /// `other` lacks to zero, e.g. a teacher into a student that has an extra input, which then
    /// starts silent, so the student begins as the teacher (frozen ones, such as fixed
    /// embedding frequencies, keep their values). A shared parameter whose last axis is
    /// longer here (inputs appended at the end, as an MLP's guidance features) gets `other`'s
    /// values in its leading part and zeros after. Returns the names zeroed in whole or in
    /// part. Any other shape difference, or a parameter of `other` this module lacks, throws,
    /// and nothing is changed.
    @discardableResult
    package func copySharedParameters(from other: Module) throws -> [String] {
        var state = other.stateDictionary()
        var zeroed: [String] = []
        for (name, p) in namedParameters {
            let shape = p.value.shape
            guard let v = state[name] else {
                state[name] = p.isTrainable ? Tensor.zeros(like: p.value) : p.value
                if p.isTrainable { zeroed.append(name) }
                continue
            }
            let r = shape.count
            if v.shape != shape, r > 0, v.rank == r, v.shape.dropLast() == shape.dropLast(), v.shape[r - 1] < shape[r - 1] {
                state[name] = try Tensor.concat([v, Tensor.zeros(Array(shape.dropLast()) + [shape[r - 1] - v.shape[r - 1]])], axis: r - 1)
                zeroed.append(name)
            }
        }
        try load(state)
        return zeroed
    }

    /// Clears every parameter's gradient.
    package func zeroGradients() { for p in parameters { p.grad = nil } }

    /// Evaluates the scalar loss `f` and stores the gradients of this module's trainable
    /// parameters in their ``Parameter/grad``. Returns the loss.
    @discardableResult
    package func valueWithGradient(accumulate: Bool = false, _ f: () throws -> Tensor) throws -> Float {
        try DistillCore.valueWithGradient(of: parameters, accumulate: accumulate, f)
    }
}
