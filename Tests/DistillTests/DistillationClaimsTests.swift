import Distill
import Foundation
import Testing

/// What each D2F method claims, checked on the exact ring8 mixture (issue 23, part 1): every
/// student is trained by the ``Distiller`` with the exact mixture as its teacher and compared,
/// on the same noise, with the teacher's DDIM at the same NFE and with the teacher's usual
/// sampler (DPM-Solver++(2M), 21 NFE).
///
/// Two measures, both over four seeds of evaluation noise (2000 rows each):
/// - the **map error**, the RMS distance to the exact probability-flow ODE map of the same noise
///   (`solveProbabilityFlow`, to 1e-9): exact given the noise, for the students that learn the
///   teacher's deterministic map (KD, PD, reflow, and CD's one-step sample);
/// - the **sliced-W2** to exact samples (a fresh draw per seed), whose seed-to-seed spread and
///   exact-vs-exact floor at the same sample size each test measures; on ring8 it is dominated by
///   how many samples fall in each mode, so students are compared with the teacher *on the same
///   noise*, which shares that fluctuation.
///
/// Budgets (MLPs of 128×3, batch 256, 1500–6000 steps a stage) are far below the evidence pages'
/// (3000 steps of 512); the thresholds are set from the figures measured at these budgets over
/// training seeds 1, 2 and 3 (quoted next to each), with room for a changed rounding (another
/// SIMD path) to move a student as much as a new training seed does. Results do not depend on
/// the thread count.
@Suite(.serialized) struct DistillationClaimsTests {
    static let mixture = GaussianMixture.ring8()
    static var teacher: TrainedModel { TrainedModel(exact: mixture) }
    /// Built once, read only (the suite runs serialized).
    nonisolated(unsafe) static let evaluation = try! Evaluation(mixture: mixture, teacher: teacher)

    /// Figures of one measure, one per evaluation seed.
    struct Series: CustomStringConvertible {
        let values: [Double]
        var worst: Double { values.max()! }
        var best: Double { values.min()! }
        var spread: Double { worst - best }
        var description: String { values.map { String(format: "%.4f", $0) }.joined(separator: " ") }
    }

    /// The evaluation noise, the exact ODE map of each, and exact samples: fixed seeds shared by
    /// every test.
    struct Evaluation {
        static let seeds = 0..<4, count = 2000
        let mixture: GaussianMixture
        let teacher: TrainedModel
        /// Unit noise per seed.
        let noise: [Tensor]
        /// The exact ODE map of the teacher's starting state σ_T·z (VP-linear, t = 1).
        let truth: [Tensor]
        /// Exact samples per seed (the reference of the sliced-W2), and another draw (the floor).
        let exact: [Tensor], another: [Tensor]
        /// The sliced-W2 of two exact draws of the same size: the floor any sampler is measured against.
        let floor: Series
        /// The teacher's usual sampler and its figures.
        static let teacherPlan = SamplingPlan(sampler: .dpmpp2M, nfe: 21)
        let teacherMap: Series, teacherSW2: Series

        init(mixture: GaussianMixture, teacher: TrainedModel) throws {
            self.mixture = mixture
            self.teacher = teacher
            let start = try SamplingPlan(sampler: .ddim, nfe: 1).startingLevel(process: .vpLinear())
            noise = try Self.seeds.map { s in var rng = Philox(seed: 500 + UInt64(s)); return try rng.normal([Self.count, mixture.dimension]) }
            truth = try noise.map { try mixture.solveProbabilityFlow($0 * Float(start.sigma), from: (start.alpha, start.sigma), to: (1, 0)).0 }
            let exact = try Self.seeds.map { try mixture.sample(Self.count, seed: 600 + UInt64($0)).samples }
            let another = try Self.seeds.map { try mixture.sample(Self.count, seed: 700 + UInt64($0)).samples }
            let truth = self.truth
            floor = Series(values: try Self.seeds.map { try slicedWasserstein2(another[$0], exact[$0]) })
            let best = try noise.map { try teacher.sample(fromUnitNoise: $0, plan: Self.teacherPlan).sample }
            teacherMap = Series(values: Self.seeds.map { rmsDistance(best[$0], truth[$0]) })
            teacherSW2 = Series(values: try Self.seeds.map { try slicedWasserstein2(best[$0], exact[$0]) })
            self.exact = exact
            self.another = another
        }

