import ArgumentParser
import Distill
import DistillSupport

@main
struct RootCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "distill",
        abstract: "Train diffusion models, sample them fast, and distill them — on the CPU.",
        version: distillVersion,
        subcommands: [DemoCommand.self, TrainCommand.self, SampleCommand.self, DistillCommand.self, EvalCommand.self, BenchCommand.self]
    )

    /// Rejects a DISTILL_SIMD this CPU cannot honour before any command runs.
    static func main() {
        if let bad = Runtime.rejectedSIMDEnvironment {
            fail("DISTILL_SIMD=\(bad): expected a level this CPU has: \(Runtime.supportedSIMDLevels.map(\.rawValue).joined(separator: ", "))")
        }
        main(nil)
    }
}
