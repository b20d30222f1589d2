import CKernels

/// Errors of optimizers and their state.
package enum OptimizerError: Error, CustomStringConvertible {
    case invalidHyperparameter(String)
    case stateMismatch(String)

    package var description: String {
        switch self {
        case let .invalidHyperparameter(m): return "optimizer: \(m)"
        case let .stateMismatch(m): return "optimizer state: \(m)"
        }
    }
}

/// An optimizer over a module's named parameters, stepping with their ``Parameter/grad``.
///
/// State (moments, step count) is keyed by parameter name, so it can be saved in and
/// restored from a checkpoint.
package protocol Optimizer: AnyObject {
    /// The learning rate for the next step (schedules set it each step).
    var learningRate: Float { get set }
    /// Steps taken.
    var step: Int { get }
    /// Applies one update to every trainable parameter that has a gradient.
    func update() throws
    /// Named state tensors (e.g. "exp_avg.layers.0.weight").
    func stateTensors() -> [String: Tensor]
    /// Scalar state and hyperparameters, as strings (JSON-friendly).
    func stateScalars() -> [String: String]
    /// Restores state saved by ``stateTensors()`` and ``stateScalars()``.
    func loadState(tensors: [String: Tensor], scalars: [String: String]) throws
}

/// Adam (Kingma & Ba 2015) or AdamW (Loshchilov & Hutter 2019, decoupled weight decay),
/// in PyTorch's formulation, one fused kernel pass per parameter.
package final class Adam: Optimizer {
    package var learningRate: Float
    package let beta1: Float, beta2: Float, epsilon: Float, weightDecay: Float
    /// True: AdamW's decoupled decay p ← p(1 - lr·wd); false: L2 added to the gradient.
    package let decoupledWeightDecay: Bool
    package private(set) var step = 0
    let params: [(name: String, parameter: Parameter)]
    var m: [String: Tensor] = [:], v: [String: Tensor] = [:]

    package init(_ module: Module, learningRate: Float = 1e-3, beta1: Float = 0.9, beta2: Float = 0.999,
                epsilon: Float = 1e-8, weightDecay: Float = 0, decoupledWeightDecay: Bool = false) throws {
        guard learningRate >= 0, (0..<1).contains(beta1), (0..<1).contains(beta2), epsilon > 0, weightDecay >= 0 else {
            throw OptimizerError.invalidHyperparameter(
                "Adam needs lr >= 0, betas in [0, 1), eps > 0, weight decay >= 0; got lr \(learningRate), betas (\(beta1), \(beta2)), eps \(epsilon), wd \(weightDecay)")
        }
        self.learningRate = learningRate
        self.beta1 = beta1; self.beta2 = beta2; self.epsilon = epsilon; self.weightDecay = weightDecay
        self.decoupledWeightDecay = decoupledWeightDecay
        self.params = module.namedParameters
    }

    /// AdamW with PyTorch's defaults (weight decay 0.01).
    package static func adamW(_ module: Module, learningRate: Float = 1e-3, beta1: Float = 0.9, beta2: Float = 0.999,
                             epsilon: Float = 1e-8, weightDecay: Float = 0.01) throws -> Adam {
        try Adam(module, learningRate: learningRate, beta1: beta1, beta2: beta2, epsilon: epsilon,
                 weightDecay: weightDecay, decoupledWeightDecay: true)
    }

    package func update() throws {
        step += 1
        for (name, p) in params where p.isTrainable {
            guard let g = p.grad else { continue }
            guard g.shape == p.value.shape else {
                throw OptimizerError.stateMismatch("gradient of '\(name)' has shape \(g.shape); the parameter has \(p.value.shape)")
            }
            // Taken out of the dictionaries so the buffers are uniquely owned and updated in place.
            var mt = m.removeValue(forKey: name) ?? Tensor.zeros(like: g)
            var vt = v.removeValue(forKey: name) ?? Tensor.zeros(like: g)
            ck_adam_step(p.value.uniquePointer(), mt.uniquePointer(), vt.uniquePointer(), g.pointer, Int64(g.count),
                         learningRate, beta1, beta2, epsilon, weightDecay, decoupledWeightDecay ? 1 : 0, Int64(step), 1)
            m[name] = mt; v[name] = vt
        }
    }

    package func stateTensors() -> [String: Tensor] {
        var out: [String: Tensor] = [:]
        for (k, t) in m { out["exp_avg." + k] = t }
        for (k, t) in v { out["exp_avg_sq." + k] = t }
        return out
    }

    package func stateScalars() -> [String: String] {
        ["type": decoupledWeightDecay ? "adamw" : "adam", "step": String(step), "lr": String(learningRate),
         "beta1": String(beta1), "beta2": String(beta2), "eps": String(epsilon), "weight_decay": String(weightDecay)]
    }

    package func loadState(tensors: [String: Tensor], scalars: [String: String]) throws {
        guard let s = scalars["step"], let st = Int(s), st >= 0 else { throw OptimizerError.stateMismatch("missing or bad 'step'") }
        var newM: [String: Tensor] = [:], newV: [String: Tensor] = [:]
        let shapes = Dictionary(uniqueKeysWithValues: params.map { ($0.name, $0.parameter.value.shape) })
        for (key, t) in tensors {
            let (dict, name): (String, String)
            if key.hasPrefix("exp_avg_sq.") { (dict, name) = ("v", String(key.dropFirst("exp_avg_sq.".count))) }
            else if key.hasPrefix("exp_avg.") { (dict, name) = ("m", String(key.dropFirst("exp_avg.".count))) }
            else { throw OptimizerError.stateMismatch("unknown state tensor '\(key)'") }
            guard let shape = shapes[name] else { throw OptimizerError.stateMismatch("state for unknown parameter '\(name)'") }
            guard shape == t.shape else { throw OptimizerError.stateMismatch("'\(key)' has shape \(t.shape); expected \(shape)") }
            if dict == "m" { newM[name] = t } else { newV[name] = t }
        }
        step = st; m = newM; v = newV
        if let lr = scalars["lr"].flatMap(Float.init) { learningRate = lr }
    }
}

