import Distill
import Foundation
import Testing

/// A denoiser that counts its calls: each call is one network evaluation (NFE).
final class CountingDenoiser<Base: Denoiser>: Denoiser {
    let base: Base
    private(set) var calls = 0
    init(_ base: Base) { self.base = base }
    func predict(_ x: Tensor, at levels: NoiseLevels, labels: [Int]?) throws -> Prediction {
        calls += 1
        return try base.predict(x, at: levels, labels: labels)
    }
}

/// ``SamplingPlan`` is the one dispatcher: what it runs must be exactly the sampler on the grid
/// (and, for the singlestep DPM-Solvers, the orders) its documentation describes, and the NFE
/// it reports and budgets must be the evaluations really made.
@Suite struct SamplingPlanTests {
    static let ring = GaussianMixture.ring8()
    static let nonAdaptive = SamplerKind.diffusionSamplers.filter { $0 != .rk45 && $0 != .dpmSolverAdaptive }

    /// One plan with the grid and orders it must resolve to, built here from the grid
    /// constructors and the official DPM-Solver allocation (Lu et al. 2022, Appendix D.1).
    struct Case {
        let name: String
        let plan: SamplingPlan
        let process: DiffusionProcess
        let grid: NoiseGrid
        let orders: [Int]?
    }

    /// Noisy steps and orders of the singlestep DPM-Solvers: the official allocation of a
    /// budget of noisy NFE (spaced plans), and of the largest budget whose allocation has as
    /// many steps as a grid with explicit levels (its noisy steps all of order ≥ 2 but the last).
    static let allocations: [String: [Int: [Int]]] = [
        "budget 9": [1: Array(repeating: 1, count: 9), 2: [2, 2, 2, 2, 1], 3: [3, 3, 2, 1]],
        "budget 7": [1: Array(repeating: 1, count: 7), 2: [2, 2, 2, 1], 3: [3, 3, 1]],
        "9 steps": [1: Array(repeating: 1, count: 9), 2: Array(repeating: 2, count: 9), 3: Array(repeating: 3, count: 8) + [2]],
        "10 steps": [1: Array(repeating: 1, count: 10), 2: Array(repeating: 2, count: 10), 3: Array(repeating: 3, count: 9) + [2]],
    ]

    /// Samples of the ring (Analytic-DPM's moments need data) and `rows` rows of unit noise.
    static func inputs(rows: Int) throws -> (data: Tensor, z: Tensor) {
        var rng = Philox(seed: 5)
        return (try ring.sample(256, seed: 4).samples, try rng.normal([rows, 2]))
    }

    /// The most steps whose NFE fits `budget` (adaptive samplers: one noisy step).
    static func steps(_ kind: SamplerKind, budget: Int, cleanEnd: Bool) -> Int {
        guard kind.evaluations(steps: 1, cleanEnd: cleanEnd) != nil else { return cleanEnd ? 2 : 1 }
        return (1...budget).last { kind.evaluations(steps: $0, cleanEnd: cleanEnd)! <= budget } ?? 1
    }

    /// Explicit VP-linear levels at `count` times uniform in [1, 0.02], plus a clean end.
    static func explicitLevels(_ count: Int, cleanEnd: Bool) -> [NoiseLevel] {
        let vp = DiffusionProcess.vpLinear()
        let levels = (0..<count).map { i -> NoiseLevel in
            let t = 1 - 0.98 * Double(i) / Double(count - 1)
            return NoiseLevel(alpha: vp.alpha(t), sigma: vp.sigma(t))
        }
        return cleanEnd ? levels + [.clean] : levels
    }

