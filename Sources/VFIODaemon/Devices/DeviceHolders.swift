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
        let device = "/sys/bus/pci/devices/\(address)"
        var nodes: [String] = []
        if let group = try? system.readLink(device + "/iommu_group").split(separator: "/").last {
            nodes += ["/dev/vfio/\(group)", "/dev/vfio/noiommu-\(group)"]
        }
        nodes += ((try? system.listDirectory(device + "/vfio-dev")) ?? []).map { "/dev/vfio/devices/\($0)" }
        nodes += ((try? system.listDirectory(device + "/uio")) ?? []).map { "/dev/\($0)" }
        guard !nodes.isEmpty, let processes = try? system.listDirectory("/proc") else { return [] }
        var holders: [String] = []
        for pid in processes where Int32(pid) != nil && Int32(pid) != getpid() {
            let fds = (try? system.listDirectory("/proc/\(pid)/fd")) ?? []
            guard fds.contains(where: { fd in (try? system.readLink("/proc/\(pid)/fd/\(fd)")).map(nodes.contains) ?? false }) else { continue }
            let command = (try? system.readText("/proc/\(pid)/comm")) ?? "?"
            holders.append("pid \(pid) (\(command))")
        }
        return holders
    }
}
