import CVFIO

/// How an ``IOMMUContext`` reaches the IOMMU: one row of a table, as the kernel's VFIO
/// selftests keep it (`tools/testing/selftests/vfio/lib/iommu.c`).
///
/// The group path opens `containerPath` and sets `iommuType` on it: `/dev/vfio/vfio` is VFIO's
/// own container, `/dev/iommu` is iommufd's compatibility container, which answers the same
/// ioctls. The cdev path (``iommufd``) binds each device's `/dev/vfio/devices/vfioN` to an
/// iommufd IO address space instead.
public struct IOMMUMode: Sendable, Hashable, CustomStringConvertible {
    /// The selftests' name for the mode.
    public let name: String
    /// The backend a device opened in this mode reports.
    public let backend: Backend
    /// The container node of the group path; nil for the cdev path and UIO.
    public let containerPath: String?
    /// `VFIO_SET_IOMMU`'s argument on the group path.
    public let iommuType: Int32?

    public var description: String { name }

    public static let type1 = IOMMUMode(name: "vfio_type1_iommu", backend: .legacy, containerPath: "/dev/vfio/vfio", iommuType: VFIO_TYPE1_IOMMU)
    public static let type1v2 = IOMMUMode(name: "vfio_type1v2_iommu", backend: .legacy, containerPath: "/dev/vfio/vfio", iommuType: VFIO_TYPE1v2_IOMMU)
    public static let iommufdCompatType1 = IOMMUMode(name: "iommufd_compat_type1", backend: .legacy, containerPath: "/dev/iommu", iommuType: VFIO_TYPE1_IOMMU)
    public static let iommufdCompatType1v2 = IOMMUMode(name: "iommufd_compat_type1v2", backend: .legacy, containerPath: "/dev/iommu", iommuType: VFIO_TYPE1v2_IOMMU)
    public static let iommufd = IOMMUMode(name: "iommufd", backend: .iommufd, containerPath: nil, iommuType: nil)
    public static let noIOMMU = IOMMUMode(name: "vfio_noiommu", backend: .noIOMMU, containerPath: "/dev/vfio/vfio", iommuType: VFIO_NOIOMMU_IOMMU)
    public static let uio = IOMMUMode(name: "uio", backend: .uio, containerPath: nil, iommuType: nil)

    /// Every mode, the selftests' five IOMMU modes first.
    public static let all: [IOMMUMode] = [.type1, .type1v2, .iommufdCompatType1, .iommufdCompatType1v2, .iommufd, .noIOMMU, .uio]

    /// The modes a backend tries, best first: the legacy backend prefers type1 v2.
    static func candidates(for backend: Backend) -> [IOMMUMode] {
        switch backend {
        case .legacy: [.type1v2, .type1]
        case .iommufd: [.iommufd]
        case .noIOMMU: [.noIOMMU]
        case .uio: [.uio]
        case .auto: []
        }
    }

    /// True on the group path (a container with groups).
    var usesGroups: Bool { containerPath != nil }
}