    /// Spaced plans (EDM's grid with a final denoise, log-SNR without one, DDPM's trailing
    /// training steps) and plans on explicit levels, with and without a clean end.
    static func cases(_ kind: SamplerKind) throws -> [Case] {
        let order = [SamplerKind.dpmSolver1: 1, .dpmSolver2: 2, .dpmSolver3: 3][kind]
        func spaced(_ name: String, budget: Int, clean: Bool, _ plan: SamplingPlan, _ process: DiffusionProcess,
                    _ grid: (Int) throws -> NoiseGrid) throws -> Case {
            let noisy = order.map { allocations["budget \(clean ? budget - 1 : budget)"]![$0]! }
            let orders = noisy.map { clean ? $0 + [1] : $0 }
            return Case(name: name, plan: plan, process: process,
                        grid: try grid(orders?.count ?? steps(kind, budget: budget, cleanEnd: clean)), orders: orders)
        }
        func explicit(_ name: String, levels: [NoiseLevel]) throws -> Case {
            let clean = levels.last!.isClean
            let noisy = order.map { allocations["\(levels.count - (clean ? 2 : 1)) steps"]![$0]! }
            return Case(name: name, plan: SamplingPlan(sampler: kind, levels: levels), process: .vpLinear(),
                        grid: try NoiseGrid(levels: levels, process: DiffusionProcess.vpLinear()), orders: noisy.map { clean ? $0 + [1] : $0 })
        }
        return [
            try spaced("karras, 10 NFE", budget: 10, clean: true, SamplingPlan(sampler: kind, nfe: 10), .vpLinear()) {
                try .karras(DiffusionProcess.vpLinear(), steps: $0)
            },
            try spaced("log-SNR, 9 NFE, no final denoise", budget: 9, clean: false,
                       SamplingPlan(sampler: kind, nfe: 9, spacing: .logSNR, finalDenoise: false), .vpCosine()) {
                try .logSNRUniform(DiffusionProcess.vpCosine(), steps: $0)
            },
            try spaced("trailing DDPM steps, 8 NFE", budget: 8, clean: true, SamplingPlan(sampler: kind, nfe: 8, spacing: .trailing), .ddpm()) {
                try .discrete(DiscreteDDPMProcess(), steps: $0, spacing: .trailing)
            },
            try explicit("10 explicit steps to a clean end", levels: explicitLevels(10, cleanEnd: true)),
            try explicit("10 explicit noisy steps", levels: explicitLevels(11, cleanEnd: false)),
        ]
    }

