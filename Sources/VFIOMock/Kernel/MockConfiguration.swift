extension MockKernel {
    /// What kind of kernel and machine the mock plays.
    public struct Configuration: Sendable {
        /// The kernel release whose ABI the mock answers with (``Profile/newest`` by default).
        public var profile = Profile.newest
        /// The kernel was built with CONFIG_IOMMUFD and CONFIG_VFIO_DEVICE_CDEV.
        public var iommufdBuilt = true
        /// `/dev/iommu` and `/dev/vfio/devices/vfioN` exist: the profile's release has them and
        /// the kernel was built with them. Setting it sets ``iommufdBuilt``.
        public var iommufdAvailable: Bool {
            get { iommufdBuilt && profile.hasIOMMUFDAndCdev }
            set { iommufdBuilt = newValue }
        }
        /// `/dev/vfio/vfio` exists (the legacy container).
        public var legacyContainerAvailable = true
        /// The host has no IOMMU and vfio runs with `enable_unsafe_noiommu_mode=1`: groups
        /// are `/dev/vfio/noiommu-N`, the container offers only `VFIO_NOIOMMU_IOMMU`, and
        /// devices address process memory by mock physical address.
        public var noIOMMU = false
        /// Usable IOVAs once a device is attached (type1's IOVA-range capability, iommufd's
        /// `IOMMU_IOAS_IOVA_RANGES`).
        public var iovaRanges = IOVARange.x86Default
        /// type1's `dma_entry_limit` module parameter.
        public var dmaEntryLimit: UInt32 = 65535
        /// The IOMMU's page sizes (`iova_pgsizes`): 4 KiB, 2 MiB and 1 GiB by default.
        public var iommuPageSizes: UInt64 = 0x4020_1000
        /// RLIMIT_MEMLOCK in bytes for pinned DMA memory; nil for a process with CAP_IPC_LOCK.
        public var memlockLimit: UInt64? = nil
        /// MSI-X vectors can be added while MSI-X is enabled; false makes vfio report
        /// `VFIO_IRQ_INFO_NORESIZE`. The profile's ``Profile/dynamicMSIX``.
        public var dynamicMSIX: Bool {
            get { profile.dynamicMSIX }
            set { profile.dynamicMSIX = newValue }
        }
        /// The command register firmware leaves in every function at boot (SeaBIOS in the
        /// Tests/VM guests: I/O, memory and SERR# enable, 0x103); vfio-pci keeps those bits.
        public var firmwareCommand: UInt16 = 0
        /// Where firmware places the first 32-bit memory BAR; later ones follow in plug order,
        /// each aligned to its size (the Tests/VM guest's SeaBIOS starts at 0xfe600000).
        public var firmwareBARBase32: UInt64 = 0xe000_0000
        /// The interrupt line firmware writes into every function with an interrupt pin
        /// (the Tests/VM guest's q35 routing gives its devices 11).
        public var firmwareInterruptLine: UInt8 = 10
        /// `vfio_info_cap_add` pads every info capability to 8 bytes: the profile's
        /// ``Profile/alignsInfoCapabilities``.
        public var padsInfoCapabilities: Bool { profile.alignsInfoCapabilities }
        /// How vfio-pci exposes the BAR holding the MSI-X table.
        public var msixTableMapping = MSIXTableMapping.mappable

        /// The newest profile on an x86 machine with an IOMMU, every interface available, no
        /// firmware command bits and no memlock limit.
        public init() {}
    }

    /// How the BAR holding the MSI-X table may be mapped.
    public enum MSIXTableMapping: Sendable, Equatable {
        /// Linux 4.16+: the whole BAR, with `VFIO_REGION_INFO_CAP_MSIX_MAPPABLE`.
        case mappable
        /// Before 4.16: all but the table's pages, described by `VFIO_REGION_INFO_CAP_SPARSE_MMAP`.
        case sparseAroundTable
    }
}

/// The host driver a plugged function is bound to.
public enum DriverBinding: Sendable, Equatable, CustomStringConvertible {
    /// vfio-pci: the function is reached through VFIO.
    case vfioPCI
    /// uio_pci_generic: the function is reached through `/dev/uioN`.
    case uioPCIGeneric
    /// pci-stub: claims the function and does nothing, leaving its group viable.
    case pciStub
    /// Any other kernel driver, by name (e.g. `"snd_hda_intel"`): it owns the group's DMA.
    case kernel(String)
    /// No driver bound.
    case none

    /// The driver's name as sysfs shows it (`vfio-pci`, `uio_pci_generic`); `(none)` when unbound.
    public var description: String {
        switch self {
        case .vfioPCI: "vfio-pci"
        case .uioPCIGeneric: "uio_pci_generic"
        case .pciStub: "pci-stub"
        case .kernel(let name): name
        case .none: "(none)"
        }
    }

    /// Whether the driver uses the kernel's DMA API, which claims the IOMMU group.
    var claimsDMA: Bool {
        switch self {
        case .uioPCIGeneric, .kernel: true
        case .vfioPCI, .pciStub, .none: false
        }
    }
}
