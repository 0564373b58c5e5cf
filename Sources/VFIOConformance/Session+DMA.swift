import CVFIO
import SystemPackage
import VFIOKit

/// DMA mapping in either kind of context, as the selftests' `iommu_map`/`iommu_unmap` do:
/// VFIO_IOMMU_MAP_DMA/UNMAP_DMA on a container, IOMMU_IOAS_MAP/UNMAP on an IOAS.
extension Session {
    /// Maps `size` bytes at `vaddr` to `iova`, readable and writable.
    @discardableResult
    func map(_ dma: DMAContext, iova: UInt64, size: UInt64, vaddr: UInt64, quiet: Bool = false) -> Bool {
        let name = "MAP iova=\(hex(iova)) size=\(hex(size))"
        switch dma {
        case .container(let fd):
            // struct vfio_iommu_type1_dma_map { argsz, flags, vaddr, iova, size }
            let arg = IoctlArgument(argsz: 32)
            arg[u32: 4] = UInt32(VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE)
            arg[u64: 8] = vaddr
            arg[u64: 16] = iova
            arg[u64: 24] = size
            return quiet ? quietly(fd, CVFIO_IOMMU_MAP_DMA, arg, name) : ioctl(name, fd, CVFIO_IOMMU_MAP_DMA, arg)
        case .ioas(let fd, let id):
            // struct iommu_ioas_map { size, flags, ioas_id, __reserved, user_va, length, iova }
            let arg = IoctlArgument(argsz: 40)
            arg[u32: 4] = IOMMU_IOAS_MAP_FIXED_IOVA.rawValue | IOMMU_IOAS_MAP_WRITEABLE.rawValue | IOMMU_IOAS_MAP_READABLE.rawValue
            arg[u32: 8] = id
            arg[u64: 16] = vaddr
            arg[u64: 24] = size
            arg[u64: 32] = iova
            return quiet ? quietly(fd, CVFIO_IOMMUFD_IOAS_MAP, arg, name) : ioctl(name, fd, CVFIO_IOMMUFD_IOAS_MAP, arg)
        }
    }

    /// A map or unmap among thousands: recorded only when it fails.
    private func quietly(_ fd: FileDescriptor, _ request: Int, _ arg: IoctlArgument, _ name: String) -> Bool {
        do {
            _ = try system.ioctl(fd, UInt(request), arg.address)
            return true
        } catch {
            record("\(name): \(error.symbol)")
            return false
        }
    }

    /// Unmaps [iova, iova + size) and records how many bytes the kernel says it unmapped.
    @discardableResult
    func unmap(_ dma: DMAContext, iova: UInt64, size: UInt64) -> UInt64? {
        unmap(dma, iova: iova, size: size, all: false, name: "UNMAP iova=\(hex(iova)) size=\(hex(size))")
    }

    /// Unmaps everything: VFIO_DMA_UNMAP_FLAG_ALL, or IOAS_UNMAP of [0, 2^64).
    @discardableResult
    func unmapAll(_ dma: DMAContext) -> UInt64? {
        if case .ioas = dma { return unmap(dma, iova: 0, size: .max, all: false, name: "UNMAP all") }
        return unmap(dma, iova: 0, size: 0, all: true, name: "UNMAP all")
    }

    private func unmap(_ dma: DMAContext, iova: UInt64, size: UInt64, all: Bool, name: String) -> UInt64? {
        switch dma {
        case .container(let fd):
            // struct vfio_iommu_type1_dma_unmap { argsz, flags, iova, size }
            let arg = IoctlArgument(argsz: 24)
            arg[u32: 4] = all ? UInt32(VFIO_DMA_UNMAP_FLAG_ALL) : 0
            arg[u64: 8] = iova
            arg[u64: 16] = size
            return step(name, describe: { "unmapped \(hex($0))" }) { () throws(Errno) in
                _ = try system.ioctl(fd, UInt(CVFIO_IOMMU_UNMAP_DMA), arg.address)
                return arg[u64: 16]
            }
        case .ioas(let fd, let id):
            // struct iommu_ioas_unmap { size, ioas_id, iova, length }
            let arg = IoctlArgument(argsz: 24)
            arg[u32: 4] = id
            arg[u64: 8] = iova
            arg[u64: 16] = size
            return step(name, describe: { "unmapped \(hex($0))" }) { () throws(Errno) in
                _ = try system.ioctl(fd, UInt(CVFIO_IOMMUFD_IOAS_UNMAP), arg.address)
                return arg[u64: 16]
            }
        }
    }

