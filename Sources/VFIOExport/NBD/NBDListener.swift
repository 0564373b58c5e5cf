#if canImport(Glibc)
import Glibc
#endif
import VFIOKit

/// A listening socket for NBD clients: a Unix socket (mode 0660, group `vfio` when that group
/// exists, like the daemon's status socket) or TCP on a loopback address (NBD has no
/// authentication here, so it never listens beyond the machine).
struct NBDListener {
    let fd: Int32
    /// The socket file, removed on ``close()``.
    let path: String?
    /// The bound TCP port (the kernel's pick when 0 was asked for).
    let port: UInt16?

    /// The status socket's mode: its owner and group, no one else.
    static let socketMode: mode_t = 0o660

    /// Listens at `path`, replacing a stale socket file there.
    static func unix(_ path: String) throws(NBDError) -> NBDListener {
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let capacity = MemoryLayout.size(ofValue: address.sun_path)
        guard path.utf8.count < capacity else {
            throw .configuration("the socket path \(path) is \(path.utf8.count) bytes; a Unix socket path holds at most \(capacity - 1)")
        }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            for (i, byte) in path.utf8.enumerated() { raw[i] = byte }
        }
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw .system(operation: "socket(AF_UNIX) for \(path)", errno: errno) }
        var st = stat()
        if lstat(path, &st) == 0 {
            guard st.st_mode & S_IFMT == S_IFSOCK else {
                Glibc.close(fd)
                throw .configuration("\(path) exists and is not a socket: remove it or choose another --socket")
            }
            unlink(path)
        }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard bound == 0, chmod(path, socketMode) == 0, listen(fd, 128) == 0 else {
            let e = errno
            Glibc.close(fd)
            throw .system(operation: "listening on \(path)", errno: e)
        }
        if let group = getgrnam("vfio") { _ = chown(path, uid_t.max, group.pointee.gr_gid) }
        return NBDListener(fd: fd, path: path, port: nil)
    }

    /// Listens on `host:port`; `host` must be a loopback IPv4 address.
    static func tcp(host: String, port: UInt16) throws(NBDError) -> NBDListener {
        do {
            let (fd, bound) = try TCPListener.listen(host: host, port: port, backlog: 128, loopbackOnly: true)
            return NBDListener(fd: fd, path: nil, port: bound)
        } catch {
            switch error {
            case .notIPv4: throw .configuration("\(host) is not an IPv4 address: give 127.0.0.1:PORT")
            case .notLoopback:
                throw .configuration(
                    "\(host) is not a loopback address: NBD here has no authentication or TLS, so it listens on 127.0.0.0/8 only")
            case .socket(let e): throw .system(operation: "socket(AF_INET)", errno: e.rawValue)
            case .bind(let e): throw .system(operation: "listening on \(host):\(port)", errno: e.rawValue)
            }
        }
    }

    func close() {
        _ = Glibc.close(fd)
        if let path { unlink(path) }
    }
}
