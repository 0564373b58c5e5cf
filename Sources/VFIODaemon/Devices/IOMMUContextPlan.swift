import Logging
import PCI
import VFIOKit

/// Which devices share an IOMMU context: those in one IOMMU group (the kernel gives a group
/// one address space whatever userspace wants) and those the configuration names together.
struct IOMMUContextPlan: Equatable {
    struct Context: Equatable {
        /// "group 12", the configuration's name, or the device for one without a group.
        var name: String
        var devices: [DaemonConfiguration.Device]
    }

    var contexts: [Context]

    /// Merges devices that share a group or a configured context name, keeping their order.
    init(_ devices: [DaemonConfiguration.Device], group: (PCIAddress) -> Int?) {
        var contexts: [Context] = []
        var keys: [Set<String>] = []
        for device in devices {
            var own = Set<String>()
            if let g = group(device.address) { own.insert("group \(g)") }
            if let c = device.context { own.insert("context \(c)") }
            let joined = keys.indices.filter { !keys[$0].isDisjoint(with: own) }
            var merged = Context(name: device.context ?? own.sorted().first ?? "device \(device.address)", devices: [])
            var mergedKeys = own
            for i in joined.reversed() {
                merged.devices = contexts[i].devices + merged.devices
                merged.name = contexts[i].name
                mergedKeys.formUnion(keys[i])
                contexts.remove(at: i)
                keys.remove(at: i)
            }
            merged.devices.append(device)
            contexts.append(merged)
            keys.append(mergedKeys)
        }
        self.contexts = contexts
    }

    /// The IOMMU group of `address` as sysfs links it, or nil without one.
    static func group(of address: PCIAddress, system: any SystemCalls) -> Int? {
        (try? system.readLink(SysfsLayout.absolute(SysfsLayout.device(address, .iommuGroup)))).flatMap { $0.split(separator: "/").last }
            .flatMap { Int($0) }
    }
}

/// Opens the devices of one planned context into one VFIOKit ``IOMMUContext``: the one place
/// the daemon makes contexts.
enum ContextOpener {
    static func open(
        _ planned: IOMMUContextPlan.Context, backend: Backend, system: any SystemCalls, logger: Logger
    ) -> [(device: DaemonConfiguration.Device, opened: Result<PCIDevice, VFIOError>)] {
        let context = IOMMUContext(backend: backend, system: system, logger: logger)
        let opened = planned.devices.map { device in
            (device, Result { () throws(VFIOError) in try context.open(device.address) })
        }
        if context.devices.isEmpty { context.close() }
        return opened
    }
}
