import Synchronization

/// An export's figures: clients, requests and bytes by kind, errors, requests in flight.
/// Updated by owner threads with relaxed atomics (no lock, no allocation), read by status.
public final class ExportStatistics: @unchecked Sendable {
    private static let kinds = ExportRequest.Kind.allCases.count
    /// Three counters per kind (requests, bytes, errors), touched only atomically.
    private let counters: UnsafeMutablePointer<Atomic<UInt64>>
    private let flight = Atomic<Int>(0)
    private let clientCount = Atomic<Int>(0)

    public init() {
        counters = .allocate(capacity: 3 * Self.kinds)
        for i in 0..<3 * Self.kinds { (counters + i).initialize(to: Atomic(0)) }
    }

    deinit {
        counters.deinitialize(count: 3 * Self.kinds)
        counters.deallocate()
    }

    @inline(__always) private func requests(_ k: Int) -> UnsafeMutablePointer<Atomic<UInt64>> { counters + k }
    @inline(__always) private func bytes(_ k: Int) -> UnsafeMutablePointer<Atomic<UInt64>> { counters + Self.kinds + k }
    @inline(__always) private func errors(_ k: Int) -> UnsafeMutablePointer<Atomic<UInt64>> { counters + 2 * Self.kinds + k }

    /// A request was started.
    @inline(__always)
    public func started() { flight.wrappingAdd(1, ordering: .relaxed) }

    /// A request ended (refused ones too): counted by kind, with its bytes when it succeeded.
    @inline(__always)
    public func ended(_ kind: ExportRequest.Kind, bytes count: UInt64, status: ExportStatus, wasStarted: Bool) {
        if wasStarted { flight.wrappingSubtract(1, ordering: .relaxed) }
        requests(kind.rawValue).pointee.wrappingAdd(1, ordering: .relaxed)
        if status.isSuccess {
            bytes(kind.rawValue).pointee.wrappingAdd(count, ordering: .relaxed)
        } else {
            errors(kind.rawValue).pointee.wrappingAdd(1, ordering: .relaxed)
        }
    }

    public func clientConnected() { clientCount.wrappingAdd(1, ordering: .relaxed) }
    public func clientDisconnected() { clientCount.wrappingSubtract(1, ordering: .relaxed) }

    /// A copy of the figures now.
    public var snapshot: Snapshot {
        var s = Snapshot(clients: clientCount.load(ordering: .relaxed), inFlight: flight.load(ordering: .relaxed))
        for kind in ExportRequest.Kind.allCases {
            s.requests[kind.name] = requests(kind.rawValue).pointee.load(ordering: .relaxed)
            s.bytes[kind.name] = bytes(kind.rawValue).pointee.load(ordering: .relaxed)
            s.errors[kind.name] = errors(kind.rawValue).pointee.load(ordering: .relaxed)
        }
        return s
    }

    public struct Snapshot: Sendable, Equatable, Codable {
        public var clients: Int
        public var inFlight: Int
        /// By kind name (``ExportRequest/Kind/name``).
        public var requests: [String: UInt64] = [:]
        public var bytes: [String: UInt64] = [:]
        public var errors: [String: UInt64] = [:]
    }
}
