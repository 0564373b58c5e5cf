#if canImport(Glibc)
import Glibc
#endif
import Dispatch
import Synchronization
import SystemPackage
import VFIOKit

/// A listening socket on its own thread that answers each connection with one response:
/// the Unix status socket (`vfiokit status`) and the TCP metrics address.
///
/// Each connection sends one request line; `respond` turns it into the bytes to send back,
/// and the connection is closed. A client that sends nothing within two seconds is dropped,
/// so a stuck client cannot hold the server.
final class StatusServer: Sendable {
    /// Where it listens, for messages.
    let endpoint: String
    private let fd: Int32
    private let respond: @Sendable (String) -> [UInt8]
    /// The socket file to remove when stopping; nil for TCP.
    private let socketFile: String?
    /// The end of a request: a newline, or for HTTP the blank line after the headers.
    private let terminator: [UInt8]
    private let stopping = Atomic<Bool>(false)
    private let finished = DispatchSemaphore(value: 0)
    /// The thread's queue; a `sync` on it returns once the thread's block has been released.
    private let queue = DispatchQueue(label: "vfiokit.status")

    /// Listens on a Unix socket at `path` with `mode` (0660: the owner and its group), replacing
    /// a stale socket file a killed daemon left (the caller holds the daemon lock).
    init(unixPath path: String, mode: mode_t, respond: @escaping @Sendable (String) -> [UInt8]) throws(DaemonError) {
        guard var address = StatusClient.unixAddress(path) else { throw .setup("the socket path \(path) is too long for a Unix socket") }
        unlink(path)
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw .systemCall(operation: "create the status socket", errno: Errno(rawValue: errno)) }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard bound == 0, chmod(path, mode) == 0, listen(fd, 16) == 0 else {
            let failure = Errno(rawValue: errno)
            close(fd)
            throw .systemCall(operation: "listen on \(path)", errno: failure)
        }
        self.fd = fd
        endpoint = path
        self.respond = respond
        terminator = Array("\n".utf8)
        socketFile = path
        startThread()
    }

    /// Listens on TCP `host:port` (an IPv4 address such as 127.0.0.1).
    init(tcpHost host: String, port: UInt16, respond: @escaping @Sendable (String) -> [UInt8]) throws(DaemonError) {
        fd = try Self.listenTCP(host: host, port: port)
        endpoint = "\(host):\(port)"
        self.respond = respond
        terminator = Array("\r\n\r\n".utf8)
        socketFile = nil
        startThread()
    }

    /// A socket listening on TCP `host:port`; throws naming the address and the kernel's
    /// refusal (EADDRNOTAVAIL for an address not on this host, EADDRINUSE for a port in use).
    static func listenTCP(host: String, port: UInt16) throws(DaemonError) -> Int32 {
        do {
            return try TCPListener.listen(host: host, port: port, backlog: 16, loopbackOnly: false).fd
        } catch {
            switch error {
            case .notIPv4, .notLoopback:
                throw .setup("--metrics-address wants an IPv4 address and port such as 127.0.0.1:9464, not \"\(host)\"")
            case .socket(let failure): throw .systemCall(operation: "create the metrics socket", errno: failure)
            case .bind(let failure):
                throw .systemCall(
                    operation: "serve metrics on \(host):\(port)", errno: failure,
                    remedy: failure == .addressInUse
                        ? "another process has that port; choose another --metrics-address"
                        : failure == .addressNotAvailable ? "that address is not one of this host's; choose one it has" : nil)
            }
        }
    }

    /// Stops accepting and waits for the thread to finish the connection in hand.
    func stop() {
        guard !stopping.exchange(true, ordering: .acquiringAndReleasing) else { return }
        shutdown(fd, Int32(SHUT_RDWR))
        finished.wait()
        queue.sync {}  // the thread's block, and what it holds (the responder, the daemon), are let go
        close(fd)
        if let socketFile { unlink(socketFile) }
    }

    private func startThread() {
        queue.async { [self] in
            defer { finished.signal() }
            while !stopping.load(ordering: .acquiring) {
                let client = accept(fd, nil, nil)
                if client < 0 {
                    if errno == EINTR || errno == ECONNABORTED { continue }
                    break
                }
                _ = fcntl(client, F_SETFD, FD_CLOEXEC)
                serve(client)
                close(client)
            }
        }
    }

    /// The request in the bytes a client sent: its first line, without the line end (`\n` or
    /// `\r\n`), bytes that are not UTF-8 replaced.
    static func requestLine(_ request: [UInt8]) -> String {
        let line = String(decoding: request.prefix { $0 != UInt8(ascii: "\n") }, as: UTF8.self)
        return line.hasSuffix("\r") ? String(line.dropLast()) : line
    }

    private func serve(_ client: Int32) {
        var timeout = timeval(tv_sec: 2, tv_usec: 0)
        setsockopt(client, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(client, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var request: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 1024)
        while request.firstRange(of: terminator) == nil && request.count < 8192 {
            let n = chunk.withUnsafeMutableBytes { recv(client, $0.baseAddress, $0.count, 0) }
            guard n > 0 else { break }
            request += chunk[..<n]
        }
        var response = respond(Self.requestLine(request))
        var sent = 0
        while sent < response.count {
            let n = response.withUnsafeMutableBytes { send(client, $0.baseAddress! + sent, $0.count - sent, Int32(MSG_NOSIGNAL)) }
            guard n > 0 else { break }
            sent += n
        }
    }
}
