// swift-tools-version:6.0
// Diffusion distillation on CPUs: C kernels (CKernels), a numeric engine (DistillCore),
// diffusion and distillation (Distill), and the `distill` command line.
// No unsafe compiler or linker flags anywhere: other packages must be able to depend on this one by version.
import PackageDescription

let package = Package(
    name: "swift-distill",
    products: [
        .library(name: "Distill", targets: ["Distill"]),
        .library(name: "DistillCore", targets: ["DistillCore"]),
        .executable(name: "distill", targets: ["DistillCLI"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        // Only for `swift package generate-documentation`; no target depends on it.
        .package(url: "https://github.com/swiftlang/swift-docc-plugin", from: "1.5.0"),
    ],
    targets: [
        .systemLibrary(
            name: "COpenBLAS",
            path: "Sources/COpenBLAS",
            pkgConfig: "openblas",
            providers: [.apt(["libopenblas-dev"])]
        ),
        .systemLibrary(
            name: "CZlib",
            path: "Sources/CZlib",
            providers: [.apt(["zlib1g-dev"])]
        ),
        // BLAS and LAPACK: OpenBLAS on Linux, Accelerate on Apple platforms.
        .target(
            name: "CKernels",
            dependencies: [.target(name: "COpenBLAS", condition: .when(platforms: [.linux]))],
            path: ".",
            exclude: ["Sources", "Tests", "benchmarks", "scripts", "README.md"],
            sources: ["CSources"],
            publicHeadersPath: "include",
            linkerSettings: [
                .linkedLibrary("pthread"), .linkedLibrary("m"),
                .linkedFramework("Accelerate", .when(platforms: [.macOS, .iOS, .tvOS, .watchOS, .visionOS])),
            ]
        ),
        .target(
            name: "DistillCore",
            dependencies: ["CKernels", "CZlib"],
            path: "Sources/DistillCore"
        ),
        .target(
            name: "Distill",
            dependencies: ["DistillCore", "CZlib"],
            path: "Sources/Distill",
            resources: [.copy("Resources/digits8x8-images-idx3-ubyte.gz"), .copy("Resources/digits8x8-labels-idx1-ubyte.gz"),
                        .copy("Resources/digits8x8-classifier.safetensors")]
        ),
        .target(
            name: "DistillSupport",
            dependencies: ["Distill", "CZlib"],
            path: "Sources/DistillSupport"
        ),
        .target(
            name: "DistillBenchmarks",
            dependencies: ["Distill", "DistillSupport", "CKernels"],
            path: "benchmarks/DistillBenchmarks"
        ),
        .executableTarget(
            name: "DistillCLI",
            dependencies: [
                "Distill",
                "DistillSupport",
                "DistillBenchmarks",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            path: "Sources/DistillCLI"
        ),
        // The fuzz harness of the file loaders (scripts/fuzz.sh); not a product.
        .executableTarget(name: "DistillFuzz", dependencies: ["Distill"], path: "Tests/Fuzz/DistillFuzz"),
        .testTarget(name: "CKernelsTests", dependencies: ["CKernels"], path: "Tests/CKernelsTests"),
        .testTarget(name: "DistillCoreTests", dependencies: ["DistillCore"], path: "Tests/DistillCoreTests", exclude: ["Fixtures"]),
        .testTarget(name: "DistillTests", dependencies: ["Distill"], path: "Tests/DistillTests", exclude: ["Fixtures"]),
        .testTarget(name: "DistillCLITests", dependencies: ["DistillCLI", "Distill", "DistillSupport"], path: "Tests/DistillCLITests"),
    ]
)
