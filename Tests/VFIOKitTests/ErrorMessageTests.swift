import PCI
import SystemPackage
import Testing
import VFIOKit

/// Every error names what was wrong, where, and what to do about it.
@Suite struct ErrorMessageTests {
    static let device = pciAddress("0000:03:00.0")

    /// Each case with the words its message must hold: the device or operation, and the remedy.
    static let cases: [(VFIOError, [String])] = [
        (.systemCall(operation: SystemCall("VFIO_DEVICE_SET_IRQS", device: device, detail: "MSI-X, start 0, count 4"), errno: .resourceBusy),
         ["0000:03:00.0", "SET_IRQS", "another process"]),
        (.systemCall(operation: SystemCall("open", path: "/dev/vfio/7", device: device), errno: .permissionDenied), ["0000:03:00.0", "group vfio"]),
        (.systemCall(operation: SystemCall("VFIO_IOMMU_MAP_DMA", detail: "iova 0x1000, 4096 bytes"), errno: .noMemory), ["MAP_DMA", "RLIMIT_MEMLOCK"]),
        (.noSuchDevice(device), ["0000:03:00.0", "vfiokit list"]),
        (.wrongDriver(device, driver: "nvme", needed: "vfio-pci"), ["0000:03:00.0", "nvme", "vfiokit bind"]),
        (.groupNotViable(group: 7, device), ["group 7", "0000:03:00.0", "--whole-group"]),
        (.alreadyOpen(device), ["0000:03:00.0", "close it"]),
        (.deviceClosed(device, operation: "read of region 0 at 0x40"), ["0000:03:00.0", "read of region 0", "open it again"]),
        (.contextMismatch(device, context: .legacy, driver: "uio_pci_generic"), ["0000:03:00.0", "uio_pci_generic", "context of its own"]),
        (.contextClosed(operation: "allocating 4096 bytes of DMA memory"), ["allocating", "make a new one"]),
        (.contextEmpty(operation: "allocating 4096 bytes of DMA memory"), ["allocating", "open a device into it first"]),
        (.noSuchRegion(index: 9, device), ["0000:03:00.0", "region 9", "vfiokit info"]),
        (.regionTooSmall(device, index: 0, size: 16, needed: 32), ["0000:03:00.0", "region 0", "wrong BAR"]),
        (.unsupportedByBackend(.uio, operation: "triggering MSI-X vector 0 from software", device), ["0000:03:00.0", "triggering", "vfio-pci"]),
        (.interruptUnavailable(device, .msix, requested: 9, available: 8), ["MSI-X of 0000:03:00.0", "9 were requested", "at most 8"]),
        (.interruptKindInUse(device, requested: .msix, enabled: .msi), ["MSI-X of 0000:03:00.0", "disable MSI first"]),
        (.interruptSourceRetired(device, .msix, vector: 3), ["MSI-X vector 3 of 0000:03:00.0", "latest enable or grow"]),
        (.eventLoopFull(capacity: 4096), ["4096", "another EventLoop"]),
        (.eventLoopFailed(errno: .badFileDescriptor), ["epoll_wait failed", "new EventLoop"]),
        (.hugePagesUnavailable(bytes: 2 << 20, errno: .noMemory), ["2097152", "nr_hugepages"]),
        (.physicalAddressUnavailable(virtualAddress: 0x7f00_0000), ["0x7f000000", "run as root"]),
        (.notPhysicallyContiguous(size: 8192), ["8192", "IOMMU backend"]),
        (.iovaSpaceExhausted(size: 4096, limit: 1 << 28), ["4096", "free buffers"]),
        (.dmaMappingLimit(65535), ["65535", "larger buffers"]),
        (.iovaUnavailable(iova: 0x4000, size: 8192, reason: "it overlaps a range already in use"),
         ["IOVA 0x4000", "8192 bytes", "overlaps", "adopted once"]),
        (.dmaPieceRefused(DMAPiece(file: FileDescriptor(rawValue: 12), length: 4096, deviceAddress: 0x3000), reason: "its file is not open"),
         ["4096 bytes at IOVA 0x3000 (memfd 12 at offset 0)", "its file is not open", "start the driver afresh"]),
        (.timeout(what: "the IMS commit of slot 4", milliseconds: 100), ["slot 4", "100 ms", "reset"]),
    ]

    @Test func eachMessageNamesWhatWhereAndWhatToDo() {
        for (error, words) in Self.cases {
            for word in words { #expect(error.description.contains(word), "\(error) lacks \"\(word)\"") }
        }
    }
}
