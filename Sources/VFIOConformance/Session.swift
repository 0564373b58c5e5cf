#if canImport(Glibc)
import Glibc
#endif
import CVFIO
import PCI
import SystemPackage
import VFIOKit

/// One scenario's run in one IOMMU mode: makes the system calls through ``SystemCalls`` and
/// records each one's outcome. Everything it opens or maps is released by ``finish()``.
public final class Session {
    let system: any SystemCalls
    let mode: IOMMUMode
    let target: ConformanceTarget
    private(set) var lines: [String] = []
    private var descriptors: [FileDescriptor] = []
    private var memory: [(UnsafeMutableRawPointer, Int)] = []

    /// Thrown to end a scenario after a step it cannot go on without; the step is recorded.
    struct Stop: Error {}

    init(system: any SystemCalls, mode: IOMMUMode, target: ConformanceTarget) {
        self.system = system
        self.mode = mode
        self.target = target
    }

    func record(_ line: String) { lines.append(line) }

    /// Records `step: ok` (or `step: VALUE` from `describe`) or `step: ERRNO`; nil on failure.
    @discardableResult
    func step<T>(_ name: String, describe: (T) -> String? = { _ in nil }, _ body: () throws(Errno) -> T) -> T? {
        do {
            let value = try body()
            record("\(name): \(describe(value) ?? "ok")")
            return value
        } catch {
            record("\(name): \(error.symbol)")
            return nil
        }
    }

    /// An ioctl whose argument is `argument`'s buffer.
    @discardableResult
    func ioctl(_ name: String, _ fd: FileDescriptor, _ request: Int, _ argument: IoctlArgument) -> Bool {
        step(name) { () throws(Errno) in try system.ioctl(fd, UInt(request), argument.address) } != nil
    }

    /// An ioctl whose argument is `argument`'s buffer; records and returns the 32-bit field the
    /// kernel writes back at byte offset `reply` (an id, flags), described by `describe`.
    func ioctl(
        _ name: String, _ fd: FileDescriptor, _ request: Int, _ argument: IoctlArgument, reply: Int,
        describe: (UInt32) -> String
    ) -> UInt32? {
        step(name, describe: describe) { () throws(Errno) in
            _ = try system.ioctl(fd, UInt(request), argument.address)
            return argument[u32: reply]
        }
    }

    /// An ioctl whose argument is an integer; records the value the kernel returns.
    @discardableResult
    func ioctl(_ name: String, _ fd: FileDescriptor, _ request: Int, value: Int) -> Int32? {
        step(name, describe: { "\($0)" }) { () throws(Errno) in try system.ioctl(fd, request, value: value) }
    }

    /// Opens `path`, recording the outcome under `name` (paths hold numbers that differ by machine).
    func open(_ path: String, as name: String) -> FileDescriptor? {
        guard let fd = step("open \(name)", { () throws(Errno) in try system.open(path, O_RDWR) }) else { return nil }
        descriptors.append(fd)
        return fd
    }

    /// Takes a descriptor the kernel handed back (a device fd) into the session's care.
    func adopt(_ fd: FileDescriptor) { descriptors.append(fd) }

    /// Closes a descriptor this session opened, before the end of the scenario.
    func close(_ fd: FileDescriptor) {
        descriptors.removeAll { $0 == fd }
        // A scenario records the calls it tests; this close is set-up, not one of them, and
        // Linux releases the descriptor even when close reports an error.
        try? system.close(fd)
    }

    /// Ends the scenario unless `value` is there (its failure is already recorded).
    @discardableResult
    func require<T>(_ value: T?) throws(Stop) -> T {
        guard let value else { throw Stop() }
        return value
    }

    /// `size` bytes of anonymous shared memory, as the selftests map for DMA.
    func anonymousMemory(_ size: Int) throws(Stop) -> UInt64 {
        let p = try require(
            step("mmap anonymous \(hex(size))", describe: { _ in "ok" }) { () throws(Errno) in
                try system.mmap(length: size, protection: PROT_READ | PROT_WRITE, flags: MAP_SHARED | MAP_ANONYMOUS, fd: nil, offset: 0)
            })
        memory.append((p, size))
        return UInt64(UInt(bitPattern: p))
    }

    /// Releases what the scenario left open or mapped, newest first.
    func finish() {
        // Clean-up after the recorded calls, as for close(_:) above.
        for fd in descriptors.reversed() { try? system.close(fd) }
        for (p, size) in memory.reversed() { try? system.munmap(p, length: size) }
        descriptors.removeAll()
        memory.removeAll()
    }

    // MARK: sysfs

    /// The path of `address`'s VFIO group node, from its IOMMU group in sysfs.
    func groupNode(_ address: PCIAddress) throws(Stop) -> String {
        let link = try require(
            step("readlink iommu_group", describe: { _ in "ok" }) { () throws(Errno) in
                try system.readLink(SysfsLayout.absolute(SysfsLayout.device(address, .iommuGroup)))
            })
        let group = try require(link.split(separator: "/").last.flatMap { Int($0) })
        return SysfsLayout.absolute(SysfsLayout.vfioGroupNode(group, noIOMMU: false))
    }

    /// The path of `address`'s VFIO device cdev (`/dev/vfio/devices/vfioN`), from sysfs.
    func cdevNode(_ address: PCIAddress) throws(Stop) -> String {
        let names = try require(
            step("list vfio-dev", describe: { "\($0.count) entries" }) { () throws(Errno) in
                try system.listDirectory(SysfsLayout.absolute(SysfsLayout.device(address, .vfioDev)))
            })
        return SysfsLayout.absolute(SysfsLayout.vfioDeviceNode(try require(names.first.flatMap(KernelName.init(listed:)))))
    }
}

/// The devices a conformance run uses, by PCI address. Each must be bound to vfio-pci.
public struct ConformanceTarget: Sendable, Equatable {
    /// A QEMU edu device (1234:11e8): DMA, config space, BARs, MSI, reset.
    public var edu: PCIAddress
    /// A device with MSI-X (QEMU's NVMe), used read-only: interrupt info and DATA_NONE triggers.
    public var msix: PCIAddress?
    /// A function in a group that a host kernel driver also holds (not viable).
    public var nonViable: PCIAddress?

    public init(edu: PCIAddress, msix: PCIAddress? = nil, nonViable: PCIAddress? = nil) {
        self.edu = edu
        self.msix = msix
        self.nonViable = nonViable
    }
}
