import CUdev
#if canImport(Glibc)
import Glibc
#endif
import PCI
import SystemPackage

/// Enumerates the real host's PCI devices through libudev (subsystem `pci`).
///
/// libudev reads the machine's own `/sys`; for any other root use ``SysfsPCIEnumerator``.
public struct UdevPCIEnumerator: PCIDeviceEnumerator {
    public init() {}

    public func addresses() throws(HostAccessError) -> [PCIAddress] {
        guard let udev = udev_new() else { throw .udev(call: "udev_new", Errno(rawValue: errno)) }
        defer { udev_unref(udev) }
        guard let enumerate = udev_enumerate_new(udev) else {
            throw .udev(call: "udev_enumerate_new", Errno(rawValue: errno))
        }
        defer { udev_enumerate_unref(enumerate) }
        var status = udev_enumerate_add_match_subsystem(enumerate, "pci")
        guard status >= 0 else { throw .udev(call: "udev_enumerate_add_match_subsystem", Errno(rawValue: -status)) }
        status = udev_enumerate_scan_devices(enumerate)
        guard status >= 0 else { throw .udev(call: "udev_enumerate_scan_devices", Errno(rawValue: -status)) }

        var addresses: [PCIAddress] = []
        var entry = udev_enumerate_get_list_entry(enumerate)
        while let current = entry {
            // Each entry's name is a syspath ending in the device's address.
            if let syspath = udev_list_entry_get_name(current),
                let name = String(cString: syspath).split(separator: "/").last,
                let address = try? PCIAddress(parsing: String(name))
            {
                addresses.append(address)
            }
            entry = udev_list_entry_get_next(current)
        }
        return addresses.sorted()
    }
}
