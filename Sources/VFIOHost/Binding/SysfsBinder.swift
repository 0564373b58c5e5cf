import PCI
import VFIOKit

/// Carries out a ``BindPlan`` or ``UnbindPlan`` through sysfs, the way the kernel documents:
/// `driver_override`, the current driver's `unbind`, then `drivers_probe` (or a driver's
/// `bind`). Loads no modules and decides nothing: every check was made by the policy.
public struct SysfsBinder: Sendable {
    public let discovery: PCIDiscovery
    public let store: BindingStateStore

    public init(discovery: PCIDiscovery, store: BindingStateStore) {
        self.discovery = discovery
        self.store = store
    }

    private var tree: HostTree { discovery.tree }

    /// A device that changed hands.
    public struct Change: Equatable, Sendable, Encodable {
        public let address: PCIAddress
        public let from: DriverName?
        public let to: DriverName?

        public init(address: PCIAddress, from: DriverName?, to: DriverName?) {
            self.address = address
            self.from = from
            self.to = to
        }

        private enum CodingKeys: CodingKey { case address, from, to }

        public func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(address.description, forKey: .address)
            try container.encode(from, forKey: .from)
            try container.encode(to, forKey: .to)
        }
    }

    /// Binds each step's device in order, recording its original driver before touching it.
    ///
    /// A device that does not end up on the requested driver is given back to its original
    /// driver and the bind stops there with ``BindEffectError/didNotBind(_:driver:now:completed:)``;
    /// devices bound before it stay bound (and recorded).
    public func apply(_ plan: BindPlan) throws(BindEffectError) -> [Change] {
        var done: [Change] = []
        for step in plan.steps {
            do {
                try store.update { records in
                    if records[step.address] == nil {
                        records[step.address] = BindingRecord(originalDriver: step.currentDriver, boundTo: step.driver)
                    }
                }
            } catch { throw .state(error, completed: done) }
            let now: DriverName?
            do {
                try tree.writeText(SysfsLayout.device(step.address, .driverOverride), step.driver.rawValue)
                if step.currentDriver != nil {
                    try tree.writeText(SysfsLayout.device(step.address, .driverUnbind), step.address.description)
                }
                try tree.writeText(SysfsLayout.driversProbe, step.address.description)
                now = try discovery.driver(of: step.address)
            } catch {
                throw .write(error, rollback: rollback(step), completed: done)
            }
            guard now == step.driver else {
                throw .didNotBind(step.address, driver: step.driver, now: now, rollback: rollback(step), completed: done)
            }
            done.append(Change(address: step.address, from: step.currentDriver, to: step.driver))
        }
        return done
    }

    /// Releases each step's device and gives it to its restore target, then drops the records
    /// the plan says to forget.
    public func apply(_ plan: UnbindPlan) throws(BindEffectError) -> [Change] {
        var done: [Change] = []
        for step in plan.steps {
            let now: DriverName?
            do { now = try release(step.address, from: step.currentDriver, to: step.restore) } catch {
                throw .write(error, rollback: nil, completed: done)
            }
            if case let .driver(expected) = step.restore, now != expected {
                throw .didNotRestore(step.address, driver: expected, now: now, completed: done)
            }
            done.append(Change(address: step.address, from: step.currentDriver, to: now))
        }
        if !plan.forget.isEmpty {
            do { try store.update { records in for address in plan.forget { records[address] = nil } } } catch {
                throw .state(error, completed: done)
            }
        }
        return done
    }

    /// Clears `driver_override`, unbinds, and binds `restore`; returns the driver bound after.
    private func release(
        _ address: PCIAddress, from current: DriverName?, to restore: UnbindPlan.Restore
    )
        throws(HostAccessError) -> DriverName?
    {
        // A lone newline is how the kernel is told to clear the override.
        try tree.writeText(SysfsLayout.device(address, .driverOverride), "\n")
        if current != nil { try tree.writeText(SysfsLayout.device(address, .driverUnbind), address.description) }
        switch restore {
        case .nothing: break
        case let .driver(driver): try tree.writeText(SysfsLayout.driver(driver, .bind), address.description)
        case .probe: try tree.writeText(SysfsLayout.driversProbe, address.description)
        }
        return try discovery.driver(of: address)
    }

    /// Gives a device whose bind failed back to the driver it had; returns what happened.
    private func rollback(_ step: BindPlan.Step) -> String {
        let restore: UnbindPlan.Restore = step.currentDriver.map { .driver($0) } ?? .nothing
        do {
            let now = try release(step.address, from: try discovery.driver(of: step.address), to: restore)
            try? store.update { $0[step.address] = nil }
            if now == step.currentDriver { return "it is back on \(now.map(\.rawValue) ?? "no driver")" }
            return "giving it back to \(step.currentDriver.map(\.rawValue) ?? "no driver") left it on \(now.map(\.rawValue) ?? "no driver")"
        } catch {
            return "giving it back to \(step.currentDriver.map(\.rawValue) ?? "no driver") failed too: \(error)"
        }
    }
}

/// A bind or unbind that failed part-way. `completed` lists the devices that had already
/// changed hands; their records are kept so `vfiokit unbind --restore` can undo them.
public enum BindEffectError: Error, Equatable, CustomStringConvertible {
    case write(HostAccessError, rollback: String?, completed: [SysfsBinder.Change])
    case didNotBind(PCIAddress, driver: DriverName, now: DriverName?, rollback: String, completed: [SysfsBinder.Change])
    case didNotRestore(PCIAddress, driver: DriverName, now: DriverName?, completed: [SysfsBinder.Change])
    case state(BindingStateError, completed: [SysfsBinder.Change])

    public var description: String {
        switch self {
        case let .write(error, rollback, completed):
            "\(error)" + (rollback.map { "; \($0)" } ?? "") + Self.note(completed)
        case let .didNotBind(address, driver, now, rollback, completed):
            """
            \(address) did not bind to \(driver) after drivers_probe (it is on \(now.map(\.rawValue) ?? "no driver")); \
            \(rollback); the kernel log (dmesg) says why\(Self.note(completed))
            """
        case let .didNotRestore(address, driver, now, completed):
            """
            \(address) did not bind back to \(driver) (it is on \(now.map(\.rawValue) ?? "no driver")); its record is \
            kept: see dmesg, then retry `vfiokit unbind --restore \(address)`\(Self.note(completed))
            """
        case let .state(error, completed):
            "\(error)" + Self.note(completed)
        }
    }

    private static func note(_ completed: [SysfsBinder.Change]) -> String {
        completed.isEmpty
            ? "" : "; already done: " + completed.map { "\($0.address) → \($0.to.map(\.rawValue) ?? "no driver")" }.joined(separator: ", ")
    }
}
