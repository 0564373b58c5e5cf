import PCI

/// Decides whether a bind may go ahead, and what it will write, from a ``HostSnapshot`` alone.
///
/// Refuses (listing every problem) when a device does not exist, the driver is not loaded,
/// a device has no IOMMU group outside no-IOMMU mode, a group member holds a DMA-claiming host
/// driver (unless `wholeGroup`, which adds it), or the host uses a device (unless `force`).
/// IOMMU rules apply to VFIO drivers only: uio_pci_generic does no DMA isolation at all.
public enum BindPolicy {
    public static func plan(_ request: BindRequest, on host: HostSnapshot) throws(BindRefusal) -> BindPlan {
        var problems: [BindProblem] = []
        var plan = BindPlan()
        if !host.loadedDrivers.contains(request.driver) { problems.append(.driverNotLoaded(request.driver)) }

        var targets: [PCIAddress] = []
        for address in request.addresses where !targets.contains(address) {
            if host.devices[address] == nil { problems.append(.noSuchDevice(address)) } else { targets.append(address) }
        }
        if request.driver.isVFIO {
            var index = 0
            while index < targets.count {
                let address = targets[index]
                index += 1
                guard let device = host.devices[address] else { continue }
                guard let group = device.iommuGroup else {
                    if host.noIOMMUMode {
                        plan.warnings.append(.noIOMMU(device.address))
                    } else {
                        problems.append(.noIOMMUGroup(device.address))
                    }
                    continue
                }
                for member in host.groupMembers[group] ?? [] where !targets.contains(member) {
                    guard let driver = host.devices[member]?.driver, !driver.keepsGroupViable else { continue }
                    if request.wholeGroup {
                        targets.append(member)
                        plan.warnings.append(.addedGroupMember(member, group: group, driver: driver))
                    } else {
                        problems.append(.groupNotViable(group: group, member: member, driver: driver))
                    }
                }
            }
            if !host.memlock.allows(request.pinSize), case let .bytes(limit) = host.memlock {
                plan.warnings.append(.memlockBelowPinSize(limit: limit, pinSize: request.pinSize))
            }
        }
        for address in targets.sorted() {
            guard let device = host.devices[address] else { continue }
            if device.driver == request.driver {
                plan.alreadyBound.append(address)
                continue
            }
            if let usage = host.usage[address], usage.isInUse {
                if request.force {
                    plan.warnings.append(.forcedWhileInUse(address, usage))
                } else {
                    problems.append(.inUse(address, usage))
                }
            }
            plan.steps.append(.init(address: address, currentDriver: device.driver, driver: request.driver))
        }
        guard problems.isEmpty else { throw BindRefusal(problems: problems) }
        return plan
    }
}
