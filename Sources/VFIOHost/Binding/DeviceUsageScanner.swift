import PCI
import VFIOKit

/// Finds the block devices and network interfaces that sit below a PCI device in sysfs, and
/// which of them the host is using.
///
/// A block device or interface belongs to the PCI device when its `sys/class/block` or
/// `sys/class/net` link points inside the PCI device's directory (this catches partitions,
/// NVMe namespaces, virtio and SCSI disks at any depth). Block devices stacked on those —
/// dm, md, found through `holders/` — count too.
public struct DeviceUsageScanner: Sendable {
    public let tree: HostTree

    public init(tree: HostTree) { self.tree = tree }

    // IFF_UP from <linux/if.h>.
    private static let interfaceUp: UInt64 = 0x1

    public func usage(of address: PCIAddress) throws(HostAccessError) -> DeviceUsage {
        guard let devicePath = try tree.resolveLink(SysfsLayout.device(address)) else { throw .noSuchDevice(address) }
        let inside = devicePath + "/"
        var usage = DeviceUsage()

        let blockDevices = try stackedBlockDevices(on: try names(in: SysfsLayout.classBlock, inside: inside))
        if !blockDevices.isEmpty {
            let mounts = MountTable(mountInfo: try tree.readTextIfPresent(SysfsLayout.mountInfo) ?? "")
            let swaps = Set(try swapDevices())
            for name in blockDevices {
                if swaps.contains(name.rawValue) { usage.swaps.append(name.rawValue) }
                guard let number = try tree.readTextIfPresent(SysfsLayout.block(name) + "/dev") else { continue }
                usage.mounts += mounts.mounts(on: number).map {
                    DeviceUsage.MountedFilesystem(blockDevice: name.rawValue, deviceNumber: number, mountPoint: $0.mountPoint)
                }
            }
        }
        for name in try names(in: SysfsLayout.classNet, inside: inside) where try isUp(name) {
            usage.upInterfaces.append(name.rawValue)
        }
        return usage
    }

    /// The entries of a class directory whose links point inside `prefix`.
    private func names(in classDirectory: String, inside prefix: String) throws(HostAccessError) -> [KernelName] {
        var result: [KernelName] = []
        for entry in try tree.list(classDirectory) {
            guard let name = KernelName(listed: entry),
                let target = try tree.resolveLink(classDirectory + "/" + entry), target.hasPrefix(prefix)
            else { continue }
            result.append(name)
        }
        return result
    }

    /// `names` and every block device stacked on them, in discovery order, each once.
    private func stackedBlockDevices(on names: [KernelName]) throws(HostAccessError) -> [KernelName] {
        var seen = Set(names)
        var ordered = names
        var index = 0
        while index < ordered.count {
            for entry in try tree.list(SysfsLayout.block(ordered[index]) + "/holders") {
                guard let holder = KernelName(listed: entry), seen.insert(holder).inserted else { continue }
                ordered.append(holder)
            }
            index += 1
        }
        return ordered
    }

    /// Kernel names of the block devices in /proc/swaps (swap files are not devices).
    private func swapDevices() throws(HostAccessError) -> [String] {
        let text = try tree.readTextIfPresent(SysfsLayout.swaps) ?? ""
        return text.split(separator: "\n").dropFirst().compactMap { line in
            guard let path = line.split(separator: " ").first, path.hasPrefix("/dev/") else { return nil }
            return String(path.dropFirst(5))
        }
    }

    private func isUp(_ name: KernelName) throws(HostAccessError) -> Bool {
        let base = SysfsLayout.net(name)
        if try tree.readTextIfPresent(base + "/operstate") == "up" { return true }
        guard let flags = try tree.readTextIfPresent(base + "/flags"), flags.hasPrefix("0x"),
            let value = UInt64(flags.dropFirst(2), radix: 16)
        else { return false }
        return value & Self.interfaceUp != 0
    }
}
