#if canImport(Glibc)
import Glibc
#endif
import SystemPackage

/// A listening IPv4 TCP socket, close-on-exec with `SO_REUSEADDR`, for the servers a driver
/// process runs beside its devices (the daemon's metrics, the NBD export).
public enum TCPListener {
    /// Why no socket listens; each case says which step failed.
    public enum Failure: Error, Equatable {
        /// `host` is not an IPv4 literal.
        case notIPv4(String)
        /// `host` is outside 127.0.0.0/8 and only loopback was allowed.
        case notLoopback(String)
        /// socket(2) failed.
        case socket(Errno)
        /// bind(2) or listen(2) failed (`addressInUse`, `addressNotAvailable`, ...).
        case bind(Errno)
    }

    /// Listens on `host`:`port` (0: the kernel picks) with `backlog`; returns the descriptor,
    /// which the caller owns, and the bound port. Nothing is left open when it throws.
    public static func listen(host: String, port: UInt16, backlog: Int32, loopbackOnly: Bool) throws(Failure) -> (fd: Int32, port: UInt16) {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        guard inet_pton(AF_INET, host, &address.sin_addr) == 1 else { throw .notIPv4(host) }
        guard !loopbackOnly || UInt32(bigEndian: address.sin_addr.s_addr) >> 24 == 127 else { throw .notLoopback(host) }
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw .socket(Errno(rawValue: errno)) }
        var one: Int32 = 1
        // Cannot fail for a new socket and a valid option.
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0, Glibc.listen(fd, backlog) == 0 else {
            let failure = Errno(rawValue: errno)
            close(fd)
            throw .bind(failure)
        }
        var actual = sockaddr_in()
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &actual) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        return (fd, UInt16(bigEndian: actual.sin_port))
    }
}
