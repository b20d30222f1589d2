import ArgumentParser
import DistillSupport

@main
struct RootCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "distill",
        abstract: "Train diffusion models, sample them fast, and distill them — on the CPU.",
        version: distillVersion,
        subcommands: [DemoCommand.self, TrainCommand.self, SampleCommand.self, DistillCommand.self, EvalCommand.self, BenchCommand.self]
    )
}
