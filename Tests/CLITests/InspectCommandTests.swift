import Foundation
import Testing

/// Runs the built `vfiokit` binary's `inspect` subcommand end to end.
@Suite struct InspectCommandTests {
    static func temporaryFile(_ text: String) throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("vfiokit-inspect-\(UUID())")
        try text.write(to: url, atomically: true, encoding: .utf8)
        return url
    }

    static let dump = """
        00:03.0 Ethernet controller: Red Hat, Inc. Virtio network device
        00: f4 1a 00 10 07 05 10 00 00 00 00 02 00 00 00 00
        10: 01 c0 00 00 00 10 00 fe 00 00 00 00 0c 40 00 fe
        20: 00 00 00 00 00 00 00 00 00 00 00 00 f4 1a 01 00
        30: 00 00 00 00 98 00 00 00 00 00 00 00 0b 01 00 00

        """

    @Test func printsEachDeviceAsText() throws {
        let file = try Self.temporaryFile(Self.dump)
        defer { try? FileManager.default.removeItem(at: file) }
        let result = try runVFIOKit(["inspect", "--dump", file.path])
        #expect(result.status == 0, "stderr: \(result.error)")
        #expect(result.output.hasPrefix("\(file.path): 1 device\n"))
        #expect(
            result.output.contains(
                "0000:00:03.0 1af4:1000 rev 00, class 0200.00 (Network controller), header 00 (endpoint), 64 config bytes"))
        #expect(result.output.contains("BAR3: memory64 prefetchable at 0xfe004000"))
    }

    @Test func printsJSON() throws {
        let file = try Self.temporaryFile(Self.dump)
        defer { try? FileManager.default.removeItem(at: file) }
        let result = try runVFIOKit(["inspect", "--dump", file.path, "--json"])
        #expect(result.status == 0, "stderr: \(result.error)")
        let object = try #require(try JSONSerialization.jsonObject(with: Data(result.output.utf8)) as? [String: Any])
        let devices = try #require(object["devices"] as? [[String: Any]])
        #expect(devices.first?["deviceID"] as? Int == 0x1000)
        #expect(devices.first?["configSize"] as? Int == 64)
    }

    @Test func rejectsAFileThatIsNotADump() throws {
        let file = try Self.temporaryFile("00:03.0 Ethernet controller: Red Hat\n\tSubsystem: 1af4:0001\n")
        defer { try? FileManager.default.removeItem(at: file) }
        let result = try runVFIOKit(["inspect", "--dump", file.path])
        #expect(result.status != 0)
        #expect(result.output.isEmpty)
        #expect(result.error.contains("\(file.path): is not an lspci config-space dump"))
    }

    @Test func namesTheLineOfATruncatedDump() throws {
        let file = try Self.temporaryFile(String(Self.dump.prefix(100)))
        defer { try? FileManager.default.removeItem(at: file) }
        let result = try runVFIOKit(["inspect", "--dump", file.path])
        #expect(result.status != 0)
        #expect(result.error.contains("\(file.path):2: malformed data line: it ends in half a byte"))
    }

    @Test func requiresTheDumpOption() throws {
        let result = try runVFIOKit(["inspect"])
        #expect(result.status != 0)
        #expect(result.error.contains("--dump"))
    }
}
