import FoundationEssentials
import LibFuzzerDriver
@testable import VFIODaemon
import VFIOKit
import VFIOMock

/// The status socket both ways. As what a client sends: the request line the server takes from
/// the bytes, answered as the Unix socket and the metrics address answer it. As what a daemon
/// answers `vfiokit status --json`: the bytes decoded as a ``StatusReport`` and shown as text.
/// The daemon answering is a ``DriverHost`` on the mock kernel with no devices, never started.
let host = try! DriverHost(
    configuration: DaemonConfiguration(devices: [], stateDirectory: "/nonexistent/vfiokit-fuzz"), system: MockKernel(),
    simulated: true, logger: .vfiokitSilent)
let metrics = DaemonMetrics()

@_cdecl("FuzzStatusProtocol_main")
public func fuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    vfiokit_fuzzer_main(argc, argv) { data, size in fuzz(UnsafeBufferPointer(start: data, count: size)) }
}

/// One input (never a null pointer: the driver passes an empty buffer instead).
func fuzz(_ input: UnsafeBufferPointer<UInt8>) -> CInt {
    let bytes = Array(input)
    let request = StatusServer.requestLine(bytes)
    _ = DaemonService.answer(request, host: host, metrics: metrics)
    _ = DaemonService.answerHTTP(request, host: host, metrics: metrics)
    if let report = try? JSONDecoder().decode(StatusReport.self, from: Data(bytes)) { _ = report.text }
    return 0
}
