import Distill
import Foundation
import Testing

/// Dense Double matrices for the test oracles (row-major, n × n).
private enum Dense {
    static func multiply(_ a: [Double], _ b: [Double], _ n: Int) -> [Double] {
        var c = [Double](repeating: 0, count: n * n)
        for i in 0..<n { for k in 0..<n { for j in 0..<n { c[i * n + j] += a[i * n + k] * b[k * n + j] } } }
        return c
    }

    /// Gauss–Jordan inverse with partial pivoting.
    static func inverse(_ m: [Double], _ n: Int) -> [Double] {
        var a = m
        var inv = [Double](repeating: 0, count: n * n)
        for i in 0..<n { inv[i * n + i] = 1 }
        for col in 0..<n {
            let pivot = (col..<n).max { abs(a[$0 * n + col]) < abs(a[$1 * n + col]) }!
            for j in 0..<n {
                a.swapAt(col * n + j, pivot * n + j)
                inv.swapAt(col * n + j, pivot * n + j)
            }
            let p = a[col * n + col]
            for j in 0..<n { a[col * n + j] /= p; inv[col * n + j] /= p }
            for r in 0..<n where r != col {
                let f = a[r * n + col]
                if f == 0 { continue }
                for j in 0..<n { a[r * n + j] -= f * a[col * n + j]; inv[r * n + j] -= f * inv[col * n + j] }
            }
        }
        return inv
    }

    /// Principal square root by the Denman–Beavers iteration (valid for matrices with
    /// eigenvalues off the closed negative real axis, e.g. a product of two SPD matrices):
    /// Y ← (Y + Z⁻¹)/2, Z ← (Z + Y⁻¹)/2 from Y = M, Z = I; Y → M^{1/2}.
    static func squareRoot(_ m: [Double], _ n: Int) -> [Double] {
        var y = m
        var z = [Double](repeating: 0, count: n * n)
        for i in 0..<n { z[i * n + i] = 1 }
        for _ in 0..<100 {
            let yi = inverse(y, n), zi = inverse(z, n)
            let ny = zip(y, zi).map { 0.5 * ($0 + $1) }, nz = zip(z, yi).map { 0.5 * ($0 + $1) }
            let change = zip(ny, y).map { abs($0 - $1) }.max()!
            y = ny
            z = nz
            if change < 1e-15 * (y.map(abs).max()! + 1) { break }
        }
        return y
    }

    static func trace(_ m: [Double], _ n: Int) -> Double { (0..<n).reduce(0) { $0 + m[$1 * n + $1] } }
}

/// Rows of a tensor as Double arrays.
private func rows(_ t: Tensor) -> [[Double]] {
    let v = t.scalars, d = t.shape[1]
    return (0..<t.shape[0]).map { i in (0..<d).map { Double(v[i * d + $0]) } }
}

/// Correlated Gaussian features: z (n, f) · L with a fixed random L, plus a shift.
private func correlatedFeatures(_ n: Int, _ f: Int, seed: UInt64, shift: Float = 0) throws -> Tensor {
    var rng = Philox(seed: seed)
    let z = try rng.normal([n, f])
    var mix = Philox(seed: 1000)
    let l = try mix.normal([f, f], std: 0.5) + Tensor.ones([f, f]).affine(scale: 0, shift: 0)
    let eye = try Tensor(shape: [f, f], scalars: (0..<(f * f)).map { $0 % (f + 1) == 0 ? 1 : 0 })
    return try z.matmul(l + eye) + shift
}

@Suite struct SampleDistanceTests {
    @Test func slicedWassersteinOfASetWithItselfIsZero() throws {
        let x = try ToyDataset.pinwheel.sample(1000, seed: 1)
        #expect(try slicedWasserstein2(x, x) == 0)
        // And with the same set in another order (the quantile functions are equal).
        let shuffled = try x.gatherRows(Array((0..<1000).reversed()))
        #expect(try slicedWasserstein2(x, shuffled) == 0)
    }

    /// 1-D empirical W₂ with unequal sizes, by hand: quantile functions of {0, 1} and
    /// {0, 0.5, 1} differ by 0.5 on (1/3, 2/3), so W₂² = 0.25 · 1/3 = 1/12. In d = 1 every
    /// direction is ±1, so SW₂ = W₂ exactly (up to rounding, 1e-12).
    @Test func unequalSizesUseTheExactQuantileCoupling() throws {
        let a = try Tensor(shape: [2, 1], scalars: [1, 0]), b = try Tensor(shape: [3, 1], scalars: [0.5, 1, 0])
        #expect(abs(try slicedWasserstein2(a, b, directions: 3) - (1.0 / 12).squareRoot()) < 1e-12)
        // A set against itself repeated twice: identical distributions.
        let x = try ToyDataset.rings.sample(300, seed: 2)
        #expect(try slicedWasserstein2(x, Tensor.concat([x, x])) < 1e-6)
    }

