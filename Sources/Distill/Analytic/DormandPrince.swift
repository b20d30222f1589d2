import Foundation

/// The Dormand–Prince 5(4) embedded Runge–Kutta method (Dormand & Prince 1980) with adaptive
/// steps: the accuracy reference for probability-flow ODEs and the RK45 sampler.
package enum DormandPrince {
    /// The outcome of an integration.
    package struct Result {
        package var state: [Double]
        /// Right-hand-side evaluations used.
        package var evaluations: Int
        package var acceptedSteps: Int
        package var rejectedSteps: Int
    }

    /// Errors of the integrator.
    package enum IntegrationError: Error, CustomStringConvertible {
        case stepSizeUnderflow(at: Double)
        case tooManySteps(Int)
        case nonFinite(at: Double)

        package var description: String {
            switch self {
            case let .stepSizeUnderflow(s): return "ODE integration: the step size vanished at s = \(s) (the problem is too stiff for the tolerance)"
            case let .tooManySteps(n): return "ODE integration: gave up after \(n) steps; loosen the tolerance"
            case let .nonFinite(s): return "ODE integration: the state became non-finite at s = \(s)"
            }
        }
    }

    // Butcher tableau (Dormand & Prince 1980, RK5(4)7M).
    static let c: [Double] = [0, 1.0 / 5, 3.0 / 10, 4.0 / 5, 8.0 / 9, 1, 1]
    static let a: [[Double]] = [
        [],
        [1.0 / 5],
        [3.0 / 40, 9.0 / 40],
        [44.0 / 45, -56.0 / 15, 32.0 / 9],
        [19372.0 / 6561, -25360.0 / 2187, 64448.0 / 6561, -212.0 / 729],
        [9017.0 / 3168, -355.0 / 33, 46732.0 / 5247, 49.0 / 176, -5103.0 / 18656],
        [35.0 / 384, 0, 500.0 / 1113, 125.0 / 192, -2187.0 / 6784, 11.0 / 84],
    ]
    /// 5th-order weights (= the last row of a: first same as last) minus the 4th-order ones.
    static let errorWeights: [Double] = [35.0 / 384 - 5179.0 / 57600, 0, 500.0 / 1113 - 7571.0 / 16695,
                                         125.0 / 192 - 393.0 / 640, -2187.0 / 6784 + 92097.0 / 339200,
                                         11.0 / 84 - 187.0 / 2100, -1.0 / 40]

    /// Integrates dy/ds = f(s, y) from s0 to s1 (either direction) with the error per component
    /// kept below atol + rtol·|y| (the max over components, Hairer–Nørsett–Wanner's norm).
    package static func integrate(_ y0: [Double], from s0: Double, to s1: Double, rtol: Double = 1e-9, atol: Double = 1e-9,
                                 initialStep: Double? = nil, maxSteps: Int = 100_000,
                                 _ f: (Double, [Double]) throws -> [Double]) throws -> Result {
        var y = y0, s = s0
        let direction: Double = s1 >= s0 ? 1 : -1
        var h = direction * min(abs(initialStep ?? (s1 - s0) / 100), abs(s1 - s0))
        var k = [[Double]](repeating: [], count: 7)
        k[0] = try f(s, y)
        var evaluations = 1, accepted = 0, rejected = 0
        let n = y.count
        while direction * (s1 - s) > 1e-14 * max(1, abs(s1)) {
            if accepted + rejected >= maxSteps { throw IntegrationError.tooManySteps(maxSteps) }
            if direction * (s + h - s1) > 0 { h = s1 - s }
            var stage = [Double](repeating: 0, count: n)
            for i in 1..<7 {
                for j in 0..<n {
                    var acc = y[j]
                    for m in 0..<i where a[i][m] != 0 { acc += h * a[i][m] * k[m][j] }
                    stage[j] = acc
                }
                k[i] = try f(s + c[i] * h, stage)
                evaluations += 1
            }
            // stage now holds the 5th-order solution (the 7th stage's input, FSAL).
            var err = 0.0
            for j in 0..<n {
                var e = 0.0
                for m in 0..<7 where errorWeights[m] != 0 { e += errorWeights[m] * k[m][j] }
                let scale = atol + rtol * max(abs(y[j]), abs(stage[j]))
                err = max(err, abs(h * e) / scale)
            }
            if !err.isFinite { throw IntegrationError.nonFinite(at: s) }
            if err <= 1 {
                s += h
                y = stage
                k[0] = k[6]
                accepted += 1
            } else {
                rejected += 1
            }
            let factor = err == 0 ? 5 : min(5, max(0.2, 0.9 * Foundation.pow(err, -0.2)))
            h *= factor
            if abs(h) < 1e-14 * max(1, abs(s)) { throw IntegrationError.stepSizeUnderflow(at: s) }
        }
        return Result(state: y, evaluations: evaluations, acceptedSteps: accepted, rejectedSteps: rejected)
    }
}
