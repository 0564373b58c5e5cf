#if canImport(Glibc)
import Glibc
import SystemPackage
#endif

/// Asks the daemon over its status socket: one request line, the answer read to the end.
public enum StatusClient {
    /// The answer to `request` (`status`, `text` or `metrics`); nil when nothing listens at
    /// `socketPath`. Throws when a daemon is there but refuses this user.
    public static func ask(_ request: String, socketPath: String) throws(DaemonError) -> String? {
        guard var address = unixAddress(socketPath) else { return nil }
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw .systemCall(operation: "create a socket", errno: Errno(rawValue: errno)) }
        defer { close(fd) }
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard connected == 0 else {
            if errno == EACCES {
                throw .setup("\(socketPath) refuses this user: run as root or as a member of the daemon's group (vfio)")
            }
            return nil
        }
        let line = request + "\n"
        _ = line.withCString { send(fd, $0, strlen($0), Int32(MSG_NOSIGNAL)) }
        var answer: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            guard n > 0 else { break }
            answer += chunk[..<n]
        }
        return String(decoding: answer, as: UTF8.self)
    }

    /// The socket address of `path`, or nil when the path does not fit one.
    static func unixAddress(_ path: String) -> sockaddr_un? {
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        guard path.utf8.count < MemoryLayout.size(ofValue: address.sun_path) else { return nil }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            raw.copyBytes(from: path.utf8)
            raw[path.utf8.count] = 0
        }
        return address
    }
}