    /// The usable IOVA ranges, as the mode reports them (each answer recorded): the type1
    /// IOVA-range capability of VFIO_IOMMU_GET_INFO, or IOMMU_IOAS_IOVA_RANGES asked first
    /// with room for none (EMSGSIZE and the count) and then with room for all.
    func iovaRanges(_ dma: DMAContext) -> [ClosedRange<UInt64>]? {
        switch dma {
        case .container(let fd): return iommuInfo(fd)?.ranges
        case .ioas(let fd, let id): return ioasRanges(fd, id)
        }
    }

    private func ioasRanges(_ fd: FileDescriptor, _ id: UInt32) -> [ClosedRange<UInt64>]? {
        // struct iommu_ioas_iova_ranges { size, ioas_id, num_iovas, __reserved, allowed_iovas, out_iova_alignment }
        let arg = IoctlArgument(argsz: 32)
        arg[u32: 4] = id
        let fitted: Void? = step("IOVA_RANGES num_iovas=0") { () throws(Errno) in
            _ = try system.ioctl(fd, UInt(CVFIO_IOMMUFD_IOAS_IOVA_RANGES), arg.address)
        }
        record("  num_iovas \(arg[u32: 8]) alignment \(hex(arg[u64: 24]))")
        guard fitted == nil else { return [] }
        let n = Int(arg[u32: 8])
        let out = IoctlArgument(size: 16 * max(n, 1))
        arg[u64: 16] = UInt64(out.address)
        guard
            step(
                "IOVA_RANGES num_iovas=\(n)", describe: { _ in "ok" },
                { () throws(Errno) in
                    _ = try system.ioctl(fd, UInt(CVFIO_IOMMUFD_IOAS_IOVA_RANGES), arg.address)
                }) != nil
        else { return nil }
        let ranges = (0..<n).map { out[u64: 16 * $0]...out[u64: 16 * $0 + 8] }
        record(
            "  ranges \(ranges.map { "[\(hex($0.lowerBound)), \(hex($0.upperBound))]" }.joined(separator: " ")) alignment \(hex(arg[u64: 24]))"
        )
        return ranges
    }

    /// VFIO_IOMMU_GET_INFO asked first with the bare struct, then with the argsz the kernel
    /// asks for; records flags, page sizes and every capability in the chain.
    @discardableResult
    func iommuInfo(_ fd: FileDescriptor) -> (ranges: [ClosedRange<UInt64>], available: UInt32?)? {
        let small = IoctlArgument(size: 24)
        small[u32: 0] = 24
        guard ioctl("IOMMU_GET_INFO argsz=24", fd, CVFIO_IOMMU_GET_INFO, small) else { return nil }
        let needed = Int(small[u32: 0])
        record("  argsz \(needed) flags \(hex(small[u32: 4])) pgsizes \(hex(small[u64: 8])) cap_offset \(small[u32: 16])")
        guard needed > 24, needed <= 4096 else { return ([], nil) }
        let arg = IoctlArgument(argsz: needed)
        guard ioctl("IOMMU_GET_INFO argsz=\(needed)", fd, CVFIO_IOMMU_GET_INFO, arg) else { return nil }
        var ranges: [ClosedRange<UInt64>] = []
        var available: UInt32?
        var offset = Int(arg[u32: 16])
        var seen = Set<Int>()
        while offset != 0, offset + 8 <= needed, seen.insert(offset).inserted {
            let id = arg[u16: offset], version = arg[u16: offset + 2]
            switch Int32(id) {
            case VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE where offset + 16 <= needed:
                let n = Int(arg[u32: offset + 8])
                for i in 0..<n where offset + 32 + 16 * i <= needed {
                    ranges.append(arg[u64: offset + 16 + 16 * i]...arg[u64: offset + 24 + 16 * i])
                }
                record(
                    "  cap iova-range v\(version): \(ranges.map { "[\(hex($0.lowerBound)), \(hex($0.upperBound))]" }.joined(separator: " "))"
                )
            case VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL where offset + 12 <= needed:
                available = arg[u32: offset + 8]
                record("  cap dma-avail v\(version): \(available!)")
            case VFIO_IOMMU_TYPE1_INFO_CAP_MIGRATION where offset + 32 <= needed:
                record(
                    "  cap migration v\(version): flags \(hex(arg[u32: offset + 8])) pgsize_bitmap \(hex(arg[u64: offset + 16])) max_dirty_bitmap_size \(hex(arg[u64: offset + 24]))"
                )
            default:
                record("  cap \(id) v\(version)")
            }
            offset = Int(arg[u32: offset + 4])
        }
        return (ranges, available)
    }
}
