import CVFIO
import SystemPackage
import Testing
@testable import VFIOMock

/// VFIO's argsz protocol for info ioctls as Linux 6.12 serves it: below the structure's
/// minimum, `EINVAL` and nothing written; otherwise `min(argsz, sizeof)` bytes written back,
/// and a capability chain only when argsz has room for it. Each argument is a buffer larger
/// than any argsz used, filled with a marker, so every byte the mock writes shows.
@Suite struct InfoArgszTests {
    static let marker: UInt8 = 0xa5

    final class Argument {
        let raw = UnsafeMutableRawBufferPointer.allocate(byteCount: 128, alignment: 8)

        init(argsz: Int, index: Int = 0) {
            raw.initializeMemory(as: UInt8.self, repeating: InfoArgszTests.marker)
            raw.storeBytes(of: UInt32(argsz), toByteOffset: 0, as: UInt32.self)
            raw.storeBytes(of: UInt32(index), toByteOffset: 8, as: UInt32.self)
        }

        deinit { raw.deallocate() }

        func u32(_ offset: Int) -> UInt32 { raw.load(fromByteOffset: offset, as: UInt32.self) }

        /// The first byte from `offset` on that the call wrote, or nil when it wrote none there.
        func firstWritten(from offset: Int) -> Int? { raw[offset...].firstIndex { $0 != InfoArgszTests.marker } }

        func call(_ s: LegacySetup, _ fd: FileDescriptor, _ request: Int) throws(Errno) {
            try ioctl(s.kernel, fd, request, buffer: raw)
        }
    }

    static func setup() throws -> LegacySetup {
        try LegacySetup(memoryDevice(msix: 16))
    }

    /// Each info ioctl with argsz one byte short of its minimum.
    @Test(arguments: [
        ("group status", 8), ("device info", 16), ("region info", 32), ("irq info", 16), ("iommu info", 16),
    ])
    func argszBelowTheMinimumIsRefusedAndNothingIsWritten(_ name: String, _ minimum: Int) throws {
        let s = try Self.setup()
        let requests = [
            "group status": (s.group, CVFIO_GROUP_GET_STATUS), "device info": (s.device, CVFIO_DEVICE_GET_INFO),
            "region info": (s.device, CVFIO_DEVICE_GET_REGION_INFO), "irq info": (s.device, CVFIO_DEVICE_GET_IRQ_INFO),
            "iommu info": (s.container, CVFIO_IOMMU_GET_INFO),
        ]
        let (fd, request) = try #require(requests[name])
        let arg = Argument(argsz: minimum - 1)
        #expect(errno { try arg.call(s, fd, request) } == .invalidArgument)
        #expect(arg.u32(0) == UInt32(minimum - 1))
        #expect(arg.firstWritten(from: 4) == 8 && arg.firstWritten(from: 12) == nil, "only the index the test set differs")
    }

    /// `struct vfio_device_info` is 24 bytes in 6.12 (with `pad`), 20 in older headers and 16
    /// before `cap_offset`: each caller gets exactly what it declared, at most 24 bytes.
    @Test(arguments: [16, 20, 24, 32, 128])
    func deviceInfoWritesBackWhatArgszDeclaresUpToTheStructure(_ argsz: Int) throws {
        let s = try Self.setup()
        let arg = Argument(argsz: argsz)
        try arg.call(s, s.device, CVFIO_DEVICE_GET_INFO)
        let written = min(argsz, 24)
        #expect(arg.u32(0) == UInt32(argsz))
        #expect(arg.u32(4) == UInt32(VFIO_DEVICE_FLAGS_PCI | VFIO_DEVICE_FLAGS_RESET))
        #expect(arg.u32(8) == UInt32(VFIO_PCI_NUM_REGIONS) && arg.u32(12) == UInt32(VFIO_PCI_NUM_IRQS))
        #expect(Array(arg.raw[16..<written]).allSatisfy { $0 == 0 }, "cap_offset and pad come back zero")
        #expect(arg.firstWritten(from: written) == nil)
    }

    @Test func irqInfoAndGroupStatusWriteBackOnlyTheirStructure() throws {
        let s = try Self.setup()
        let irq = Argument(argsz: 128, index: VFIO_PCI_MSIX_IRQ_INDEX)
        try irq.call(s, s.device, CVFIO_DEVICE_GET_IRQ_INFO)
        #expect(irq.u32(0) == 128 && irq.u32(4) == UInt32(VFIO_IRQ_INFO_EVENTFD) && irq.u32(12) == 16)
        #expect(irq.firstWritten(from: 16) == nil)

        let status = Argument(argsz: 128)
        try status.call(s, s.group, CVFIO_GROUP_GET_STATUS)
        #expect(status.u32(4) == UInt32(VFIO_GROUP_FLAGS_VIABLE | VFIO_GROUP_FLAGS_CONTAINER_SET))
        #expect(status.firstWritten(from: 8) == 8, "only the index the test set differs past the structure")
        #expect(status.firstWritten(from: 12) == nil)
    }

    /// Region info's minimum is its whole structure: with no capability, the cap_offset the
    /// caller passed comes back as it was, as the kernel copies it in and out untouched.
    @Test func regionInfoWritesItsStructureAndCapabilitiesOnlyWithRoom() throws {
        let s = try Self.setup()
        let config = Argument(argsz: 128, index: VFIO_PCI_CONFIG_REGION_INDEX)
        try config.call(s, s.device, CVFIO_DEVICE_GET_REGION_INFO)
        #expect(config.u32(0) == 128 && config.u32(12) == 0xa5a5_a5a5)
        #expect(config.firstWritten(from: 32) == nil)

        let short = Argument(argsz: 32, index: VFIO_PCI_BAR0_REGION_INDEX)
        try short.call(s, s.device, CVFIO_DEVICE_GET_REGION_INFO)
        #expect(short.u32(0) == 40 && short.u32(12) == 0)
        #expect(short.u32(4) & UInt32(VFIO_REGION_INFO_FLAG_CAPS) != 0)
        #expect(short.firstWritten(from: 32) == nil)

        let room = Argument(argsz: 40, index: VFIO_PCI_BAR0_REGION_INDEX)
        try room.call(s, s.device, CVFIO_DEVICE_GET_REGION_INFO)
        #expect(room.u32(0) == 40 && room.u32(12) == 32)
        #expect(room.u32(32) & 0xffff == UInt32(VFIO_REGION_INFO_CAP_MSIX_MAPPABLE))
        #expect(room.firstWritten(from: 40) == nil)
    }

    /// `struct vfio_iommu_type1_info` is 24 bytes; its capabilities need 24 + 96.
    @Test(arguments: [16, 20, 24, 120, 128])
    func iommuInfoWritesBackWhatArgszDeclaresAndCapabilitiesWithRoom(_ argsz: Int) throws {
        let s = try Self.setup()
        let arg = Argument(argsz: argsz)
        try arg.call(s, s.container, CVFIO_IOMMU_GET_INFO)
        let needed = 24 + 96
        #expect(arg.u32(0) == UInt32(max(argsz, needed)))
        #expect(arg.u32(4) == UInt32(VFIO_IOMMU_INFO_PGSIZES | VFIO_IOMMU_INFO_CAPS))
        if argsz >= needed {
            #expect(arg.u32(16) == 24)
            #expect(arg.firstWritten(from: needed) == nil)
        } else {
            #expect(Array(arg.raw[16..<min(argsz, 24)]).allSatisfy { $0 == 0 }, "cap_offset and pad come back zero")
            #expect(arg.firstWritten(from: min(argsz, 24)) == nil)
        }
    }
}
