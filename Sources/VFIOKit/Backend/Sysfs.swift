import PCI
import SystemPackage

/// The sysfs facts a backend needs about one PCI device, read through the seam at the paths
/// ``SysfsLayout`` gives.
struct DeviceSysfs {
    let address: PCIAddress
    let system: any SystemCalls

    /// The absolute path of one of the device's attributes.
    func path(_ attribute: SysfsLayout.DeviceAttribute) -> String {
        SysfsLayout.absolute(SysfsLayout.device(address, attribute))
    }

    /// The bound driver's name, nil when unbound; throws `noSuchDevice` when the device is absent.
    func driver() throws(VFIOError) -> String? {
        do {
            return lastComponent(try system.readLink(path(.driver)))
        } catch .noSuchFileOrDirectory {
            do { _ = try system.readLink(SysfsLayout.absolute(SysfsLayout.device(address))) } catch { throw .noSuchDevice(address) }
            return nil
        } catch {
            throw error.vfio(SystemCall("readlink", path: path(.driver)))
        }
    }

    /// The IOMMU group number, nil when the device has none.
    func iommuGroup() throws(VFIOError) -> Int? {
        let link: String
        do {
            link = try system.readLink(path(.iommuGroup))
        } catch .noSuchFileOrDirectory {
            return nil
        } catch {
            throw error.vfio(SystemCall("readlink", path: path(.iommuGroup)))
        }
        guard let group = Int(lastComponent(link)) else {
            throw .deviceMisbehaved("unexpected iommu_group link \(link) for \(address)")
        }
        return group
    }

    /// The names listed in `directory` (`vfio-dev` or `uio`) that start with `prefix`, sorted;
    /// empty when the directory does not exist.
    func children(_ directory: SysfsLayout.DeviceAttribute, prefix: String) throws(VFIOError) -> [KernelName] {
        do {
            return try system.listDirectory(path(directory)).sorted().filter { $0.hasPrefix(prefix) }.compactMap(KernelName.init(listed:))
        } catch .noSuchFileOrDirectory {
            return []
        } catch {
            throw error.vfio(SystemCall("list", path: path(directory)))
        }
    }

    private func lastComponent(_ link: String) -> String {
        String(link.split(separator: "/").last ?? Substring(link))
    }
}
