import FoundationEssentials
#if canImport(Glibc)
import Glibc
#endif
import PCI
import SystemPackage
import VFIOKit

/// Why the daemon refused to start or could not take a device.
public enum DaemonError: Error, Equatable, CustomStringConvertible {
    /// Another daemon holds the state directory's lock.
    case alreadyRunning(pid: Int32?, lock: String)
    /// A process other than this one has the device open.
    case deviceInUse(PCIAddress, holders: [String])
    /// A file cannot be read: `reason` is the system's ("No such file or directory").
    case unreadable(path: String, reason: String)
    /// The configuration file is wrong.
    case badConfiguration(path: String, reason: String)
    /// A driver name that the registry does not hold.
    case unknownDriver(String, known: String)
    /// The state directory, socket or metrics address cannot be set up.
    case setup(String)
    /// A system call of the daemon's own failed: `operation` is what it was doing ("listen on
    /// PATH"), `errno` the kernel's answer, `remedy` what to do when there is one thing to do.
    case systemCall(operation: String, errno: Errno, remedy: String? = nil)
    /// The framework refused what the daemon needs to run (its event loop).
    case framework(operation: String, VFIOError)

    public var description: String {
        switch self {
        case let .alreadyRunning(pid, lock):
            "another vfiokit daemon \(pid.map { "(pid \($0)) " } ?? "")is running with the lock \(lock): stop it first, or give this one its own VFIOKIT_STATE_DIR"
        case let .deviceInUse(address, holders):
            "\(address) is in use by \(holders.isEmpty ? "another process" : holders.joined(separator: ", ")): stop it first"
        case let .unreadable(path, reason):
            "cannot read \(path): \(reason)"
        case let .badConfiguration(path, reason):
            "the configuration \(path) is not usable: \(reason)"
        case let .unknownDriver(name, known):
            "unknown driver \"\(name)\": the drivers are \(known)"
        case let .setup(reason):
            reason
        case let .systemCall(operation, errno, remedy):
            "cannot \(operation): \(errno)\(remedy.map { "; \($0)" } ?? "")"
        case let .framework(operation, error):
            "cannot \(operation): \(error)"
        }
    }
}

extension DaemonError {
    /// The bytes of the file at `path`, or ``unreadable(path:reason:)`` with errno's text.
    public static func readFile(_ path: String) throws(DaemonError) -> Data {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw .unreadable(path: path, reason: String(cString: strerror(errno))) }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            guard n >= 0 else { throw .unreadable(path: path, reason: String(cString: strerror(errno))) }
            if n == 0 { return Data(bytes) }
            bytes += chunk[..<n]
        }
    }
}
