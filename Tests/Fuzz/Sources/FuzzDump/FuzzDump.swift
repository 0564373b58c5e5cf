import LibFuzzerDriver
import PCI

/// The dump-file reader: any text, parsed, and every device it yields reported as
/// `vfiokit inspect` would (walks, decoders, text).
@_cdecl("FuzzDump_main")
public func fuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    vfiokit_fuzzer_main(argc, argv, fuzz)
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    guard let data else { return 0 }
    let text = String(decoding: UnsafeBufferPointer(start: data, count: size), as: UTF8.self)
    if let dump = try? PCIDump(parsing: text, name: "fuzz") {
        _ = InspectReport(dump: dump).text()
    }
    return 0
}
