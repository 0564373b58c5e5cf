import PCI
import SystemPackage

/// What went wrong in the framework, one case for each thing a caller would handle
/// differently. Each message names the device or context, the operation, and what to do.
///
/// Drivers report their own failures with their own error types; this type is for what the
/// framework and the kernel refuse.
public enum VFIOError: Error, Equatable, CustomStringConvertible {
    /// A system call failed; `operation` is the call, its file and the device, as a value.
    case systemCall(operation: SystemCall, errno: Errno)
    /// No such PCI device in sysfs.
    case noSuchDevice(PCIAddress)
    /// The device is not bound to a driver the chosen backend can use.
    case wrongDriver(PCIAddress, driver: String?, needed: String)
    /// The requested backend cannot be used on this system.
    case backendUnavailable(Backend, reason: String)
    /// The device's IOMMU group has members that are not bound to vfio-pci.
    case groupNotViable(group: Int, PCIAddress)
    /// The device is already open in this process; a second handle would fight the first
    /// over its interrupts and DMA.
    case alreadyOpen(PCIAddress)
    /// The device or the context it belongs to was closed, or the device was removed.
    case deviceClosed(PCIAddress, operation: String)
    /// The device is bound to a driver the backend of its context cannot use.
    case contextMismatch(PCIAddress, context: Backend, driver: String)
    /// The IOMMU context was closed.
    case contextClosed(operation: String)
    /// The IOMMU context has no device yet, and the kernel sets its IOMMU up with the first.
    case contextEmpty(operation: String)
    /// The device has no region with that index.
    case noSuchRegion(index: Int, PCIAddress)
    /// The region is smaller than the registers a driver accesses.
    case regionTooSmall(PCIAddress, index: Int, size: Int, needed: Int)
    /// The device has no interrupt of that kind, or too few vectors.
    case interruptUnavailable(PCIAddress, IRQIndex, requested: Int, available: Int)
    /// INTx, MSI and MSI-X exclude each other, and another of them is enabled.
    case interruptKindInUse(PCIAddress, requested: IRQIndex, enabled: IRQIndex)
    /// An event loop already dispatches as many sources as it has slots for.
    case eventLoopFull(capacity: Int)
    /// An event loop's `epoll_wait` failed with an error that retrying cannot cure; the loop stopped.
    case eventLoopFailed(errno: Errno)
    /// The interrupt source belongs to an index that has since been disabled or re-enabled.
    case interruptSourceRetired(PCIAddress, IRQIndex, vector: Int)
    /// The backend cannot do this at all (UIO has only INTx, for example).
    case unsupportedByBackend(Backend, operation: String, PCIAddress)
    /// A DMA request cannot be met within the IOVA ranges, alignment and limit.
    case iovaSpaceExhausted(size: Int, limit: UInt64)
    /// Without an IOMMU, the memory's physical address lies beyond what the device can address.
    case beyondDeviceReach(physicalAddress: UInt64, size: Int, limit: UInt64)
    /// The kernel's cap on the number of DMA mappings has been reached.
    case dmaMappingLimit(Int)
    /// An address passed to unmap was never mapped.
    case unknownMapping(iova: UInt64, length: Int)
    /// An exact IOVA range cannot be reserved: it is misaligned, overlaps a range in use, or
    /// lies outside the kernel's IOVA ranges (`reason` says which).
    case iovaUnavailable(iova: UInt64, size: Int, reason: String)
    /// A handed-over DMA buffer cannot be adopted or claimed; `reason` says what is wrong with it.
    case dmaPieceRefused(DMAPiece, reason: String)
    /// Without an IOMMU, DMA memory must be hugepages, and none could be had.
    case hugePagesUnavailable(bytes: Int, errno: Errno)
    /// `/proc/self/pagemap` gave no physical address (not resident, or PFNs hidden from
    /// processes without CAP_SYS_ADMIN).
    case physicalAddressUnavailable(virtualAddress: UInt64)
    /// Without an IOMMU, a DMA buffer must be physically contiguous, and this one is not.
    case notPhysicallyContiguous(size: Int)
    /// The framework was asked for something that cannot be done with these arguments.
    case invalidArgument(operation: String, reason: String)
    /// A device did not respond within the bounded wait.
    case timeout(what: String, milliseconds: Int)
    /// The device answered with something that breaks its contract.
    case deviceMisbehaved(String)

