/// A namespace offered to clients: its geometry, its queues and its figures. A frontend (ublk,
/// NBD) serves an export; the export maps requests onto the NVMe driver's queue pairs.
public protocol BlockExport: AnyObject, Sendable {
    /// The export's name, as clients ask for it (NBD export name) and status shows it.
    var name: String { get }
    var geometry: ExportGeometry { get }
    var statistics: ExportStatistics { get }

    /// Opens export queue `index` (0 ..< geometry.queues) on its owner thread: allocates its
    /// tags' state and buffers, then runs `setUp` there with the queue, from which the
    /// frontend watches its files. Returns when `setUp` has run; its error is thrown here.
    func openQueue(_ index: Int, delegate: any ExportQueueDelegate,
                   setUp: @escaping @Sendable (any ExportQueue) throws -> Void) throws

    /// Runs `body` on queue `index`'s owner thread and returns when it has run: how a frontend
    /// reaches its queue's state from elsewhere (to stop it, to count it).
    func onOwner(_ index: Int, _ body: @escaping @Sendable (any ExportQueue) -> Void)

    /// Closes queue `index` once its requests have completed; its watches end with it.
    func closeQueue(_ index: Int)
}

/// A way of serving an export to clients: ``ExportFrontendKind`` names it, the daemon starts
/// and stops it. Start and stop are control-path calls, from any thread.
public protocol ExportFrontend: AnyObject, Sendable {
    /// Begins serving `export` (opens the device node or the listening socket).
    func start(_ export: any BlockExport) throws
    /// Stops in order: no new request is taken, requests in flight finish and are answered,
    /// clients are told (disconnect, device removal), then the queues close.
    func stop()
    /// Where clients find it (a URI or a device path), for the log and status.
    var endpoint: String { get }
}

/// The frontends the daemon knows, as `--export` and the config file name them.
public enum ExportFrontendKind: Sendable, Equatable, Codable {
    /// The kernel's ublk driver: `/dev/ublkbN`.
    case ublk
    /// NBD on a Unix socket at the path, or on TCP at 127.0.0.1:port.
    case nbd(NBDEndpoint)
}

/// Where an NBD export listens.
public enum NBDEndpoint: Sendable, Equatable, Codable {
    case unix(path: String)
    case tcp(port: UInt16)
}
