import Foundation

/// A client socket on an NBD Unix socket, spoken to byte by byte: for tests that hold a client
/// at a chosen point of the protocol (in transmission when a server is told to stop, say).
final class RawNBDSocket {
    let fd: Int32

    /// Connects to `path`; reads time out after `timeout` seconds. Throws when nothing listens.
    init(_ path: String, timeout: Int = 10) throws {
        fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in for (i, b) in path.utf8.enumerated() { raw[i] = b } }
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard connected == 0 else {
            close(fd)
            throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO)
        }
        var limit = timeval(tv_sec: timeout, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &limit, socklen_t(MemoryLayout<timeval>.size))
    }

    deinit { close(fd) }

    /// `v` in network byte order.
    static func be<T: FixedWidthInteger>(_ v: T) -> [UInt8] { withUnsafeBytes(of: v.bigEndian) { Array($0) } }

    func send(_ bytes: [UInt8]) { _ = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress!, bytes.count, Int32(MSG_NOSIGNAL)) } }

    /// Exactly `n` bytes, or nil when the server closed the connection (or the read timed out).
    func receive(_ n: Int) -> [UInt8]? {
        var out = [UInt8](repeating: 0, count: n), got = 0
        while got < n {
            let r = out.withUnsafeMutableBytes { recv(fd, $0.baseAddress! + got, n - got, 0) }
            if r <= 0 { return nil }
            got += r
        }
        return out
    }

    /// The fixed newstyle handshake to transmission: the greeting, client flags (FIXED_NEWSTYLE,
    /// NO_ZEROES) and NBD_OPT_EXPORT_NAME "", then the export's size and flags. False when the
    /// server hung up on the way.
    func enterTransmission() -> Bool {
        guard receive(18) != nil else { return false }
        send(Self.be(UInt32(3)))
        send(Self.be(UInt64(0x4948_4156_454f_5054)) + Self.be(UInt32(1)) + Self.be(UInt32(0)))
        return receive(10) != nil
    }
}
