import LibFuzzerDriver
import PCI

/// The dump-file reader: any text, parsed, and every device it yields reported as
/// `vfiokit inspect` would (walks, decoders, text).
@_cdecl("FuzzDump_main")
public func fuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    vfiokit_fuzzer_main(argc, argv) { data, size in fuzz(UnsafeBufferPointer(start: data, count: size)) }
}

/// One input (never a null pointer: the driver passes an empty buffer instead).
func fuzz(_ input: UnsafeBufferPointer<UInt8>) -> CInt {
    let text = String(decoding: input, as: UTF8.self)
    if let dump = try? PCIDump(parsing: text, name: "fuzz") {
        _ = InspectReport(dump: dump).text()
    }
    return 0
}
