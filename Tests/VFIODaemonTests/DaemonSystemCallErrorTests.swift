import Glibc
import SystemPackage
import Testing
@testable import VFIODaemon

/// The daemon's own failed system calls keep their errno as a value, with the message they had.
@Suite struct DaemonSystemCallErrorTests {
    @Test func aLockInAMissingDirectoryKeepsTheErrnoAndSaysWhatToDo() {
        let directory = "/nonexistent-vfiokit-state-\(getpid())"
        let error = #expect(throws: DaemonError.self) { _ = try DaemonLock(stateDirectory: directory) }
        #expect(
            error
                == .systemCall(
                    operation: "open \(directory)/daemon.lock", errno: .noSuchFileOrDirectory,
                    remedy: "run as root or set VFIOKIT_STATE_DIR"))
        #expect(
            error?.description
                == "cannot open \(directory)/daemon.lock: No such file or directory; run as root or set VFIOKIT_STATE_DIR")
    }

    @Test func aSocketPathThatCannotBeBoundKeepsTheErrno() {
        let path = "/nonexistent-vfiokit-state-\(getpid())/status.sock"
        let error = #expect(throws: DaemonError.self) { _ = try StatusServer(unixPath: path, mode: 0o660) { _ in [] } }
        #expect(error == .systemCall(operation: "listen on \(path)", errno: .noSuchFileOrDirectory))
        #expect(error?.description == "cannot listen on \(path): No such file or directory")
    }
}
