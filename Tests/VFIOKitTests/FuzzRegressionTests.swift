import CVFIO
import PCI
import Foundation
import SystemPackage
import Testing
@testable import VFIOKit
import VFIOMock

/// Inputs that crashed a fuzz target (Tests/Fuzz/regressions/TARGET), replayed through the
/// same path, plus the rule each one broke, stated directly.
/// The address the replayed device is opened as.
let replayAddress = try! PCIAddress(parsing: "0000:00:03.0")

@Suite struct FuzzRegressionTests {
    static let regressions = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent(
        "Fuzz/regressions")

    /// The vfio-info target's path: device info, every region, type1 IOMMU info.
    func replayInfo(_ script: [UInt8]) {
        let kernel = ReplayKernel(script)
        if let device = try? VFIODeviceFile(
            fd: FileDescriptor(rawValue: 1000), address: replayAddress, system: kernel, logger: .vfiokitSilent)
        {
            for index in 0..<min(device.regionCount, 16) { _ = try? device.region(index)?.mappableAreas }
            device.close()
        }
        if let container = try? Type1Container(fd: FileDescriptor(rawValue: 1001), system: kernel) {
            container.close()
        }
    }

    @Test func vfioInfoCrashesReplayCleanly() throws {
        let directory = Self.regressions.appendingPathComponent("vfio-info")
        let files = try FileManager.default.contentsOfDirectory(at: directory, includingPropertiesForKeys: nil)
        #expect(!files.isEmpty)
        for file in files { replayInfo(Array(try Data(contentsOf: file))) }
    }

    /// A device info reply (PCI, 9 regions) then one region-info reply of `size` bytes.
    func deviceWithRegion(size: UInt64) -> [UInt8] {
        var info = vfio_device_info()
        info.argsz = UInt32(MemoryLayout<vfio_device_info>.size)
        info.flags = UInt32(VFIO_DEVICE_FLAGS_PCI)
        info.num_regions = 9
        var region = vfio_region_info()
        region.argsz = UInt32(MemoryLayout<vfio_region_info>.size)
        region.flags = UInt32(VFIO_REGION_INFO_FLAG_READ)
        region.index = UInt32(VFIO_PCI_CONFIG_REGION_INDEX)
        region.size = size
        return withUnsafeBytes(of: info) { Array($0) } + withUnsafeBytes(of: region) { Array($0) }
    }

    @Test func aRegionLargerThanTheAddressSpaceIsAnErrorNamingTheIoctl() {
        #expect(throws: VFIOError.self) {
            try VFIODeviceFile(
                fd: FileDescriptor(rawValue: 1000), address: replayAddress, system: ReplayKernel(deviceWithRegion(size: 1 << 63)),
                logger: .vfiokitSilent)
        }
        #expect(
            (try? VFIODeviceFile(
                fd: FileDescriptor(rawValue: 1000), address: replayAddress, system: ReplayKernel(deviceWithRegion(size: 256)),
                logger: .vfiokitSilent)) != nil)
        do {
            _ = try VFIODeviceFile(
                fd: FileDescriptor(rawValue: 1000), address: replayAddress, system: ReplayKernel(deviceWithRegion(size: .max)),
                logger: .vfiokitSilent)
        } catch {
            #expect("\(error)".contains("VFIO_DEVICE_GET_INFO") || "\(error)".contains("REGION_INFO"))
        }
    }

    @Test func sparseAreasThatWrapOrExceedIntAreDropped() {
        var b = [UInt8](repeating: 0, count: 0x50)
        func put<T: FixedWidthInteger>(_ v: T, _ at: Int) {
            withUnsafeBytes(of: v.littleEndian) { for (i, x) in $0.enumerated() { b[at + i] = x } }
        }
        put(UInt16(VFIO_REGION_INFO_CAP_SPARSE_MMAP), 0); put(UInt16(1), 2)
        put(UInt32.max, 8)  // an area count far past the buffer: only the three present are read
        put(UInt64(0x1000), 0x10); put(UInt64(0x1000), 0x18)
        put(UInt64.max - 0xfff, 0x20); put(UInt64(0x2000), 0x28)  // wraps
        put(UInt64(1) << 63, 0x30); put(UInt64(0x1000), 0x38)  // beyond Int
        let cap = b.withUnsafeBytes { RegionCapability.decode(id: UInt16(VFIO_REGION_INFO_CAP_SPARSE_MMAP), version: 1, at: 0, in: $0) }
        #expect(cap == .sparseMmap([0x1000..<0x2000]))
    }
}
