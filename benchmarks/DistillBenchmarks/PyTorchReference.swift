import Foundation
import Distill

/// Runs one of the PyTorch reference scripts in `benchmarks/pytorch/` with `--json` and returns
/// its one-line JSON object, or nil with the reason when it cannot run (script missing, Python
/// or torch not installed, a failed run).
enum PyTorchReference {
    static func run(script: String, python: String, arguments: [String]) -> (object: [String: Any]?, note: String) {
        guard FileManager.default.fileExists(atPath: script) else { return (nil, "script not found at \(script)") }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = [python, script] + arguments + ["--threads", String(Runtime.threadCount), "--json"]
        var environment = ProcessInfo.processInfo.environment
        for (key, value) in isaCaps(Runtime.simdLevel) where environment[key] == nil { environment[key] = value }
        p.environment = environment
        let out = Pipe()
        p.standardOutput = out
        p.standardError = FileHandle.nullDevice
        do { try p.run() } catch { return (nil, "could not start \(python): \(error)") }
        let data = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        guard p.terminationStatus == 0, let obj = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            return (nil, "the script failed (is torch installed? pip install \"torch==2.13.0+cpu\")")
        }
        let fused = (obj["adamw_fused"] as? Bool) == true ? ", fused AdamW" : ""
        let isa = isaCaps(Runtime.simdLevel)["ATEN_CPU_CAPABILITY"].map { ", \($0)" } ?? ""
        return (obj, "PyTorch \(obj["torch_version"] as? String ?? "?"), \(Runtime.threadCount) threads\(isa)\(fused)")
    }

    /// The environment that restricts PyTorch to the instruction set of `level` (ATen's own
    /// kernels, oneDNN's convolutions and MKL's matrix products), so both sides of a ratio run
    /// on the same ISA; nothing on AArch64.
    static func isaCaps(_ level: SIMDLevel) -> [String: String] {
        switch level {
        case .avx512: ["ATEN_CPU_CAPABILITY": "avx512", "ONEDNN_MAX_CPU_ISA": "AVX512_CORE", "MKL_ENABLE_INSTRUCTIONS": "AVX512"]
        case .avx2: ["ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2", "MKL_ENABLE_INSTRUCTIONS": "AVX2"]
        case .scalar: ["ATEN_CPU_CAPABILITY": "default", "ONEDNN_MAX_CPU_ISA": "SSE41", "MKL_ENABLE_INSTRUCTIONS": "SSE4_2"]
        case .neon: [:]
        }
    }
}
