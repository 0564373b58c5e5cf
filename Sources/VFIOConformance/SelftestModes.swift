import VFIOKit

extension IOMMUMode {
    /// The IOMMU modes of the kernel's VFIO selftests, in their order.
    static let selftestModes = all.filter(\.isSelftestMode)
    /// The selftest modes on the group path.
    static let groupModes = Set(selftestModes.filter { $0.containerPath != nil })
    static let allSelftestModes = Set(selftestModes)

    /// The container node of the group path ("" on the cdev path).
    var containerNode: String { containerPath ?? "" }

    /// `VFIO_SET_IOMMU`'s argument as the integer the ioctl takes (0 on the cdev path).
    var iommuTypeArgument: Int { Int(iommuType ?? 0) }
}
