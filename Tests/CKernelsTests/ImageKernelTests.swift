import CKernels
import Testing

/// max |a − b| / max(max |b|, floor): the error relative to the result's scale (sums with
/// cancellation make per-element relative errors meaningless). NaN anywhere gives infinity.
/// A floor of 1 serves gradients that are exactly zero in exact arithmetic (attention over one
/// token, a GroupNorm group of one element), where float rounding leaves ~1e-7 residues.
private func scaledError(_ a: [Float], _ b: [Float], floor: Double = 1e-30) -> Double {
    precondition(a.count == b.count)
    var worst = 0.0, scale = floor
    for (x, y) in zip(a, b) {
        let d = abs(Double(x) - Double(y))
        if d.isNaN { return .infinity }
        worst = max(worst, d)
        scale = max(scale, abs(Double(y)))
    }
    return worst / scale
}

/// Image kernels (convolution, GroupNorm, attention, resampling) against their naive
/// double-precision references on awkward sizes (batch 1, 1×1 and 7×7 images, channel counts
/// that are not multiples of 8), in both accumulate and write ("SET") modes, plus bit identity
/// of 1- and 2-thread runs. Tolerances are relative to the largest reference magnitude:
/// 2e-6 for convolutions (float sums of at most a few thousand products, reference in double),
/// 3e-6 / 2e-5 for GroupNorm outputs / gradients, 3e-6 / 1e-5 for attention outputs / gradients.
/// Convolutions run at every SIMD level the CPU has, and at each give the same bits with the
/// vector paths switched off (their scalar twins add in the same order, including the direct
/// 3×3 engines' fallbacks).
@Suite(.serialized) struct ImageKernelTests {
    // MARK: - Convolution

    struct ConvCase: CustomStringConvertible {
        var n, cin, h, w, cout, k, s, p: Int64
        var description: String { "N\(n) Cin\(cin) \(h)x\(w) Cout\(cout) K\(k) s\(s) p\(p)" }
    }

    static let convCases: [ConvCase] = [
        .init(n: 1, cin: 3, h: 1, w: 1, cout: 5, k: 3, s: 1, p: 1),      // 1×1 image, batch 1
        .init(n: 1, cin: 1, h: 1, w: 1, cout: 1, k: 1, s: 1, p: 0),
        .init(n: 2, cin: 3, h: 7, w: 7, cout: 5, k: 3, s: 1, p: 1),
        .init(n: 3, cin: 5, h: 7, w: 7, cout: 6, k: 3, s: 2, p: 1),
        .init(n: 2, cin: 7, h: 28, w: 28, cout: 9, k: 3, s: 1, p: 1),
        .init(n: 2, cin: 12, h: 28, w: 28, cout: 10, k: 3, s: 2, p: 1),
        .init(n: 3, cin: 13, h: 7, w: 7, cout: 11, k: 1, s: 1, p: 0),    // 1×1 conv: GEMM over pixels
        .init(n: 2, cin: 5, h: 7, w: 7, cout: 4, k: 1, s: 2, p: 0),
        .init(n: 2, cin: 3, h: 9, w: 9, cout: 4, k: 5, s: 1, p: 2),
        .init(n: 2, cin: 3, h: 8, w: 8, cout: 5, k: 4, s: 2, p: 1),
        .init(n: 2, cin: 3, h: 7, w: 7, cout: 4, k: 3, s: 1, p: 0),
        .init(n: 2, cin: 3, h: 10, w: 10, cout: 4, k: 3, s: 3, p: 1),
        .init(n: 2, cin: 3, h: 5, w: 9, cout: 4, k: 3, s: 2, p: 1),     // non-square
        .init(n: 2, cin: 64, h: 8, w: 8, cout: 64, k: 3, s: 1, p: 1),    // the digits U-Net's shape
        .init(n: 3, cin: 33, h: 14, w: 14, cout: 17, k: 3, s: 1, p: 1),
        .init(n: 17, cin: 3, h: 8, w: 8, cout: 5, k: 3, s: 1, p: 1),     // many small images: grouped tiles
        .init(n: 40, cin: 17, h: 7, w: 7, cout: 5, k: 3, s: 1, p: 1),    // dw: chunks of 3 images, segments of 2 and 1
        .init(n: 1, cin: 256, h: 3, w: 3, cout: 96, k: 3, s: 1, p: 1),
        .init(n: 2, cin: 3, h: 2, w: 2, cout: 4, k: 3, s: 1, p: 2),      // padding wider than the image
        .init(n: 1, cin: 8, h: 64, w: 64, cout: 16, k: 3, s: 1, p: 1),   // several row bands per image
        .init(n: 3, cin: 18, h: 37, w: 11, cout: 7, k: 3, s: 1, p: 1),   // non-square; dw sums in four row segments
        .init(n: 5, cin: 33, h: 28, w: 28, cout: 32, k: 3, s: 2, p: 1),  // the MNIST U-Net's downsampling
        .init(n: 2, cin: 4, h: 1, w: 6, cout: 3, k: 3, s: 2, p: 1),      // one row, stride 2
        .init(n: 9, cin: 130, h: 7, w: 7, cout: 13, k: 3, s: 1, p: 1),   // vectors across two images; > 128 input channels
        .init(n: 5, cin: 6, h: 3, w: 5, cout: 7, k: 3, s: 1, p: 1),      // planes under 16 pixels
        .init(n: 2, cin: 3, h: 9, w: 69, cout: 4, k: 3, s: 2, p: 1),     // stride-2 rows of three 32-column blocks, odd
        .init(n: 17, cin: 5, h: 9, w: 11, cout: 10, k: 3, s: 2, p: 1),   // stride 2, >= 16 images: dw chunks of 2, x copied
        .init(n: 3, cin: 20, h: 15, w: 13, cout: 9, k: 3, s: 2, p: 1),   // dw with x in place: 16-row block moved back
        .init(n: 20, cin: 16, h: 14, w: 14, cout: 24, k: 3, s: 2, p: 1), // ... segments of 2 images, padded lanes
    ]

