import PCI
import VFIOKit

/// What `vfiokit run` hosts, and how.
public struct DaemonConfiguration: Sendable {
    /// One device to host.
    public struct Device: Sendable, Equatable {
        public var address: PCIAddress
        /// The driver to attach; nil to pick the first whose match table takes the device.
        public var driver: String?
        /// Devices naming the same context share one IOMMU context, as devices of one IOMMU
        /// group always do.
        public var context: String?
        /// The namespaces to serve (NVMe devices only), started once the driver is up.
        public var exports: [ExportSpecification]

        public init(address: PCIAddress, driver: String? = nil, context: String? = nil, exports: [ExportSpecification] = []) {
            self.address = address
            self.driver = driver
            self.context = context
            self.exports = exports
        }
    }

    public var devices: [Device]
    /// Bind each device to vfio-pci first (uio_pci_generic when `backend` is `.uio`), and
    /// give back its original driver at shutdown.
    public var bind: Bool
    public var backend: Backend
    /// Where the lock, the socket and the bindings journal live.
    public var stateDirectory: String
    /// Pause between two units of work on a device whose driver can exercise it.
    public var workInterval: Duration
    /// Follow udev's add and remove events (the real host only).
    public var watchUdev: Bool

    public init(
        devices: [Device], bind: Bool = false, backend: Backend = .auto, stateDirectory: String,
        workInterval: Duration = .milliseconds(10), watchUdev: Bool = false
    ) {
        self.devices = devices
        self.bind = bind
        self.backend = backend
        self.stateDirectory = stateDirectory
        self.workInterval = workInterval
        self.watchUdev = watchUdev
    }

    /// The status socket: `vfiokit status` asks here.
    public var socketPath: String { Self.socketPath(in: stateDirectory) }

    public static func socketPath(in stateDirectory: String) -> String { stateDirectory + "/vfiokit.sock" }

    /// Throws ``DaemonError/unknownDriver(_:known:)`` for a driver named by `override` or
    /// an entry that `known` does not hold.
    public func checkDrivers(override: String?, known: [any PCIDriver.Type]) throws(DaemonError) {
        for name in ([override] + devices.map(\.driver)).compactMap({ $0 }) where !known.contains(where: { $0.name == name }) {
            throw .unknownDriver(name, known: known.map { $0.name }.joined(separator: ", "))
        }
    }

    /// The device entry for `address`, if the configuration names it.
    public func device(_ address: PCIAddress) -> Device? { devices.first { $0.address == address } }
}
