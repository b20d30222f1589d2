import Foundation

/// A consistency model (Song, Dhariwal, Chen & Sutskever 2023, §3 and Appendix C):
/// f(x, t) = c_skip(t)·x + c_out(t)·F(c_in(t)·x, 1000·¼·ln t) in σ-form (t = σ̃), with
/// c_skip = σ_d²/((t - ε)² + σ_d²), c_out = σ_d(t - ε)/√(σ_d² + t²), c_in = 1/√(t² + σ_d²),
/// σ_d = 0.5, ε = 0.002, so f(x, ε) = x exactly. It is a denoiser: x̂0 = f(x/α, σ/α).
///
/// With a `DenoiserForm` the network is instead read as a diffusion model D (its process,
/// parameterization and conditioning) and f(x, t) = c_skip(t)·x + (1 - c_skip(t))·D(x, t), D
/// asked at the level with σ/α = t (the form latent consistency models use, Luo et al. 2023):
/// f(x, ε) = x still holds, and a student made from a diffusion teacher's weights starts as
/// that blend of the identity and the teacher's denoiser, as the paper's CD students start
/// from the teacher.
public struct ConsistencyModel<Network: ConditionalNetwork>: ConsistencyFunction {
    /// How a network trained as a diffusion model is read inside ``ConsistencyModel``.
    package struct DenoiserForm: Sendable, Equatable {
        package var process: DiffusionProcess
        package var parameterization: Parameterization
        package var conditioning: NetworkConditioning
        package init(process: DiffusionProcess, parameterization: Parameterization, conditioning: NetworkConditioning = .time) {
            self.process = process
            self.parameterization = parameterization
            self.conditioning = conditioning
        }
    }

    package let network: Network
    package var sigmaData: Double
    package var epsilon: Double
    /// The largest noise level T it is trained for (EDM: 80).
    public var sigmaMax: Double
    /// Nil: Song et al.'s preconditioned network F.
    package var denoiserForm: DenoiserForm?

    /// A consistency model in Song et al.'s preconditioned form over `network`, with σ_data,
    /// the smallest level ε and the largest level T (EDM's 0.5, 0.002 and 80 by default).
    public init(network: Network, sigmaData: Double = 0.5, epsilon: Double = 0.002, sigmaMax: Double = 80) {
        self.init(network: network, sigmaData: sigmaData, epsilon: epsilon, sigmaMax: sigmaMax, denoiserForm: nil)
    }

    /// A consistency model that reads its network as a diffusion model (`denoiserForm`).
    package init(network: Network, sigmaData: Double, epsilon: Double = 0.002, sigmaMax: Double = 80, denoiserForm: DenoiserForm?) {
        self.network = network
        self.sigmaData = sigmaData
        self.epsilon = epsilon
        self.sigmaMax = sigmaMax
        self.denoiserForm = denoiserForm
    }

    /// f(x̃, t) for σ-form states x̃ (rows) at per-row noise levels t (traced when the network is).
    public func callAsFunction(_ x: Tensor, sigma t: [Double], labels: [Int]? = nil) throws -> Tensor {
        let sd = sigmaData, e = epsilon
        let skip = t.map { sd * sd / (($0 - e) * ($0 - e) + sd * sd) }
        if let form = denoiserForm {
            // D at σ-form levels (α = 1, σ = t): the diffusion model maps them onto its own process.
            let model = DiffusionModel(network: network, process: form.process, parameterization: form.parameterization,
                                       conditioning: form.conditioning, sigmaData: Float(sd))
            let x0 = try model.predict(x, at: NoiseLevels(alpha: Array(repeating: 1, count: t.count), sigma: t), labels: labels).data
            return try x * NoiseLevels.column(skip, rank: x.rank) + x0 * NoiseLevels.column(skip.map { 1 - $0 }, rank: x.rank)
        }
        let out = t.map { sd * ($0 - e) / (sd * sd + $0 * $0).squareRoot() }
        let cin = t.map { 1 / ($0 * $0 + sd * sd).squareRoot() }
        let cnoise = t.map { Float(1000 * 0.25 * log($0)) }
        let f = try network(x * NoiseLevels.column(cin, rank: x.rank), time: Tensor(cnoise), labels: labels, guidance: nil)
        return try x * NoiseLevels.column(skip, rank: x.rank) + f * NoiseLevels.column(out, rank: x.rank)
    }

    /// The consistency function at σ̃ = σ/α (at least ε) of the state x/α, as the data prediction;
    /// the noise prediction is (x/α − x̂0)/σ̃.
    public func predict(_ x: Tensor, at levels: NoiseLevels, labels: [Int]?) throws -> Prediction {
        let st = zip(levels.sigma, levels.alpha).map { $0 / $1 }
        let xt = try x / levels.alphaTensor(rank: x.rank)
        let x0 = try self(xt, sigma: st.map { max($0, epsilon) }, labels: labels)
        let eps = try (xt - x0) / NoiseLevels.column(st.map { max($0, 1e-12) }, rank: x.rank)
        return Prediction(data: x0, noise: eps)
    }
}

/// A consistency function f(x, σ̃) (``ConsistencyModel``): what the consistency sampler needs
/// besides the denoiser view.
package protocol ConsistencyFunction: Denoiser {
    /// The smallest level ε, where f(x, ε) = x.
    var epsilon: Double { get }
    /// The largest level T.
    var sigmaMax: Double { get }
    /// f(x̃, t) for σ-form states x̃ at per-row levels t.
    func callAsFunction(_ x: Tensor, sigma t: [Double], labels: [Int]?) throws -> Tensor
}