    /// y = x + m exactly: every projection shifts by θᵀm, so SW₂² = mean_θ (θᵀm)², whose
    /// expectation over uniform unit θ is |m|²/d. With d = 4, (θᵀm)²/|m|² ~ Beta(1/2, 3/2)
    /// (mean 1/4, std 1/4), so over 4096 directions SW₂² has relative std 1/64 and SW₂ 0.8%;
    /// the 4% tolerance is 5 standard deviations. In d = 1 the result is |m| to rounding.
    @Test func slicedWassersteinOfAShiftIsNormOverRootD() throws {
        var rng = Philox(seed: 3)
        let x = try rng.normal([500, 4])
        let m = try Tensor(shape: [1, 4], scalars: [0.9, -0.3, 0.5, 0.7])
        let expected = Double(0.9 * 0.9 + 0.09 + 0.25 + 0.49).squareRoot() / 2
        let sw = try slicedWasserstein2(x, x + m, directions: 4096, seed: 7)
        #expect(abs(sw - expected) < 0.04 * expected, "SW2 \(sw), expected \(expected)")
        let x1 = try rng.normal([500, 1])
        #expect(abs(try slicedWasserstein2(x1, x1 + 0.7, directions: 2) - 0.7) < 1e-6)
        // Different seeds give different directions but the same value in expectation.
        #expect(try slicedWasserstein2(x, x + m, directions: 64, seed: 1) != slicedWasserstein2(x, x + m, directions: 64, seed: 2))
    }

    /// Independent samples of N(0, I) and N(m, I), d = 4, |m|/√d = 0.5. Simulated in NumPy
    /// (20 repetitions, n = 4000, 1024 directions) the estimate had mean 0.502 and std 0.0085;
    /// the tolerance 0.04 is over 4.5 standard deviations.
    @Test func slicedWassersteinBetweenShiftedGaussians() throws {
        var rng = Philox(seed: 4)
        let x = try rng.normal([4000, 4]), y = try rng.normal([4000, 4]) + 0.5
        let sw = try slicedWasserstein2(x, y, directions: 1024, seed: 5)
        #expect(abs(sw - 0.5) < 0.04, "SW2 \(sw)")
    }

    /// The estimator against a direct double loop with the same bandwidths (exact formula,
    /// agreement to 1e-12 relative), then its behaviour: for two samples of N(0, I₂) with
    /// n = 800 NumPy gave std 5e-4 across repetitions (bound 3e-3, 6σ); shifted by 1 the mean
    /// was 0.065 with std 0.007 (bound 0.03, 5σ below the mean).
    @Test func mmdMatchesTheDirectFormulaAndSeparatesDistributions() throws {
        var rng = Philox(seed: 6)
        let a = try rng.normal([40, 3]), b = try rng.normal([30, 3]) + 0.3
        let h = [0.5, 1.5]
        let (ra, rb) = (rows(a), rows(b))
        func k(_ p: [Double], _ q: [Double]) -> Double {
            let r2 = zip(p, q).reduce(0) { $0 + ($1.0 - $1.1) * ($1.0 - $1.1) }
            return h.reduce(0) { $0 + exp(-r2 / (2 * $1 * $1)) } / Double(h.count)
        }
        var xx = 0.0, yy = 0.0, xy = 0.0
        for i in 0..<40 { for j in 0..<40 where i != j { xx += k(ra[i], ra[j]) } }
        for i in 0..<30 { for j in 0..<30 where i != j { yy += k(rb[i], rb[j]) } }
        for i in 0..<40 { for j in 0..<30 { xy += k(ra[i], rb[j]) } }
        let direct = xx / (40 * 39) + yy / (30 * 29) - 2 * xy / (40 * 30)
        let mmd = try maximumMeanDiscrepancy(a, b, bandwidths: h)
        #expect(abs(mmd - direct) <= 1e-12 * max(abs(direct), 1e-3), "\(mmd) vs \(direct)")

        let x = try rng.normal([800, 2]), y = try rng.normal([800, 2])
        let shifted = try y + Tensor(shape: [1, 2], scalars: [1, 0])
        let same = try maximumMeanDiscrepancy(x, y), different = try maximumMeanDiscrepancy(x, shifted)
        #expect(abs(same) < 3e-3, "MMD² same \(same)")
        #expect(different > 0.03, "MMD² shifted \(different)")
        let bw = try defaultRBFBandwidths(x, y)
        // |X − Y| for X, Y ~ N(0, I₂) is Rayleigh with σ = √2: median σ√(2 ln 2) ≈ 1.665. The
        // sample median of ~500k pairs of 1000 points varies by a few hundredths; bound 0.1.
        #expect(bw.count == 5 && abs(bw[2] - 2.0.squareRoot() * (2 * log(2.0)).squareRoot()) < 0.1, "\(bw)")
        #expect(bw[0] == bw[2] / 4 && bw[4] == 4 * bw[2])
        #expect(throws: MetricError.self) { try maximumMeanDiscrepancy(x, y, bandwidths: [0]) }
        #expect(throws: MetricError.self) { try maximumMeanDiscrepancy(x, Tensor.zeros([10, 3])) }
        #expect(throws: MetricError.self) { try maximumMeanDiscrepancy(x, Tensor.zeros([1, 2])) }
    }

