import Testing
@testable import VFIODaemon
#if canImport(Glibc)
import Glibc
#endif

/// How the supervisor words a worker's end, from `waitpid` statuses as the kernel encodes them.
@Suite struct WorkerExitTests {
    @Test func aTrapIsNamedByItsSignal() {
        #expect(WorkerExit(waitStatus: SIGILL).description == "trapped (SIGILL)")
        #expect(WorkerExit(waitStatus: SIGTRAP | 0x80).description == "trapped (SIGTRAP)")  // with a core dump
        #expect(!WorkerExit(waitStatus: SIGILL).succeeded)
    }

    @Test func otherSignalsAndExitStatuses() {
        #expect(WorkerExit(waitStatus: SIGKILL).description == "was killed by SIGKILL")
        #expect(WorkerExit(waitStatus: 64).description == "was killed by signal 64")
        #expect(WorkerExit(waitStatus: 1 << 8).description == "exited with status 1")
        #expect(WorkerExit(waitStatus: 0).succeeded)
        #expect(!WorkerExit(waitStatus: 3 << 8).succeeded)
    }
}
