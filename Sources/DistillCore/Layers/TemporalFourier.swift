import Foundation

/// A Fourier layer along the time axis of a trajectory (DSNO, Zheng et al. 2023, after the
/// Fourier neural operator of Li et al. 2021): for h of shape (B, M, C) — M time slices of C
/// channels — the real DFT over the slices keeps modes k = 0…K−1, each mode's C channels are
/// mixed by a complex matrix R_k, the real inverse DFT returns to the slices, and the layer adds
/// LeakyReLU(0.01) of that to its input. The DFT and its inverse are constant M×K matrices, so
/// the layer is four matrix products and a batched one (`docs/methods.md` §6.12).
package final class TemporalFourierLayer: Module {
    /// Re R and Im R, each (K, C, C).
    package let real: Parameter, imag: Parameter
    let bases: Bases

    /// The constant DFT matrices: forward Fc[m, k] = cos(2πkm/M), Fs[m, k] = −sin(2πkm/M);
    /// inverse Ic[k, m] = c_k·cos(2πkm/M)/M, Is[k, m] = −c_k·sin(2πkm/M)/M, with c_0 = 1,
    /// c_{M/2} = 1 and c_k = 2 otherwise (the real inverse of a half spectrum; the imaginary
    /// parts of the DC and Nyquist terms drop out).
    package struct Bases {
        let fc: Tensor, fs: Tensor, ic: Tensor, is_: Tensor

        package init(times m: Int, modes k: Int) throws {
            guard m >= 1, (1...(m / 2 + 1)).contains(k) else {
                throw TensorError.invalidArgument(operation: "TemporalFourierLayer", message: "\(k) modes of \(m) slices; expected 1...\(m / 2 + 1)")
            }
            var fc = [Float](repeating: 0, count: m * k), fs = fc, ic = fc, is_ = fc
            for t in 0..<m {
                for f in 0..<k {
                    let angle = 2 * Double.pi * Double(f * t) / Double(m)
                    let c: Double = (f == 0 || 2 * f == m) ? 1 : 2
                    fc[t * k + f] = Float(cos(angle)); fs[t * k + f] = Float(-sin(angle))
                    ic[f * m + t] = Float(c * cos(angle) / Double(m)); is_[f * m + t] = Float(-c * sin(angle) / Double(m))
                }
            }
            self.fc = try Tensor(shape: [m, k], scalars: fc)
            self.fs = try Tensor(shape: [m, k], scalars: fs)
            self.ic = try Tensor(shape: [k, m], scalars: ic)
            self.is_ = try Tensor(shape: [k, m], scalars: is_)
        }
    }

    /// A layer for M slices of `channels`, keeping `modes` ≤ M/2 + 1; R starts at U[0, 1)/C²
    /// (the DSNO code's initialization, close to a zero update).
    package init(channels c: Int, times m: Int, modes k: Int, rng: inout Philox) throws {
        bases = try Bases(times: m, modes: k)
        real = Parameter(try rng.uniform([k, c, c], low: 0, high: 1 / Float(c * c)))
        imag = Parameter(try rng.uniform([k, c, c], low: 0, high: 1 / Float(c * c)))
    }

    package func callAsFunction(_ h: Tensor) throws -> Tensor {
        try Self.apply(h, real: real.value, imag: imag.value, bases: bases)
    }

    /// h + LeakyReLU(K h) for h (B, M, C) and R = real + i·imag (K, C, C).
    package static func apply(_ h: Tensor, real: Tensor, imag: Tensor, bases: Bases) throws -> Tensor {
        let y = try spectral(h, real: real, imag: imag, bases: bases)
        return try h + y.relu() - (-y).relu() * 0.01
    }

    /// The linear part K h: real DFT over the slices, the kept modes mixed by R, real inverse DFT.
    package static func spectral(_ h: Tensor, real: Tensor, imag: Tensor, bases: Bases) throws -> Tensor {
        guard h.rank == 3, h.shape[1] == bases.fc.shape[0], real.shape == imag.shape, real.rank == 3,
              real.shape[0] == bases.fc.shape[1], real.shape[1] == h.shape[2], real.shape[2] == h.shape[2] else {
            throw TensorError.invalidShape(operation: "TemporalFourierLayer", shape: h.shape,
                                           expected: "(B, \(bases.fc.shape[0]), C) with weights (\(bases.fc.shape[1]), C, C)")
        }
        let (b, m, c, k) = (h.shape[0], h.shape[1], h.shape[2], real.shape[0])
        let rows = try h.permuted([0, 2, 1]).reshaped([b * c, m])                       // (B·C, M)
        func modes(_ f: Tensor) throws -> Tensor { try rows.matmul(f).reshaped([b, c, k]).permuted([2, 0, 1]) }   // (K, B, C)
        let (re, im) = (try modes(bases.fc), try modes(bases.fs))
        let gr = try re.matmul(real) - im.matmul(imag), gi = try re.matmul(imag) + im.matmul(real)
        func back(_ g: Tensor) throws -> Tensor { try g.permuted([1, 2, 0]).reshaped([b * c, k]) }                 // (B·C, K)
        return try (back(gr).matmul(bases.ic) + back(gi).matmul(bases.is_)).reshaped([b, c, m]).permuted([0, 2, 1])
    }

    package func visitParameters(_ visit: (String, Parameter) throws -> Void) rethrows {
        try visit("real", real)
        try visit("imag", imag)
    }
}
