import Synchronization

/// One export's counters, updated by its queues' owner threads (relaxed atomics: no lock on
/// the I/O path) and read from anywhere as an ``ExportStatistics`` snapshot.
public final class ExportCounters: Sendable {
    let clients = Atomic<Int>(0)
    let connections = Atomic<UInt64>(0)
    let inFlight = Atomic<Int>(0)
    let errors = Atomic<UInt64>(0)
    let reads = Atomic<UInt64>(0), writes = Atomic<UInt64>(0), flushes = Atomic<UInt64>(0)
    let discards = Atomic<UInt64>(0), writeZeroes = Atomic<UInt64>(0)
    let bytesRead = Atomic<UInt64>(0), bytesWritten = Atomic<UInt64>(0)
    let bytesDiscarded = Atomic<UInt64>(0), bytesZeroed = Atomic<UInt64>(0)

    public init() {}

    /// A finished request of `operation` over `bytes` bytes (its range); `failed` when it was
    /// answered with an error.
    @inline(__always)
    func count(_ operation: BlockRequest.Operation, bytes: UInt64, failed: Bool) {
        if failed {
            errors.add(1, ordering: .relaxed)
            return
        }
        switch operation {
        case .read: reads.add(1, ordering: .relaxed); bytesRead.add(bytes, ordering: .relaxed)
        case .write: writes.add(1, ordering: .relaxed); bytesWritten.add(bytes, ordering: .relaxed)
        case .flush: flushes.add(1, ordering: .relaxed)
        case .discard: discards.add(1, ordering: .relaxed); bytesDiscarded.add(bytes, ordering: .relaxed)
        case .writeZeroes: writeZeroes.add(1, ordering: .relaxed); bytesZeroed.add(bytes, ordering: .relaxed)
        }
    }

    public var snapshot: ExportStatistics {
        ExportStatistics(
            clients: clients.load(ordering: .relaxed), connections: connections.load(ordering: .relaxed),
            inFlight: inFlight.load(ordering: .relaxed), errors: errors.load(ordering: .relaxed),
            reads: reads.load(ordering: .relaxed), writes: writes.load(ordering: .relaxed),
            flushes: flushes.load(ordering: .relaxed), discards: discards.load(ordering: .relaxed),
            writeZeroes: writeZeroes.load(ordering: .relaxed),
            bytesRead: bytesRead.load(ordering: .relaxed), bytesWritten: bytesWritten.load(ordering: .relaxed),
            bytesDiscarded: bytesDiscarded.load(ordering: .relaxed), bytesZeroed: bytesZeroed.load(ordering: .relaxed))
    }
}

/// What an export has done: the figures `vfiokit status` and the Prometheus text show.
public struct ExportStatistics: Sendable, Equatable, Codable {
    /// Clients connected now, and connections accepted into transmission since the start.
    public var clients: Int
    public var connections: UInt64
    /// Requests started on the device and not yet finished.
    public var inFlight: Int
    /// Requests answered with an error (refused, or failed on the device).
    public var errors: UInt64
    /// Requests served, by kind.
    public var reads: UInt64, writes: UInt64, flushes: UInt64, discards: UInt64, writeZeroes: UInt64
    /// Bytes served, by kind.
    public var bytesRead: UInt64, bytesWritten: UInt64, bytesDiscarded: UInt64, bytesZeroed: UInt64

    /// Requests served, every kind.
    public var requests: UInt64 { reads + writes + flushes + discards + writeZeroes }
}
