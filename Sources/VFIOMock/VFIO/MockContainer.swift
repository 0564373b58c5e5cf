import SystemPackage
import CVFIO

/// A `/dev/vfio/vfio` container (`drivers/vfio/container.c`) and the IOMMU driver set on it.
final class MockContainer {
    enum Driver {
        case type1(Type1IOMMU)
        case noIOMMU
    }

    private(set) var groups: [MockGroup] = []
    private(set) var driver: Driver?
    private(set) var isNoIOMMU = false
    private let configuration: MockKernel.Configuration

    init(configuration: MockKernel.Configuration) { self.configuration = configuration }

    var type1: Type1IOMMU? { if case .type1(let t)? = driver { t } else { nil } }

    func attach(_ group: MockGroup) {
        groups.append(group)
        isNoIOMMU = group.isNoIOMMU
    }

    /// Detaching the last group releases the IOMMU driver and all its mappings.
    func detach(_ group: MockGroup) {
        groups.removeAll { $0 === group }
        group.container = nil
        if groups.isEmpty { driver = nil }
    }

    /// The drivers registered with vfio: type1 always, no-IOMMU when the kernel has it.
    private enum Candidate { case type1, noIOMMU }

    private var candidates: [Candidate] {
        let all: [Candidate] = configuration.noIOMMU ? [.noIOMMU, .type1] : [.type1]
        guard !groups.isEmpty else { return all }
        return all.filter { ($0 == .noIOMMU) == isNoIOMMU }
    }

    private func checkExtension(_ c: Candidate, _ arg: UInt, opened: Bool) -> Int32 {
        switch c {
        case .noIOMMU:
            return configuration.noIOMMU && arg == UInt(VFIO_NOIOMMU_IOMMU) ? 1 : 0
        case .type1:
            switch Int32(truncatingIfNeeded: arg) {
            case VFIO_TYPE1_IOMMU, VFIO_TYPE1v2_IOMMU, VFIO_TYPE1_NESTING_IOMMU, VFIO_UNMAP_ALL: return 1
            case VFIO_UPDATE_VADDR, VFIO_DMA_CC_IOMMU: return opened ? 1 : 0
            default: return 0
            }
        }
    }

    /// The container's own ioctls, and the IOMMU driver's once one is set.
    func ioctl(_ request: UInt, _ argument: UInt, memory: ProcessMemory, otherLocked: UInt64) throws(Errno) -> Int32 {
        switch request {
        case UInt(CVFIO_GET_API_VERSION):
            return VFIO_API_VERSION
        case UInt(CVFIO_CHECK_EXTENSION):
            switch driver {
            case .type1?: return checkExtension(.type1, argument, opened: true)
            case .noIOMMU?: return checkExtension(.noIOMMU, argument, opened: true)
            case nil: return candidates.lazy.map { self.checkExtension($0, argument, opened: false) }.first { $0 > 0 } ?? 0
            }
        case UInt(CVFIO_SET_IOMMU):
            try setIOMMU(argument)
            return 0
        default:
            switch driver {
            case nil: throw .invalidArgument
            case .noIOMMU?: throw .inappropriateIOCTLForDevice
            case .type1(let t)?:
                switch request {
                case UInt(CVFIO_IOMMU_GET_INFO): try t.info(UserPointer(argument))
                case UInt(CVFIO_IOMMU_MAP_DMA):
                    try t.map(UserPointer(argument), memory: memory, memlockLimit: configuration.memlockLimit, otherLocked: otherLocked)
                case UInt(CVFIO_IOMMU_UNMAP_DMA): try t.unmap(UserPointer(argument))
                default: throw .inappropriateIOCTLForDevice
                }
                return 0
            }
        }
    }

    /// `VFIO_SET_IOMMU`: needs a group and no driver yet (`EINVAL`), and a driver that
    /// supports the requested type (`ENODEV`).
    private func setIOMMU(_ arg: UInt) throws(Errno) {
        guard !groups.isEmpty, driver == nil else { throw .invalidArgument }
        for c in candidates where checkExtension(c, arg, opened: false) > 0 {
            switch c {
            case .noIOMMU: driver = .noIOMMU
            case .type1: driver = .type1(Type1IOMMU(v2: arg != UInt(VFIO_TYPE1_IOMMU), configuration: configuration))
            }
            return
        }
        throw .operationNotSupportedByDevice
    }
}
