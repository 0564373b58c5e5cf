import SystemPackage
import CVFIO

/// How vfio-pci lays out and serves a device's regions: `VFIO_DEVICE_GET_INFO`,
/// `_GET_REGION_INFO`, `_GET_IRQ_INFO`, and the region offset encoding (index << 40).
extension VFIOPCIDevice {
    static let offsetShift: UInt64 = 40
    static let offsetMask: UInt64 = (1 << offsetShift) - 1

    func bar(_ index: Int) -> BARDescription? { function.description.bars.first { $0.index == index } }

    /// vfio-pci's `bar_mmap_supported`: memory BARs of at least a page. In the mock, shared
    /// memory and register BARs can be mapped (the latter where CVFIO can trap their accesses);
    /// trapped ones stand for BARs vfio cannot mmap.
    func mmapSupported(_ index: Int) -> Bool {
        guard let b = bar(index) else { return false }
        return b.isMappable && b.size >= 4096
    }

    func deviceInfo(_ arg: UserPointer) throws(Errno) {
        // struct vfio_device_info { argsz, flags, num_regions, num_irqs, cap_offset, pad }:
        // minsz ends at num_irqs. No capability (zPCI, AtomicOps) is modelled.
        var info = try InfoReply(arg, size: 24, minsz: 16, capOffsetEnd: configuration.profile.writesInfoPadding ? nil : 20)
        var flags = UInt32(VFIO_DEVICE_FLAGS_PCI)
        if resetWorks { flags |= UInt32(VFIO_DEVICE_FLAGS_RESET) }
        info.store(flags, at: 4)
        info.store(UInt32(VFIO_PCI_NUM_REGIONS), at: 8)
        info.store(UInt32(VFIO_PCI_NUM_IRQS), at: 12)
        info.copyOut(to: arg)
    }

    func regionInfo(_ arg: UserPointer) throws(Errno) {
        // struct vfio_region_info { argsz, flags, index, cap_offset, size, offset }: minsz is
        // all of it, so a cap_offset the caller passed comes back when there are no capabilities.
        var info = try InfoReply(arg, size: 32, minsz: 32)
        let index: UInt32 = info.load(8)
        var flags: UInt32 = 0
        var size: UInt64 = 0
        var caps = InfoCapabilityChain(padded: configuration.padsInfoCapabilities)
        let rw = UInt32(VFIO_REGION_INFO_FLAG_READ | VFIO_REGION_INFO_FLAG_WRITE)
        switch Int(index) {
        case VFIO_PCI_CONFIG_REGION_INDEX:
            size = UInt64(function.layout.size)
            flags = rw
        case VFIO_PCI_BAR0_REGION_INDEX...VFIO_PCI_BAR5_REGION_INDEX:
            guard let b = bar(Int(index)) else { break }
            size = UInt64(b.size)
            flags = rw
            if mmapSupported(b.index) {
                flags |= UInt32(VFIO_REGION_INFO_FLAG_MMAP)
                if let msix = function.description.msix, msix.tableBAR == b.index {
                    addMSIXCapability(&caps, msix: msix, barSize: b.size)
                }
            }
        case VFIO_PCI_ROM_REGION_INDEX:
            break
        case VFIO_PCI_VGA_REGION_INDEX:
            throw .invalidArgument
        default:
            throw .invalidArgument
        }
        info.store(UInt64(index) << Self.offsetShift, at: 24)
        info.store(size, at: 16)
        if !caps.isEmpty { flags |= UInt32(VFIO_REGION_INFO_FLAG_CAPS) }
        info.store(flags, at: 4)
        info.offer(caps, capOffsetField: 12)
        info.copyOut(to: arg)
    }

    /// Linux 4.16 and later advertise that the MSI-X BAR may be mapped whole; earlier kernels
    /// carved the table's pages out with a sparse-mmap capability.
    private func addMSIXCapability(_ caps: inout InfoCapabilityChain, msix: MSIXDescription, barSize: Int) {
        switch configuration.msixTableMapping {
        case .mappable:
            caps.add(id: UInt16(VFIO_REGION_INFO_CAP_MSIX_MAPPABLE), version: 1, body: [])
        case .sparseAroundTable:
            let areas = sparseAreas(msix: msix, barSize: barSize)
            var body = le(UInt32(areas.count)) + le(UInt32(0))
            for a in areas { body += le(UInt64(a.lowerBound)) + le(UInt64(a.count)) }
            caps.add(id: UInt16(VFIO_REGION_INFO_CAP_SPARSE_MMAP), version: 1, body: body)
        }
    }

    /// The mappable parts of the MSI-X BAR under `.sparseAroundTable`: all but the pages
    /// holding the table.
    func sparseAreas(msix: MSIXDescription, barSize: Int) -> [Range<Int>] {
        let start = msix.tableOffset & ~4095
        let end = (msix.tableOffset + msix.tableSize * 16 + 4095) & ~4095
        return [0..<start, min(end, barSize)..<barSize].filter { !$0.isEmpty }
    }

    func irqInfo(_ arg: UserPointer) throws(Errno) {
        // struct vfio_irq_info { argsz, flags, index, count }: minsz is all of it.
        var info = try InfoReply(arg, size: 16, minsz: 16)
        let index: UInt32 = info.load(8)
        guard index < UInt32(VFIO_PCI_NUM_IRQS) else { throw .invalidArgument }
        if Int(index) == VFIO_PCI_ERR_IRQ_INDEX && !function.description.isPCIExpress { throw .invalidArgument }
        var flags = UInt32(VFIO_IRQ_INFO_EVENTFD)
        if Int(index) == VFIO_PCI_INTX_IRQ_INDEX {
            flags |= UInt32(VFIO_IRQ_INFO_MASKABLE | VFIO_IRQ_INFO_AUTOMASKED)
        } else if Int(index) != VFIO_PCI_MSIX_IRQ_INDEX || !hasDynamicMSIX {
            flags |= UInt32(VFIO_IRQ_INFO_NORESIZE)
        }
        info.store(flags, at: 4)
        info.store(UInt32(irqCount(index)), at: 12)
        info.copyOut(to: arg)
    }
}