    /// Every case at every SIMD level (the level picks the engines: the workspace is asked for
    /// at that level too).
    @Test(arguments: convCases, simdLevels)
    func convolutionMatchesReference(_ c: ConvCase, level: Int32) {
        withSIMDLevel(level) { convolutionMatchesReference(c) }
    }

    private func convolutionMatchesReference(_ c: ConvCase) {
        let ho = ck_conv2d_out_size(c.h, c.k, c.s, c.p), wo = ck_conv2d_out_size(c.w, c.k, c.s, c.p)
        #expect(ho >= 1 && wo >= 1)
        let nx = Int(c.n * c.cin * c.h * c.w), nw = Int(c.cout * c.cin * c.k * c.k), ny = Int(c.n * c.cout * ho * wo)
        var g = TestRNG(UInt64(nx + 31 * nw))
        let x = g.floats(nx), w = g.floats(nw, -0.5, 0.5), b = g.floats(Int(c.cout)), dy = g.floats(ny)
        let wsf = ck_conv2d_forward_workspace_floats(c.n, c.cin, c.h, c.w, c.cout, c.k, c.s, c.p)
        let wsb = ck_conv2d_backward_workspace_floats(c.n, c.cin, c.h, c.w, c.cout, c.k, c.s, c.p)
        var ws = [Float](repeating: 1e30, count: Int(max(wsf, wsb)) + 1)   // garbage: slots hold no results

        func forward(bias: Bool) -> [Float] {
            var y = [Float](repeating: 7, count: ny)
            ck_conv2d_forward(&y, x, w, bias ? b : nil, &ws, c.n, c.cin, c.h, c.w, c.cout, c.k, c.s, c.p)
            return y
        }
        for bias in [true, false] {
            var yr = [Float](repeating: 0, count: ny)
            ck_conv2d_forward_ref(&yr, x, w, bias ? b : nil, c.n, c.cin, c.h, c.w, c.cout, c.k, c.s, c.p)
            let e = scaledError(forward(bias: bias), yr)
            #expect(e <= 2e-6, "forward \(c) bias \(bias): error \(e)")
        }

        // Accumulate mode on top of existing values.
        let dx0 = g.floats(nx), dw0 = g.floats(nw), db0 = g.floats(Int(c.cout))
        func backward(_ flags: Int32, _ dx: inout [Float], _ dw: inout [Float], _ db: inout [Float]) {
            ck_conv2d_backward(&dx, &dw, &db, &ws, flags, dy, x, w, c.n, c.cin, c.h, c.w, c.cout, c.k, c.s, c.p)
        }
        var (dx, dw, db) = (dx0, dw0, db0)
        var (dxr, dwr, dbr) = (dx0, dw0, db0)
        backward(0, &dx, &dw, &db)
        ck_conv2d_backward_ref(&dxr, &dwr, &dbr, dy, x, w, c.n, c.cin, c.h, c.w, c.cout, c.k, c.s, c.p)
        for (name, a, r) in [("dx", dx, dxr), ("dw", dw, dwr), ("db", db, dbr)] {
            let e = scaledError(a, r)
            #expect(e <= 2e-6, "\(name) accumulate \(c): error \(e)")
        }

        // Write mode: garbage in the outputs must be overwritten.
        var (sx, sw, sb) = ([Float](repeating: 1e30, count: nx), [Float](repeating: -1e30, count: nw), [Float](repeating: 1e30, count: Int(c.cout)))
        var (zx, zw, zb) = ([Float](repeating: 0, count: nx), [Float](repeating: 0, count: nw), [Float](repeating: 0, count: Int(c.cout)))
        backward(Int32(CK_CONV_SET_DX | CK_CONV_SET_DW | CK_CONV_SET_DB), &sx, &sw, &sb)
        ck_conv2d_backward_ref(&zx, &zw, &zb, dy, x, w, c.n, c.cin, c.h, c.w, c.cout, c.k, c.s, c.p)
        for (name, a, r) in [("dx", sx, zx), ("dw", sw, zw), ("db", sb, zb)] {
            let e = scaledError(a, r)
            #expect(e <= 2e-6, "\(name) write mode \(c): error \(e)")
        }

        // One gradient at a time gives the same bits as all three together.
        var dwOnly = dw0, dxOnly = dx0
        ck_conv2d_backward(nil, &dwOnly, nil, &ws, 0, dy, x, nil, c.n, c.cin, c.h, c.w, c.cout, c.k, c.s, c.p)
        ck_conv2d_backward(&dxOnly, nil, nil, &ws, 0, dy, nil, w, c.n, c.cin, c.h, c.w, c.cout, c.k, c.s, c.p)
        var dbOnly = db0
        ck_conv2d_backward(nil, nil, &dbOnly, &ws, 0, dy, nil, nil, c.n, c.cin, c.h, c.w, c.cout, c.k, c.s, c.p)
        #expect(firstBitMismatch(dbOnly, db) == nil, "db alone differs \(c)")
        #expect(firstBitMismatch(dwOnly, dw) == nil, "dw alone differs \(c)")
        #expect(firstBitMismatch(dxOnly, dx) == nil, "dx alone differs \(c)")

        // 1 and 2 threads: the same bits.
        let y2 = forward(bias: true)
        let (y1, grads1): ([Float], [Float]) = withThreads(1) {
            var (a, b2, c2) = (dx0, dw0, db0)
            backward(0, &a, &b2, &c2)
            return (forward(bias: true), a + b2 + c2)
        }
        #expect(firstBitMismatch(y1, y2) == nil, "forward 1 vs 2 threads \(c)")
        #expect(firstBitMismatch(grads1, dx + dw + db) == nil, "backward 1 vs 2 threads \(c)")

        // The scalar twins (the test switch off): the same bits.
        let (yScalar, gradsScalar): ([Float], [Float]) = withSIMD(false) {
            var (a, b2, c2) = (dx0, dw0, db0)
            backward(0, &a, &b2, &c2)
            return (forward(bias: true), a + b2 + c2)
        }
        #expect(firstBitMismatch(yScalar, y2) == nil, "forward scalar vs SIMD \(c)")
        #expect(firstBitMismatch(gradsScalar, dx + dw + db) == nil, "backward scalar vs SIMD \(c)")
    }

