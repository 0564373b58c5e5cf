import SystemPackage
import VFIOKit

/// DMA mapping: the scenarios of the selftests' `vfio_dma_mapping_test.c` (map/unmap sizes,
/// the last page below the top of the IOVA space, unmap-all, wrap-around) and the mapping
/// pitfalls DPDK and SPDK users met.
extension Conformance {
    /// A scenario that tries each of `maps` in turn on the edu device's DMA context, recording
    /// which the kernel accepts and which it refuses, then unmaps everything. Each map is an
    /// IOVA, a size, and an offset into 0x2000 bytes of fresh anonymous memory.
    private static func mappings(_ name: String, origin: String, _ maps: [(iova: UInt64, size: UInt64, offset: UInt64)]) -> Scenario {
        Scenario(name, origin: origin) { s throws(Session.Stop) in
            let dev = try s.openDevice(s.target.edu)
            let vaddr = try s.anonymousMemory(0x2000)
            for m in maps { s.map(dev.dma, iova: m.iova, size: m.size, vaddr: vaddr + m.offset) }
            s.unmapAll(dev.dma)
        }
    }

    static let dmaScenarios: [Scenario] = [
        Scenario("dma-map-unmap-sizes", origin: "selftest vfio_dma_mapping_test dma_map_unmap") { s throws(Session.Stop) in
            let dev = try s.openDevice(s.target.edu)
            for size: UInt64 in [0x1000, 0x10000, 0x20_0000] {
                let vaddr = try s.anonymousMemory(Int(size))
                s.map(dev.dma, iova: 0x4000_0000, size: size, vaddr: vaddr)
                s.unmap(dev.dma, iova: 0x4000_0000, size: size)
            }
        },
        Scenario("dma-last-page-below-top", origin: "selftest vfio_dma_map_limit_test unmap_range") { s throws(Session.Stop) in
            let dev = try s.openDevice(s.target.edu)
            let top = try s.require(s.iovaRanges(dev.dma)?.last?.upperBound)
            let vaddr = try s.anonymousMemory(0x2000)
            s.map(dev.dma, iova: top - 0xfff, size: 0x1000, vaddr: vaddr)
            s.unmap(dev.dma, iova: top - 0xfff, size: 0x1000)
            s.map(dev.dma, iova: top - 0x1fff, size: 0x2000, vaddr: vaddr)
            s.unmap(dev.dma, iova: top - 0x1fff, size: 0x2000)
        },
        Scenario("dma-unmap-all-at-top", origin: "selftest vfio_dma_map_limit_test unmap_all") { s throws(Session.Stop) in
            let dev = try s.openDevice(s.target.edu)
            let top = try s.require(s.iovaRanges(dev.dma)?.last?.upperBound)
            let vaddr = try s.anonymousMemory(0x2000)
            s.map(dev.dma, iova: top - 0x1fff, size: 0x2000, vaddr: vaddr)
            s.unmapAll(dev.dma)
        },
        Scenario("dma-wrap-around", origin: "selftest vfio_dma_map_limit_test overflow") { s throws(Session.Stop) in
            let dev = try s.openDevice(s.target.edu)
            let top = try s.require(s.iovaRanges(dev.dma)?.last?.upperBound)
            let vaddr = try s.anonymousMemory(0x2000)
            // Past the top of the usable IOVAs, then across the top of the 64-bit space.
            s.map(dev.dma, iova: top - 0xfff, size: 0x2000, vaddr: vaddr)
            s.map(dev.dma, iova: 0 &- 0x1000, size: 0x1000, vaddr: vaddr)
            s.map(dev.dma, iova: 0 &- 0x1000, size: 0x2000, vaddr: vaddr)
            s.unmap(dev.dma, iova: 0 &- 0x1000, size: 0x2000)
            s.unmap(dev.dma, iova: top - 0xfff, size: 0x2000)
        },
        Scenario("dma-unmap-all", origin: "VFIO_DMA_UNMAP_FLAG_ALL / IOAS_UNMAP of everything") { s throws(Session.Stop) in
            let dev = try s.openDevice(s.target.edu)
            let vaddr = try s.anonymousMemory(0x4000)
            for i: UInt64 in 0..<3 { s.map(dev.dma, iova: 0x10_0000 * (i + 1), size: 0x1000 << i, vaddr: vaddr) }
            s.unmapAll(dev.dma)
            s.unmapAll(dev.dma)
            s.map(dev.dma, iova: 0x10_0000, size: 0x4000, vaddr: vaddr)
            s.unmap(dev.dma, iova: 0x10_0000, size: 0x4000)
        },
        Scenario("dma-unmap-differs-from-map", origin: "SPDK: unmap succeeding with 0 bytes unmapped") { s throws(Session.Stop) in
            let dev = try s.openDevice(s.target.edu)
            let vaddr = try s.anonymousMemory(0x4000)
            s.map(dev.dma, iova: 0x20_0000, size: 0x4000, vaddr: vaddr)
            s.unmap(dev.dma, iova: 0x20_1000, size: 0x1000)  // the middle
            s.unmap(dev.dma, iova: 0x20_3000, size: 0x1000)  // the tail
            s.unmap(dev.dma, iova: 0x20_0000, size: 0x1000)  // the head
            s.unmap(dev.dma, iova: 0x80_0000, size: 0x1000)  // nothing there
            s.unmap(dev.dma, iova: 0x1f_0000, size: 0x2_0000)  // around whatever is left
            s.unmapAll(dev.dma)
        },
        mappings(
            "dma-map-overlap", origin: "DPDK: remapping an IOVA already mapped",
            [(0x30_0000, 0x2000, 0), (0x30_0000, 0x2000, 0), (0x30_1000, 0x1000, 0), (0x2f_f000, 0x2000, 0), (0x30_2000, 0x1000, 0)]),
        mappings(
            "dma-unaligned", origin: "VFIO uAPI: page alignment of iova, size and vaddr",
            [(0x40_0800, 0x1000, 0), (0x40_0000, 0x800, 0), (0x40_0000, 0x1000, 0x800), (0x40_0000, 0, 0)]),
        Scenario("iommu-info", origin: "VFIO_IOMMU_GET_INFO argsz protocol and capabilities", modes: IOMMUMode.groupModes) {
            s throws(Session.Stop) in
            let dev = try s.openDevice(s.target.edu)
            guard case .container(let fd) = dev.dma else { return }
            s.iommuInfo(fd)
        },
        Scenario("map-before-set-iommu", origin: "DPDK: MAP_DMA before VFIO_SET_IOMMU", modes: IOMMUMode.groupModes) {
            s throws(Session.Stop) in
            let container = try s.require(s.open(s.mode.containerNode, as: "container \(s.mode.containerNode)"))
            let group = try s.require(s.openGroup(s.target.edu))
            try s.require(s.setContainer(group, container) ? () : nil)
            let vaddr = try s.anonymousMemory(0x1000)
            s.map(.container(container), iova: 0x10_0000, size: 0x1000, vaddr: vaddr)
            s.ioctl("SET_IOMMU \(s.mode.iommuTypeArgument)", container, CVFIO_SET_IOMMU, value: s.mode.iommuTypeArgument)
            s.map(.container(container), iova: 0x20_0000, size: 0x1000, vaddr: vaddr)
            s.unmapAll(.container(container))
        },
        Scenario("mapping-limit", origin: "DPDK: type1's dma_entry_limit of 65535 mappings", modes: IOMMUMode.groupModes) {
            s throws(Session.Stop) in
            let dev = try s.openDevice(s.target.edu)
            guard case .container(let fd) = dev.dma else { return }
            let vaddr = try s.anonymousMemory(0x1000)
            var mapped = 0
            while mapped < 65536, s.map(dev.dma, iova: 0x1_0000_0000 + UInt64(mapped) * 0x1000, size: 0x1000, vaddr: vaddr, quiet: true) {
                mapped += 1
            }
            s.record("mapped \(mapped) of 65536")
            s.iommuInfo(fd)
            s.unmapAll(dev.dma)
        },
    ]
}

import CVFIO