    /// Energy distance against a direct loop (1e-12 relative), and for 1-D N(0,1) vs N(1,1)
    /// against the closed form 2E|N(1,2)| − 2E|N(0,2)| = 0.5418. NumPy at n = 2000 gave std
    /// 0.034 for the shifted case and 0.0012 for equal distributions; at n = 4000 these
    /// shrink by √2, so the tolerances 0.1 and 4e-3 are about 4 and 5 standard deviations.
    @Test func energyDistanceMatchesClosedForms() throws {
        var rng = Philox(seed: 8)
        let a = try rng.normal([25, 2]), b = try rng.normal([35, 2])
        let (ra, rb) = (rows(a), rows(b))
        func dist(_ p: [Double], _ q: [Double]) -> Double { zip(p, q).reduce(0) { $0 + ($1.0 - $1.1) * ($1.0 - $1.1) }.squareRoot() }
        var xx = 0.0, yy = 0.0, xy = 0.0
        for i in 0..<25 { for j in 0..<25 where i != j { xx += dist(ra[i], ra[j]) } }
        for i in 0..<35 { for j in 0..<35 where i != j { yy += dist(rb[i], rb[j]) } }
        for i in 0..<25 { for j in 0..<35 { xy += dist(ra[i], rb[j]) } }
        let direct = 2 * xy / (25 * 35) - xx / (25 * 24) - yy / (35 * 34)
        #expect(abs(try energyDistance(a, b) - direct) <= 1e-12 * abs(direct))

        let x = try rng.normal([4000, 1]), y = try rng.normal([4000, 1])
        let s = 2.0.squareRoot()
        let e1 = s * (2 / Double.pi).squareRoot() * exp(-0.25) + (1 - erfc(1 / (s * 2.0.squareRoot())))
        let e0 = s * (2 / Double.pi).squareRoot()
        let exact = 2 * e1 - 2 * e0
        #expect(abs(exact - 0.5418) < 1e-4)
        let shifted = try energyDistance(x, y + 1)
        #expect(abs(shifted - exact) < 0.1, "energy distance \(shifted) vs \(exact)")
        #expect(abs(try energyDistance(x, y)) < 4e-3)
    }

    @Test func badInputsThrowMetricErrors() throws {
        let x = try Tensor.zeros([10, 2])
        #expect(throws: MetricError.self) { try slicedWasserstein2(x, Tensor.zeros([10, 3])) }
        #expect(throws: MetricError.self) { try slicedWasserstein2(x, Tensor.zeros([10])) }
        #expect(throws: MetricError.self) { try slicedWasserstein2(x, x, directions: 0) }
        #expect(throws: MetricError.self) { try slicedWasserstein2(x, Tensor.zeros([0, 2])) }
        var bad = x
        bad.withUnsafeMutableBufferPointer { $0[3] = .nan }
        do {
            _ = try energyDistance(x, bad)
            Issue.record("expected nonFinite")
        } catch let MetricError.nonFinite(metric, detail) {
            #expect(metric == "energyDistance" && detail.contains("row 1"))
        }
    }
}