    /// What failed, naming the device or context and the operation, and what to do about it.
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
        case let .alreadyOpen(a):
            return "\(a) is already open in this process: use the PCIDevice you have, or close it before opening it again"
        case let .deviceClosed(a, operation):
            return "\(operation) on \(a): the device was closed or removed; open it again if it is still there"
        case let .contextMismatch(a, context, driver):
            return "\(a) is bound to \(driver), which the \(context) backend of its IOMMU context cannot use: open it in a context of its own"
        case let .contextClosed(operation):
            return "\(operation): the IOMMU context was closed; make a new one"
        case let .contextEmpty(operation):
            return "\(operation): the IOMMU context has no device yet; open a device into it first (the kernel sets the IOMMU up with the first group)"
        case let .noSuchRegion(index, a):
            return "\(a) has no region \(index): BARs are 0–5, the ROM 6, config space 7 (see `vfiokit info \(a)`)"
        case let .regionTooSmall(a, index, size, needed):
            return "region \(index) of \(a) is \(size) bytes but the access needs \(needed): wrong BAR, wrong offset or wrong device"
        case let .interruptUnavailable(a, index, requested, available):
            return "\(index) of \(a) has \(available) vector(s) and \(requested) were requested: ask for at most \(available)"
        case let .interruptKindInUse(a, requested, enabled):
            return "cannot enable \(requested) of \(a) while \(enabled) is enabled: disable \(enabled) first"
        case let .eventLoopFull(capacity):
            return "the event loop already dispatches \(capacity) sources: end registrations no longer needed, or spread sources over another EventLoop"
        case let .eventLoopFailed(errno):
            return "the event loop stopped: epoll_wait failed: \(errno) (errno \(errno.rawValue)); its handlers no longer run: end its registrations and register them on a new EventLoop"
        case let .interruptSourceRetired(a, index, vector):
            return "\(index) vector \(vector) of \(a) was disabled and its eventfd released: register the sources the latest enable or grow returned"
        case let .unsupportedByBackend(backend, operation, a):
            return "\(operation) on \(a) is not possible on the \(backend) backend: bind the device to vfio-pci instead"
        case let .iovaSpaceExhausted(size, limit):
            return "no free IOVA range of \(size) bytes below 0x\(String(limit, radix: 16)) within the kernel's IOVA ranges: free buffers or allocate fewer, larger ones"
        case let .beyondDeviceReach(address, size, limit):
            return "\(size) bytes at physical address 0x\(String(address, radix: 16)) are beyond the device's reach (below 0x\(String(limit, radix: 16))) and there is no IOMMU to remap them: use an IOMMU backend"
        case let .dmaMappingLimit(limit):
            return "the kernel allows \(limit) DMA mappings and all are in use: use larger buffers"
        case let .unknownMapping(iova, length):
            return "no DMA mapping at IOVA 0x\(String(iova, radix: 16)) of \(length) bytes"
        case let .iovaUnavailable(iova, size, reason):
            return "cannot reserve IOVA 0x\(String(iova, radix: 16)) (\(size) bytes): \(reason); a handed-over buffer is adopted once, into the context whose IOMMU maps it"
        case let .dmaPieceRefused(piece, reason):
            return "cannot adopt the DMA buffer handed over as \(piece): \(reason); start the driver afresh instead (its device is reset)"
        case let .hugePagesUnavailable(bytes, errno):
            return "cannot allocate \(bytes) bytes of hugepage memory for DMA without an IOMMU (\(errno)): reserve hugepages with `echo 64 > /proc/sys/vm/nr_hugepages`"
        case let .physicalAddressUnavailable(virtual):
            return "no physical address for 0x\(String(virtual, radix: 16)) in /proc/self/pagemap: DMA without an IOMMU needs CAP_SYS_ADMIN (run as root)"
        case let .notPhysicallyContiguous(size):
            return "a DMA buffer of \(size) bytes is not physically contiguous: reserve hugepages (`echo 64 > /proc/sys/vm/nr_hugepages`) or use an IOMMU backend"
        case let .invalidArgument(operation, reason):
            return "\(operation): \(reason)"
        case let .timeout(what, ms):
            return "\(what) did not complete within \(ms) ms: the device may be hung; reset it"
        case let .deviceMisbehaved(what):
            return "device misbehaved: \(what)"
        }
    }

    private static func hint(_ e: Errno) -> String {
        switch e {
        case .permissionDenied, .notPermitted:
            return ": run as root or add yourself to group vfio (see udev-rules/)"
        case .resourceBusy:
            return ": another process (or another IOMMU context in this one) holds the device or group open"
        case .noSuchFileOrDirectory:
            return ": is the device bound (`vfiokit bind`) and the module loaded?"
        case .noSuchAddressOrDevice, .operationNotSupportedByDevice:
            return ": the device is gone or refused (removed, unbound, or without that feature)"
        case .noMemory:
            return ": raise RLIMIT_MEMLOCK (`ulimit -l`, or LimitMEMLOCK in the service) for pinned DMA memory"
        default:
            return ""
        }
    }
}

extension Errno {
    /// Wraps a failed system call as a ``VFIOError`` naming the operation.
    func vfio(_ operation: SystemCall) -> VFIOError { .systemCall(operation: operation, errno: self) }
}

/// Runs `body`, turning an `Errno` into a ``VFIOError`` naming `operation`.
@inline(__always) @discardableResult
func attempt<T>(_ operation: @autoclosure () -> SystemCall, _ body: () throws(Errno) -> T) throws(VFIOError) -> T {
    do { return try body() } catch { throw error.vfio(operation()) }
}
