import CVFIO

/// The IOMMU set-ups of the kernel's VFIO selftests (`tools/testing/selftests/vfio`).
public enum IOMMUMode: String, CaseIterable, Codable, Sendable {
    /// `/dev/vfio/vfio` with `VFIO_TYPE1_IOMMU`.
    case type1
    /// `/dev/vfio/vfio` with `VFIO_TYPE1v2_IOMMU`.
    case type1v2
    /// `/dev/iommu` set as the group's container, `VFIO_TYPE1_IOMMU` (iommufd's vfio_compat.c).
    case compatType1 = "iommufd-compat-type1"
    /// `/dev/iommu` set as the group's container, `VFIO_TYPE1v2_IOMMU`.
    case compatType1v2 = "iommufd-compat-type1v2"
    /// The device cdev bound to `/dev/iommu`, attached to an IOAS.
    case iommufd

    /// Opened through a group and a container (every mode but native iommufd).
    var usesGroup: Bool { self != .iommufd }

    /// Needs `/dev/iommu`.
    var needsIOMMUFD: Bool { self != .type1 && self != .type1v2 }

    var containerPath: String { needsIOMMUFD ? "/dev/iommu" : "/dev/vfio/vfio" }

    /// The `VFIO_SET_IOMMU` type of a group mode.
    var iommuType: Int { self == .type1 || self == .compatType1 ? Int(VFIO_TYPE1_IOMMU) : Int(VFIO_TYPE1v2_IOMMU) }

    static let groupModes: Set<IOMMUMode> = [.type1, .type1v2, .compatType1, .compatType1v2]
    static let all = Set(allCases)
}
