import PCI
import VFIOKit

/// Decides whether an unbind may go ahead, and what each device is given back to.
///
/// Refuses a device that does not exist, one bound to a host driver rather than a userspace
/// one (unless `force`), and a restore whose recorded original driver is not loaded. Without
/// a record, a restore lets the kernel probe a driver.
public enum UnbindPolicy {
    public static func plan(_ request: UnbindRequest, on host: HostSnapshot) throws(BindRefusal) -> UnbindPlan {
        var problems: [BindProblem] = []
        var plan = UnbindPlan()
        var seen = Set<PCIAddress>()
        for address in request.addresses.sorted() where seen.insert(address).inserted {
            guard let device = host.devices[address] else {
                problems.append(.noSuchDevice(address))
                continue
            }
            let record = host.records[address]
            if request.restore, let record, let original = record.originalDriver, device.driver == original {
                plan.alreadyRestored.append(address)
                plan.forget.append(address)
                continue
            }
            if let driver = device.driver, !driver.isUserspaceDriver {
                if request.force {
                    plan.warnings.append(.forcedUnbindOfHostDriver(address, driver))
                } else {
                    problems.append(.boundToHostDriver(address, driver))
                    continue
                }
            }
            var restore = UnbindPlan.Restore.nothing
            if request.restore {
                if let record {
                    if let original = record.originalDriver {
                        guard host.loadedDrivers.contains(original) else {
                            problems.append(.originalDriverNotLoaded(address, original))
                            continue
                        }
                        restore = .driver(original)
                    }
                } else {
                    plan.warnings.append(.noRecordedDriver(address))
                    restore = .probe
                }
            }
            plan.steps.append(.init(address: address, currentDriver: device.driver, restore: restore))
            if request.restore { plan.forget.append(address) }
        }
        guard problems.isEmpty else { throw BindRefusal(problems: problems) }
        return plan
    }

    /// The drivers a restore of `addresses` would bind, so the snapshot can say which are loaded.
    public static func driversToRestore(_ addresses: [PCIAddress], records: [PCIAddress: BindingRecord]) -> [DriverName] {
        addresses.compactMap { records[$0]?.originalDriver }
    }
}
