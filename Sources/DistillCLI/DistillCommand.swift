import ArgumentParser

@main
struct DistillCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "distill",
        abstract: "Train diffusion models, sample them fast, and distill them — on the CPU.",
        subcommands: [DemoCommand.self, BenchCommand.self]
    )
}
