import LibFuzzerDriver
import CVFIO
import PCI
import SystemPackage
@testable import VFIOKit
import VFIOMock

/// VFIO info capability chains as a buggy kernel might return them: every ioctl reply is the
/// next bytes of the input, written over the caller's buffer (argsz, flags, cap_offset and the
/// chain included). Drives the device-info + region-info path (VFIODeviceFile) and the type1
/// IOMMU-info path (Type1Container), argsz growth included.
/// The address the replayed device is opened as.
let replayAddress = try! PCIAddress(parsing: "0000:00:03.0")

@_cdecl("FuzzVFIOInfo_main")
public func fuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    vfiokit_fuzzer_main(argc, argv) { data, size in fuzz(UnsafeBufferPointer(start: data, count: size)) }
}

/// One input (never a null pointer: the driver passes an empty buffer instead).
func fuzz(_ input: UnsafeBufferPointer<UInt8>) -> CInt {
    let kernel = ReplayKernel(Array(input))
    if let device = try? VFIODeviceFile(fd: FileDescriptor(rawValue: 1000), address: replayAddress, system: kernel, logger: .vfiokitSilent)
    {
        for index in 0..<min(device.regionCount, 16) {
            if let region = try? device.region(index) { _ = (region.mappableAreas, region.isFullyMappable, "\(region.capabilities)") }
        }
        device.close()
    }
    if let container = try? Type1Container(fd: FileDescriptor(rawValue: 1001), system: kernel) {
        _ = (container.iovaRanges, container.iovaAlignment, container.mappingLimit)
        container.close()
    }
    return 0
}
