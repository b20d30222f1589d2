import Foundation
import Synchronization

/// Ctrl-C handling for long runs: the first SIGINT asks the run to stop after its current
/// step (training saves its checkpoint first); a second one exits at once.
enum Interrupt {
    static let requested = Atomic<Bool>(false)

    static func install() {
        signal(SIGINT) { _ in
            if Interrupt.requested.exchange(true, ordering: .relaxed) { _exit(130) }
        }
        // A parent may have started us with SIGINT blocked (spawned from a thread that blocks
        // it); unblock it so Ctrl-C and `kill -INT` reach the handler.
        var set = sigset_t()
        sigemptyset(&set)
        sigaddset(&set, SIGINT)
        pthread_sigmask(SIG_UNBLOCK, &set, nil)
    }

    static var isRequested: Bool { requested.load(ordering: .relaxed) }
}
