import CVFIO
import SystemPackage

/// `/dev/iommu` used as a VFIO container (`drivers/iommu/iommufd/vfio_compat.c`): a group
/// set on it gets the compat IOAS, and the type1 container ioctls on the iommufd are served
/// from that IOAS.
extension IOMMUFDContext {
    /// `iommufd_vfio_compat_ioas_create`: the compat IOAS, made on the first group.
    func compatIOASCreate() {
        guard compatIOAS == nil else { return }
        let id = allocateID()
        objects[id] = .ioas(IOAddressSpace(id: id, deviceRanges: configuration.iovaRanges))
        compatIOAS = id
    }

    /// `get_compat_ioas`: ENODEV until a group was set on this iommufd.
    private func compat() throws(Errno) -> IOAddressSpace {
        guard let id = compatIOAS, case .ioas(let ioas)? = objects[id] else { throw .operationNotSupportedByDevice }
        return ioas
    }

    /// `iommufd_vfio_ioctl`; nil for a request that is not a VFIO container ioctl.
    func compatIOCTL(_ request: UInt, _ argument: UInt, memory: ProcessMemory) throws(Errno) -> Int32? {
        switch request {
        case UInt(CVFIO_GET_API_VERSION): return VFIO_API_VERSION
        case UInt(CVFIO_CHECK_EXTENSION):
            switch Int32(truncatingIfNeeded: argument) {
            case VFIO_TYPE1_IOMMU, VFIO_TYPE1v2_IOMMU, VFIO_UNMAP_ALL: return 1
            case VFIO_NOIOMMU_IOMMU: return 1  // CONFIG_VFIO_NOIOMMU, built into the guest kernels
            case VFIO_DMA_CC_IOMMU:
                _ = try compat()
                return 1
            default: return 0
            }
        case UInt(CVFIO_SET_IOMMU):
            // iommufd_vfio_set_iommu: type1 (v1) may unmap inside a mapping, so large pages go.
            guard argument == UInt(VFIO_TYPE1_IOMMU) || argument == UInt(VFIO_TYPE1v2_IOMMU) else { throw .invalidArgument }
            let ioas = try compat()
            if argument == UInt(VFIO_TYPE1_IOMMU) {
                // iopt_disable_large_pages refuses once a domain has pages mapped.
                guard ioas.attachedDevices.isEmpty || ioas.table.count == 0 || compatSplits else { throw .invalidArgument }
                compatSplits = true
            }
            return 0
        case UInt(CVFIO_IOMMU_GET_INFO):
            try compatInfo(UserPointer(argument))
            return 0
        case UInt(CVFIO_IOMMU_MAP_DMA):
            try compatMap(UserPointer(argument), memory: memory)
            return 0
        case UInt(CVFIO_IOMMU_UNMAP_DMA):
            try compatUnmap(UserPointer(argument))
            return 0
        default:
            return nil
        }
    }

    /// `iommufd_vfio_map_dma`: a fixed-IOVA map into the compat IOAS.
    private func compatMap(_ arg: UserPointer, memory: ProcessMemory) throws(Errno) {
        let argsz: UInt32 = arg.load(0), flags: UInt32 = arg.load(4)
        let readable = UInt32(VFIO_DMA_MAP_FLAG_READ), writable = UInt32(VFIO_DMA_MAP_FLAG_WRITE)
        guard argsz >= 32, flags & ~(readable | writable) == 0 else { throw .invalidArgument }
        let ioas = try compat()
        _ = try mapUser(
            ioas, vaddr: arg.load(8), length: arg.load(24), iova: arg.load(16),
            readable: flags & readable != 0, writable: flags & writable != 0, memory: memory)
    }

    /// `iommufd_vfio_unmap_dma`: unmap-all, or a range that must cover whole mappings, cut
    /// first at both ends when the container was set to type1 (v1).
    private func compatUnmap(_ arg: UserPointer) throws(Errno) {
        let argsz: UInt32 = arg.load(0), flags: UInt32 = arg.load(4)
        let all = UInt32(VFIO_DMA_UNMAP_FLAG_ALL)
        guard argsz >= 24, flags & ~all == 0 else { throw .invalidArgument }
        let ioas = try compat()
        let iova: UInt64 = arg.load(8), size: UInt64 = arg.load(16)
        let unmapped: UInt64
        if flags & all != 0 {
            guard iova == 0, size == 0 else { throw .invalidArgument }
            unmapped = ioas.unmapAll()
        } else {
            if compatSplits {
                ioas.cut(at: iova &+ size &- 1)
                if iova != 0 { ioas.cut(at: iova &- 1) }
            }
            // iopt_unmap_iova
            guard size != 0 else { throw .invalidArgument }
            guard iova &+ (size - 1) >= iova else { throw .overflow }
            unmapped = try ioas.unmap(first: iova, last: iova + (size - 1))
        }
        arg.store(unmapped, at: 16)
    }

    /// `iommufd_vfio_iommu_get_info`: page sizes, then the DMA-avail and IOVA-range
    /// capabilities, each written only where it fits, with argsz set to what all need.
    private func compatInfo(_ arg: UserPointer) throws(Errno) {
        let argsz = Int(arg.load(0, as: UInt32.self))
        guard argsz >= 16 else { throw .invalidArgument }
        let ioas = try compat()
        var caps: [[UInt8]] = []
        caps.append(le(UInt16(VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL)) + le(UInt16(1)) + le(UInt32(0)) + le(UInt32.max))
        var iovas = le(UInt16(VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE)) + le(UInt16(1)) + le(UInt32(0))
        iovas += le(UInt32(ioas.allowedRanges.count)) + le(UInt32(0))
        for r in ioas.allowedRanges { iovas += le(r.first) + le(r.last) }
        caps.append(iovas)
        var total = 24
        var last: Int?
        for cap in caps {
            if argsz - total >= cap.count { arg.copy(from: cap, at: total) }
            if let last, argsz >= total { arg.store(UInt32(total), at: last + 4) }
            last = total
            total += (cap.count + 7) & ~7
        }
        // No domain: every page size (iommufd_get_pagesizes); with one, the IOMMU's.
        let pageSizes = ioas.attachedDevices.isEmpty ? ~UInt64(0xfff) : configuration.iommuPageSizes
        let header =
            le(UInt32(total)) + le(UInt32(VFIO_IOMMU_INFO_PGSIZES | VFIO_IOMMU_INFO_CAPS)) + le(pageSizes)
            + le(UInt32(argsz >= total ? 24 : 0)) + le(UInt32(0))
        arg.copy(from: Array(header.prefix(min(argsz, 24))), at: 0)
    }
}