@Suite struct FeatureDistanceTests {
    /// FID(x, x) = 2 tr Σ − 2 Σ √λ(Σ^{1/2} Σ Σ^{1/2}) = 0 exactly in real arithmetic; in Double
    /// the eigen-decompositions leave errors of order 1e-13 · tr Σ. Bound 1e-6 relative to tr Σ.
    @Test func fidOfASetWithItselfIsZero() throws {
        let x = try correlatedFeatures(500, 16, seed: 1)
        let stats = try FeatureStatistics(features: x)
        let scale = (0..<16).reduce(0.0) { $0 + stats.covariance[$1 * 16 + $1] }
        let fid = try frechetDistance(x, x)
        #expect(abs(fid) < 1e-6 * scale, "FID \(fid), scale \(scale)")
        #expect(try frechetDistance(x, x + 0.5) > 0.5 * 0.5 * 16 * 0.99)   // the mean term alone is 4
    }

    /// FID against a direct computation: means and unbiased covariances in Double, and
    /// Tr((Σ₁Σ₂)^{1/2}) from the non-symmetric product by Denman–Beavers — a different route
    /// from the symmetric eigen-decompositions of the library. Both are exact to ~1e-12; the
    /// bound 1e-6 relative leaves room for Float32 → Double conversion only (identical inputs).
    @Test func fidMatchesADirectComputation() throws {
        let f = 6
        let x = try correlatedFeatures(50, f, seed: 2), y = try correlatedFeatures(70, f, seed: 3, shift: 0.3)
        func stats(_ t: Tensor) -> ([Double], [Double]) {
            let r = rows(t), n = Double(r.count)
            let mean = (0..<f).map { j in r.reduce(0) { $0 + $1[j] } / n }
            var cov = [Double](repeating: 0, count: f * f)
            for row in r { for i in 0..<f { for j in 0..<f { cov[i * f + j] += (row[i] - mean[i]) * (row[j] - mean[j]) / (n - 1) } } }
            return (mean, cov)
        }
        let (m1, s1) = stats(x), (m2, s2) = stats(y)
        let root = Dense.squareRoot(Dense.multiply(s1, s2, f), f)
        // The oracle's root squares back to the product.
        let back = Dense.multiply(root, root, f), product = Dense.multiply(s1, s2, f)
        #expect(zip(back, product).allSatisfy { abs($0 - $1) < 1e-9 * (product.map(abs).max()!) })
        let direct = zip(m1, m2).reduce(0) { $0 + ($1.0 - $1.1) * ($1.0 - $1.1) }
            + Dense.trace(s1, f) + Dense.trace(s2, f) - 2 * Dense.trace(root, f)
        let fid = try frechetDistance(x, y)
        #expect(abs(fid - direct) <= 1e-6 * abs(direct), "FID \(fid) vs direct \(direct)")
        // Statistics given directly give the same value.
        let a = try FeatureStatistics(mean: m1, covariance: s1, count: 50), b = try FeatureStatistics(mean: m2, covariance: s2, count: 70)
        #expect(abs(try frechetDistance(a, b) - direct) <= 1e-6 * abs(direct))
        #expect(throws: MetricError.self) { try FeatureStatistics(mean: m1, covariance: Array(s1.dropLast()), count: 50) }
        var asymmetric = s1
        asymmetric[1] += 1
        #expect(throws: MetricError.self) { try FeatureStatistics(mean: m1, covariance: asymmetric, count: 50) }
        #expect(throws: MetricError.self) { try frechetDistance(x, Tensor.zeros([10, 5])) }
        #expect(throws: MetricError.self) { try FeatureStatistics(features: Tensor.zeros([1, 5])) }
    }

