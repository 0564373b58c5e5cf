#if canImport(Glibc)
import Glibc
#endif
import ArgumentParser
import PCI
import VFIODaemon
import VFIODrivers
import VFIOMock

/// `vfiokit run --simulated-nvme`: a simulated NVMe controller, next to the simulated devices,
/// whose one namespace is a sparse image file in the state directory (kept between runs), hosted
/// by the nvme driver and exported over NBD (by default on a Unix socket in the state directory).
enum SimulatedNVMeExport {
    /// The image's size when it is made: sparse, so only written blocks take disk space.
    static let imageBytes = 256 << 20

    static func imagePath(stateDirectory: String) -> String { stateDirectory + "/simulated-nvme.img" }

    /// Plugs the controller at `address` on `kernel`'s bus, on `binding`; the image is made
    /// (with the state directory) when missing.
    static func plug(
        into kernel: MockKernel, at address: PCIAddress, binding: DriverBinding, stateDirectory: String
    ) throws -> NVMeController {
        if access(stateDirectory, F_OK) != 0, mkdir(stateDirectory, 0o755) != 0, errno != EEXIST {
            throw ValidationError("cannot make the state directory \(stateDirectory) for the simulated NVMe image: errno \(errno)")
        }
        let path = imagePath(stateDirectory: stateDirectory)
        let namespace: NVMeNamespace
        do { namespace = try NVMeNamespace(imageAt: path, createSize: imageBytes) } catch {
            throw ValidationError("the simulated NVMe image \(path): \(error.description)")
        }
        let controller = NVMeController(namespaces: [namespace])
        try kernel.plug(controller, at: address, driver: binding)
        return controller
    }

    /// The device entry: the nvme driver, serving `exports` (an NBD export on the default
    /// socket when none are given).
    static func device(_ address: PCIAddress, exports: [ExportSpecification]) -> DaemonConfiguration.Device {
        DaemonConfiguration.Device(
            address: address, driver: NVMeDriver.name, exports: exports.isEmpty ? [ExportSpecification(kind: .nbd)] : exports)
    }

    /// A line per export of `report`, for clients to copy: `export nbd namespace 1 of ADDRESS: URI`.
    static func exportLines(_ report: StatusReport) -> [String] {
        report.devices.flatMap { d in
            (d.exports ?? []).map {
                "export \($0.kind) namespace \($0.namespace) of \(d.address)\($0.readOnly ? " (read-only)" : ""): \($0.target)"
            }
        }
    }
}
