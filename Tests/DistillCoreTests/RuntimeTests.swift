import DistillCore
import Testing

/// The SIMD levels the runtime reports. (Changing the process-wide level is tested through the
/// CLI, in a process of its own, and the capping rule on the kernels' ck_simd_cap: tests here
/// run concurrently with kernel tests, which a level change would disturb.)
struct RuntimeTests {
    @Test func supportedLevelsStartWithScalarAndIncludeTheCurrentOne() {
        let levels = Runtime.supportedSIMDLevels
        #expect(levels.first == .scalar)
        #expect(levels.contains(Runtime.simdLevel))
        #if arch(x86_64)
        #expect(!levels.contains(.neon))
        #elseif arch(arm64)
        #expect(levels == [.scalar, .neon])
        #endif
    }
}