/// Stochastic gradient descent with optional momentum, dampening, Nesterov and L2 weight
/// decay (PyTorch's formulation; Sutskever et al. 2013 for Nesterov momentum).
package final class SGD: Optimizer {
    package var learningRate: Float
    package let momentum: Float, dampening: Float, weightDecay: Float, nesterov: Bool
    package private(set) var step = 0
    let params: [(name: String, parameter: Parameter)]
    var buffers: [String: Tensor] = [:]

    package init(_ module: Module, learningRate: Float, momentum: Float = 0, dampening: Float = 0,
                weightDecay: Float = 0, nesterov: Bool = false) throws {
        guard learningRate >= 0, momentum >= 0, weightDecay >= 0, !nesterov || (momentum > 0 && dampening == 0) else {
            throw OptimizerError.invalidHyperparameter("SGD needs lr, momentum, weight decay >= 0, and Nesterov needs momentum > 0 with no dampening")
        }
        self.learningRate = learningRate
        self.momentum = momentum; self.dampening = dampening; self.weightDecay = weightDecay; self.nesterov = nesterov
        self.params = module.namedParameters
    }

    package func update() throws {
        step += 1
        for (name, p) in params where p.isTrainable {
            guard let g = p.grad else { continue }
            guard g.shape == p.value.shape else {
                throw OptimizerError.stateMismatch("gradient of '\(name)' has shape \(g.shape); the parameter has \(p.value.shape)")
            }
            let first = buffers[name] == nil
            var buf = momentum != 0 ? (buffers.removeValue(forKey: name) ?? Tensor.zeros(like: g)) : nil
            ck_sgd_step(p.value.uniquePointer(), buf?.uniquePointer(), g.pointer, Int64(g.count), learningRate, momentum,
                        dampening, weightDecay, nesterov ? 1 : 0, first ? 1 : 0, 1)
            buffers[name] = buf
        }
    }

    package func stateTensors() -> [String: Tensor] {
        Dictionary(uniqueKeysWithValues: buffers.map { ("momentum_buffer." + $0.key, $0.value) })
    }

    package func stateScalars() -> [String: String] {
        ["type": "sgd", "step": String(step), "lr": String(learningRate), "momentum": String(momentum),
         "dampening": String(dampening), "weight_decay": String(weightDecay), "nesterov": String(nesterov)]
    }

    package func loadState(tensors: [String: Tensor], scalars: [String: String]) throws {
        guard let s = scalars["step"], let st = Int(s), st >= 0 else { throw OptimizerError.stateMismatch("missing or bad 'step'") }
        let shapes = Dictionary(uniqueKeysWithValues: params.map { ($0.name, $0.parameter.value.shape) })
        var newBuffers: [String: Tensor] = [:]
        for (key, t) in tensors {
            guard key.hasPrefix("momentum_buffer.") else { throw OptimizerError.stateMismatch("unknown state tensor '\(key)'") }
            let name = String(key.dropFirst("momentum_buffer.".count))
            guard let shape = shapes[name], shape == t.shape else {
                throw OptimizerError.stateMismatch("'\(key)' does not match a parameter of shape \(t.shape)")
            }
            newBuffers[name] = t
        }
        step = st; buffers = newBuffers
        if let lr = scalars["lr"].flatMap(Float.init) { learningRate = lr }
    }
}
