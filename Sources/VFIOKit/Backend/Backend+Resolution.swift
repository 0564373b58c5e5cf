#if canImport(Glibc)
import Glibc
#endif
import CVFIO
import PCI
import SystemPackage

extension Backend {
    /// Turns `.auto` (or the environment's choice) into a concrete backend for one device, the
    /// way libvfn picks iommufd or the legacy container at run time. Opening itself is the
    /// ``IOMMUContext``'s.
    static func resolve(_ requested: Backend, sysfs: DeviceSysfs) throws(VFIOError) -> Backend {
        var choice = requested
        if choice == .auto, let value = getenv(Backend.environmentVariable).map({ String(cString: $0) }), !value.isEmpty {
            guard let forced = Backend(rawValue: value) else {
                throw .backendUnavailable(
                    .auto,
                    reason:
                        "\(Backend.environmentVariable)=\(value) is not one of \(Backend.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            choice = forced
        }
        guard choice == .auto else { return choice }
        if try sysfs.driver() == DriverName.uioPCIGeneric.rawValue { return .uio }
        let nodes = (try? sysfs.system.listDirectory(SysfsLayout.absolute(SysfsLayout.vfioNodes))) ?? []
        if let group = try sysfs.iommuGroup(), nodes.contains(SysfsLayout.vfioGroupNodeName(group, noIOMMU: true)) { return .noIOMMU }
        if try !sysfs.children(.vfioDev, prefix: "vfio").isEmpty,
            let iommufd = try? sysfs.system.open(SysfsLayout.absolute(SysfsLayout.iommufd), O_RDWR)
        {
            // Only a probe: an iommufd with nothing allocated has nothing to flush or lose.
            try? sysfs.system.close(iommufd)
            return .iommufd
        }
        return .legacy
    }
}