    /// Every sampler through ``SamplingPlan/run(_:process:from:labels:seed:data:dataRange:progress:)``
    /// gives the same bits and the same NFE as the sampler itself (``SamplerKind/run``) on the
    /// grid and orders the plan is documented to make, on the exact ring; the plan's
    /// ``SamplingPlan/evaluations(process:)`` is that NFE; and the exact mixture as a
    /// ``TrainedModel`` samples the same bits with the plan.
    @Test(arguments: SamplerKind.diffusionSamplers)
    func planRunsTheSamplerOnItsGrid(_ kind: SamplerKind) throws {
        let (data, z) = try Self.inputs(rows: 6)
        for c in try Self.cases(kind) {
            let (grid, orders) = try c.plan.resolve(process: c.process)
            #expect(grid.levels == c.grid.levels && orders == c.orders, "\(kind.rawValue), \(c.name): grid or orders differ")
            let x = z * Float(c.grid.levels[0].sigma)
            let viaPlan = CountingDenoiser(Self.ring), direct = CountingDenoiser(Self.ring)
            let a = try c.plan.run(viaPlan, process: c.process, from: x, seed: 7, data: data)
            let moments = kind == .analyticDPM ? try analyticDPMMoments(direct, grid: c.grid, data: data) : nil
            let b = try kind.run(direct, from: x, grid: c.grid, orders: c.orders, options: .init(seed: 7), analyticMoments: moments)
            #expect(firstBitMismatch(a.sample.scalars, b.sample.scalars) == nil, "\(kind.rawValue), \(c.name): samples differ")
            #expect(a.evaluations == b.evaluations && viaPlan.calls == direct.calls, "\(kind.rawValue), \(c.name)")
            #expect(try c.plan.evaluations(process: c.process) == kind.evaluations(steps: c.grid.steps, cleanEnd: c.grid.levels.last!.isClean,
                                                                                   orders: c.orders))
            if kind.evaluations(steps: 1, cleanEnd: false) != nil {
                #expect(try c.plan.evaluations(process: c.process) == a.evaluations, "\(kind.rawValue), \(c.name)")
            }
            if c.process == .vpLinear() {
                let model = try TrainedModel(exact: Self.ring).sample(from: x, plan: c.plan, seed: 7, data: data)
                #expect(firstBitMismatch(model.sample.scalars, a.sample.scalars) == nil && model.evaluations == a.evaluations,
                        "\(kind.rawValue), \(c.name): the exact model samples otherwise")
            }
        }
    }

    /// With explicit levels the NFE follows from the grid alone: a 10-step grid costs the same
    /// whatever process the model was trained under, and DPM-Solver-2/3 allocate orders ≥ 2 on
    /// every noisy step but the last (order 1 into σ = 0).
    @Test func explicitGridsCostWhatTheirStepsCost() throws {
        let levels = Self.explicitLevels(10, cleanEnd: true)
        for kind in [SamplerKind.dpmSolver2, .dpmSolver3, .heun, .dpmpp2M, .pndm] {
            let plan = SamplingPlan(sampler: kind, levels: levels)
            let costs = try [DiffusionProcess.vpLinear(), .vpCosine(), .ve(), .edm(), .ddpm()].map { try plan.evaluations(process: $0) }
            let orders = try plan.resolve(process: DiffusionProcess.vpLinear()).orders
            let cost = kind.evaluations(steps: 10, cleanEnd: true, orders: orders)
            #expect(Set(costs).count == 1 && costs[0] == cost, "\(kind.rawValue): \(costs)")
            if let orders {
                #expect(orders.count == 10 && orders.last == 1 && orders.dropLast(2).allSatisfy { $0 >= 2 }, "\(kind.rawValue): \(orders)")
            }
        }
    }

    /// ``SamplerKind/evaluations(steps:cleanEnd:orders:)`` is the NFE counted by running every
    /// non-adaptive sampler on grids of 1…12 steps, with and without a step into σ = 0 (the
    /// singlestep DPM-Solvers with their full order on every step, and with the allocated
    /// orders of a plan on the same grid).
    @Test(arguments: nonAdaptive)
    func evaluationFormulaIsTheCountedNFE(_ kind: SamplerKind) throws {
        let vp = DiffusionProcess.vpLinear()
        let (data, z) = try Self.inputs(rows: 4)
        for clean in [false, true] {
            for k in 1...12 {
                let grid = try NoiseGrid.karras(vp, steps: k, finalDenoise: clean)
                let moments = kind == .analyticDPM ? try analyticDPMMoments(Self.ring, grid: grid, data: data) : nil
                let allocated = try SamplingPlan(sampler: kind, levels: grid.levels).resolve(process: vp).orders
                for orders in Set([nil, allocated]) {
                    let counting = CountingDenoiser(Self.ring)
                    let r = try kind.run(counting, from: z * Float(grid.levels[0].sigma), grid: grid, orders: orders, analyticMoments: moments)
                    #expect(r.evaluations == counting.calls, "\(kind.rawValue), \(k) steps: reports \(r.evaluations) for \(counting.calls) calls")
                    let formula = kind.evaluations(steps: k, cleanEnd: clean, orders: orders)
                    #expect(formula == counting.calls, "\(kind.rawValue), \(k) steps\(clean ? " to σ = 0" : ""), orders \(orders.map { "\($0)" } ?? "full"): formula \(formula!), counted \(counting.calls)")
                }
            }
        }
    }

    /// A plan never spends more than its budget: for budgets 1…30 that fit one step, with and
    /// without a final denoise, the NFE counted is at most the budget, is what the result and
    /// ``SamplingPlan/evaluations(process:)`` report, and uses the budget as fully as the
    /// sampler allows (one more step would not fit; the singlestep DPM-Solvers spend all of it).
    @Test(arguments: nonAdaptive)
    func plansStayWithinTheirBudget(_ kind: SamplerKind) throws {
        let vp = DiffusionProcess.vpLinear()
        let (data, z) = try Self.inputs(rows: 4)
        for clean in [false, true] {
            let singlestep = [SamplerKind.dpmSolver1, .dpmSolver2, .dpmSolver3].contains(kind)
            let smallest = singlestep ? (clean ? 2 : 1) : kind.evaluations(steps: 1, cleanEnd: clean)!
            for budget in smallest...30 {
                let plan = SamplingPlan(sampler: kind, nfe: budget, finalDenoise: clean)
                let counting = CountingDenoiser(Self.ring)
                let x = try z * Float(plan.resolve(process: vp).grid.levels[0].sigma)
                let r = try plan.run(counting, process: vp, from: x, data: data)
                let grid = try plan.resolve(process: vp).grid
                let spent = counting.calls - (kind == .analyticDPM ? grid.levels.filter { !$0.isClean }.count : 0)   // moments: 1 per noisy level
                let steps = grid.steps
                let reported = try plan.evaluations(process: vp)
                #expect(spent <= budget && r.evaluations == spent && reported == spent,
                        "\(kind.rawValue), budget \(budget)\(clean ? " with a final denoise" : ""): spent \(spent), reported \(r.evaluations)")
                #expect(singlestep ? spent == budget : kind.evaluations(steps: steps + 1, cleanEnd: clean)! > budget,
                        "\(kind.rawValue), budget \(budget): \(steps) steps spend \(spent)")
            }
        }
    }
}
