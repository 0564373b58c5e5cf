import FoundationEssentials
#if canImport(Glibc)
import Glibc
#endif
import Logging
import PCI
import ServiceLifecycle

/// `vfiokit run` as a swift-service-lifecycle service: starts the host, serves status and
/// metrics, prints the stats line, and on graceful shutdown (SIGTERM, SIGINT) stops in order.
public struct DaemonService: Service {
    public struct Options: Sendable {
        /// Serve Prometheus metrics over HTTP here too (`127.0.0.1`, port).
        public var metricsAddress: (host: String, port: UInt16)?
        /// Print the stats line this often; nil for never.
        public var statsInterval: Duration?
        /// Where the stats line goes.
        public var printStats: @Sendable (String) -> Void
        /// Also take `add ADDRESS` and `remove ADDRESS` on the status socket: a worker
        /// process's socket, on which its supervisor passes on udev's events.
        public var takesDeviceEvents: Bool
        /// Called with the first status report once the host has started, before the status
        /// socket is served.
        public var started: @Sendable (StatusReport) -> Void

        public init(
            metricsAddress: (host: String, port: UInt16)? = nil, statsInterval: Duration? = nil,
            printStats: @escaping @Sendable (String) -> Void = { _ in }, takesDeviceEvents: Bool = false,
            started: @escaping @Sendable (StatusReport) -> Void = { _ in }
        ) {
            self.metricsAddress = metricsAddress
            self.statsInterval = statsInterval
            self.printStats = printStats
            self.takesDeviceEvents = takesDeviceEvents
            self.started = started
        }
    }

    public let host: any DaemonHost
    private let options: Options
    private let logger: Logger

    public init(host: any DaemonHost, options: Options, logger: Logger) {
        self.host = host
        self.options = options
        self.logger = logger
    }

    /// The status socket's mode: its owner and group (vfio under systemd), no one else.
    public static let socketMode: UInt32 = 0o660

    /// Throws when `host:port` cannot be served (not an IPv4 address, not this host's, a port
    /// in use): checked before the daemon opens any device. The port is let go at once.
    public static func checkMetricsAddress(host: String, port: UInt16) throws(DaemonError) {
        close(try StatusServer.listenTCP(host: host, port: port))
    }

    public func run() async throws {
        try host.start()
        options.started(host.status())
        let metrics = DaemonMetrics()
        let servers: [StatusServer]
        let watcher: UdevWatcher?
        do {
            var made = [
                try StatusServer(unixPath: host.configuration.socketPath, mode: Self.socketMode) { [host, options] request in
                    if options.takesDeviceEvents, let answer = Self.answerDeviceEvent(request, host: host) { return answer }
                    return Self.answer(request, host: host, metrics: metrics)
                }
            ]
            if let address = options.metricsAddress {
                made.append(
                    try StatusServer(tcpHost: address.host, port: address.port) { [host] request in
                        Self.answerHTTP(request, host: host, metrics: metrics)
                    })
                logger.notice("serving metrics on http://\(address.host):\(address.port)/metrics")
            }
            servers = made
        } catch {
            host.shutdown()
            throw error
        }
        watcher = host.configuration.watchUdev ? UdevWatcher(host: host, logger: logger) : nil
        logger.notice("running; status on \(host.configuration.socketPath)")

        let tick = options.statsInterval ?? .seconds(1)
        do {
            try await cancelWhenGracefulShutdown {
                var stats = StatsLine()
                var last = ContinuousClock.now
                while true {
                    try await Task.sleep(for: tick)
                    let report = host.status()
                    metrics.update(report)
                    let now = ContinuousClock.now
                    if options.statsInterval != nil {
                        options.printStats(stats.line(report, seconds: Double((now - last) / .milliseconds(1)) / 1000))
                    }
                    last = now
                }
            }
        } catch is CancellationError {}
        logger.notice("shutting down (SIGTERM or SIGINT)")
        watcher?.stop()
        for server in servers { server.stop() }
        host.shutdown()
    }

    /// The status socket's protocol: one line, `status` (JSON), `text` (for a person) or
    /// `metrics` (Prometheus text).
    static func answer(_ request: String, host: any DaemonHost, metrics: DaemonMetrics) -> [UInt8] {
        switch request {
        case "status":
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            let json = (try? encoder.encode(host.status())).map { Array($0) } ?? Array("{}".utf8)
            return json + [UInt8(ascii: "\n")]
        case "text":
            return Array((host.status().text + "\n").utf8)
        case "metrics":
            metrics.update(host.status())
            return Array(metrics.text().utf8)
        default:
            return Array("error: unknown request \"\(request.prefix(64))\"; ask for status, text or metrics\n".utf8)
        }
    }

    /// A worker socket's device events, `add ADDRESS` and `remove ADDRESS`, answered `ok`;
    /// nil for any other request.
    static func answerDeviceEvent(_ request: String, host: any DaemonHost) -> [UInt8]? {
        let words = request.split(separator: " ")
        guard words.count == 2, ["add", "remove"].contains(words[0]), let address = try? PCIAddress(parsing: String(words[1])) else {
            return nil
        }
        if words[0] == "add" { host.deviceAdded(address) } else { host.removeDevice(address, reason: "udev reported the device removed") }
        return Array("ok\n".utf8)
    }

    /// The metrics address's protocol: HTTP/1.x `GET /metrics`.
    static func answerHTTP(_ requestLine: String, host: any DaemonHost, metrics: DaemonMetrics) -> [UInt8] {
        let parts = requestLine.split(separator: " ")
        guard parts.count >= 2, parts[0] == "GET", parts[1] == "/metrics" else {
            let body = "only GET /metrics is served here\n"
            return Array(
                "HTTP/1.0 404 Not Found\r\nContent-Type: text/plain\r\nContent-Length: \(body.utf8.count)\r\nConnection: close\r\n\r\n\(body)"
                    .utf8)
        }
        metrics.update(host.status())
        let body = metrics.text()
        let head =
            "HTTP/1.0 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: \(body.utf8.count)\r\nConnection: close\r\n\r\n"
        return Array((head + body).utf8)
    }
}
