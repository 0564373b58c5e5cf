#if canImport(Glibc)
import Glibc
#endif
import CVFIO
import Synchronization
import SystemPackage

/// A device bound to uio_pci_generic: BARs are the sysfs `resourceN` files, config space is
/// the sysfs `config` file, and INTx is `/dev/uioN` (a read returns the interrupt count once
/// one arrives; unmasking clears the command register's Interrupt Disable bit).
final class UIODeviceFiles: DeviceAccess {
    private let system: any SystemCalls
    private let sysfs: DeviceSysfs
    private let uio: FileDescriptor
    let nativeInterruptSource: InterruptSource?
    private let config: FileDescriptor
    private let bars: [RegionInfo]
    let configRegion: RegionInfo
    private let interruptPin: UInt8
    private let resources = Mutex<[Int: FileDescriptor]>([:])
    private let open: OpenFileGuard

    private static let ioResourceIO: UInt64 = 0x100
    private static let ioResourceMem: UInt64 = 0x200

    static func open(_ sysfs: DeviceSysfs) throws(VFIOError) -> UIODeviceFiles {
        let system = sysfs.system
        guard let node = try sysfs.children(.uio, prefix: "uio").first else {
            throw .backendUnavailable(.uio, reason: "\(sysfs.address) has no UIO node: is uio_pci_generic bound?")
        }
        var owned = OwnedDescriptors(system: system)
        let uioPath = SysfsLayout.absolute(SysfsLayout.uioNode(node))
        let uio = try attempt(SystemCall("open", path: uioPath)) { () throws(Errno) in try system.open(uioPath, O_RDWR | O_NONBLOCK) }
        owned.adopt(uio)
        // Reads of /dev/uioN return the device's running total of interrupts; this is where it starts.
        let total = (try? system.readText(SysfsLayout.absolute(SysfsLayout.uioEvent(node)))).flatMap { UInt32($0.filter(\.isNumber)) } ?? 0
        let config = try owned.open(sysfs.path(.config))
        let resources = try attempt(SystemCall("read", path: sysfs.path(.resource))) { () throws(Errno) in
            try system.readText(sysfs.path(.resource))
        }
        let files = try UIODeviceFiles(system: system, sysfs: sysfs, uio: uio, config: config, resources: resources, total: total)
        owned.release()
        return files
    }

    private init(
        system: any SystemCalls, sysfs: DeviceSysfs, uio: FileDescriptor, config: FileDescriptor, resources: String, total: UInt32
    ) throws(VFIOError) {
        self.system = system
        self.sysfs = sysfs
        open = OpenFileGuard(address: sysfs.address)
        self.uio = uio
        self.config = config
        bars = resources.split(separator: "\n").prefix(6).enumerated().compactMap { index, line in
            let fields = line.split(separator: " ").compactMap { UInt64($0.dropFirst(2), radix: 16) }
            guard fields.count == 3, fields[1] > fields[0] else { return nil }
            let flags: RegionInfo.Flags =
                fields[2] & Self.ioResourceMem != 0 ? [.read, .write, .mmap] : fields[2] & Self.ioResourceIO != 0 ? [.read, .write] : []
            return flags.isEmpty ? nil : RegionInfo(index: index, size: Int(fields[1] - fields[0] + 1), offset: 0, flags: flags)
        }
        // Extended config space is readable only where the device and platform have it.
        var probe: UInt32 = 0
        let extended =
            (try? withUnsafeMutableBytes(of: &probe) { (b) throws(Errno) -> Int in try system.pread(config, into: b, at: 0x100) }) == 4
        configRegion = RegionInfo(index: Int(VFIO_PCI_CONFIG_REGION_INDEX), size: extended ? 4096 : 256, offset: 0, flags: [.read, .write])
        var pin: UInt8 = 0
        _ = try? withUnsafeMutableBytes(of: &pin) { (b) throws(Errno) -> Int in try system.pread(config, into: b, at: 0x3d) }
        interruptPin = pin
        nativeInterruptSource = InterruptSource(uio: uio, address: sysfs.address, total: total)
    }

    var canReset: Bool { (try? system.listDirectory(SysfsLayout.absolute(SysfsLayout.device(sysfs.address))))?.contains("reset") ?? false }

    var regionCount: Int { configRegion.index + 1 }

    func region(_ index: Int) throws(VFIOError) -> RegionInfo? {
        index == configRegion.index ? configRegion : bars.first { $0.index == index }
    }