    /// KID with subsets as large as the sets is the unbiased polynomial-kernel MMD² of the
    /// full sets: compared with a direct double loop (1e-9 relative: only summation order
    /// differs). Subsampled KID is deterministic given its seed.
    @Test func kidMatchesADirectComputation() throws {
        let f = 5
        let x = try correlatedFeatures(30, f, seed: 4), y = try correlatedFeatures(40, f, seed: 5, shift: 0.2)
        let (rx, ry) = (rows(x), rows(y))
        func k(_ p: [Double], _ q: [Double]) -> Double {
            let t = zip(p, q).reduce(0) { $0 + $1.0 * $1.1 } / Double(f) + 1
            return t * t * t
        }
        // With subsetSize capped at min(n, m) = 30, x is used whole and y is subsampled, so
        // compare on equal sizes: y's first 30 rows.
        let y30 = try y.slice(0..<30)
        let ry30 = Array(ry.prefix(30))
        var xx = 0.0, yy = 0.0, xy = 0.0
        for i in 0..<30 { for j in 0..<30 where i != j { xx += k(rx[i], rx[j]); yy += k(ry30[i], ry30[j]) } }
        for i in 0..<30 { for j in 0..<30 { xy += k(rx[i], ry30[j]) } }
        let direct = (xx + yy) / (30 * 29) - 2 * xy / (30 * 30)
        let kid = try kernelInceptionDistance(x, y30, subsets: 3, subsetSize: 1000)
        #expect(kid.subsetValues.count == 3 && kid.standardDeviation == 0)
        #expect(abs(kid.mean - direct) <= 1e-9 * abs(direct), "KID \(kid.mean) vs direct \(direct)")

        let sub1 = try kernelInceptionDistance(x, y, subsets: 10, subsetSize: 20, seed: 3)
        let sub2 = try kernelInceptionDistance(x, y, subsets: 10, subsetSize: 20, seed: 3)
        #expect(sub1 == sub2 && sub1.standardDeviation > 0)
        #expect(try kernelInceptionDistance(x, y, subsets: 10, subsetSize: 20, seed: 4) != sub1)
        #expect(throws: MetricError.self) { try kernelInceptionDistance(x, y, subsets: 0) }
        #expect(throws: MetricError.self) { try kernelInceptionDistance(x, y, subsetSize: 1) }
    }
}

@Suite struct DigitClassifierTests {
    /// The shipped weights classify the held-out last 297 digits at least as well as the
    /// simplest classifier there is: 1-nearest-neighbour on the raw pixels with the same
    /// training images (the first 1500), computed here in plain loops, independent of the
    /// library and of the accuracy recorded with the weights (it gets 281 of 297, 94.6%). A
    /// trained 64-128-64-10 MLP that cannot match a parameter-free baseline on its own split
    /// is broken; for scale, scikit-learn's published digits example reaches 97% with an RBF
    /// SVM trained on the first half of these digits and tested on the second.
    @Test func pretrainedClassifierBeatsNearestNeighbourOnHeldOutDigits() throws {
        let classifier = try DigitClassifier.pretrainedDigits8x8()
        let digits = try ImageDataset.digits8x8()
        let split = digits.count - DigitClassifier.digits8x8HeldOutCount
        let test = try digits.subset(split..<digits.count)
        let accuracy = try classifier.accuracy(images: test.images, labels: test.labels!)
        let pixels = digits.images.scalars, labels = digits.labels!, d = 64
        var nearestRight = 0
        for q in split..<digits.count {
            var best = Float.infinity, label = -1
            for t in 0..<split {
                var dist: Float = 0
                for k in 0..<d { let e = pixels[q * d + k] - pixels[t * d + k]; dist += e * e }
                if dist < best { best = dist; label = labels[t] }
            }
            if label == labels[q] { nearestRight += 1 }
        }
        let floor = Double(nearestRight) / Double(digits.count - split)
        #expect(floor >= 0.9, "1-NN on the raw pixels: \(floor) (281/297 expected)")
        #expect(accuracy >= floor, "classifier \(accuracy) below 1-nearest-neighbour \(floor) on the held-out digits")
        #expect(try classifierAccuracy(classifier, samples: test.images, labels: test.labels!) == accuracy)
        // Wrong intended labels score low: each label shifted by one class.
        #expect(try classifierAccuracy(classifier, samples: test.images, labels: test.labels!.map { ($0 + 1) % 10 }) < 0.1)
        let features = try classifier.features(test.images)
        #expect(features.shape == [297, 64] && classifier.featureDimension == 64)
        // FID/KID of the digits against themselves ≈ 0, against noise ≫ 0.
        #expect(abs(try classifier.frechetDistance(test.images, test.images)) < 1e-6)
        var rng = Philox(seed: 1)
        let noise = try rng.uniform([297, 1, 8, 8], low: -1, high: 1)
        #expect(try classifier.frechetDistance(test.images, noise) > 1)
        #expect(try classifier.kernelInceptionDistance(test.images, noise, subsets: 5, subsetSize: 100).mean > 0)
    }

