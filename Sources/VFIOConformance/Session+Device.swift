import CVFIO
import SystemPackage
import VFIOKit

/// A region as VFIO_DEVICE_GET_REGION_INFO describes it.
struct RegionDescription {
    let index: Int
    let flags: UInt32
    let size: UInt64
    let offset: UInt64
}

/// Device ioctls and config-space access, each recorded.
extension Session {
    /// VFIO_DEVICE_GET_INFO: records flags, region and interrupt counts.
    @discardableResult
    func deviceInfo(_ device: FileDescriptor) -> (flags: UInt32, regions: Int, irqs: Int)? {
        // struct vfio_device_info { argsz, flags, num_regions, num_irqs, cap_offset, pad }
        let arg = IoctlArgument(argsz: 24)
        return step("DEVICE_GET_INFO", describe: { "argsz \(arg[u32: 0]) flags \(hex($0.flags)) regions \($0.regions) irqs \($0.irqs)" }) {
            () throws(Errno) in
            _ = try system.ioctl(device, UInt(CVFIO_DEVICE_GET_INFO), arg.address)
            return (arg[u32: 4], Int(arg[u32: 8]), Int(arg[u32: 12]))
        }
    }

    /// VFIO_DEVICE_GET_REGION_INFO for `index`, repeated with the argsz the kernel asks for
    /// when its capabilities do not fit; records the region and its capability ids.
    @discardableResult
    func regionInfo(_ device: FileDescriptor, _ index: Int) -> RegionDescription? {
        // struct vfio_region_info { argsz, flags, index, cap_offset, size, offset }
        var size = 32
        while true {
            let arg = IoctlArgument(argsz: size)
            arg[u32: 8] = UInt32(index)
            guard ioctl("REGION_INFO \(index) argsz=\(size)", device, CVFIO_DEVICE_GET_REGION_INFO, arg) else { return nil }
            let needed = Int(arg[u32: 0])
            if needed > size, needed <= 4096 {
                record("  needs argsz \(needed)")
                size = needed
                continue
            }
            var caps: [String] = []
            var offset = Int(arg[u32: 12])
            var seen = Set<Int>()
            while offset != 0, offset + 8 <= size, seen.insert(offset).inserted {
                caps.append("\(arg[u16: offset])v\(arg[u16: offset + 2])")
                offset = Int(arg[u32: offset + 4])
            }
            let region = RegionDescription(index: index, flags: arg[u32: 4], size: arg[u64: 16], offset: arg[u64: 24])
            record(
                "  flags \(hex(region.flags)) size \(hex(region.size)) offset \(hex(region.offset)) caps [\(caps.joined(separator: " "))]")
            return region
        }
    }

    /// VFIO_DEVICE_GET_IRQ_INFO for `index`: records flags and count.
    @discardableResult
    func irqInfo(_ device: FileDescriptor, _ index: Int) -> (flags: UInt32, count: Int)? {
        // struct vfio_irq_info { argsz, flags, index, count }
        let arg = IoctlArgument(argsz: 16)
        arg[u32: 8] = UInt32(index)
        return step("IRQ_INFO \(index)", describe: { "flags \(hex($0.flags)) count \($0.count)" }) { () throws(Errno) in
            _ = try system.ioctl(device, UInt(CVFIO_DEVICE_GET_IRQ_INFO), arg.address)
            return (arg[u32: 4], Int(arg[u32: 12]))
        }
    }

    /// VFIO_DEVICE_SET_IRQS with `flags` on `index` [start, start + count), followed by `data`
    /// (eventfds as Int32, bools as bytes); `argsz` overrides the true size.
    @discardableResult
    func setIRQs(
        _ device: FileDescriptor, _ name: String, flags: Int32, index: Int, start: Int, count: Int,
        data: [UInt8] = [], argsz: Int? = nil
    ) -> Bool {
        // struct vfio_irq_set { argsz, flags, index, start, count, data[] }
        let arg = IoctlArgument(size: 20 + data.count)
        arg[u32: 0] = UInt32(argsz ?? 20 + data.count)
        arg[u32: 4] = UInt32(flags)
        arg[u32: 8] = UInt32(index)
        arg[u32: 12] = UInt32(start)
        arg[u32: 16] = UInt32(count)
        for (i, b) in data.enumerated() { arg.bytes[20 + i] = b }
        return ioctl("SET_IRQS \(name)", device, CVFIO_DEVICE_SET_IRQS, arg)
    }

    /// The bytes of eventfds, for SET_IRQS' data.
    func eventfdData(_ fds: [FileDescriptor]) -> [UInt8] {
        fds.flatMap { withUnsafeBytes(of: $0.rawValue) { Array($0) } }
    }

    /// A non-blocking eventfd that the session closes at its end.
    func eventfd() throws(Stop) -> FileDescriptor {
        let fd = try require(
            step("eventfd", describe: { _ in "ok" }) { () throws(Errno) in
                try system.eventfd(initialValue: 0, flags: Int32(EFD_NONBLOCK))
            })
        adopt(fd)
        return fd
    }

    /// Reads an eventfd's count (0 when nothing was signalled) and records it.
    @discardableResult
    func eventCount(_ fd: FileDescriptor, _ name: String) -> UInt64 {
        var value: UInt64 = 0
        let n = withUnsafeMutableBytes(of: &value) { (buffer) -> Int? in try? system.read(fd, into: buffer) }
        let count = n == 8 ? value : 0
        record("\(name) eventfd count \(count)")
        return count
    }

    /// Reads `width` bytes of config space at `offset` through the config region.
    func configRead(_ device: FileDescriptor, _ config: RegionDescription, _ offset: Int, _ width: Int, _ name: String) -> UInt32? {
        var value: UInt32 = 0
        return step("config read \(name)", describe: { hex($0) }) { () throws(Errno) -> UInt32 in
            let n = try withUnsafeMutableBytes(of: &value) { (b) throws(Errno) -> Int in
                try system.pread(
                    device, into: UnsafeMutableRawBufferPointer(rebasing: b[..<width]), at: Int64(config.offset) + Int64(offset))
            }
            guard n == width else { throw Errno.ioError }
            return value
        }
    }

    @discardableResult
    func configWrite(
        _ device: FileDescriptor, _ config: RegionDescription, _ offset: Int, _ width: Int, _ value: UInt32, _ name: String
    ) -> Bool {
        var v = value
        return step("config write \(name) \(hex(value))") { () throws(Errno) -> Void in
            let n = try withUnsafeBytes(of: &v) { (b) throws(Errno) -> Int in
                try system.pwrite(device, from: UnsafeRawBufferPointer(rebasing: b[..<width]), at: Int64(config.offset) + Int64(offset))
            }
            guard n == width else { throw Errno.ioError }
        } != nil
    }

    /// Reads a sysfs attribute of `address` (`vendor`, `device`): recorded as read.
    func sysfsAttribute(_ address: PCIAddress, _ attribute: SysfsLayout.DeviceAttribute) -> String? {
        step("sysfs \(attribute.rawValue)", describe: { $0 }) { () throws(Errno) in
            try system.readText(SysfsLayout.absolute(SysfsLayout.device(address, attribute)))
        }
    }
}
