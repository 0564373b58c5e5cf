import VFIOExport

/// One export of a hosted device, as `vfiokit status` and the Prometheus text show it.
public struct ExportStatus: Codable, Sendable, Equatable {
    /// nbd or ublk.
    public var kind: String
    public var namespace: UInt32
    /// Where clients reach it: the NBD URI (`nbd+unix:///?socket=...`, `nbd://127.0.0.1:PORT`)
    /// or the block device (`/dev/ublkb0`).
    public var target: String
    public var readOnly: Bool
    /// Requests answered, and those answered with an error.
    public var requests: UInt64
    public var errors: UInt64
    /// Clients, in-flight requests, and requests and bytes by kind (for ublk the one client is
    /// the kernel while the block device exists).
    public var detail: ExportStatistics
}

extension ExportStatus {
    /// The export in one or two lines of `vfiokit status`'s text.
    var textLines: [String] {
        var lines = ["    export \(kind) namespace \(namespace)\(readOnly ? " read-only" : ""): \(target)"]
        let s = detail
        lines.append(
            "      clients \(s.clients) (\(s.connections) since start), in flight \(s.inFlight), errors \(s.errors); "
                + "read \(s.reads) (\(s.bytesRead) B), write \(s.writes) (\(s.bytesWritten) B), flush \(s.flushes), "
                + "discard \(s.discards) (\(s.bytesDiscarded) B), write-zeroes \(s.writeZeroes) (\(s.bytesZeroed) B)")
        return lines
    }
}
