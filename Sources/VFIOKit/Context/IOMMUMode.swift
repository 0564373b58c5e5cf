import CVFIO

/// How an ``IOMMUContext`` reaches the IOMMU: one row of ``all``, the one table of the ways in,
/// as the kernel's VFIO selftests keep theirs (`iommu_modes[]` in
/// `tools/testing/selftests/vfio/lib/iommu.c`).
///
/// A ``Backend`` is what a caller asks for (and the CLI's `--backend` spelling); a mode is what a
/// context runs in. The legacy backend tries ``type1v2`` then ``type1``; each other backend has
/// one mode. Each mode's ``route`` says which files it opens, so no mode can name a container
/// without an IOMMU type or a cdev with one.
public struct IOMMUMode: Sendable, Hashable, CustomStringConvertible {
    /// The files a mode opens to reach the IOMMU.
    public enum Route: Sendable, Hashable {
        /// The group path: open `node` (a ``SysfsLayout`` path), attach each device's group to
        /// it, and set `iommuType` with `VFIO_SET_IOMMU`. `/dev/vfio/vfio` is VFIO's own
        /// container; `/dev/iommu` is iommufd's compatibility container, which answers the
        /// same ioctls.
        case container(node: String, iommuType: Int32)
        /// The cdev path: each device's `/dev/vfio/devices/vfioN` bound to one iommufd IOAS.
        case iommufdCDev
        /// No VFIO: uio_pci_generic's files, with DMA by physical address.
        case uio
    }

    /// The selftests' name for the mode (``named(_:)`` finds it).
    public let name: String
    /// The backend a device opened in this mode reports.
    public let backend: Backend
    /// The files the mode opens, and for a container the IOMMU type it sets.
    public let route: Route
    /// Whether the mode is one of the kernel VFIO selftests' five.
    public let isSelftestMode: Bool

    /// The mode's ``name``.
    public var description: String { name }

    /// VFIO's container with the type1 IOMMU (`VFIO_TYPE1_IOMMU`).
    public static let type1 = container("vfio_type1_iommu", .legacy, SysfsLayout.vfioContainer, VFIO_TYPE1_IOMMU, selftest: true)
    /// VFIO's container with the type1 v2 IOMMU (`VFIO_TYPE1v2_IOMMU`), which the legacy backend
    /// tries first.
    public static let type1v2 = container("vfio_type1v2_iommu", .legacy, SysfsLayout.vfioContainer, VFIO_TYPE1v2_IOMMU, selftest: true)
    /// iommufd's compatibility container (`/dev/iommu`) set to `VFIO_TYPE1_IOMMU`.
    public static let iommufdCompatType1 = container("iommufd_compat_type1", .legacy, SysfsLayout.iommufd, VFIO_TYPE1_IOMMU, selftest: true)
    /// iommufd's compatibility container (`/dev/iommu`) set to `VFIO_TYPE1v2_IOMMU`.
    public static let iommufdCompatType1v2 = container(
        "iommufd_compat_type1v2", .legacy, SysfsLayout.iommufd, VFIO_TYPE1v2_IOMMU, selftest: true)
    /// Each device's VFIO cdev bound to an iommufd IOAS.
    public static let iommufd = IOMMUMode(name: "iommufd", backend: .iommufd, route: .iommufdCDev, isSelftestMode: true)
    /// VFIO's container in no-IOMMU mode (`VFIO_NOIOMMU_IOMMU`): DMA by physical address; not a
    /// selftest mode.
    public static let noIOMMU = container("vfio_noiommu", .noIOMMU, SysfsLayout.vfioContainer, VFIO_NOIOMMU_IOMMU, selftest: false)
    /// uio_pci_generic, without VFIO: DMA by physical address; not a selftest mode.
    public static let uio = IOMMUMode(name: "uio", backend: .uio, route: .uio, isSelftestMode: false)

    /// Every mode, the selftests' five first and in their order.
    public static let all: [IOMMUMode] = [.type1, .type1v2, .iommufdCompatType1, .iommufdCompatType1v2, .iommufd, .noIOMMU, .uio]

    /// The mode called `name` in ``all``, as the selftests look theirs up; nil for any other name.
    public static func named(_ name: String) -> IOMMUMode? { all.first { $0.name == name } }

    /// The modes a backend tries, best first: the legacy backend prefers type1 v2; `.auto` is
    /// resolved to a backend before any mode is tried, so it has none.
    static func candidates(for backend: Backend) -> [IOMMUMode] {
        switch backend {
        case .legacy: [.type1v2, .type1]
        case .auto: []
        default: all.filter { $0.backend == backend }
        }
    }

    /// The container's absolute path on the group path; nil on the cdev path and UIO.
    public var containerPath: String? {
        guard case let .container(node, _) = route else { return nil }
        return SysfsLayout.absolute(node)
    }

    /// `VFIO_SET_IOMMU`'s argument on the group path; nil on the cdev path and UIO.
    public var iommuType: Int32? {
        guard case let .container(_, type) = route else { return nil }
        return type
    }

    private static func container(_ name: String, _ backend: Backend, _ node: String, _ type: Int32, selftest: Bool) -> IOMMUMode {
        IOMMUMode(name: name, backend: backend, route: .container(node: node, iommuType: type), isSelftestMode: selftest)
    }
}