    private func file(for region: RegionInfo) throws(VFIOError) -> FileDescriptor {
        if region.index == configRegion.index { return config }
        if let fd = resources.withLock({ $0[region.index] }) { return fd }
        let path = SysfsLayout.absolute(SysfsLayout.resource(sysfs.address, bar: region.index))
        let fd = try attempt(SystemCall("open", path: path)) { () throws(Errno) in try system.open(path, O_RDWR) }
        return resources.withLock { r in
            if let existing = r[region.index] {
                // Another thread opened it first; this copy, opened and unused, has nothing to flush.
                try? system.close(fd)
                return existing
            }
            r[region.index] = fd
            return fd
        }
    }

    func read(_ region: RegionInfo, at offset: Int, into buffer: UnsafeMutableRawBufferPointer) throws(VFIOError) {
        try open.use("pread of region \(region.index)") { () throws(VFIOError) in
            let fd = try file(for: region)
            try transferAll("pread", region, at: offset, count: buffer.count, device: sysfs.address) { () throws(Errno) in
                try system.pread(fd, into: buffer, at: Int64(offset))
            }
        }
    }

    func write(_ region: RegionInfo, at offset: Int, from buffer: UnsafeRawBufferPointer) throws(VFIOError) {
        try open.use("pwrite of region \(region.index)") { () throws(VFIOError) in
            let fd = try file(for: region)
            try transferAll("pwrite", region, at: offset, count: buffer.count, device: sysfs.address) { () throws(Errno) in
                try system.pwrite(fd, from: buffer, at: Int64(offset))
            }
        }
    }

    func map(_ region: RegionInfo, area: Range<Int>) throws(VFIOError) -> UnsafeMutableRawPointer {
        try open.use("mmap of resource\(region.index)") { () throws(VFIOError) in
            let fd = try file(for: region)
            return try attempt(SystemCall("mmap", device: sysfs.address, detail: "resource\(region.index)")) { () throws(Errno) in
                try system.mmap(
                    length: area.count, protection: PROT_READ | PROT_WRITE, flags: MAP_SHARED, fd: fd, offset: Int64(area.lowerBound))
            }
        }
    }

    func interruptInfo(_ index: IRQIndex) throws(VFIOError) -> IRQInfo {
        index == .intx && interruptPin != 0
            ? IRQInfo(index: .intx, count: 1, flags: [.maskable, .automasked])
            : IRQInfo(index: index, count: 0, flags: [])
    }

    func setTriggers(_ index: IRQIndex, start: Int, eventfds: [Int32]) throws(VFIOError) {
        throw .unsupportedByBackend(
            .uio, operation: "wiring \(index) to eventfds (UIO delivers only INTx, through /dev/uio)", sysfs.address)
    }

    func disable(_ index: IRQIndex) throws(VFIOError) { try setInterruptDisable(true) }
    func unmask(_ index: IRQIndex) throws(VFIOError) { try setInterruptDisable(false) }
    func mask(_ index: IRQIndex) throws(VFIOError) { try setInterruptDisable(true) }

    func trigger(_ index: IRQIndex, vector: Int) throws(VFIOError) {
        throw .unsupportedByBackend(.uio, operation: "triggering \(index) vector \(vector) from software", sysfs.address)
    }

    /// uio_pci_generic has no irqcontrol: its handler masks INTx by setting the command
    /// register's Interrupt Disable bit, and userspace unmasks by clearing it in config space.
    private func setInterruptDisable(_ disabled: Bool) throws(VFIOError) {
        var command: UInt16 = 0
        try withUnsafeMutableBytes(of: &command) { (b) throws(VFIOError) in try read(configRegion, at: 0x04, into: b) }
        command = disabled ? command | 0x400 : command & ~0x400
        try withUnsafeBytes(of: &command) { (b) throws(VFIOError) in try write(configRegion, at: 0x04, from: b) }
    }

    func reset() throws(VFIOError) {
        try open.use("reset") { () throws(VFIOError) in
            try attempt(SystemCall("write", path: sysfs.path(.reset))) { () throws(Errno) in try system.writeText(sysfs.path(.reset), "1") }
        }
    }

    /// Cannot fail in a way a caller could act on: sysfs resource files, the config file and
    /// /dev/uioN have nothing to flush, and Linux releases a descriptor even when close
    /// reports an error.
    func close() {
        open.close {
            for fd in resources.withLock({ r in
                defer { r = [:] }; return r
            }).values { try? system.close(fd) }
            try? system.close(config)
            try? system.close(uio)
        }
    }
}