    /// The padded engine (avx2, neon) sums each output in the AVX-512 direct engine's order: on
    /// the shapes it takes (planes up to 8×8 with channels in the lanes, few output channels on
    /// larger planes with pixels in the lanes) every vector level gives the same forward and dx
    /// bits.
    @Test func paddedEngineGivesTheDirectEngineBits() {
        let vectorLevels = simdLevels.filter { $0 != Int32(CK_SIMD_SCALAR) }
        guard vectorLevels.count > 1 else { return }   // one vector level: its scalar twins are checked above
        for c in [ConvCase(n: 3, cin: 5, h: 7, w: 7, cout: 6, k: 3, s: 1, p: 1), ConvCase(n: 1, cin: 256, h: 3, w: 3, cout: 96, k: 3, s: 1, p: 1),
                  ConvCase(n: 5, cin: 6, h: 3, w: 5, cout: 7, k: 3, s: 1, p: 1), ConvCase(n: 4, cin: 9, h: 4, w: 4, cout: 12, k: 3, s: 1, p: 1),
                  ConvCase(n: 3, cin: 17, h: 8, w: 8, cout: 21, k: 3, s: 1, p: 1), ConvCase(n: 2, cin: 5, h: 12, w: 12, cout: 3, k: 3, s: 1, p: 1)] {
            var g = TestRNG(UInt64(c.cin * 131 + c.cout))
            let x = g.floats(Int(c.n * c.cin * c.h * c.w)), w = g.floats(Int(c.cout * c.cin * 9)), b = g.floats(Int(c.cout))
            let dy = g.floats(Int(c.n * c.cout * c.h * c.w))
            let results = vectorLevels.map { level in
                withSIMDLevel(level) { () -> [Float] in
                    let ws = max(ck_conv2d_forward_workspace_floats(c.n, c.cin, c.h, c.w, c.cout, 3, 1, 1),
                                 ck_conv2d_backward_workspace_floats(c.n, c.cin, c.h, c.w, c.cout, 3, 1, 1))
                    var work = [Float](repeating: 0, count: Int(ws) + 1)
                    var y = [Float](repeating: 0, count: dy.count), dx = [Float](repeating: 0, count: x.count)
                    ck_conv2d_forward(&y, x, w, b, &work, c.n, c.cin, c.h, c.w, c.cout, 3, 1, 1)
                    ck_conv2d_backward(&dx, nil, nil, &work, Int32(CK_CONV_SET_DX), dy, nil, w, c.n, c.cin, c.h, c.w, c.cout, 3, 1, 1)
                    return y + dx
                }
            }
            for (level, r) in zip(vectorLevels, results).dropFirst() {
                #expect(firstBitMismatch(results[0], r) == nil, "\(c): level \(String(cString: ck_simd_name(level))) differs from \(String(cString: ck_simd_name(vectorLevels[0])))")
            }
        }
    }

