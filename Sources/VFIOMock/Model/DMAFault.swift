import PCI

/// A device memory access the IOMMU (or the bus) refused. The access did nothing.
public struct DMAFault: Sendable, Equatable, CustomStringConvertible {
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

    public var device: PCIAddress
    public var iova: UInt64
    public var length: Int
    public var isWrite: Bool
    public var reason: Reason

    public var description: String {
        "\(device): DMA \(isWrite ? "write" : "read") of \(length) bytes at 0x\(String(iova, radix: 16)) refused (\(reason))"
    }
}
