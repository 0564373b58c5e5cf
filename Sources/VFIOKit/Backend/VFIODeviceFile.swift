import CVFIO
import Logging
import PCI
import SystemPackage

/// An open vfio-pci device file, however it was obtained (group or cdev): region info and
/// access, interrupt wiring through VFIO_DEVICE_SET_IRQS, and reset.
///
/// Every call fails with ``VFIOError/deviceClosed(_:operation:)`` once the file is closed, and a
/// call in progress holds the close back (``OpenFileGuard``). Mappings belong to the regions.
final class VFIODeviceFile: DeviceAccess {
    let fd: FileDescriptor
    private let system: any SystemCalls
    private let logger: Logger
    private let info: vfio_device_info
    let configRegion: RegionInfo
    private let open: OpenFileGuard

    /// Takes ownership of `fd` and reads the device's description; closes `fd` on failure.
    init(fd: FileDescriptor, address: PCIAddress, system: any SystemCalls, logger: Logger) throws(VFIOError) {
        self.fd = fd
        self.system = system
        self.logger = logger
        open = OpenFileGuard(address: address)
        do throws(VFIOError) {
            var info = vfio_device_info()
            info.argsz = UInt32(MemoryLayout<vfio_device_info>.size)
            try attempt(SystemCall("VFIO_DEVICE_GET_INFO", device: address)) { () throws(Errno) in
                try system.ioctl(fd, CVFIO_DEVICE_GET_INFO, &info)
            }
            guard info.flags & UInt32(VFIO_DEVICE_FLAGS_PCI) != 0 else {
                throw .deviceMisbehaved("the VFIO device is not a PCI device (flags 0x\(String(info.flags, radix: 16)))")
            }
            self.info = info
            let index = Int(VFIO_PCI_CONFIG_REGION_INDEX)
            let config = try attempt(SystemCall("VFIO_DEVICE_GET_REGION_INFO", device: address, detail: "region \(index)")) {
                () throws(Errno) in
                try Self.regionInfo(fd: fd, system: system, index: index, count: info.num_regions)
            }
            guard let config else { throw .deviceMisbehaved("the device has no config-space region") }
            self.configRegion = config
        } catch {
            // The set-up's error is the one to report; Linux releases the descriptor even when
            // close reports an error.
            try? system.close(fd)
            throw error
        }
    }

    var regionCount: Int { Int(info.num_regions) }

    var canReset: Bool { info.flags & UInt32(VFIO_DEVICE_FLAGS_RESET) != 0 }

    var address: PCIAddress { open.address }

    func region(_ index: Int) throws(VFIOError) -> RegionInfo? {
        try open.use("VFIO_DEVICE_GET_REGION_INFO(\(index))") { () throws(VFIOError) in
            try attempt(SystemCall("VFIO_DEVICE_GET_REGION_INFO", device: address, detail: "region \(index)")) {
                () throws(Errno) -> RegionInfo? in
                try Self.regionInfo(fd: fd, system: system, index: index, count: info.num_regions)
            }
        }
    }

    /// Asks for a region's info, growing the buffer as the kernel's argsz protocol asks, and
    /// decodes its capability chain.
    private static func regionInfo(fd: FileDescriptor, system: any SystemCalls, index: Int, count: UInt32) throws(Errno) -> RegionInfo? {
        guard index >= 0, index < Int(count) else { return nil }
        do {
            return try system.infoIoctl(
                fd, CVFIO_DEVICE_GET_REGION_INFO, size: MemoryLayout<vfio_region_info>.size,
                prepare: { $0.storeBytes(of: UInt32(index), toByteOffset: 8, as: UInt32.self) }
            ) { (raw) throws(Errno) -> RegionInfo? in
                let reply = raw.load(as: vfio_region_info.self)
                guard reply.size > 0 else { return nil }
                // A region larger than the address space, or at an offset a file cannot have.
                guard let size = Int(exactly: reply.size), let offset = Int64(exactly: reply.offset) else { throw .overflow }
                var caps: [RegionCapability] = []
                if reply.flags & UInt32(VFIO_REGION_INFO_FLAG_CAPS) != 0 {
                    walkInfoCapabilities(raw, first: Int(reply.cap_offset)) { id, version, offset in
                        caps.append(.decode(id: id, version: version, at: offset, in: raw))
                    }
                }
                return RegionInfo(
                    index: index, size: size, offset: offset,
                    flags: RegionInfo.Flags(rawValue: reply.flags), capabilities: caps)
            }
        } catch .invalidArgument {
            return nil  // vfio-pci answers EINVAL for indices it does not implement
        }
    }

    func read(_ region: RegionInfo, at offset: Int, into buffer: UnsafeMutableRawBufferPointer) throws(VFIOError) {
        try open.use("pread of region \(region.index)") { () throws(VFIOError) in
            try transferAll("pread", region, at: offset, count: buffer.count, device: address) { () throws(Errno) in
                try system.pread(fd, into: buffer, at: region.offset + Int64(offset))
            }
        }
    }

    func write(_ region: RegionInfo, at offset: Int, from buffer: UnsafeRawBufferPointer) throws(VFIOError) {
        try open.use("pwrite of region \(region.index)") { () throws(VFIOError) in
            try transferAll("pwrite", region, at: offset, count: buffer.count, device: address) { () throws(Errno) in
                try system.pwrite(fd, from: buffer, at: region.offset + Int64(offset))
            }
        }
    }