    @Test func convolutionOutputSizes() {
        #expect(ck_conv2d_out_size(28, 3, 1, 1) == 28)
        #expect(ck_conv2d_out_size(28, 3, 2, 1) == 14)
        #expect(ck_conv2d_out_size(7, 3, 2, 1) == 4)
        #expect(ck_conv2d_out_size(2, 5, 1, 1) == 0)   // the kernel does not fit
        #expect(ck_conv2d_forward_workspace_floats(4, 8, 7, 7, 8, 1, 1, 0) == 0)   // 1×1: no im2col
    }

    // MARK: - GroupNorm

    struct GNCase: CustomStringConvertible {
        var n, c, hw, g: Int64
        var act: Int32
        var affine, scaleShift, packed: Bool
        var description: String { "N\(n) C\(c) HW\(hw) G\(g) act\(act) affine \(affine) ss \(scaleShift) packed \(packed)" }
    }

    static let gnCases: [GNCase] = [
        .init(n: 1, c: 1, hw: 1, g: 1, act: Int32(CK_ACT_NONE.rawValue), affine: true, scaleShift: true, packed: false),
        .init(n: 1, c: 4, hw: 1, g: 2, act: Int32(CK_ACT_SILU.rawValue), affine: true, scaleShift: true, packed: true),
        .init(n: 2, c: 6, hw: 49, g: 3, act: Int32(CK_ACT_SILU.rawValue), affine: true, scaleShift: true, packed: true),
        .init(n: 3, c: 12, hw: 784, g: 4, act: Int32(CK_ACT_SILU.rawValue), affine: true, scaleShift: false, packed: false),
        .init(n: 2, c: 32, hw: 49, g: 32, act: Int32(CK_ACT_NONE.rawValue), affine: false, scaleShift: true, packed: false),
        .init(n: 5, c: 20, hw: 7, g: 5, act: Int32(CK_ACT_SILU.rawValue), affine: false, scaleShift: false, packed: false),
        .init(n: 4, c: 96, hw: 64, g: 8, act: Int32(CK_ACT_SILU.rawValue), affine: true, scaleShift: true, packed: true),
        .init(n: 2, c: 8, hw: 300, g: 2, act: Int32(CK_ACT_GELU.rawValue), affine: true, scaleShift: true, packed: true),
        .init(n: 2, c: 9, hw: 1000, g: 3, act: Int32(CK_ACT_NONE.rawValue), affine: true, scaleShift: true, packed: true),
        .init(n: 3, c: 5, hw: 3, g: 5, act: Int32(CK_ACT_SILU.rawValue), affine: true, scaleShift: true, packed: true),
    ]

