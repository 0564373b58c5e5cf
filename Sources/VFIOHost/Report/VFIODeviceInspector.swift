import PCI

/// What VFIO says about a device bound to vfio-pci: its regions and interrupt indices.
public struct VFIODeviceSummary: Encodable, Equatable, Sendable {
    public struct Region: Encodable, Equatable, Sendable {
        public let index: Int
        /// `BAR0`…`BAR5`, `ROM`, `config`, `VGA`, or the type of a device-specific region.
        public let name: String
        public let size: UInt64
        /// Where the region sits in the device fd, for pread/pwrite/mmap.
        public let offset: UInt64
        /// `read`, `write`, `mmap`, `caps`.
        public let flags: [String]
        /// The capability chain, one entry each: `sparse mmap: 0x0+0x1000, 0x3000+0x1000`, `msix mappable`.
        public let capabilities: [String]

        public init(index: Int, name: String, size: UInt64, offset: UInt64, flags: [String], capabilities: [String]) {
            self.index = index
            self.name = name
            self.size = size
            self.offset = offset
            self.flags = flags
            self.capabilities = capabilities
        }
    }

    public struct IRQ: Encodable, Equatable, Sendable {
        public let index: Int
        /// `INTx`, `MSI`, `MSI-X`, `ERR`, `REQ`.
        public let name: String
        public let count: UInt32
        /// `eventfd`, `maskable`, `automasked`, `noresize`.
        public let flags: [String]

        public init(index: Int, name: String, count: UInt32, flags: [String]) {
            self.index = index
            self.name = name
            self.count = count
            self.flags = flags
        }
    }

    public let regions: [Region]
    public let irqs: [IRQ]

    public init(regions: [Region], irqs: [IRQ]) {
        self.regions = regions
        self.irqs = irqs
    }
}

/// Opens a vfio-pci device just long enough to ask for its region and IRQ info.
///
/// The seam to the framework: VFIOKit's device API implements it (VFIO_DEVICE_GET_INFO,
/// GET_REGION_INFO with its capability chain, GET_IRQ_INFO), on the real kernel or the mock.
/// Throws when the device cannot be opened (another process holds the group, no permission);
/// the error's description is shown to the user.
public protocol VFIODeviceInspector: Sendable {
    func inspect(_ address: PCIAddress) throws -> VFIODeviceSummary
}
