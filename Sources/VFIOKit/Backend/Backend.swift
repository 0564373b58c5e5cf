/// The kernel interface a device is driven through. The same driver code runs on each.
public enum Backend: String, Sendable, CaseIterable, CustomStringConvertible {
    /// Choose at run time: `VFIOKIT_BACKEND` if set, else UIO for a device bound to
    /// uio_pci_generic, no-IOMMU for a no-IOMMU group, iommufd when `/dev/iommu` and the
    /// device's VFIO cdev exist, and the legacy container otherwise.
    case auto
    /// VFIO cdev (`/dev/vfio/devices/vfioN`) with an iommufd IO address space.
    case iommufd
    /// VFIO container and group with the type1 IOMMU (v2, falling back to v1).
    case legacy
    /// VFIO without an IOMMU: DMA addresses are physical, and the device can reach all memory.
    case noIOMMU = "noiommu"
    /// uio_pci_generic: BARs from sysfs, INTx through `/dev/uioN`, DMA by physical address.
    case uio

    /// The environment variable that overrides `.auto`.
    public static let environmentVariable = "VFIOKIT_BACKEND"

    /// The backend's `--backend` and `VFIOKIT_BACKEND` spelling: `auto`, `iommufd`, `legacy`,
    /// `noiommu`, `uio`.
    public var description: String { rawValue }

    /// True when DMA goes through an IOMMU, so a stray device access is caught as a fault.
    public var translatesDMA: Bool { self == .iommufd || self == .legacy }
}
