#if canImport(Glibc)
import Glibc
#endif
import CVFIO
import SystemPackage
import VFIOKit

/// read/write/pread/pwrite and mmap/munmap on the mock's files; the host's for the rest.
extension MockKernel {
    /// pread(2): on a VFIO device file, the region access vfio-pci makes (config space filtered,
    /// BARs through the device model); on a sysfs or pagemap file, its contents; any other
    /// descriptor goes to the host, retried on `EINTR`.
    public func pread(_ fd: FileDescriptor, into buffer: UnsafeMutableRawBufferPointer, at offset: Int64) throws(Errno) -> Int {
        guard let n = try fileIO(fd, buffer, offset: offset, write: false) else {
            return try hostIO { Glibc.pread(fd.rawValue, buffer.baseAddress, buffer.count, off_t(offset)) }
        }
        return n
    }

    /// pwrite(2), served as ``pread(_:into:at:)`` is; a write to a read-only sysfs attribute or
    /// to pagemap fails with `EBADF`.
    public func pwrite(_ fd: FileDescriptor, from buffer: UnsafeRawBufferPointer, at offset: Int64) throws(Errno) -> Int {
        guard let n = try fileIO(fd, UnsafeMutableRawBufferPointer(mutating: buffer), offset: offset, write: true) else {
            return try hostIO { Glibc.pwrite(fd.rawValue, buffer.baseAddress, buffer.count, off_t(offset)) }
        }
        return n
    }

    /// read(2) at the file position, which advances by what was read; served as
    /// ``pread(_:into:at:)`` is, on `/dev/kmsg` one log record, and on `/dev/uioN` UIO's
    /// interrupt count.
    public func read(_ fd: FileDescriptor, into buffer: UnsafeMutableRawBufferPointer) throws(Errno) -> Int {
        guard let n = try fileIO(fd, buffer, offset: nil, write: false) else {
            return try hostIO { Glibc.read(fd.rawValue, buffer.baseAddress, buffer.count) }
        }
        return n
    }

    /// write(2) at the file position; served as ``pwrite(_:from:at:)`` is, and on `/dev/uioN` UIO's
    /// interrupt enable.
    public func write(_ fd: FileDescriptor, from buffer: UnsafeRawBufferPointer) throws(Errno) -> Int {
        guard let n = try fileIO(fd, UnsafeMutableRawBufferPointer(mutating: buffer), offset: nil, write: true) else {
            return try hostIO { Glibc.write(fd.rawValue, buffer.baseAddress, buffer.count) }
        }
        return n
    }

    private func hostIO(_ body: () -> Int) throws(Errno) -> Int {
        while true {
            let r = body()
            if r >= 0 { return r }
            if errno != EINTR { throw Errno(rawValue: errno) }
        }
    }

