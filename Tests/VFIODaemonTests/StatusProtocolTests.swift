import FoundationEssentials
import Testing
@testable import VFIODaemon

/// The status socket's protocol without a socket: the request line the server takes from what a
/// client sent, and the answers a client decodes.
@Suite struct StatusProtocolTests {
    @Test(arguments: [
        ("status\n", "status"),
        ("text\r\n", "text"),
        ("metrics", "metrics"),
        ("status\nmore after the line\n", "status"),
        ("GET /metrics HTTP/1.1\r\nHost: 127.0.0.1:9464\r\n\r\n", "GET /metrics HTTP/1.1"),
        ("\n", ""),
        ("", ""),
    ])
    func theRequestIsTheFirstLineWithoutItsEnd(_ sent: String, _ request: String) {
        #expect(StatusServer.requestLine(Array(sent.utf8)) == request)
    }

    @Test func bytesThatAreNotUTF8AreReplaced() {
        #expect(StatusServer.requestLine([0x73, 0xff, 0x0d, 0x0a]) == "s\u{FFFD}")
    }

    @Test func theAnswersAreWhatAClientDecodes() throws {
        let machine = try DaemonMachine(edu: [])
        defer { machine.removeStateDirectory() }
        let host = try machine.host([])
        let metrics = DaemonMetrics()
        let json = DaemonService.answer(StatusServer.requestLine(Array("status\n".utf8)), host: host, metrics: metrics)
        let report = try JSONDecoder().decode(StatusReport.self, from: Data(json))
        #expect(report.simulated && report.devices.isEmpty)
        #expect(String(decoding: DaemonService.answer("text", host: host, metrics: metrics), as: UTF8.self).contains("  no devices"))
        #expect(
            String(decoding: DaemonService.answer("metrics", host: host, metrics: metrics), as: UTF8.self).contains(
                #"vfiokit_devices{state="running"} 0"#))
        let refused = String(
            decoding: DaemonService.answer(String(repeating: "x", count: 100), host: host, metrics: metrics), as: UTF8.self)
        #expect(refused == "error: unknown request \"\(String(repeating: "x", count: 64))\"; ask for status, text or metrics\n")
        let http = String(decoding: DaemonService.answerHTTP("GET /metrics HTTP/1.1", host: host, metrics: metrics), as: UTF8.self)
        #expect(http.hasPrefix("HTTP/1.0 200 OK\r\n"))
        #expect(
            String(decoding: DaemonService.answerHTTP("GET / HTTP/1.1", host: host, metrics: metrics), as: UTF8.self).hasPrefix(
                "HTTP/1.0 404"))
    }

    static let regressions = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fuzz/regressions/status-protocol")

    /// Replies that trapped `text` (Tests/Fuzz/regressions/status-protocol): an uptime beyond
    /// `Int`, interrupt counts whose total passes `UInt64.max`.
    @Test func anyReplyThatDecodesShowsAsText() throws {
        let uptime = try JSONDecoder().decode(
            StatusReport.self, from: Data(contentsOf: Self.regressions.appendingPathComponent("uptime-beyond-int")))
        #expect(uptime.text.hasPrefix("vfiokit daemon pid 1, up 1e+300 s"))
        let counts = try JSONDecoder().decode(
            StatusReport.self, from: Data(contentsOf: Self.regressions.appendingPathComponent("interrupts-beyond-uint64")))
        #expect(counts.text.contains("    interrupts 18446744073709551615\n"))
        #expect(counts.text.contains("    group g: 18446744073709551615 interrupts (IMS 0=18446744073709551615, IMS 1=1)"))
        for file in try FileManager.default.contentsOfDirectory(atPath: Self.regressions.path) {
            let bytes = try Data(contentsOf: Self.regressions.appendingPathComponent(file))
            #expect(try JSONDecoder().decode(StatusReport.self, from: bytes).text.hasPrefix("vfiokit daemon pid"), "\(file)")
        }
    }
}
