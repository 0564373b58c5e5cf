import LibFuzzerDriver
import PCI

/// Config space with the capability walks and every decoder: the input is up to 4096 bytes of
/// config space; when it is shorter the rest is unavailable (as in a partial dump).
@_cdecl("FuzzConfigSpace_main")
public func fuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    vfiokit_fuzzer_main(argc, argv) { data, size in fuzz(UnsafeBufferPointer(start: data, count: size)) }
}

/// One input (never a null pointer: the driver passes an empty buffer instead).
func fuzz(_ input: UnsafeBufferPointer<UInt8>) -> CInt {
    let bytes = UnsafeBufferPointer(rebasing: input.prefix(4096))
    let partial = (0..<4096).map { $0 < bytes.count ? bytes[$0] : nil }
    guard let config = try? ConfigSpace(partialBytes: partial),
        let address = try? PCIAddress(domain: 0, bus: 0, device: 0, function: 0)
    else { return 0 }
    let report = ConfigSpaceReport(address: address, config: config)
    _ = report.text
    if let full = try? ConfigSpace(bytes: bytes) { _ = ConfigSpaceReport(address: address, config: full).text }
    return 0
}