    /// Serves I/O on a mock file; nil when `fd` is not the mock's. `offset` nil means the
    /// file position (read/write), which advances.
    private func fileIO(_ fd: FileDescriptor, _ buffer: UnsafeMutableRawBufferPointer, offset: Int64?, write: Bool) throws(Errno) -> Int? {
        enum Step {
            case done(Int)
            case plan(RegionAccessPlan, VFIOPCIDevice?)
            case uio(UIODevice, OpenFile)
        }
        let step = try lock.withLock { () throws(Errno) -> Step? in
            guard let file = files[fd.rawValue] else { return nil }
            let position = offset.map { Int($0) } ?? file.position
            switch file.kind {
            case .device(let df):
                guard df.accessGranted else { throw .invalidArgument }
                let plan = try df.device.planAccess(offset: Int64(position), buffer: buffer, write: write)
                // read/write move the file position by what they transferred, as vfio-pci's do.
                if offset == nil { file.position += plan.count }
                return .plan(plan, df.device)
            case .text(let bytes, let writer):
                if write {
                    guard let writer else { throw .badFileDescriptor }
                    try writer(String(decoding: UnsafeRawBufferPointer(buffer), as: UTF8.self))
                    return .done(buffer.count)
                }
                let n = max(0, min(buffer.count, bytes.count - position))
                if n > 0 { bytes.withUnsafeBytes { buffer.baseAddress!.copyMemory(from: $0.baseAddress! + position, byteCount: n) } }
                if offset == nil { file.position += n }
                return .done(n)
            case .config(let f):
                let n = sysfsConfig(f, buffer, at: position, write: write)
                if offset == nil { file.position += n }
                return .done(n)
            case .pagemap:
                guard !write else { throw .badFileDescriptor }
                return .done(try pagemapRead(buffer, at: position))
            case .kmsg:
                guard !write, offset == nil else { throw .invalidArgument }
                let n = try kernelLog.read(file.position, into: buffer)
                file.position += 1
                return .done(n)
            case .uio(let u):
                guard offset == nil else { throw .illegalSeek }
                return .uio(u, file)
            case .resource(let f, let bar):
                // sysfs resourceN has read/write only for I/O-port BARs; the mock treats the
                // BARs it cannot map the same way.
                guard let b = f.description.bars.first(where: { $0.index == bar }), !b.isMappable, position < b.size else { throw .ioError }
                let size = b.size
                let chunks = VFIOPCIDevice.chunks(offset: position, count: min(buffer.count, size - position)).map {
                    RegionAccessPlan.Chunk(offset: $0.offset, width: $0.width, excluded: false)
                }
                return .plan(.trapped(f.device, bar: bar, chunks: chunks), nil)
            case .container, .group, .iommufd:
                throw .invalidArgument
            }
        }
        switch step {
        case nil: return nil
        case .done(let n)?:
            runPendingResets()
            return n
        case .plan(let plan, let device)?: return try perform(plan, device: device, buffer: buffer, write: write)
        case .uio(let u, let file)?: return try write ? uioWrite(u, buffer) : uioRead(u, file, buffer)
        }
    }

    /// Carries out a region access outside the lock; device models get one call per chunk.
    private func perform(_ plan: RegionAccessPlan, device: VFIOPCIDevice?, buffer: UnsafeMutableRawBufferPointer, write: Bool) throws(Errno) -> Int {
        switch plan {
        case .config(let count, let writes, let reset):
            guard let device else { return count }
            for w in writes { device.function.device.configWritten(offset: w.offset, width: w.width, value: w.value) }
            if reset {
                lock.withLock { device.resetPreservingConfig() }
            }
            runPendingResets()
            return count
        case .memory(let p, let count, let excluded, let base):
            for i in 0..<count {
                if let ex = excluded, ex.contains(base + i) {
                    if !write { buffer[i] = 0xff }
                } else if write {
                    (p + i).storeBytes(of: buffer[i], as: UInt8.self)
                } else {
                    buffer[i] = (p + i).load(as: UInt8.self)
                }
            }
            return count
        case .trapped(let model, let bar, let chunks):
            var at = 0
            for c in chunks {
                if write {
                    var v: UInt64 = 0
                    for i in 0..<c.width { v |= UInt64(buffer[at + i]) << (8 * UInt64(i)) }
                    if !c.excluded { model.writeRegister(bar: bar, offset: c.offset, width: c.width, value: v) }
                } else {
                    let v = c.excluded ? ~0 : model.readRegister(bar: bar, offset: c.offset, width: c.width)
                    for i in 0..<c.width { buffer[at + i] = UInt8(truncatingIfNeeded: v >> (8 * UInt64(i))) }
                }
                at += c.width
            }
            return at
        }
    }

    /// `/proc/self/pagemap`: 8 bytes per virtual page; bit 63 present, bits 0–54 the PFN.
    private func pagemapRead(_ buffer: UnsafeMutableRawBufferPointer, at offset: Int) throws(Errno) -> Int {
        guard offset % 8 == 0, buffer.count % 8 == 0 else { throw .invalidArgument }
        for i in stride(from: 0, to: buffer.count, by: 8) {
            let vaddr = UInt64((offset + i) / 8) * 4096
            let entry: UInt64 = memory.physicalAddress(of: vaddr).map { (1 << 63) | ($0 >> 12) } ?? 0
            buffer.storeBytes(of: entry, toByteOffset: i, as: UInt64.self)
        }
        return buffer.count
    }

