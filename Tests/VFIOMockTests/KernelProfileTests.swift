#if canImport(Glibc)
import Glibc
#endif
import CVFIO
import SystemPackage
import Testing
@testable import VFIOMock

/// Each kernel profile answers with its release's ABI: which nodes exist, how info structures
/// and capability chains are copied back, MSI-X's NORESIZE.
@Suite struct KernelProfileTests {
    typealias Argument = InfoArgszTests.Argument

    static func setup(_ profile: MockKernel.Profile) throws -> LegacySetup {
        var c = MockKernel.Configuration()
        c.profile = profile
        return try LegacySetup(memoryDevice(msix: 16), configuration: c)
    }

    @Test(arguments: [
        ("6.1.0-28-amd64", "6.1"), ("6.12.48", "6.12"), ("6.6.0", "6.1"), ("6.13.2", "6.12"), ("7.0.1", "6.12"),
    ])
    func aReleaseGetsTheNewestProfileNotNewerThanIt(_ release: String, _ profile: String) {
        #expect(MockKernel.Profile(release: release)?.release == profile)
    }

    @Test func releasesOlderThanEveryProfileOrUnreadableHaveNone() {
        #expect(MockKernel.Profile(release: "5.15.0") == nil)
        #expect(MockKernel.Profile(release: "linux") == nil)
    }

    @Test func theDefaultIsTheNewestProfile() {
        #expect(MockKernel().configuration.profile == .newest)
        #expect(MockKernel.Profile.newest == .linux6_12)
    }

    @Test func linux6_1HasNoIOMMUFDOrDeviceCdev() throws {
        let old = MockKernel(profile: .linux6_1)
        #expect(throws: Errno.noSuchFileOrDirectory) { try old.open("/dev/iommu", O_RDWR) }
        #expect(old.configuration.iommufdAvailable == false)
        let container = try old.open("/dev/vfio/vfio", O_RDWR)
        try old.close(container)
        let new = MockKernel(profile: .linux6_12)
        try new.close(try new.open("/dev/iommu", O_RDWR))
    }

    /// 6.1 copies `vfio_device_info` back through `cap_offset` (20 bytes) when argsz reaches
    /// it and 16 bytes otherwise; 6.12 copies `min(argsz, 24)`, its zeroed `pad` included.
    @Test(arguments: [(18, 16, 18), (20, 20, 20), (24, 20, 24), (64, 20, 24)])
    func deviceInfoPaddingIsWrittenBy6_12Only(_ argsz: Int, _ written6_1: Int, _ written6_12: Int) throws {
        for (profile, written) in [(MockKernel.Profile.linux6_1, written6_1), (.linux6_12, written6_12)] {
            let s = try Self.setup(profile)
            let arg = Argument(argsz: argsz)
            try arg.call(s, s.device, CVFIO_DEVICE_GET_INFO)
            #expect(arg.u32(12) == UInt32(VFIO_PCI_NUM_IRQS))
            #expect(Array(arg.raw[16..<written]).allSatisfy { $0 == 0 }, "\(profile)")
            #expect(arg.firstWritten(from: written) == nil, "\(profile) writes \(written) bytes for argsz \(argsz)")
        }
    }

    /// type1's IOVA-range, DMA-available and migration chain: packed on 6.1 (116 bytes with
    /// the structure), each capability 8-byte aligned on 6.12 (120); 6.1 leaves `pad` alone.
    @Test func type1InfoChainAndPaddingFollowTheProfile() throws {
        for (profile, needed) in [(MockKernel.Profile.linux6_1, 116), (.linux6_12, 120)] {
            let s = try Self.setup(profile)
            let short = Argument(argsz: 24)
            try short.call(s, s.container, CVFIO_IOMMU_GET_INFO)
            #expect(short.u32(0) == UInt32(needed), "\(profile)")
            #expect(short.u32(16) == 0)
            #expect(short.u32(20) == (profile.writesInfoPadding ? 0 : 0xa5a5_a5a5), "\(profile): pad")
            let room = Argument(argsz: needed)
            try room.call(s, s.container, CVFIO_IOMMU_GET_INFO)
            #expect(room.u32(16) == 24 && room.firstWritten(from: needed) == nil, "\(profile)")
        }
    }

    @Test func msixIsResizableFrom6_12Only() throws {
        for profile in MockKernel.Profile.all {
            let s = try Self.setup(profile)
            let irq = Argument(argsz: 16, index: VFIO_PCI_MSIX_IRQ_INDEX)
            try irq.call(s, s.device, CVFIO_DEVICE_GET_IRQ_INFO)
            #expect((irq.u32(4) & UInt32(VFIO_IRQ_INFO_NORESIZE) != 0) == !profile.dynamicMSIX, "\(profile)")
        }
        #expect(MockKernel.Profile.linux6_1.dynamicMSIX == false && MockKernel.Profile.linux6_12.dynamicMSIX)
    }
}
