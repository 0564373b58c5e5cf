import Foundation
import Testing
@testable import PCI

@Suite struct DumpParserTests {
    /// The first 64 bytes of a virtio-net device, as `lspci -x` prints them.
    static let virtioNet = """
        00:03.0 Ethernet controller: Red Hat, Inc. Virtio network device
        00: f4 1a 00 10 07 05 10 00 00 00 00 02 00 00 00 00
        10: 01 c0 00 00 00 10 00 fe 00 00 00 00 0c 40 00 fe
        20: 00 00 00 00 00 00 00 00 00 00 00 00 f4 1a 01 00
        30: 00 00 00 00 98 00 00 00 00 00 00 00 0b 01 00 00

        """

    @Test func parsesDevicesInFileOrder() throws {
        let text =
            Self.virtioNet + """
                0001:02:1f.7 Host bridge
                	Subsystem: 1458:5000
                	Control: I/O- Mem+
                00: 86 80 25 0b 06 04 10 00
                08: 02 00 80 08
                """
        let dump = try PCIDump(parsing: text, name: "two")
        #expect(dump.name == "two")
        #expect(dump.devices.map(\.address.description) == ["0000:00:03.0", "0001:02:1f.7"])
        #expect(dump.devices.map(\.line) == [1, 6])
        #expect(dump.devices[0].title == "Ethernet controller: Red Hat, Inc. Virtio network device")
        #expect(dump.devices[0].config.size == 64)
        #expect(try dump.devices[0].config.deviceID == 0x1000)
        #expect(try dump.devices[0].config.uint8(at: 0x3c) == 0x0b)
        let second = dump.devices[1].config
        #expect(second.size == 12)
        #expect(try second.classCode == ClassCode(baseClass: 0x08, subclass: 0x80, programmingInterface: 0))
        #expect(throws: ConfigSpaceError.unavailable(offset: 0x0c, width: 1)) { try second.uint8(at: 0x0c) }
    }

    @Test func bytesTheDumpDoesNotHoldAreUnavailable() throws {
        let dump = try PCIDump(parsing: "00:00.0 x\n00: 01 02\n10: 03\n", name: "gaps")
        let config = dump.devices[0].config
        #expect(config.size == 0x11)
        #expect(try config.uint16(at: 0) == 0x0201)
        #expect(try config.uint8(at: 0x10) == 3)
        #expect(throws: ConfigSpaceError.unavailable(offset: 2, width: 1)) { try config.uint8(at: 2) }
        #expect(throws: ConfigSpaceError.unavailable(offset: 0x11, width: 4)) { try config.uint32(at: 0x11) }
    }

    @Test func acceptsCRLFAndAMissingFinalNewline() throws {
        let dump = try PCIDump(parsing: "00:00.0 x\r\n00: 86 80\r\n\r\n01:00.0 y\r\n00: 02 10", name: "crlf")
        #expect(dump.devices.count == 2)
        #expect(try dump.devices[0].config.vendorID == 0x8086)
        #expect(try dump.devices[1].config.vendorID == 0x1002)
    }

    @Test func acceptsLongOffsetsAndSixDigitDomains() throws {
        let dump = try PCIDump(parsing: "10000:00:00.0 x\n00: 00\n0ff0: aa bb cc dd\n", name: "long")
        #expect(dump.devices[0].address.domain == 0x10000)
        #expect(dump.devices[0].config.size == 0xff4)
        #expect(try dump.devices[0].config.uint32(at: 0xff0) == 0xddcc_bbaa)
    }

    // MARK: errors

    func expectError(_ text: String, line: Int?, _ reason: DumpParseError.Reason) {
        #expect(throws: DumpParseError(file: "f", line: line, reason: reason)) { try PCIDump(parsing: text, name: "f") }
    }

    @Test func filesThatAreNotDumps() {
        expectError("", line: nil, .notADump)
        expectError("hello\nworld\n", line: nil, .notADump)
        // lspci -v output: headers, but no data lines.
        expectError("00:00.0 Host bridge: Intel\n\tSubsystem: 8086:0000\n\n00:02.0 VGA\n", line: nil, .notADump)
        expectError("12: 34 56\n", line: 1, .dataOutsideDevice)
    }

    @Test func truncatedDumps() throws {
        // Cut in the middle of a byte.
        expectError("00:03.0 x\n00: f4 1a 0", line: 2, .malformedDataLine("it ends in half a byte, \"0\": the dump is cut short"))
        // Cut right after a device's header.
        expectError(
            Self.virtioNet + "00:04.0 SCSI storage controller\n", line: 6,
            .deviceWithoutData(try PCIAddress(parsing: "00:04.0")))
        // Cut after the offset.
        expectError("00:00.0 x\n00:", line: 2, .malformedDataLine("expected a space after the offset"))
        expectError("00:00.0 x\n00: ", line: 2, .malformedDataLine("no bytes after the offset"))
    }

    @Test func malformedLines() throws {
        expectError("00:00.0 x\n00: 86 80 zz 01\n", line: 2, .malformedDataLine("item 3, \"zz\", is not a byte as two hex digits"))
        expectError("00:00.0 x\n00: 868 0\n", line: 2, .malformedDataLine("item 1, \"868\", is not a byte as two hex digits"))
        expectError("00:00.0 x\n00: 86\n\n10: 00\n", line: 4, .dataOutsideDevice)
        expectError("00:00.0 x\nffe: 01 02 03\n", line: 2, .beyondConfigSpace(offset: 4096))
        expectError("00:00.0 x\n00: 01 02 03\n02: 04\n", line: 3, .repeatedOffset(offset: 2, firstLine: 2))
        expectError(
            "00:00.0 x\n00: 01\n\n0000:00:00.0 y\n00: 01\n", line: 4,
            .repeatedDevice(try PCIAddress(parsing: "00:00.0"), firstLine: 1))
        let badAddress = try #require(throws: PCIAddressError.self) { try PCIAddress(parsing: "00:20.0") }
        expectError("00:20.0 x\n00: 01\n", line: 1, .malformedAddress(badAddress))
    }

    @Test func errorsNameTheFileAndLine() {
        do {
            _ = try PCIDump(parsing: "00:00.0 x\n00: 86 80 zz\n", name: "dumps/broken.txt")
            Issue.record("a malformed dump parsed")
        } catch {
            #expect(error.description.hasPrefix("dumps/broken.txt:2: malformed data line"))
        }
    }

    @Test func unreadableFilesAreNamed() {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("no-such-dump-\(UUID())").path
        do {
            _ = try PCIDump(contentsOfFile: path)
            Issue.record("a missing file was read")
        } catch {
            #expect(error.file == path && error.line == nil)
            guard case .unreadable(let why) = error.reason else {
                Issue.record("expected .unreadable, got \(error.reason)")
                return
            }
            #expect(why.contains("No such file"))
        }
    }

    @Test func readsFiles() throws {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("dump-\(UUID())")
        try Self.virtioNet.write(to: url, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: url) }
        let dump = try PCIDump(contentsOfFile: url.path)
        #expect(dump.name == url.path && dump.devices.count == 1)
    }
}
