#if canImport(Glibc)
import Glibc
import SystemPackage
#endif

/// One daemon per state directory: an exclusive `flock` on `daemon.lock`, holding the owner's
/// pid. The kernel drops the lock when the process dies, however it dies, so a lock that can
/// be taken means no daemon runs, and a stale pid in the file means the last one was killed.
public final class DaemonLock: Sendable {
    public let path: String
    private let fd: Int32

    /// Takes the lock, or throws ``DaemonError/alreadyRunning(pid:lock:)`` naming the holder.
    public init(stateDirectory: String) throws(DaemonError) {
        path = Self.path(in: stateDirectory)
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else {
            throw .systemCall(operation: "open \(path)", errno: Errno(rawValue: errno), remedy: "run as root or set VFIOKIT_STATE_DIR")
        }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            let holder = Self.pid(in: fd)
            close(fd)
            throw .alreadyRunning(pid: holder, lock: path)
        }
        let text = "\(getpid())\n"
        _ = ftruncate(fd, 0)
        _ = text.withCString { pwrite(fd, $0, strlen($0), 0) }
        self.fd = fd
    }

    deinit {
        _ = ftruncate(fd, 0)
        close(fd)
    }

    /// The lock file of `stateDirectory`.
    public static func path(in stateDirectory: String) -> String { stateDirectory + "/daemon.lock" }

    /// The pid of the daemon holding the lock in `stateDirectory`, or nil when none runs.
    public static func holder(stateDirectory: String) -> Int32? {
        let fd = open(path(in: stateDirectory), O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        guard flock(fd, LOCK_SH | LOCK_NB) != 0 else { return nil }
        return pid(in: fd)
    }

    private static func pid(in fd: Int32) -> Int32? {
        var buffer = [UInt8](repeating: 0, count: 32)
        let n = buffer.withUnsafeMutableBytes { pread(fd, $0.baseAddress, 31, 0) }
        guard n > 0 else { return nil }
        return Int32(String(decoding: buffer[..<n], as: UTF8.self).split(separator: "\n").first ?? "")
    }
}
