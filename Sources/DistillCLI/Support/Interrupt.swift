import Foundation
import Synchronization

/// Ctrl-C and SIGTERM for long runs: the first signal asks the run to stop after its current
/// step (training saves its checkpoint first, then the command exits 130); a second one exits
/// at once (any half-written file is a temporary that the next write into the folder removes).
enum Interrupt {
    static let requested = Atomic<Bool>(false)

    static func install() {
        for sig in [SIGINT, SIGTERM] {
            signal(sig) { _ in
                if Interrupt.requested.exchange(true, ordering: .relaxed) { _exit(130) }
            }
        }
        // A parent may have started us with these signals blocked (spawned from a thread that
        // blocks them); unblock them so Ctrl-C, `kill -INT` and `kill` reach the handler.
        var set = sigset_t()
        sigemptyset(&set)
        sigaddset(&set, SIGINT)
        sigaddset(&set, SIGTERM)
        pthread_sigmask(SIG_UNBLOCK, &set, nil)
    }

    static var isRequested: Bool { requested.load(ordering: .relaxed) }
}
