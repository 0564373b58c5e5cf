import PCI
import VFIOKit

/// `vfiokit bind` and `vfiokit unbind`: read the host, ask the policy, then write.
///
/// ``planBind(_:)`` and ``planUnbind(_:)`` only read, so they double as a dry run.
public struct HostBinding: Sendable {
    public let discovery: PCIDiscovery
    public let store: BindingStateStore
    public let memlock: MemlockLimit

    public init(discovery: PCIDiscovery, store: BindingStateStore, memlock: MemlockLimit = .current()) {
        self.discovery = discovery
        self.store = store
        self.memlock = memlock
    }

    /// What a bind would do, or why it is refused. Writes nothing.
    public func planBind(_ request: BindRequest) throws(BindError) -> BindPlan {
        let host = try snapshot(request.addresses, drivers: [request.driver])
        do { return try BindPolicy.plan(request, on: host) } catch { throw .refused(error) }
    }

    /// Binds the requested devices; returns the plan carried out and the changes made.
    public func bind(_ request: BindRequest) throws(BindError) -> (plan: BindPlan, changes: [SysfsBinder.Change]) {
        let plan = try planBind(request)
        do { return (plan, try SysfsBinder(discovery: discovery, store: store).apply(plan)) } catch { throw .failed(error) }
    }

    /// What an unbind would do, or why it is refused. Writes nothing.
    public func planUnbind(_ request: UnbindRequest) throws(BindError) -> UnbindPlan {
        let records: [PCIAddress: BindingRecord]
        do { records = try store.load() } catch { throw .state(error) }
        let drivers = UnbindPolicy.driversToRestore(request.addresses, records: records)
        let host = try snapshot(request.addresses, drivers: drivers, records: records)
        do { return try UnbindPolicy.plan(request, on: host) } catch { throw .refused(error) }
    }

    /// Releases the requested devices; returns the plan carried out and the changes made.
    public func unbind(_ request: UnbindRequest) throws(BindError) -> (plan: UnbindPlan, changes: [SysfsBinder.Change]) {
        let plan = try planUnbind(request)
        do { return (plan, try SysfsBinder(discovery: discovery, store: store).apply(plan)) } catch { throw .failed(error) }
    }

    private func snapshot(
        _ addresses: [PCIAddress], drivers: [DriverName], records: [PCIAddress: BindingRecord] = [:]
    )
        throws(BindError) -> HostSnapshot
    {
        do {
            return try HostSnapshot.read(addresses, drivers: drivers, discovery: discovery, records: records, memlock: memlock)
        } catch { throw .access(error) }
    }
}

/// Why `vfiokit bind` or `unbind` stopped.
public enum BindError: Error, Equatable, CustomStringConvertible {
    /// The host could not be read.
    case access(HostAccessError)
    /// The state file could not be read.
    case state(BindingStateError)
    /// The policy refused before anything was written.
    case refused(BindRefusal)
    /// A write failed or did not take effect.
    case failed(BindEffectError)

    public var description: String {
        switch self {
        case let .access(error): error.description
        case let .state(error): error.description
        case let .refused(error): error.description
        case let .failed(error): error.description
        }
    }
}
