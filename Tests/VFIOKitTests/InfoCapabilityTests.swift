import CVFIO
import PCI
import Testing
@testable import VFIOKit

@Suite struct InfoCapabilityTests {
    /// A region-info reply: sparse mmap at 0x20 declaring `areas` areas (two present), then
    /// MSI-X mappable at 0x50 whose `next` is 0, or 0x20 to make a loop.
    func reply(areas: UInt32 = 2, loopBack: Bool = false) -> [UInt8] {
        var b = [UInt8](repeating: 0, count: 0x58)
        func put<T: FixedWidthInteger>(_ v: T, _ at: Int) {
            withUnsafeBytes(of: v.littleEndian) { for (i, x) in $0.enumerated() { b[at + i] = x } }
        }
        put(UInt16(VFIO_REGION_INFO_CAP_SPARSE_MMAP), 0x20); put(UInt16(1), 0x22); put(UInt32(0x50), 0x24)
        put(areas, 0x28)
        put(UInt64(0), 0x30); put(UInt64(0x2000), 0x38)
        put(UInt64(0x3000), 0x40); put(UInt64(0x1000), 0x48)
        put(UInt16(VFIO_REGION_INFO_CAP_MSIX_MAPPABLE), 0x50); put(UInt16(1), 0x52)
        put(UInt32(loopBack ? 0x20 : 0), 0x54)
        return b
    }

    func decode(_ bytes: [UInt8]) -> [RegionCapability] {
        var caps: [RegionCapability] = []
        bytes.withUnsafeBytes { raw in
            walkInfoCapabilities(raw, first: 0x20) { id, version, offset in
                caps.append(.decode(id: id, version: version, at: offset, in: raw))
            }
        }
        return caps
    }

    @Test func decodesSparseAreasAndMSIXMappable() {
        #expect(decode(reply()) == [.sparseMmap([0..<0x2000, 0x3000..<0x4000]), .msixMappable])
    }

    @Test func anAreaCountPastTheBufferIsCutShort() {
        // Areas 3 to 100 would lie past the end of the reply; they are not read.
        #expect(decode(reply(areas: 100)).first == .sparseMmap([0..<0x2000, 0x3000..<0x4000]))
    }

    @Test func aLoopingChainEnds() {
        #expect(decode(reply(loopBack: true)).count == 2)
    }

    @Test func mappableAreasFollowFlagsAndSparseCap() {
        let whole = RegionInfo(index: 0, size: 0x4000, offset: 0, flags: [.read, .write, .mmap])
        #expect(whole.mappableAreas == [0..<0x4000] && whole.isFullyMappable)
        let sparse = RegionInfo(
            index: 0, size: 0x4000, offset: 0, flags: [.read, .mmap, .caps], capabilities: [.sparseMmap([0..<0x1000, 0x3000..<0x4000])])
        #expect(sparse.mappableAreas == [0..<0x1000, 0x3000..<0x4000] && !sparse.isFullyMappable)
        let trapped = RegionInfo(index: 0, size: 0x4000, offset: 0, flags: [.read, .write])
        #expect(trapped.mappableAreas.isEmpty)
    }
}

@Suite struct IOMMUFaultLogParsingTests {
    @Test func parsesIntelAndAMDRecordsForThisDeviceOnly() throws {
        let device = try PCIAddress(parsing: "0000:00:03.0")
        let log = { (record: String) in IOMMUFaultLog.parse(record, device: device) }
        let intel =
            "3,812,5123456,-;DMAR: [DMA Write NO_PASID] Request device [00:03.0] fault addr 0x7000 [fault reason 0x05] PTE Write access is not set\n"
        let fault = log(intel)
        #expect(fault?.address == 0x7000 && fault?.isWrite == true)
        let read = log(
            "3,813,5123457,-;DMAR: [DMA Read] Request device [00:03.0] PASID ffffffff fault addr 8000 [fault reason 06] PTE Read access is not set\n"
        )
        #expect(read?.address == 0x8000 && read?.isWrite == false)
        #expect(log("3,814,1,-;DMAR: [DMA Write NO_PASID] Request device [00:04.0] fault addr 0x7000 [fault reason 0x05]\n") == nil)
        let amd = log("3,815,1,-;vfio-pci 0000:00:03.0: AMD-Vi: Event logged [IO_PAGE_FAULT domain=0x000b address=0x9000 flags=0x0020]\n")
        #expect(amd == nil)  // AMD-Vi names the device as device=bb:dd.f; this line does not
        let amdOwn = log("3,816,1,-;AMD-Vi: Event logged [IO_PAGE_FAULT device=00:03.0 domain=0x000b address=0x9000 flags=0x0020]\n")
        #expect(amdOwn?.address == 0x9000 && amdOwn?.isWrite == true)
        #expect(log("6,1,1,-;random message") == nil)
    }
}