    @Test(arguments: gnCases)
    func groupNormMatchesReference(_ c: GNCase) {
        let n = Int(c.n * c.c * c.hw), ld = c.packed ? 2 * c.c : c.c, nss = Int(c.n * ld), nst = Int(c.n * c.g)
        let act = c.act
        var r = TestRNG(UInt64(n) &+ 7)
        let x = r.floats(n, 1, 5)   // a non-zero mean
        let gamma = c.affine ? r.floats(Int(c.c)) : nil, beta = c.affine ? r.floats(Int(c.c)) : nil
        // scale at [n*ld + c], shift at offset `so` of its own array (or of the same packed one).
        let emb = r.floats(nss, -0.5, 0.5), shiftOwn = r.floats(nss)
        let so = c.packed ? Int(c.c) : 0
        func withSS<R>(_ body: (UnsafePointer<Float>?, UnsafePointer<Float>?) -> R) -> R {
            guard c.scaleShift else { return body(nil, nil) }
            return emb.withUnsafeBufferPointer { e in
                shiftOwn.withUnsafeBufferPointer { s in body(e.baseAddress!, c.packed ? e.baseAddress! + so : s.baseAddress!) }
            }
        }
        var y = [Float](repeating: 9, count: n), yr = [Float](repeating: 0, count: n)
        var mean = [Float](repeating: 0, count: nst), rstd = mean, meanr = mean, rstdr = mean
        withSS { sc, sh in
            ck_groupnorm_forward(&y, &mean, &rstd, x, gamma, beta, sc, sh, c.n, c.c, c.hw, c.g, ld, 1e-5, act)
            ck_groupnorm_forward_ref(&yr, &meanr, &rstdr, x, gamma, beta, sc, sh, c.n, c.c, c.hw, c.g, ld, 1e-5, act)
        }
        #expect(scaledError(y, yr) <= 3e-6, "y \(c): \(scaledError(y, yr))")
        #expect(scaledError(mean, meanr) <= 1e-6, "mean \(c)")
        #expect(scaledError(rstd, rstdr) <= 1e-5, "rstd \(c)")

        let dy = r.floats(n)
        var ws = [Float](repeating: 1e30, count: Int(ck_groupnorm_backward_workspace_floats(c.n, c.c, c.hw, c.g)) + 1)
        /// Runs the kernel (or the reference) into copies of the given initial gradients.
        func backward(reference: Bool, flags: Int32, dx0: [Float], dg0: [Float], db0: [Float], de0: [Float], ds0: [Float])
            -> [String: [Float]] {
            var dx = dx0, dg = dg0, db = db0, de = de0, ds = ds0
            withSS { sc, sh in
                dx.withUnsafeMutableBufferPointer { pdx in
                    dg.withUnsafeMutableBufferPointer { pdg in
                        db.withUnsafeMutableBufferPointer { pdb in
                            de.withUnsafeMutableBufferPointer { pde in
                                ds.withUnsafeMutableBufferPointer { pds in
                                    let dsc = c.scaleShift ? pde.baseAddress : nil
                                    let dsh = c.scaleShift ? (c.packed ? pde.baseAddress! + so : pds.baseAddress) : nil
                                    let dgp = c.affine ? pdg.baseAddress : nil, dbp = c.affine ? pdb.baseAddress : nil
                                    if reference {
                                        ck_groupnorm_backward_ref(pdx.baseAddress, dgp, dbp, dsc, dsh, dy, x, gamma, beta, sc, sh, mean, rstd,
                                                                  c.n, c.c, c.hw, c.g, ld, act)
                                    } else {
                                        ck_groupnorm_backward(pdx.baseAddress, dgp, dbp, dsc, dsh, &ws, flags, dy, x, gamma, beta, sc, sh,
                                                              mean, rstd, c.n, c.c, c.hw, c.g, ld, act)
                                    }
                                }
                            }
                        }
                    }
                }
            }
            return ["dx": dx, "dgamma": dg, "dbeta": db, "dscale/emb": de, "dshift": ds]
        }
        let dx0 = r.floats(n), dg0 = r.floats(Int(c.c)), db0 = r.floats(Int(c.c)), de0 = r.floats(nss), ds0 = r.floats(nss)
        let got = backward(reference: false, flags: 0, dx0: dx0, dg0: dg0, db0: db0, de0: de0, ds0: ds0)
        let ref = backward(reference: true, flags: 0, dx0: dx0, dg0: dg0, db0: db0, de0: de0, ds0: ds0)
        for (k, v) in got {
            let e = scaledError(v, ref[k]!)
            #expect(e <= 2e-5, "\(k) accumulate \(c): error \(e)")
        }
        // The scalar path (SIMD off) meets the same bounds.
        let (ys, scalarGrads): ([Float], [String: [Float]]) = withSIMD(false) {
            var y1 = [Float](repeating: 0, count: n), m1 = [Float](repeating: 0, count: nst), r1 = m1
            withSS { sc, sh in ck_groupnorm_forward(&y1, &m1, &r1, x, gamma, beta, sc, sh, c.n, c.c, c.hw, c.g, ld, 1e-5, act) }
            return (y1, backward(reference: false, flags: 0, dx0: dx0, dg0: dg0, db0: db0, de0: de0, ds0: ds0))
        }
        #expect(scaledError(ys, yr) <= 3e-6, "scalar y \(c): \(scaledError(ys, yr))")
        for (k, v) in scalarGrads {
            let e = scaledError(v, ref[k]!)
            #expect(e <= 2e-5, "scalar \(k) \(c): error \(e)")
        }

        // Write mode: garbage in every written gradient; for the packed (N, 2C) layout the
        // scale and shift halves together cover the whole buffer.
        let all = Int32(CK_GN_SET_DX | CK_GN_SET_DGAMMA | CK_GN_SET_DBETA | CK_GN_SET_DSCALE | CK_GN_SET_DSHIFT)
        let big = { (m: Int) in [Float](repeating: 1e30, count: m) }, zero = { (m: Int) in [Float](repeating: 0, count: m) }
        var deSet = c.packed ? big(nss) : de0, dsSet = ds0, deZero = c.packed ? zero(nss) : de0, dsZero = ds0
        if !c.packed && c.scaleShift {   // the written columns of unpacked arrays: all of them (ld = C)
            deSet = big(nss); dsSet = big(nss); deZero = zero(nss); dsZero = zero(nss)
        }
        let set = backward(reference: false, flags: all, dx0: big(n), dg0: big(Int(c.c)), db0: big(Int(c.c)), de0: deSet, ds0: dsSet)
        let setRef = backward(reference: true, flags: 0, dx0: zero(n), dg0: zero(Int(c.c)), db0: zero(Int(c.c)), de0: deZero, ds0: dsZero)
        for (k, v) in set where c.affine || (k != "dgamma" && k != "dbeta") {
            let e = scaledError(v, setRef[k]!, floor: 1)
            #expect(e <= 2e-5, "\(k) write mode \(c): error \(e)")
        }

        // 1 and 2 threads: the same bits.
        let one: ([Float], [String: [Float]]) = withThreads(1) {
            var y1 = [Float](repeating: 0, count: n), m1 = [Float](repeating: 0, count: nst), r1 = m1
            withSS { sc, sh in ck_groupnorm_forward(&y1, &m1, &r1, x, gamma, beta, sc, sh, c.n, c.c, c.hw, c.g, ld, 1e-5, act) }
            return (y1 + m1 + r1, backward(reference: false, flags: 0, dx0: dx0, dg0: dg0, db0: db0, de0: de0, ds0: ds0))
        }
        #expect(firstBitMismatch(one.0, y + mean + rstd) == nil, "forward 1 vs 2 threads \(c)")
        for (k, v) in one.1 { #expect(firstBitMismatch(v, got[k]!) == nil, "\(k) 1 vs 2 threads \(c)") }
    }

    // MARK: - Attention

    struct AttentionCase: CustomStringConvertible {
        var b, h, t, d: Int64
        var logitScale: Float = 1
        var description: String { "B\(b) H\(h) T\(t) D\(d) q/k scale \(logitScale)" }
    }

    static let attentionCases: [AttentionCase] = [
        .init(b: 1, h: 1, t: 1, d: 1), .init(b: 1, h: 1, t: 1, d: 8), .init(b: 2, h: 3, t: 7, d: 5),
        .init(b: 1, h: 2, t: 49, d: 32), .init(b: 2, h: 1, t: 64, d: 16), .init(b: 1, h: 1, t: 65, d: 16),
        .init(b: 1, h: 2, t: 130, d: 24), .init(b: 3, h: 4, t: 100, d: 20), .init(b: 4, h: 2, t: 49, d: 64),
        .init(b: 1, h: 3, t: 200, d: 9),
        .init(b: 2, h: 2, t: 70, d: 16, logitScale: 12), .init(b: 1, h: 1, t: 33, d: 8, logitScale: 40),   // logits in the hundreds
    ]

    @Test(arguments: attentionCases)
    func attentionMatchesReference(_ c: AttentionCase) {
        let n = Int(c.b * c.h * c.t * c.d), nl = Int(c.b * c.h * c.t)
        let scale = 1 / Float(c.d).squareRoot()
        // Large logits make the float rounding of the scores themselves ~ logit·ε: looser bounds.
        let loose: Double = c.logitScale > 1 ? 20 : 1
        var r = TestRNG(UInt64(n) &+ 3)
        let q = r.floats(n, -c.logitScale, c.logitScale), k = r.floats(n, -c.logitScale, c.logitScale), v = r.floats(n), dO = r.floats(n)
        var o = [Float](repeating: 9, count: n), lse = [Float](repeating: 9, count: nl)
        var orf = [Float](repeating: 0, count: n), lr = [Float](repeating: 0, count: nl)
        ck_attention_forward(&o, &lse, q, k, v, c.b, c.h, c.t, c.d, scale)
        ck_attention_forward_ref(&orf, &lr, q, k, v, c.b, c.h, c.t, c.d, scale)
        #expect(scaledError(o, orf) <= 3e-6 * loose, "o \(c): \(scaledError(o, orf))")
        #expect(scaledError(lse, lr) <= 1e-6, "lse \(c): \(scaledError(lse, lr))")

        let dq0 = r.floats(n), dk0 = r.floats(n), dv0 = r.floats(n)
        var (dq, dk, dv) = (dq0, dk0, dv0)
        ck_attention_backward(&dq, &dk, &dv, dO, q, k, v, o, lse, c.b, c.h, c.t, c.d, scale)
        let finite = (o + dq + dk + dv).allSatisfy { $0.isFinite }
        #expect(finite, "non-finite values \(c)")
        // Fresh gradients against the reference (its dk/dv cost O(T³D): small T only).
        if c.t <= 130 {
            var a = [Float](repeating: 0, count: n), b = a, cc = a, ar = a, br = a, cr = a
            ck_attention_backward(&a, &b, &cc, dO, q, k, v, o, lse, c.b, c.h, c.t, c.d, scale)
            ck_attention_backward_ref(&ar, &br, &cr, dO, q, k, v, c.b, c.h, c.t, c.d, scale)
            for (name, x, y) in [("dq", a, ar), ("dk", b, br), ("dv", cc, cr)] {
                let e = scaledError(x, y, floor: 1)
                #expect(e <= 1e-5 * loose, "\(name) \(c): error \(e)")
            }
            // The scalar path (SIMD off) meets the same bounds.
            let scalar: [[Float]] = withSIMD(false) {
                var os = [Float](repeating: 0, count: n), ls = [Float](repeating: 0, count: nl)
                var a = [Float](repeating: 0, count: n), b = a, cc = a
                ck_attention_forward(&os, &ls, q, k, v, c.b, c.h, c.t, c.d, scale)
                ck_attention_backward(&a, &b, &cc, dO, q, k, v, os, ls, c.b, c.h, c.t, c.d, scale)
                return [os, a, b, cc]
            }
            #expect(scaledError(scalar[0], orf) <= 3e-6 * loose, "scalar o \(c): \(scaledError(scalar[0], orf))")
            for (name, x, y) in [("dq", scalar[1], ar), ("dk", scalar[2], br), ("dv", scalar[3], cr)] {
                let e = scaledError(x, y, floor: 1)
                #expect(e <= 1e-5 * loose, "scalar \(name) \(c): error \(e)")
            }
        }
        // One gradient at a time: the same bits.
        var (dq2, dk2, dv2) = (dq0, dk0, dv0)
        ck_attention_backward(&dq2, nil, nil, dO, q, k, v, o, lse, c.b, c.h, c.t, c.d, scale)
        ck_attention_backward(nil, &dk2, nil, dO, q, k, v, o, lse, c.b, c.h, c.t, c.d, scale)
        ck_attention_backward(nil, nil, &dv2, dO, q, k, v, o, lse, c.b, c.h, c.t, c.d, scale)
        #expect(firstBitMismatch(dq2 + dk2 + dv2, dq + dk + dv) == nil, "partial gradients differ \(c)")
        // 1 and 2 threads: the same bits.
        let one: [Float] = withThreads(1) {
            var o1 = [Float](repeating: 0, count: n), l1 = [Float](repeating: 0, count: nl)
            var (a, b, cc) = (dq0, dk0, dv0)
            ck_attention_forward(&o1, &l1, q, k, v, c.b, c.h, c.t, c.d, scale)
            ck_attention_backward(&a, &b, &cc, dO, q, k, v, o, lse, c.b, c.h, c.t, c.d, scale)
            return o1 + l1 + a + b + cc
        }
        #expect(firstBitMismatch(one, o + lse + dq + dk + dv) == nil, "1 vs 2 threads \(c)")
    }

    // MARK: - Resampling

    @Test(arguments: [[1, 1, 1, 1], [2, 3, 7, 7], [1, 5, 28, 28], [2, 3, 5, 9], [3, 7, 2, 2], [1, 2, 3, 3], [2, 3, 17, 33],
                      [1, 1, 1, 40], [2, 2, 40, 1], [4, 16, 64, 64]])
    func resamplingMatchesReference(_ s: [Int]) {
        let (n, c, h, w) = (Int64(s[0]), Int64(s[1]), Int64(s[2]), Int64(s[3]))
        let nx = s.reduce(1, *)
        var r = TestRNG(UInt64(nx))
        let x = r.floats(nx), dx0 = r.floats(nx)
        for up in [true, false] {
            let ny = up ? 4 * nx : Int(n * c * (h / 2) * (w / 2))
            let dy = r.floats(ny)
            typealias Pass = (UnsafeMutablePointer<Float>?, UnsafePointer<Float>?, Int64, Int64, Int64, Int64) -> Void
            /// y (from 9s) and dx (accumulated onto dx0) of one implementation.
            func run(_ fwd: Pass, _ bwd: Pass) -> [Float] {
                var y = [Float](repeating: 9, count: ny), dx = dx0
                fwd(&y, x, n, c, h, w)
                bwd(&dx, dy, n, c, h, w)
                return y + dx
            }
            let kernel = { up ? run(ck_upsample_nearest2x_forward, ck_upsample_nearest2x_backward)
                              : run(ck_avgpool2x_forward, ck_avgpool2x_backward) }
            let reference = up ? run(ck_upsample_nearest2x_forward_ref, ck_upsample_nearest2x_backward_ref)
                               : run(ck_avgpool2x_forward_ref, ck_avgpool2x_backward_ref)
            let yr = Array(reference[..<ny]), dxr = Array(reference[ny...])
            let got = kernel()
            let name = "\(up ? "upsample" : "avgpool") \(s)"
            if up { #expect(firstBitMismatch(Array(got[..<ny]), yr) == nil, "\(name): a copy must be exact") }
            #expect(scaledError(Array(got[..<ny]), yr) <= 3e-7, "\(name) forward")
            #expect(scaledError(Array(got[ny...]), dxr) <= 1e-6, "\(name) backward")
            let one = withThreads(1) { kernel() }
            #expect(firstBitMismatch(one, got) == nil, "\(name): 1 vs 2 threads")
            let scalar = withSIMD(false) { kernel() }
            #expect(scaledError(Array(scalar[..<ny]), yr) <= 3e-7 && scaledError(Array(scalar[ny...]), dxr) <= 1e-6,
                    "\(name): scalar path")
        }
    }
}