    func map(_ region: RegionInfo, area: Range<Int>) throws(VFIOError) -> UnsafeMutableRawPointer {
        var protection = PROT_READ
        if region.flags.contains(.write) { protection |= PROT_WRITE }
        return try open.use("mmap of region \(region.index)") { () throws(VFIOError) in
            try attempt(
                SystemCall(
                    "mmap", device: address,
                    detail: "region \(region.index) [0x\(String(area.lowerBound, radix: 16)), +0x\(String(area.count, radix: 16)))")
            ) {
                () throws(Errno) -> UnsafeMutableRawPointer in
                try system.mmap(
                    length: area.count, protection: protection, flags: MAP_SHARED, fd: fd, offset: region.offset + Int64(area.lowerBound))
            }
        }
    }

    func interruptInfo(_ index: IRQIndex) throws(VFIOError) -> IRQInfo {
        guard index.rawValue < Int(info.num_irqs) else { return IRQInfo(index: index, count: 0, flags: []) }
        var irq = vfio_irq_info()
        irq.argsz = UInt32(MemoryLayout<vfio_irq_info>.size)
        irq.index = UInt32(index.rawValue)
        try open.use("VFIO_DEVICE_GET_IRQ_INFO(\(index))") { () throws(VFIOError) in
            do throws(Errno) {
                try system.ioctl(fd, CVFIO_DEVICE_GET_IRQ_INFO, &irq)
            } catch .invalidArgument {
                logger.debug("the kernel has no \(index) index here (EINVAL); reporting 0 vectors", metadata: ["device": "\(address)"])
                irq.count = 0  // vfio-pci's answer for ERR on a conventional PCI device
                irq.flags = 0
            } catch {
                throw error.vfio(SystemCall("VFIO_DEVICE_GET_IRQ_INFO", device: address, detail: "\(index)"))
            }
        }
        return IRQInfo(index: index, count: Int(irq.count), flags: IRQInfo.Flags(rawValue: irq.flags))
    }

    func setTriggers(_ index: IRQIndex, start: Int, eventfds: [Int32]) throws(VFIOError) {
        try setIRQs(index, flags: VFIO_IRQ_SET_ACTION_TRIGGER | VFIO_IRQ_SET_DATA_EVENTFD, start: start, count: eventfds.count) { data in
            for (i, fd) in eventfds.enumerated() { data.storeBytes(of: fd, toByteOffset: i * 4, as: Int32.self) }
        }
    }

    func disable(_ index: IRQIndex) throws(VFIOError) {
        try setIRQs(index, flags: VFIO_IRQ_SET_ACTION_TRIGGER | VFIO_IRQ_SET_DATA_NONE, start: 0, count: 0) { _ in }
    }

    func unmask(_ index: IRQIndex) throws(VFIOError) {
        try setIRQs(index, flags: VFIO_IRQ_SET_ACTION_UNMASK | VFIO_IRQ_SET_DATA_NONE, start: 0, count: 1) { _ in }
    }

    func mask(_ index: IRQIndex) throws(VFIOError) {
        try setIRQs(index, flags: VFIO_IRQ_SET_ACTION_MASK | VFIO_IRQ_SET_DATA_NONE, start: 0, count: 1) { _ in }
    }

    func trigger(_ index: IRQIndex, vector: Int) throws(VFIOError) {
        try setIRQs(index, flags: VFIO_IRQ_SET_ACTION_TRIGGER | VFIO_IRQ_SET_DATA_NONE, start: vector, count: 1) { _ in }
    }

    var nativeInterruptSource: InterruptSource? { nil }

    /// One VFIO_DEVICE_SET_IRQS call: a struct vfio_irq_set followed by `fill`'s data.
    private func setIRQs(
        _ index: IRQIndex, flags: Int32, start: Int, count: Int, fill: (UnsafeMutableRawBufferPointer) -> Void
    ) throws(VFIOError) {
        let header = MemoryLayout<vfio_irq_set>.size
        let dataSize = flags & VFIO_IRQ_SET_DATA_EVENTFD != 0 ? 4 * count : 0
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: header + dataSize, alignment: 8)
        defer { buffer.deallocate() }
        var set = vfio_irq_set()
        set.argsz = UInt32(header + dataSize)
        set.flags = UInt32(flags)
        set.index = UInt32(index.rawValue)
        set.start = UInt32(start)
        set.count = UInt32(count)
        buffer.storeBytes(of: set, as: vfio_irq_set.self)
        fill(UnsafeMutableRawBufferPointer(rebasing: buffer[header...]))
        try open.use("VFIO_DEVICE_SET_IRQS(\(index))") { () throws(VFIOError) in
            try attempt(SystemCall("VFIO_DEVICE_SET_IRQS", device: address, detail: "\(index), start \(start), count \(count)")) {
                () throws(Errno) in
                try system.ioctl(fd, CVFIO_DEVICE_SET_IRQS, buffer: buffer)
            }
        }
    }

    func reset() throws(VFIOError) {
        try open.use("VFIO_DEVICE_RESET") { () throws(VFIOError) in
            try attempt(SystemCall("VFIO_DEVICE_RESET", device: address)) { () throws(Errno) in
                try system.ioctl(fd, CVFIO_DEVICE_RESET, value: 0)
            }
        }
    }

    /// Cannot fail in a way a caller could act on: VFIO's device release reports nothing, and
    /// Linux releases the descriptor even when close reports an error.
    func close() {
        open.close { try? system.close(fd) }
    }
}
