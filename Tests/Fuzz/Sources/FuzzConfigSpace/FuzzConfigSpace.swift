import LibFuzzerDriver
import PCI

/// Config space with the capability walks and every decoder: the input is up to 4096 bytes of
/// config space; when it is shorter the rest is unavailable (as in a partial dump).
@_cdecl("FuzzConfigSpace_main")
public func fuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    vfiokit_fuzzer_main(argc, argv, fuzz)
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    guard let data else { return 0 }
    let bytes = UnsafeBufferPointer(start: data, count: min(size, 4096))
    let partial = (0..<4096).map { $0 < bytes.count ? bytes[$0] : nil }
    guard let config = try? ConfigSpace(partialBytes: partial),
          let address = try? PCIAddress(domain: 0, bus: 0, device: 0, function: 0)
    else { return 0 }
    let report = ConfigSpaceReport(address: address, config: config)
    _ = report.text
    if let full = try? ConfigSpace(bytes: bytes) { _ = ConfigSpaceReport(address: address, config: full).text }
    return 0
}
