import FoundationEssentials
import LibFuzzerDriver
import VFIODaemon

/// The daemon's `--config` file: any bytes, decoded and checked as `vfiokit run --config FILE`
/// reads them (``ConfigurationFile/parse(_:path:)``, then the devices with parsed addresses).
/// A thrown ``DaemonError`` is the right answer to a bad file; its message is made too.
@_cdecl("FuzzDaemonConfig_main")
public func fuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    vfiokit_fuzzer_main(argc, argv) { data, size in fuzz(UnsafeBufferPointer(start: data, count: size)) }
}

/// One input (never a null pointer: the driver passes an empty buffer instead).
func fuzz(_ input: UnsafeBufferPointer<UInt8>) -> CInt {
    do {
        let file = try ConfigurationFile.parse(Data(input), path: "fuzz.json")
        _ = try file.parsedDevices(path: "fuzz.json").map { "\($0.address) \($0.driver ?? "") \($0.context ?? "")" }
    } catch {
        _ = error.description
    }
    return 0
}
