#if canImport(Glibc)
import Glibc
#endif

/// Why an NBD export could not start; each names what failed and what to do.
public enum NBDError: Error, Equatable, CustomStringConvertible {
    /// A system call on the way failed.
    case system(operation: String, errno: Int32)
    /// The configuration cannot be served (no listener, an address that is not loopback, …).
    case configuration(String)
    /// The driver cannot serve the export (no such namespace, not brought up).
    case device(String)

    public var description: String {
        switch self {
        case .system(let operation, let errno):
            return "\(operation) failed: \(String(cString: strerror(errno))) (errno \(errno))"
        case .configuration(let why):
            return "the NBD export is misconfigured: \(why)"
        case .device(let why):
            return "the NBD export cannot serve the device: \(why)"
        }
    }
}