    // MARK: mmap

    /// mmap(2): anonymous memory, and a shared mapping of a memfd from
    /// ``memoryFile(name:size:flags:)``, is registered as process memory (DMA-able, with mock
    /// physical pages); a mappable region of a VFIO device, a sysfs `resourceN` or a UIO map maps the BAR's
    /// shared memory, or a trapped register mapping whose accesses reach the device model; a
    /// region that cannot be mapped fails as the kernel's does. Host descriptors go to the host.
    public func mmap(length: Int, protection: Int32, flags: Int32, fd: FileDescriptor?, offset: Int64)
        throws(Errno) -> UnsafeMutableRawPointer
    {
        guard let fd else { return try anonymousMap(length: length, protection: protection, flags: flags) }
        let target = try lock.withLock { () throws(Errno) -> MapTarget? in
            guard let file = files[fd.rawValue] else { return nil }
            guard length > 0, offset % 4096 == 0 else { throw .invalidArgument }
            let shared = flags & MAP_SHARED != 0
            switch file.kind {
            case .device(let df):
                guard df.accessGranted else { throw .invalidArgument }
                return try df.device.planMap(offset: offset, length: length, shared: shared)
            case .resource(let f, let bar):
                guard let b = f.description.bars.first(where: { $0.index == bar }), b.isMappable else { throw .noSuchAddressOrDevice }
                guard Int(offset) + length <= (b.size + 4095) & ~4095 else { throw .invalidArgument }
                guard let m = f.barMemory[bar] else { return .registers(f, bar: bar, offset: Int(offset), vfio: nil) }
                return .memory(fd: m.fd, offset: offset)
            case .uio(let u):
                let t = try u.mapTarget(index: Int(offset / 4096), length: length)
                return .memory(fd: t.fd, offset: t.offset)
            default:
                throw .operationNotSupportedByDevice
            }
        }
        guard let target else {
            guard let p = Glibc.mmap(nil, length, protection, flags, fd.rawValue, off_t(offset)), p != MAP_FAILED else {
                throw Errno(rawValue: errno)
            }
            lock.withLock {
                guard flags & MAP_SHARED != 0, let pageSize = memoryFiles[fd.rawValue] else { return }
                memory.register(start: UInt64(UInt(bitPattern: p)), length: UInt64(length), pageSize: pageSize, shared: true)
            }
            return p
        }
        switch target {
        case .memory(let memfd, let at):
            guard let p = Glibc.mmap(nil, length, protection, flags, memfd, off_t(at)), p != MAP_FAILED else {
                throw Errno(rawValue: errno)
            }
            return p
        case .registers(let function, let bar, let at, let vfio):
            let mapping = try TrappedMapping(kernel: self, function: function, vfio: vfio, bar: bar, base: at, length: length)
            lock.withLock { trappedMappings[UInt(bitPattern: mapping.address)] = mapping }
            return mapping.address
        }
    }

    /// Anonymous memory becomes process memory the mock can pin and give physical pages.
    private func anonymousMap(length: Int, protection: Int32, flags: Int32) throws(Errno) -> UnsafeMutableRawPointer {
        guard let p = Glibc.mmap(nil, length, protection, flags, -1, 0), p != MAP_FAILED else { throw Errno(rawValue: errno) }
        var pageSize: UInt64 = 4096
        if flags & MAP_HUGETLB != 0 {
            let shift = (flags >> MAP_HUGE_SHIFT) & 0x3f
            pageSize = shift == 0 ? 2 << 20 : UInt64(1) << UInt64(shift)
        }
        lock.withLock { memory.register(start: UInt64(UInt(bitPattern: p)), length: UInt64(length), pageSize: pageSize) }
        return p
    }