        /// The map error and sliced-W2 of `sample` (unit noise, seed → samples).
        func measure(_ sample: (Tensor, UInt64) throws -> Tensor, truth: [Tensor]? = nil) throws -> (map: Series, sw2: Series) {
            let x = try Self.seeds.map { try sample(noise[$0], 900 + UInt64($0)) }
            let t = truth ?? self.truth
            return (Series(values: Self.seeds.map { rmsDistance(x[$0], t[$0]) }), Series(values: try Self.seeds.map { try slicedWasserstein2(x[$0], exact[$0]) }))
        }

        /// The teacher with DDIM at `nfe` (Karras grid, as `SamplingPlan(sampler: .ddim, nfe:)` makes it).
        func ddim(_ nfe: Int) throws -> (map: Series, sw2: Series) {
            try measure { z, _ in try teacher.sample(fromUnitNoise: z, plan: SamplingPlan(sampler: .ddim, nfe: nfe)).sample }
        }

        /// A student's own plan run from each seed's noise.
        func measure(_ stage: DistilledStage, truth: [Tensor]? = nil) throws -> (map: Series, sw2: Series) {
            try measure({ z, seed in try stage.model.sample(fromUnitNoise: z, seed: seed).sample }, truth: truth)
        }
    }

    /// The stages of `method` distilled from the exact teacher (MLPs 128×3, batch 256, seed 1),
    /// by name.
    func distill(_ method: DistillationMethod, steps: Int, guidance: [Float] = [1], tract: [Int]? = nil) throws -> [String: DistilledStage] {
        var settings = Distiller.Settings()
        if let tract { settings.tractSchedule = tract }
        settings.steps = steps
        settings.batch = 256
        settings.hidden = [128, 128, 128]
        settings.guidanceWeights = guidance
        let mixture = Self.mixture
        let distiller = try Distiller(teacher: Self.teacher, dataName: "ring8", settings: settings) { b, s in
            try mixture.sample(b, seed: 0xDA7A, stream: UInt64(s))
        }
        let stages = try distiller.run(method)
        return Dictionary(uniqueKeysWithValues: stages.map { ($0.name, $0) })
    }

    /// `student` beats `teacher` on every seed by at least `factor` (student·factor ≤ teacher),
    /// with the gap at least five times the seed-to-seed spread (the range over the four seeds,
    /// about two standard deviations, of the two series, and of `floor` when given: the
    /// exact-vs-exact figures of a distribution distance), so about ten standard deviations.
    func expectBetter(_ student: Series, than teacher: Series, factor: Double, floor: Series? = nil, _ what: String) {
        let spread = max(student.spread, teacher.spread, floor?.spread ?? 0)
        #expect(student.worst * factor <= teacher.best, "\(what): student \(student) vs teacher \(teacher) (factor \(factor))")
        #expect(teacher.best - student.worst >= 5 * spread, "\(what): gap \(teacher.best - student.worst) within five spreads \(spread)")
    }

