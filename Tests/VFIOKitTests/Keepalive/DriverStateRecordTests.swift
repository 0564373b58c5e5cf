import Testing
@testable import VFIOKit

/// The driver state record: what it writes, and every way bytes that are not one are refused.
@Suite struct DriverStateRecordTests {
    static let record = DriverStateRecord(driver: "edu", stateVersion: 3, payload: [1, 2, 3, 4, 5, 6, 7, 8, 9])

    @Test func crc32cIsCastagnolis() {
        #expect(CRC32C.checksum(Array("123456789".utf8)) == 0xe306_9283)
        #expect(CRC32C.checksum([]) == 0)
    }

    @Test func aRecordReadsBackAsWritten() throws {
        let bytes = Self.record.encoded()
        #expect(bytes.count == DriverStateRecord.overhead + 3 + 9)
        #expect(Array(bytes.prefix(4)) == Array("VFKR".utf8))
        #expect(try DriverStateRecord(decoding: bytes) == Self.record)
        let empty = DriverStateRecord(driver: "", stateVersion: 0, payload: [])
        #expect(try DriverStateRecord(decoding: empty.encoded()) == empty)
    }

    @Test func payloadFieldsRoundTrip() throws {
        var w = DriverStateRecord.Writer()
        w.append(UInt8(0xab))
        w.append(UInt32(0xdead_beef))
        w.append(UInt64(0x0123_4567_89ab_cdef))
        w.append(Int16(-2))
        #expect(w.bytes.prefix(5) == [0xab, 0xef, 0xbe, 0xad, 0xde])
        var r = DriverStateRecord.Reader(w.bytes)
        #expect(try r.read(UInt8.self) == 0xab)
        #expect(try r.read(UInt32.self) == 0xdead_beef)
        #expect(try r.read(UInt64.self) == 0x0123_4567_89ab_cdef)
        #expect(try r.read(Int16.self) == -2)
        #expect(throws: DriverRecordError.truncated(needed: 4, remaining: 0)) { try r.read(UInt32.self) }
    }

    @Test func everyCutIsTruncation() {
        let bytes = Self.record.encoded()
        for n in 0..<bytes.count {
            #expect(throws: DriverRecordError.self, "cut at \(n)") { try DriverStateRecord(decoding: Array(bytes.prefix(n))) }
            do { _ = try DriverStateRecord(decoding: Array(bytes.prefix(n))) } catch {
                guard case .truncated = error else {
                    Issue.record("cut at \(n): \(error)")
                    continue
                }
            }
        }
    }

    @Test func everyFlippedBitIsRefused() {
        let bytes = Self.record.encoded()
        for i in bytes.indices {
            for bit in 0..<8 {
                var damaged = bytes
                damaged[i] ^= 1 << bit
                #expect(throws: DriverRecordError.self, "byte \(i) bit \(bit)") { try DriverStateRecord(decoding: damaged) }
            }
        }
    }

    @Test func eachDefectIsNamed() {
        let bytes = Self.record.encoded()
        var magic = bytes
        magic[0] = UInt8(ascii: "X")
        #expect(throws: DriverRecordError.badMagic(found: Array("XFKR".utf8))) { try DriverStateRecord(decoding: magic) }
        var future = bytes
        future[4] = 2
        #expect(throws: DriverRecordError.formatFromTheFuture(found: 2, newest: 1)) { try DriverStateRecord(decoding: future) }
        var zero = bytes
        zero[4] = 0
        #expect(throws: DriverRecordError.unknownFormat(0)) { try DriverStateRecord(decoding: zero) }
        var payload = bytes
        payload[bytes.count - 6] ^= 0xff
        let stored = bytes.suffix(4).reversed().reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
        #expect(throws: DriverRecordError.checksumMismatch(stored: stored, computed: CRC32C.checksum(payload.dropLast(4)))) {
            try DriverStateRecord(decoding: payload)
        }
        #expect(throws: DriverRecordError.trailingBytes(1)) { try DriverStateRecord(decoding: bytes + [0]) }
        var badName = DriverStateRecord(driver: "ab", stateVersion: 1, payload: []).encoded()
        badName[8] = 0xff
        let crc = CRC32C.checksum(badName.dropLast(4))
        badName.replaceSubrange(badName.count - 4..<badName.count, with: withUnsafeBytes(of: crc.littleEndian, Array.init))
        #expect(throws: DriverRecordError.nameNotUTF8) { try DriverStateRecord(decoding: badName) }
    }

    @Test func aDriverTakesOnlyItsOwnRecordInAVersionItReads() throws {
        try Self.record.check(driver: "edu", stateVersion: 3)
        try Self.record.check(driver: "edu", stateVersion: 4, oldest: 2)
        #expect(throws: DriverRecordError.otherDriver(found: "edu", expected: "ims-queue")) {
            try Self.record.check(driver: "ims-queue", stateVersion: 3)
        }
        #expect(throws: DriverRecordError.stateFromTheFuture(driver: "edu", found: 3, newest: 2)) {
            try Self.record.check(driver: "edu", stateVersion: 2)
        }
        #expect(throws: DriverRecordError.stateTooOld(driver: "edu", found: 3, oldest: 4)) {
            try Self.record.check(driver: "edu", stateVersion: 4)
        }
    }

    @Test func messagesSayWhatIsWrong() {
        let cases: [(DriverRecordError, String)] = [
            (.missing, "no driver state record was handed over"),
            (.badMagic(found: [0x58, 0x46]), "does not start with VFKR (it starts with 58 46)"),
            (.truncated(needed: 4, remaining: 1), "cut short: a field needs 4 bytes and 1 are left"),
            (.formatFromTheFuture(found: 9, newest: 1), "format version 9 is from the future"),
            (.checksumMismatch(stored: 0xab, computed: 0xcd), "CRC-32C is 0xab but its bytes sum to 0xcd: it was damaged"),
            (.otherDriver(found: "nvme", expected: "edu"), "the nvme driver's, not the edu driver's"),
            (.stateFromTheFuture(driver: "edu", found: 5, newest: 1), "edu state version 5 is from the future"),
            (.stale(driver: "edu", reason: "no MSI vector is enabled"), "does not match the device: no MSI vector is enabled"),
        ]
        for (error, phrase) in cases { #expect(error.description.contains(phrase), "\(error)") }
    }
}