    /// Cross-entropy against a direct Double computation from the logits (Float32 logits and
    /// a 10-term log-sum-exp: 1e-5 relative).
    @Test func crossEntropyMatchesItsDefinition() throws {
        let classifier = try DigitClassifier(.init(), seed: 3)
        let digits = try ImageDataset.digits8x8()
        let (x, y) = try digits.batch(Array(0..<16))
        let loss = try classifier.crossEntropyLoss(images: x, labels: y!).item()
        let logits = rows(try classifier.logits(x))
        var expected = 0.0
        for (l, label) in zip(logits, y!) {
            let m = l.max()!
            expected += m + log(l.reduce(0) { $0 + exp($1 - m) }) - l[label]
        }
        expected /= 16
        #expect(abs(Double(loss) - expected) < 1e-5 * expected)
        #expect(throws: TensorError.self) { try classifier.crossEntropyLoss(images: x, labels: [Int](repeating: 10, count: 16)) }
        #expect(throws: TensorError.self) { try classifier.logits(Tensor.zeros([2, 1, 28, 28])) }
    }

    /// A short training run learns (loss falls, held-out accuracy well above chance), and the
    /// weights survive a save and load bit for bit.
    @Test func trainingLearnsAndWeightsRoundTrip() throws {
        let digits = try ImageDataset.digits8x8()
        let train = try digits.subset(0..<1500), test = try digits.subset(1500..<1797)
        let classifier = try DigitClassifier(.init(hiddenWidths: [64, 32]), seed: 1)
        var losses: [Float] = []
        try classifier.train(on: train, steps: 300, seed: 2, batchSize: 64) { losses.append($1) }
        #expect(losses.count == 300)
        let late: Float = losses.suffix(20).reduce(0, +) / 20
        let early: Float = losses.prefix(5).reduce(0, +) / 5
        #expect(late < 0.5 * early, "loss \(early) → \(late)")
        #expect(try classifier.accuracy(images: test.images, labels: test.labels!) > 0.8)

        let dir = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try classifier.write(to: dir + "/c.safetensors", metadata: ["note": "test"])
        let back = try DigitClassifier.read(from: dir + "/c.safetensors")
        #expect(back.configuration == classifier.configuration)
        #expect(try back.logits(test.images).scalars == classifier.logits(test.images).scalars)
        try SafeTensors.write(SafeTensors.Contents(tensors: ["w": Tensor.zeros([2])]), to: dir + "/other.safetensors")
        #expect(throws: IOError.self) { try DigitClassifier.read(from: dir + "/other.safetensors") }
        #expect(throws: DatasetError.self) { try classifier.train(on: ImageDataset(images: train.images, labels: nil), steps: 1, seed: 0) }
    }

    /// The same class trains on 28×28 MNIST given as IDX files (inputSize 784): a short run
    /// (400 steps of 128 on 8000 test-set images) classifies the other 2000 well above
    /// chance; an MLP of this size typically reaches ~90% after so few steps, bound 80%.
    @Test(.enabled(if: SharedData.available, "needs ../shared/data"))
    func trainsOnMNISTFromIDXFiles() throws {
        let mnist = try ImageDataset.idx(images: SharedData.path("mnist-t10k-images-idx3-ubyte.gz"),
                                         labels: SharedData.path("mnist-t10k-labels-idx1-ubyte.gz"))
        let train = try mnist.subset(0..<8000), test = try mnist.subset(8000..<10000)
        let classifier = try DigitClassifier(.init(inputSize: 784, hiddenWidths: [128, 64]), seed: 0)
        try classifier.train(on: train, steps: 400, seed: 1)
        let accuracy = try classifier.accuracy(images: test.images, labels: test.labels!)
        #expect(accuracy > 0.8, "MNIST held-out accuracy \(accuracy)")
        #expect(throws: DatasetError.self) { try classifier.train(on: ImageDataset.digits8x8(), steps: 1, seed: 0) }
    }

    /// Retrains the shipped classifier into the file DISTILL_CLASSIFIER_OUT names (run by
    /// scripts/embed-classifier.sh, which moves it into Sources/Distill/Resources; the test
    /// itself writes nothing into the sources).
    @Test(.enabled(if: ProcessInfo.processInfo.environment["DISTILL_CLASSIFIER_OUT"] != nil))
    func regenerateShippedClassifier() throws {
        let (classifier, accuracy) = try DigitClassifier.trainDefault()
        #expect(accuracy >= 0.9)
        let path = try #require(ProcessInfo.processInfo.environment["DISTILL_CLASSIFIER_OUT"])
        try classifier.write(to: path, metadata: ["held_out_accuracy": String(accuracy)])
    }
}