    /// munmap(2), ending any trapped register mapping in the range first and unregistering the
    /// range as process memory. The host unmap and the unregistering happen under one lock hold,
    /// so a concurrent mmap that the host gives the same addresses is never unregistered by it.
    public func munmap(_ address: UnsafeMutableRawPointer, length: Int) throws(Errno) {
        // A trapped register mapping ends whole, before its range can be reused.
        let start = UInt(bitPattern: address)
        let ended = lock.withLock { () -> [TrappedMapping] in
            let keys = trappedMappings.keys.filter { $0 < start + UInt(length) && start < $0 + UInt(trappedMappings[$0]!.length) }
            return keys.compactMap { trappedMappings.removeValue(forKey: $0) }
        }
        for m in ended { m.untrap() }
        try lock.withLock { () throws(Errno) in
            if Glibc.munmap(address, length) < 0 { throw Errno(rawValue: errno) }
            memory.unregister(start: UInt64(UInt(bitPattern: address)), length: UInt64(length))
        }
    }

    // MARK: Passed through to the host

    /// Retired memory is private to the process, as on the host: the mock's device models never
    /// see it and the IOMMU model never pins it.
    public func retireMapping(_ address: UnsafeMutableRawPointer, length: Int) throws(Errno) {
        try HostSystemCalls.shared.retireMapping(address, length: length)
    }

    /// A real eventfd of the host with `EFD_CLOEXEC` added: the mock signals it as the kernel would.
    public func eventfd(initialValue: UInt32, flags: Int32) throws(Errno) -> FileDescriptor {
        let fd = cvfio_eventfd(initialValue, flags | Int32(EFD_CLOEXEC))
        guard fd >= 0 else { throw Errno(rawValue: errno) }
        return FileDescriptor(rawValue: fd)
    }

    /// A real memfd of the host, sized: its shared mappings become process memory the IOMMU
    /// model pins by their pages, so the device keeps reaching them after the mapping that was
    /// pinned is gone (see ``mmap(length:protection:flags:fd:offset:)``).
    public func memoryFile(name: String, size: Int, flags: UInt32) throws(Errno) -> FileDescriptor {
        let fd = try HostSystemCalls.shared.memoryFile(name: name, size: size, flags: flags)
        lock.withLock { memoryFiles[fd.rawValue] = flags & CVFIO_MFD_HUGETLB != 0 ? 2 << 20 : 4096 }
        return fd
    }

    /// The host's timerfd: the model has no clock of its own.
    public func periodicTimer(interval: Duration) throws(Errno) -> FileDescriptor {
        try HostSystemCalls.shared.periodicTimer(interval: interval)
    }

    /// A real epoll instance of the host, close-on-exec: the mock's descriptors are real ones, so
    /// it watches them as any other.
    public func epollCreate() throws(Errno) -> FileDescriptor {
        let fd = epoll_create1(Int32(EPOLL_CLOEXEC))
        guard fd >= 0 else { throw Errno(rawValue: errno) }
        return FileDescriptor(rawValue: fd)
    }

    /// epoll_ctl(2) on the host.
    public func epollControl(_ epoll: FileDescriptor, _ operation: Int32, _ fd: FileDescriptor, events: UInt32, data: UInt64) throws(Errno) {
        if cvfio_epoll_ctl(epoll.rawValue, operation, fd.rawValue, events, data) < 0 { throw Errno(rawValue: errno) }
    }

    /// epoll_wait(2) on the host, retried on `EINTR`.
    public func epollWait(
        _ epoll: FileDescriptor, events: UnsafeMutablePointer<UInt32>, data: UnsafeMutablePointer<UInt64>,
        capacity: Int32, timeoutMilliseconds: Int32
    ) throws(Errno) -> Int {
        while true {
            let n = cvfio_epoll_wait(epoll.rawValue, events, data, capacity, timeoutMilliseconds)
            if n >= 0 { return Int(n) }
            if errno != EINTR { throw Errno(rawValue: errno) }
        }
    }
}
