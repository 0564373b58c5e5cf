#if canImport(Glibc)
import Glibc
#endif
import PCI
import VFIOKit

/// The other processes that have a device's VFIO or UIO files open, found through
/// `/proc/PID/fd` the way `fuser` finds them: "pid 1234 (vfiokit)". This process and those it
/// may not inspect are left out.
enum DeviceHolders {
    static func of(_ address: PCIAddress, system: any SystemCalls) -> [String] {
        func path(_ relative: String) -> String { SysfsLayout.absolute(relative) }
        func listed(_ attribute: SysfsLayout.DeviceAttribute) -> [KernelName] {
            ((try? system.listDirectory(path(SysfsLayout.device(address, attribute)))) ?? []).compactMap(KernelName.init(listed:))
        }
        var nodes: [String] = []
        if let link = try? system.readLink(path(SysfsLayout.device(address, .iommuGroup))),
            let group = link.split(separator: "/").last.flatMap({ Int($0) })
        {
            nodes += [false, true].map { path(SysfsLayout.vfioGroupNode(group, noIOMMU: $0)) }
        }
        nodes += listed(.vfioDev).map { path(SysfsLayout.vfioDeviceNode($0)) }
        nodes += listed(.uio).map { path(SysfsLayout.uioNode($0)) }
        guard !nodes.isEmpty, let processes = try? system.listDirectory(path(SysfsLayout.processes)) else { return [] }
        var holders: [String] = []
        for pid in processes.compactMap({ Int32($0) }) where pid != getpid() {
            let files = path(SysfsLayout.processFiles(pid))
            let fds = (try? system.listDirectory(files)) ?? []
            guard fds.contains(where: { fd in (try? system.readLink(files + "/" + fd)).map(nodes.contains) ?? false }) else { continue }
            let command = (try? system.readText(path(SysfsLayout.processCommand(pid)))) ?? "?"
            holders.append("pid \(pid) (\(command))")
        }
        return holders
    }
}