    /// `student`'s sliced-W2 is at most `factor` times that of the teacher's 21-NFE samples on
    /// the same noise, seed by seed.
    func expectWithin(_ factor: Double, ofTheTeacher student: Series, _ what: String) {
        let teacher = Self.evaluation.teacherSW2
        for s in Evaluation.seeds { #expect(student.values[s] <= factor * teacher.values[s], "\(what) SW2 \(student) vs teacher \(teacher)") }
    }

    func report(_ name: String, _ m: (map: Series, sw2: Series), mapped: Bool = true) {
        print(String(format: "%-28@", name as NSString), mapped ? "map \(m.map)" : "", " SW2 \(m.sw2)")
    }

    // MARK: - KD

    /// Luhman & Luhman 2021: one evaluation reproduces the teacher's sampler. Measured (training
    /// seeds 1–3): map error 0.118–0.125 against DDIM-1's 1.40 and DPM-Solver++(2M)-21's 0.020;
    /// SW2 within 0.85–0.95× the teacher's on the same noise.
    @Test func kdOneStepReproducesTheTeachersMap() throws {
        let e = Self.evaluation
        let kd = try e.measure(try #require(try distill(.kd, steps: 2000)["kd-nfe1"]))
        let ddim = try e.ddim(1)
        report("kd 1", kd); report("teacher ddim 1", ddim); report("teacher dpm++ 21", (e.teacherMap, e.teacherSW2))
        // Better than DDIM at 1 NFE (which lands every sample near the mixture mean) by far.
        expectBetter(kd.map, than: ddim.map, factor: 4, "kd map vs ddim-1")
        // Within the modes (std 0.1) of the exact map: 0.2 is 1.6× the worst measured error.
        #expect(kd.map.worst < 0.2, "kd map error \(kd.map)")
        // As good a distribution as the teacher's 21-NFE sampler on the same noise, within 30%.
        expectWithin(1.3, ofTheTeacher: kd.sw2, "kd")
    }

    // MARK: - PD

    /// Salimans & Ho 2022: each halving keeps the sample. Measured (training seeds 1–3) map
    /// errors, student / teacher's DDIM at the same NFE: 1 step 0.087–0.095 / 1.40, 2 steps
    /// 0.083–0.093 / 1.38, 4 steps 0.073–0.088 / 0.56, 8 steps 0.065–0.079 / 0.142 (16 steps,
    /// 0.061–0.077, is not better than DDIM-16's 0.058 at this budget and is not asserted).
    @Test func pdStudentsBeatDDIMAtTheirNFE() throws {
        let e = Self.evaluation
        let stages = try progressiveRun()
        report("teacher dpm++ 21", (e.teacherMap, e.teacherSW2))
        for k in [1, 2, 4, 8] {
            let stage = try #require(stages["pd-nfe\(k)"])
            let pd = try e.measure(stage), ddim = try e.ddim(k)
            let plan = try #require(stage.model.card?.plan)
            let sameGrid = try e.measure { z, _ in try e.teacher.sample(fromUnitNoise: z, plan: plan).sample }
            report("pd \(k)", pd); report("teacher ddim \(k)", ddim); report("teacher ddim, pd's grid \(k)", sameGrid)
            // 1–4 steps: DDIM has not left the mixture's mean (or reached the ring) yet; 8 steps: a
            // factor 1.3 where 1.8 was measured.
            expectBetter(pd.map, than: ddim.map, factor: k < 8 ? 4 : 1.3, "pd-\(k) map vs ddim-\(k)")
            // Within the modes of the exact map: 0.15 is 1.6× the worst measured.
            #expect(pd.map.worst < 0.15, "pd-\(k) map error \(pd.map)")
            // The 4- and 8-step students sample as well as the teacher's 21-NFE sampler on the
            // same noise (the paper's claim for a few steps), within 30%.
            if k >= 4 {
                expectWithin(1.3, ofTheTeacher: pd.sw2, "pd-\(k)")
            }
        }
    }

    /// PD's students at 1500 steps a stage (7500 in all), shared by the PD and TRACT tests.
    nonisolated(unsafe) static var pd: [String: DistilledStage]?
    func progressiveRun() throws -> [String: DistilledStage] {
        if let pd = Self.pd { return pd }
        let stages = try distill(.pd, steps: 1500)
        Self.pd = stages
        return stages
    }

    // MARK: - TRACT

    /// Berthelot et al. 2023: two phases replace PD's five halvings, on the same total budget
    /// (2 × 3750 steps against PD's 5 × 1500). Measured (training seeds 1–3), map error:
    /// phases 64 → 8 → 2, two steps 0.080–0.089; phases 64 → 8 → 1, one step 0.098–0.104 and (after
    /// phase 1) eight steps 0.048–0.062; PD one step 0.086–0.099, two steps 0.083–0.097, eight steps
    /// 0.065–0.084. TRACT's one step is 1.03–1.15× PD's map error (its sliced-W2 0.92–1.05× PD's).
    @Test func tractTwoPhasesMatchProgressiveDistillation() throws {
        let e = Self.evaluation
        let pd = try progressiveRun()
        let toOne = try distill(.tract, steps: 3750), toTwo = try distill(.tract, steps: 3750, tract: [64, 8, 2])
        func measure(_ run: [String: DistilledStage], _ name: String) throws -> (map: Series, sw2: Series) {
            let m = try e.measure(try #require(run[name], "\(name) missing"))
            report(name + " (" + (run[name]?.note ?? "") + ")", m)
            return m
        }
        let (t1, t2, t8) = (try measure(toOne, "tract-nfe1"), try measure(toTwo, "tract-nfe2"), try measure(toOne, "tract-nfe8"))
        let (p1, p2, p8) = (try measure(pd, "pd-nfe1"), try measure(pd, "pd-nfe2"), try measure(pd, "pd-nfe8"))
        for s in Evaluation.seeds {
            // The issue's bar: with two phases, TRACT at 1–2 NFE within 10% of PD's one-step error.
            #expect(t2.map.values[s] <= 1.1 * p1.map.values[s], "tract-2 \(t2.map) vs pd-1 \(p1.map)")
            #expect(t2.map.values[s] <= 1.1 * p2.map.values[s], "tract-2 \(t2.map) vs pd-2 \(p2.map)")
            #expect(t8.map.values[s] <= 1.1 * p8.map.values[s], "tract-8 \(t8.map) vs pd-8 \(p8.map)")
            // One step: not within 10% of PD's map error here (measured 1.09–1.15×), within 20%.
            #expect(t1.map.values[s] <= 1.2 * p1.map.values[s], "tract-1 \(t1.map) vs pd-1 \(p1.map)")
        }
        expectBetter(t1.map, than: try e.ddim(1).map, factor: 4, "tract-1 map vs ddim-1")
        expectBetter(t8.map, than: try e.ddim(8).map, factor: 1.3, "tract-8 map vs ddim-8")
        expectWithin(1.3, ofTheTeacher: t1.sw2, "tract-1")
    }

    // MARK: - CFD

    /// Sun et al. 2022, on the exact ring with the posterior of data noised to σ_c = 1 as the
    /// classifier: CFD's first three stages are PD's, bit for bit; its 2- and 1-step students,
    /// trained through the classifier alone, keep the teacher's mode assignment as well as PD's
    /// (no better: PD's already agree 98.5–99.4% with the exact map) and stay near the modes,
    /// though not as near as PD's squared error puts them. Measured (training seeds 1–3): mode
    /// agreement at 1 step 0.984–0.995 against PD's 0.984–0.994 (per evaluation seed, CFD − PD
    /// from −0.0015 to +0.004); map error 1 step 0.177–0.183 against PD's 0.086–0.099, 2 steps
    /// 0.111–0.120 against 0.083–0.097.
    @Test func cfdStudentsKeepTheTeachersModes() throws {
        let e = Self.evaluation
        let pd = try progressiveRun()
        let cfd = try distill(.cfd, steps: 1500)
        for k in [16, 8, 4] {
            let (a, b) = (try #require(cfd["cfd-nfe\(k)"]).model.network!, try #require(pd["pd-nfe\(k)"]).model.network!)
            let (sa, sb) = (a.stateDictionary(), b.stateDictionary())
            #expect(sa.keys.sorted() == sb.keys.sorted() && sa.allSatisfy { sb[$0.key]?.scalars == $0.value.scalars }, "cfd-nfe\(k) is not PD's")
        }
        for k in [2, 1] {
            let (c, p) = (try #require(cfd["cfd-nfe\(k)"]), try #require(pd["pd-nfe\(k)"]))
            let agree = { (stage: DistilledStage) in
                try Evaluation.seeds.map { try Self.mixture.modeAgreement(stage.model.sample(fromUnitNoise: e.noise[$0]).sample, e.truth[$0]) }
            }
            let (ac, ap) = (try agree(c), try agree(p))
            let (mc, mp) = (try e.measure(c), try e.measure(p))
            report("cfd \(k)", mc); report("pd \(k)", mp)
            print("mode agreement cfd \(k): \(ac)  pd \(k): \(ap)")
            for s in Evaluation.seeds { #expect(ac[s] >= ap[s] - 0.005, "cfd-\(k) mode agreement \(ac) vs pd-\(k) \(ap)") }
            #expect(ac.min()! >= 0.98, "cfd-\(k) mode agreement \(ac)")
            // Within two component stds (0.1) of the exact map, and better than DDIM by far.
            #expect(mc.map.worst < 0.25, "cfd-\(k) map error \(mc.map)")
            expectBetter(mc.map, than: try e.ddim(k).map, factor: 4, "cfd-\(k) map vs ddim-\(k)")
        }
    }

    // MARK: - BOOT

    /// Gu et al. 2023: without reading any data, the bootstrapped signal network's one step
    /// comes close to KD's, which regresses on the teacher's sampler outputs, at about the same
    /// teacher cost (BOOT 9000 steps × 256 rows × 1 NFE = 2.3M evaluations; KD's 128 000 pairs ×
    /// 20 DPM-Solver++(2M) steps = 2.6M). Measured (training seeds 1–3): map error 0.131–0.143
    /// against KD's 0.118–0.126 (1.08–1.15×); SW2 within 1.3× the teacher's on the same noise.
    @Test func bootOneStepWithoutData() throws {
        let e = Self.evaluation
        let boot = try e.measure(try #require(try distill(.boot, steps: 9000)["boot-nfe1"]))
        let kd = try e.measure(try #require(try distill(.kd, steps: 2000)["kd-nfe1"]))
        report("boot 1", boot); report("kd 1", kd)
        expectBetter(boot.map, than: try e.ddim(1).map, factor: 4, "boot map vs ddim-1")
        for s in Evaluation.seeds { #expect(boot.map.values[s] <= 1.25 * kd.map.values[s], "boot \(boot.map) vs kd \(kd.map)") }
        expectWithin(1.3, ofTheTeacher: boot.sw2, "boot")
    }

    // MARK: - DSNO

    /// Zheng et al. 2023: one pass of the trajectory network gives the states at u = 0.5625,
    /// 0.25, 0.0625 and the sample, trained on 6000 exact trajectories. Measured (training seeds
    /// 1–3, 1500 steps): RMS distance to the exact states 0.020–0.027, 0.018–0.020 and
    /// 0.043–0.051 (the states' own RMS is 1.17–1.41); the sample's map error 0.052–0.063
    /// (KD's, from 20-step DPM-Solver++ targets at 2000 steps: 0.118–0.126).
    @Test func dsnoPredictsTheTrajectory() throws {
        let e = Self.evaluation
        let stage = try #require(try distill(.dsno, steps: 1500)["dsno-nfe1"])
        let dsno = try e.measure(stage)
        report("dsno 1", dsno)
        guard case let .generator(g as TrajectoryGenerator, _) = stage.model.body else { Issue.record("not a trajectory generator"); return }
        let c = g.configuration
        let p = DiffusionProcess.progressiveDistillation
        let r = p.timeRange
        func level(_ u: Double) -> (Double, Double) { let t = r.lowerBound + (r.upperBound - r.lowerBound) * u; return (p.alpha(t), p.sigma(t)) }
        for (i, u) in c.times.enumerated() where u > 0 {
            var errs: [Double] = [], scales: [Double] = []
            for s in Evaluation.seeds {
                let xT = e.noise[s] * Float(c.startSigma)
                let exact = try Self.mixture.solveProbabilityFlow(xT, from: level(1), to: level(u)).0
                let predicted = try g.trajectory(xT).slice(i..<(i + 1), axis: 1).reshaped(exact.shape)
                errs.append(rmsDistance(predicted, exact))
                scales.append(rmsDistance(exact, try Tensor.zeros(exact.shape)))
            }
            print(String(format: "dsno state u = %.4f: rms error %@  (rms state %@)", u, Series(values: errs).description, Series(values: scales).description))
            // Within one component std (0.1) of the exact state, at every time.
            #expect(errs.max()! < 0.1, "dsno state at u = \(u): \(errs)")
        }
        #expect(dsno.map.worst < 0.1, "dsno map error \(dsno.map)")
        expectBetter(dsno.map, than: try e.ddim(1).map, factor: 4, "dsno map vs ddim-1")
    }

    // MARK: - Guided distillation

    /// Meng et al. 2023. Stage one: a w-conditioned student reproduces the guided teacher at every
    /// w: its 8 DDIM steps land, on the same noise and grid, closer to the guided teacher's at that
    /// w than the teacher's own samples at another w are, by a factor 0.7 (measured at 6000
    /// steps: 0.39, 0.27 and 0.58 at w = 0, 1, 3; at 3000 steps w = 3 reached only 0.95). Stage two: its 4-step student at w = 1
    /// beats the guided teacher's DDIM at 4 NFE, in sliced-W2 to the guided teacher's many-step
    /// samples (DPM-Solver++(2M), 21 NFE, from other noise; labels cycle through the 8 classes).
    @Test func guidedStudentsMatchTheGuidedTeacher() throws {
        let e = Self.evaluation
        let stages = try distill(.guided, steps: 6000, guidance: [1, 3, 0])
        let labels = (0..<Evaluation.count).map { $0 % Self.mixture.componentCount }
        func guided(_ w: Float, _ plan: SamplingPlan, _ z: Tensor) throws -> Tensor {
            try e.teacher.sample(fromUnitNoise: z, plan: plan, labels: labels, guidance: w).sample
        }
        // Stage one, 8 steps on the student's grid, against the teacher on that grid.
        let grid8 = try #require(stages["guided-w1-nfe8"]?.model.card?.plan)
        let weights: [Float] = [0, 1, 3]
        var onGrid: [Float: [Tensor]] = [:]
        for w in weights { onGrid[w] = try e.noise.map { try guided(w, grid8, $0) } }
        for w in weights {
            let stage = try #require(stages["guided-w\(Int(w))-nfe8"])
            let x = try e.noise.map { try stage.model.sample(fromUnitNoise: $0, labels: labels).sample }
            let miss = Series(values: Evaluation.seeds.map { rmsDistance(x[$0], onGrid[w]![$0]) })
            let apart = weights.filter { $0 != w }.map { v in Series(values: Evaluation.seeds.map { rmsDistance(onGrid[w]![$0], onGrid[v]![$0]) }) }
            print("guided stage 1, w = \(w): student vs teacher \(miss); teacher at other w: \(apart)")
            let nearest = try #require(apart.map(\.best).min())
            #expect(miss.worst < 0.7 * nearest, "w = \(w): student \(miss) vs the teacher's change with w \(apart)")
        }
        // Stage two at w = 1, 4 steps.
        let stage2 = try #require(stages["guided-w1-nfe4-stage2"])
        let reference = try Evaluation.seeds.map { s -> Tensor in
            var rng = Philox(seed: 800 + UInt64(s))
            return try guided(1, Evaluation.teacherPlan, rng.normal([Evaluation.count, Self.mixture.dimension]))
        }
        func sw2(_ sample: (Tensor) throws -> Tensor) throws -> Series {
            Series(values: try Evaluation.seeds.map { try slicedWasserstein2(sample(e.noise[$0]), reference[$0]) })
        }
        let floor = try sw2 { try guided(1, Evaluation.teacherPlan, $0) }
        let student = try sw2 { try stage2.model.sample(fromUnitNoise: $0, labels: labels).sample }
        let ddim = try sw2 { try guided(1, SamplingPlan(sampler: .ddim, nfe: 4), $0) }
        let plan4 = try #require(stage2.model.card?.plan)
        let sameGrid = try sw2 { try guided(1, plan4, $0) }
        print("guided stage 2, w = 1: SW2 student \(student); teacher ddim-4 \(ddim); ddim on the student's grid \(sameGrid); teacher 21 NFE \(floor)")
        expectBetter(student, than: ddim, factor: 3, floor: floor, "guided stage 2 vs ddim-4")
        #expect(student.worst < 0.09, "guided stage 2 SW2 \(student)")
    }

    // MARK: - Consistency distillation and training

    /// Song et al. 2023, Alg. 2: one evaluation of the consistency function lands on the
    /// teacher's ODE map. Measured (training seeds 1–3): one step, map error 0.176–0.189 against
    /// DDIM-1's 1.40, SW2 0.93–1.09× the teacher's 21-NFE samples on the same noise; two steps
    /// (re-noised at σ̃ = 0.8) SW2 0.27–0.34 against DDIM-2's 1.38. (Four steps, 0.12–0.30 against
    /// 0.50, vary too much between training seeds to be asserted at this budget.)
    @Test func cdOneAndTwoStepsBeatDDIM() throws {
        let e = Self.evaluation
        let stages = try distill(.cd, steps: 3000)
        // The consistency student starts at σ̃ = T = 80: the exact map of its own starting state.
        let truth = try e.noise.map { try Self.mixture.solveProbabilityFlow($0 * 80, from: (1, 80), to: (1, 0)).0 }
        let cd1 = try e.measure(try #require(stages["cd-nfe1"]), truth: truth), cd2 = try e.measure(try #require(stages["cd-nfe2"]))
        let ddim1 = try e.ddim(1), ddim2 = try e.ddim(2)
        report("cd 1", cd1); report("cd 2", cd2, mapped: false); report("teacher ddim 1", ddim1); report("teacher ddim 2", ddim2)
        print("exact floor SW2 \(e.floor); teacher 21 NFE SW2 \(e.teacherSW2)")
        expectBetter(cd1.sw2, than: ddim1.sw2, factor: 4, floor: e.floor, "cd-1 SW2 vs ddim-1")
        expectBetter(cd2.sw2, than: ddim2.sw2, factor: 2.5, floor: e.floor, "cd-2 SW2 vs ddim-2")
        expectBetter(cd1.map, than: ddim1.map, factor: 4, "cd-1 map vs ddim-1")
        #expect(cd1.map.worst < 0.3, "cd-1 map error \(cd1.map)")
        expectWithin(1.5, ofTheTeacher: cd1.sw2, "cd-1")
    }

    /// Song et al. 2023, Alg. 3: without a teacher, consistency training's one- and two-step
    /// samples still beat the teacher's DDIM at the same NFE. Measured (training seeds 1–3): SW2
    /// one step 0.20–0.24 (1.2–1.8× the teacher's 21-NFE samples on the same noise) against
    /// DDIM-1's 1.41; two steps 0.26–0.30 against DDIM-2's 1.38. (Four steps, 0.40–0.42 against
    /// 0.50, are not asserted.)
    @Test func ctOneAndTwoStepsBeatDDIM() throws {
        let e = Self.evaluation
        let stages = try distill(.ct, steps: 3000)
        let ct1 = try e.measure(try #require(stages["ct-nfe1"])), ct2 = try e.measure(try #require(stages["ct-nfe2"]))
        let ddim1 = try e.ddim(1), ddim2 = try e.ddim(2)
        report("ct 1", ct1, mapped: false); report("ct 2", ct2, mapped: false)
        print("exact floor SW2 \(e.floor); teacher 21 NFE SW2 \(e.teacherSW2)")
        expectBetter(ct1.sw2, than: ddim1.sw2, factor: 3, floor: e.floor, "ct-1 SW2 vs ddim-1")
        expectBetter(ct2.sw2, than: ddim2.sw2, factor: 2.5, floor: e.floor, "ct-2 SW2 vs ddim-2")
        // CT has no teacher; the paper's one-step CT is well behind CD, hence the looser factor.
        expectWithin(2.5, ofTheTeacher: ct1.sw2, "ct-1")
    }

    // MARK: - Reflow

    /// Liu et al. 2022: the flow trained on the teacher's coupling is nearly straight, so a few
    /// Euler steps follow the teacher's ODE map; one-step distillation improves its one step.
    /// Measured (training seeds 1–3) map errors: flow 1 step 0.176–0.188, 2 steps 0.124–0.142,
    /// 4 steps 0.120–0.136 against DDIM's 1.40, 1.38 and 0.56 (8 steps, 0.13–0.14 against
    /// DDIM-8's 0.142, are not asserted); one-step distilled 0.127–0.134, 0.74–0.76× the flow's one step.
    @Test func reflowFollowsTheTeachersMap() throws {
        let e = Self.evaluation
        let stages = try distill(.reflow, steps: 2000)
        var flow1: Series?
        for k in [1, 2, 4] {
            let stage = try #require(stages["reflow-nfe\(k)"])
            let flow = try e.measure(stage), ddim = try e.ddim(k)
            report("reflow \(k) \(stage.note)", flow); report("teacher ddim \(k)", ddim)
            expectBetter(flow.map, than: ddim.map, factor: 3, "reflow-\(k) map vs ddim-\(k)")
            #expect(flow.map.worst < 0.3, "reflow-\(k) map error \(flow.map)")
            if k == 1 { flow1 = flow.map }
        }
        let oneStep = try e.measure(try #require(stages["reflow-onestep-nfe1"]))
        report("reflow one-step", oneStep)
        expectBetter(oneStep.map, than: try e.ddim(1).map, factor: 4, "reflow one-step map vs ddim-1")
        #expect(oneStep.map.worst < 0.2, "one-step map error \(oneStep.map)")
        #expect(oneStep.map.worst < 0.9 * (flow1?.best ?? 0), "one-step \(oneStep.map) vs the flow's one step \(flow1.map { "\($0)" } ?? "")")
        expectWithin(1.3, ofTheTeacher: oneStep.sw2, "one-step")
    }
}
