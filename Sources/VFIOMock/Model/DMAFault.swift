import PCI

/// A device memory access the IOMMU (or the bus) refused. The access did nothing.
public struct DMAFault: Sendable, Equatable, CustomStringConvertible {
    /// Why the access was refused.
    public enum Reason: Sendable, Equatable {
        /// No mapping covers the IOVA (or, with no IOMMU, no process memory has that
        /// physical address).
        case unmapped
        /// A mapping covers it but without the needed READ or WRITE permission.
        case permission
        /// The device has no IOMMU domain a user attached (vfio device not open, group
        /// without an IOMMU, cdev not attached to an IOAS): DMA is blocked.
        case blocked
        /// The command register's bus-master bit is off, so the device may not master.
        case busMasterDisabled
    }

    /// The function that made the access.
    public var device: PCIAddress
    /// The first address accessed: an IOVA, or a physical address when there is no IOMMU.
    public var iova: UInt64
    /// The access's length in bytes.
    public var length: Int
    /// True for a DMA write (device to memory), false for a read.
    public var isWrite: Bool
    /// Why it was refused.
    public var reason: Reason

    /// `0000:01:00.0: DMA write of 8 bytes at 0x1000 refused (unmapped)`.
    public var description: String {
        "\(device): DMA \(isWrite ? "write" : "read") of \(length) bytes at 0x\(String(iova, radix: 16)) refused (\(reason))"
    }
}
