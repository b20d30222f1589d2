import CKernels
import Foundation

/// A learning rate as a function of the step (0-based).
public enum LearningRateSchedule: Sendable, Codable, Equatable {
    /// The same rate throughout.
    case constant(Float)
    /// Linear warmup from 0 to `peak` over `warmupSteps`, then a half-cosine decay to
    /// `minimum` at `totalSteps` (Loshchilov & Hutter 2017, without restarts), constant after.
    case warmupCosine(peak: Float, warmupSteps: Int, totalSteps: Int, minimum: Float)

    /// The rate at `step` (0-based).
    public func learningRate(at step: Int) -> Float {
        switch self {
        case let .constant(lr):
            return lr
        case let .warmupCosine(peak, warmup, total, minimum):
            if step < warmup { return peak * Float(step + 1) / Float(warmup) }
            let span = max(total - warmup, 1)
            let progress = min(Double(step - warmup) / Double(span), 1)
            return minimum + (peak - minimum) * Float(0.5 * (1 + cos(Double.pi * progress)))
        }
    }
}

/// Rescales the gradients of `parameters` so their global L2 norm is at most `maxNorm`
/// (Pascanu et al. 2013). Returns the norm before clipping. The sums are done in double in
/// fixed blocks, so the result does not depend on the thread count.
@discardableResult
package func clipGradientNorm(_ parameters: [Parameter], maxNorm: Float) -> Float {
    let total = parameters.reduce(0.0) { acc, p in
        guard p.isTrainable, let g = p.grad else { return acc }
        return acc + ck_sum_squares(g.pointer, Int64(g.count))
    }
    let norm = Float(total.squareRoot())
    if norm > maxNorm, norm > 0 {
        let scale = maxNorm / (norm + 1e-6)
        for p in parameters where p.isTrainable { p.grad?.scaleInPlace(by: scale) }
    }
    return norm
}

/// An exponential moving average of a module's parameters (Polyak averaging; the EMA
/// weights diffusion models sample with): shadow ← decay·shadow + (1-decay)·value.
package final class ExponentialMovingAverage {
    package var decay: Float
    /// The averaged values by parameter name.
    package private(set) var shadow: [String: Tensor]

    /// Starts from the module's current values.
    package init(_ module: Module, decay: Float) throws {
        guard (0...1).contains(decay) else {
            throw OptimizerError.invalidHyperparameter("EMA decay \(decay) must be in [0, 1]")
        }
        self.decay = decay
        shadow = module.stateDictionary()   // shared copy-on-write until the first update
    }

    /// Folds the module's current values in (one fused pass per parameter).
    package func update(from module: Module, decay override: Float? = nil) throws {
        let d = override ?? decay
        for (name, p) in module.namedParameters {
            guard var s = shadow.removeValue(forKey: name) else { throw ModuleError.unexpectedParameter(name) }
            guard s.shape == p.value.shape else {
                shadow[name] = s
                throw ModuleError.shapeMismatch(name: name, expected: s.shape, got: p.value.shape)
            }
            ck_ema_update(s.uniquePointer(), p.value.pointer, Int64(s.count), d)
            shadow[name] = s
        }
    }

    /// Writes the averaged values into `module` (e.g. a copy used for sampling).
    package func copy(to module: Module) throws { try module.load(shadow) }

    /// Replaces the shadow values (e.g. from a checkpoint).
    package func load(_ values: [String: Tensor]) throws {
        guard Set(values.keys) == Set(shadow.keys) else {
            throw OptimizerError.stateMismatch("EMA names differ from the module's parameters")
        }
        for (k, v) in values where v.shape != shadow[k]!.shape {
            throw ModuleError.shapeMismatch(name: k, expected: shadow[k]!.shape, got: v.shape)
        }
        shadow = values
    }
}
