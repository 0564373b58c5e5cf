import PCI
import SystemPackage

/// The sysfs facts a backend needs about one PCI device, read through the seam.
struct DeviceSysfs {
    let address: PCIAddress
    let system: any SystemCalls

    /// `/sys/bus/pci/devices/ADDRESS`; safe because a PCIAddress never holds path characters.
    var path: String { "/sys/bus/pci/devices/\(address)" }

    /// The bound driver's name, nil when unbound; throws `noSuchDevice` when the device is absent.
    func driver() throws(VFIOError) -> String? {
        do {
            return lastComponent(try system.readLink(path + "/driver"))
        } catch .noSuchFileOrDirectory {
            do { _ = try system.readLink(path) } catch { throw .noSuchDevice(address) }
            return nil
        } catch {
            throw error.vfio("readlink \(path)/driver")
        }
    }

    /// The IOMMU group number, nil when the device has none.
    func iommuGroup() throws(VFIOError) -> Int? {
        let link: String
        do {
            link = try system.readLink(path + "/iommu_group")
        } catch .noSuchFileOrDirectory {
            return nil
        } catch {
            throw error.vfio("readlink \(path)/iommu_group")
        }
        guard let group = Int(lastComponent(link)) else {
            throw .deviceMisbehaved("unexpected iommu_group link \(link) for \(address)")
        }
        return group
    }

    /// Names in a child directory such as `vfio-dev` or `uio`; empty when it does not exist.
    func children(_ directory: String) throws(VFIOError) -> [String] {
        do {
            return try system.listDirectory(path + "/" + directory).sorted()
        } catch .noSuchFileOrDirectory {
            return []
        } catch {
            throw error.vfio("list \(path)/\(directory)")
        }
    }

    private func lastComponent(_ link: String) -> String {
        String(link.split(separator: "/").last ?? Substring(link))
    }
}
