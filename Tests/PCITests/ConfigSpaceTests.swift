import Testing
@testable import PCI

@Suite struct ConfigSpaceTests {
    @Test func readsLittleEndianAtAnyOffset() throws {
        let config = try ConfigSpace(bytes: [0x86, 0x80, 0x25, 0x0b, 0x01, 0x02, 0x03, 0x04, 0xaa])
        #expect(try config.uint8(at: 0) == 0x86)
        #expect(try config.uint16(at: 0) == 0x8086)
        #expect(try config.uint16(at: 1) == 0x2580)
        #expect(try config.uint32(at: 0) == 0x0b25_8086)
        #expect(try config.read(UInt64.self, at: 1) == 0xaa04_0302_010b_2580)
        #expect(config.size == 9)
    }

    @Test func bytesNotHeldAreUnavailableNotZero() throws {
        var partial = [UInt8?](repeating: 0, count: 16)
        partial[6] = nil
        let config = try ConfigSpace(partialBytes: partial)
        #expect(try config.uint16(at: 4) == 0)
        #expect(throws: ConfigSpaceError.unavailable(offset: 6, width: 4)) { try config.uint32(at: 4) }
        #expect(throws: ConfigSpaceError.unavailable(offset: 6, width: 1)) { try config.uint8(at: 6) }
        // Past the last byte held.
        #expect(throws: ConfigSpaceError.unavailable(offset: 16, width: 2)) { try config.uint16(at: 15) }
        #expect(throws: ConfigSpaceError.unavailable(offset: 0x40, width: 4)) { try config.uint32(at: 0x40) }
        #expect(config.isAvailable(0..<6))
        #expect(!config.isAvailable(4..<8))
        #expect(!config.isAvailable(15..<17))
    }

    @Test func unavailableErrorNamesTheOffset() throws {
        let config = try ConfigSpace(bytes: [UInt8](repeating: 0, count: 64))
        do {
            _ = try config.uint32(at: 0x100)
            Issue.record("read past a 64-byte dump succeeded")
        } catch {
            #expect(error.offset == 0x100)
            #expect(error.description.contains("0x100"))
            #expect(error.description.contains("unavailable"))
        }
    }

    @Test func accessesOutsideConfigSpaceAreRejected() throws {
        let config = try ConfigSpace(bytes: [UInt8](repeating: 0xff, count: 4096))
        #expect(try config.uint32(at: 4092) == 0xffff_ffff)
        #expect(throws: ConfigSpaceError.outOfBounds(offset: 4093, width: 4)) { try config.uint32(at: 4093) }
        #expect(throws: ConfigSpaceError.outOfBounds(offset: -1, width: 1)) { try config.uint8(at: -1) }
        #expect(throws: ConfigSpaceError.outOfBounds(offset: Int.max, width: 2)) { try config.uint16(at: Int.max) }
        #expect(!config.isAvailable(-1..<2))
        #expect(!config.isAvailable(4095..<4097))
    }

    @Test func moreThan4096BytesIsAnError() {
        #expect(throws: ConfigSpaceError.tooLarge(byteCount: 4097)) {
            try ConfigSpace(bytes: [UInt8](repeating: 0, count: 4097))
        }
        var partial = [UInt8?](repeating: nil, count: 5000)
        partial[4096] = 1
        #expect(throws: ConfigSpaceError.tooLarge(byteCount: 4097)) { try ConfigSpace(partialBytes: partial) }
    }

    @Test func trailingUnavailableBytesDoNotCountTowardsSize() throws {
        let config = try ConfigSpace(partialBytes: [1, 2, nil, 4] + [UInt8?](repeating: nil, count: 5000))
        #expect(config.size == 4)
        #expect(try ConfigSpace(partialBytes: []).size == 0)
    }

    @Test func writesGrowTheSpaceAndLeaveSkippedBytesUnavailable() throws {
        var config = try ConfigSpace(bytes: [0, 0])
        try config.write(UInt16(0xbeef), at: 6)
        #expect(config.size == 8)
        #expect(try config.uint16(at: 6) == 0xbeef)
        #expect(throws: ConfigSpaceError.unavailable(offset: 2, width: 1)) { try config.uint8(at: 2) }
        try config.write(UInt8(7), at: 2)
        #expect(try config.uint8(at: 2) == 7)
        #expect(throws: ConfigSpaceError.outOfBounds(offset: 4094, width: 4)) { try config.write(UInt32(1), at: 4094) }
        #expect(config.size == 8)
    }

    @Test func decodesHeaderFields() throws {
        var builder = ConfigBuilder(vendorID: 0x8086, deviceID: 0x0b25, headerType: 0x80, classCode: 0x01_06_01, revision: 0x21)
        builder.set16(0x04, 0x0406)
        builder.set16(0x2c, 0x1028)
        builder.set16(0x2e, 0x0abc)
        let config = try builder.config
        #expect(try config.vendorID == 0x8086)
        #expect(try config.deviceID == 0x0b25)
        #expect(try config.command == 0x0406)
        #expect(try config.revisionID == 0x21)
        #expect(try config.classCode == ClassCode(baseClass: 1, subclass: 6, programmingInterface: 1))
        #expect(try config.classCode.classID == 0x0106)
        #expect(try config.classCode.description == "0106.01")
        #expect(try config.classCode.baseClassName == "Mass storage controller")
        #expect(try config.headerType.layout == .endpoint)
        #expect(try config.headerType.isMultiFunction)
        #expect(try config.headerType.description == "00 (endpoint, multi-function)")
        #expect(try config.subsystem == SubsystemIDs(vendorID: 0x1028, deviceID: 0x0abc))
    }

    @Test func headerTypesDefineTheCapabilityPointerAndBARCount() {
        let cases: [(UInt8, HeaderType.Layout, Int?, Int)] = [
            (0x00, .endpoint, 0x34, 6), (0x81, .pciBridge, 0x34, 2), (0x02, .cardBusBridge, 0x14, 1),
            (0x7f, .unknown(0x7f), nil, 0),
        ]
        for (raw, layout, pointer, bars) in cases {
            let header = HeaderType(rawValue: raw)
            #expect(header.layout == layout)
            #expect(header.capabilityPointerOffset == pointer)
            #expect(header.barCount == bars)
        }
    }

    @Test func subsystemComesFromWhereEachLayoutKeepsIt() throws {
        var cardBus = ConfigBuilder(headerType: 2)
        cardBus.set32(0x40, 0x143d_10cf)
        #expect(try cardBus.config.subsystem == SubsystemIDs(vendorID: 0x10cf, deviceID: 0x143d))

        var bridge = ConfigBuilder(headerType: 1)
        #expect(try bridge.config.subsystem == nil)
        bridge.addCapability(0x0d, at: 0x88, body: [0, 0] + le16(0x17aa) + le16(0x2238))
        #expect(try bridge.config.subsystem == SubsystemIDs(vendorID: 0x17aa, deviceID: 0x2238))

        #expect(try ConfigBuilder(headerType: 0x05).config.subsystem == nil)
    }
}
