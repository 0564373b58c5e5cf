import PCI
import SystemPackage

/// Everything that can go wrong in VFIOKit. Each message names what was wrong and what to do.
public enum VFIOError: Error, Equatable, CustomStringConvertible {
    /// A system call failed; `operation` says which call on which file.
    case systemCall(operation: String, errno: Errno)
    /// No such PCI device in sysfs.
    case noSuchDevice(PCIAddress)
    /// The device is not bound to a driver the chosen backend can use.
    case wrongDriver(PCIAddress, driver: String?, needed: String)
    /// The requested backend cannot be used on this system.
    case backendUnavailable(Backend, reason: String)
    /// The device's IOMMU group has members that are not bound to vfio-pci.
    case groupNotViable(group: Int, PCIAddress)
    /// The device has no region with that index.
    case noSuchRegion(index: Int, PCIAddress)
    /// The region is smaller than the registers a driver accesses.
    case regionTooSmall(index: Int, size: Int, needed: Int)
    /// The device has no interrupt of that kind, or too few vectors.
    case interruptUnavailable(IRQIndex, requested: Int, available: Int)
    /// INTx, MSI and MSI-X exclude each other, and another of them is enabled.
    case interruptKindInUse(requested: IRQIndex, enabled: IRQIndex)
    /// An event loop already dispatches as many sources as it has slots for.
    case eventLoopFull(capacity: Int)
    /// An event loop's `epoll_wait` failed with an error that retrying cannot cure; the loop stopped.
    case eventLoopFailed(errno: Errno)
    /// The interrupt source belongs to an index that has since been disabled or re-enabled.
    case interruptSourceRetired(IRQIndex, vector: Int)
    /// A DMA request cannot be met within the IOVA ranges, alignment and limit.
    case iovaSpaceExhausted(size: Int, limit: UInt64)
    /// Without an IOMMU, the memory's physical address lies beyond what the device can address.
    case beyondDeviceReach(physicalAddress: UInt64, size: Int, limit: UInt64)
    /// The kernel's cap on the number of DMA mappings has been reached.
    case dmaMappingLimit(Int)
    /// An address passed to unmap was never mapped by this device.
    case unknownMapping(iova: UInt64, length: Int)
    /// The backend has no IOMMU, so DMA cannot be translated (only physical addresses exist).
    case operationUnsupported(String)
    /// A device did not respond within the bounded wait.
    case timeout(what: String, milliseconds: Int)
    /// The device answered with something that breaks its contract.
    case deviceMisbehaved(String)

    public var description: String {
        switch self {
        case let .systemCall(operation, errno):
            return "\(operation) failed: \(errno) (errno \(errno.rawValue))\(Self.hint(errno))"
        case let .noSuchDevice(a):
            return "no PCI device \(a): check the address with `vfiokit list`"
        case let .wrongDriver(a, driver, needed):
            return "\(a) is bound to \(driver ?? "no driver"), not \(needed): run `vfiokit bind \(a)\(needed == "uio_pci_generic" ? " --driver uio_pci_generic" : "")`"
        case let .backendUnavailable(b, reason):
            return "the \(b) backend is unavailable: \(reason)"
        case let .groupNotViable(group, a):
            return "IOMMU group \(group) of \(a) is not viable: bind every device in it to vfio-pci (`vfiokit bind \(a) --whole-group`)"
        case let .noSuchRegion(index, a):
            return "\(a) has no region \(index)"
        case let .regionTooSmall(index, size, needed):
            return "region \(index) is \(size) bytes but the registers need \(needed): wrong BAR or wrong device"
        case let .interruptUnavailable(index, requested, available):
            return "\(index) has \(available) vector(s); \(requested) requested"
        case let .interruptKindInUse(requested, enabled):
            return "cannot enable \(requested) while \(enabled) is enabled: disable \(enabled) first"
        case let .eventLoopFull(capacity):
            return "the event loop already dispatches \(capacity) sources: end registrations no longer needed, or spread sources over another EventLoop"
        case let .eventLoopFailed(errno):
            return "the event loop stopped: epoll_wait failed: \(errno) (errno \(errno.rawValue)); its handlers no longer run: end its registrations and register them on a new EventLoop"
        case let .interruptSourceRetired(index, vector):
            return "\(index) vector \(vector) was disabled and its eventfd released: register the sources the latest enable or grow returned"
        case let .iovaSpaceExhausted(size, limit):
            return "no free IOVA range of \(size) bytes below 0x\(String(limit, radix: 16)) within the kernel's IOVA ranges"
        case let .beyondDeviceReach(address, size, limit):
            return "\(size) bytes at physical address 0x\(String(address, radix: 16)) are beyond the device's reach (below 0x\(String(limit, radix: 16))) and there is no IOMMU to remap them"
        case let .dmaMappingLimit(limit):
            return "the kernel allows \(limit) DMA mappings and all are in use: use larger buffers"
        case let .unknownMapping(iova, length):
            return "no DMA mapping at IOVA 0x\(String(iova, radix: 16)) of \(length) bytes"
        case let .operationUnsupported(what):
            return what
        case let .timeout(what, ms):
            return "\(what) did not complete within \(ms) ms"
        case let .deviceMisbehaved(what):
            return "device misbehaved: \(what)"
        }
    }

    private static func hint(_ e: Errno) -> String {
        switch e {
        case .permissionDenied, .notPermitted:
            return ": run as root or add yourself to group vfio (see udev-rules/)"
        case .resourceBusy:
            return ": another process holds the device or group open"
        case .noSuchFileOrDirectory:
            return ": is the device bound (`vfiokit bind`) and the module loaded?"
        default:
            return ""
        }
    }
}

extension Errno {
    /// Wraps a failed system call as a ``VFIOError`` naming the operation.
    func vfio(_ operation: String) -> VFIOError { .systemCall(operation: operation, errno: self) }
}

/// Runs `body`, turning an `Errno` into a ``VFIOError`` naming `operation`.
@inline(__always) @discardableResult
func attempt<T>(_ operation: @autoclosure () -> String, _ body: () throws(Errno) -> T) throws(VFIOError) -> T {
    do { return try body() } catch { throw error.vfio(operation()) }
}
