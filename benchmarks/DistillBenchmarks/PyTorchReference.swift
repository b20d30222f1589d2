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
        return (obj, "PyTorch \(obj["torch_version"] as? String ?? "?"), \(Runtime.threadCount) threads\(fused)")
    }
}
