/// What a driver writes when it hands its device over, and reads back to adopt it: a small
/// versioned binary record, checked whole before anything in it is believed.
///
/// Layout, little-endian:
///
/// | bytes | field |
/// | --- | --- |
/// | 4 | magic `VFKR` |
/// | 2 | format version (``formatVersion``) |
/// | 2 | driver name length *n* |
/// | *n* | driver name, UTF-8 (``PCIDriver/name``) |
/// | 4 | state version (the driver's ``PCIDriver/stateVersion``) |
/// | 4 | payload length *p* |
/// | *p* | payload: the driver's own fields (``Writer``, ``Reader``) |
/// | 4 | CRC-32C of every byte before it |
///
/// ``init(decoding:)`` throws a ``DriverRecordError`` naming exactly what is wrong; it never
/// traps, whatever the bytes.
public struct DriverStateRecord: Sendable, Equatable {
    /// The first four bytes of every record.
    public static let magic: [UInt8] = Array("VFKR".utf8)
    /// The layout version this code writes and the newest it reads.
    public static let formatVersion: UInt16 = 1
    /// The fixed part: magic, format version, name length, state version, payload length, CRC.
    static let overhead = 4 + 2 + 2 + 4 + 4 + 4

    /// The driver that wrote the record (``PCIDriver/name``).
    public var driver: String
    /// The version of the driver's payload layout.
    public var stateVersion: UInt32
    /// The driver's own fields.
    public var payload: [UInt8]

    /// A record of `driver`'s state in payload layout `stateVersion`.
    public init(driver: String, stateVersion: UInt32, payload: [UInt8]) {
        self.driver = driver
        self.stateVersion = stateVersion
        self.payload = payload
    }

    /// The record's bytes, checksum last.
    public func encoded() -> [UInt8] {
        var w = Writer()
        w.append(bytes: Self.magic)
        w.append(Self.formatVersion)
        let name = Array(driver.utf8)
        w.append(UInt16(truncatingIfNeeded: name.count))
        w.append(bytes: name.prefix(Int(UInt16.max)))
        w.append(stateVersion)
        w.append(UInt32(truncatingIfNeeded: payload.count))
        w.append(bytes: payload)
        w.append(CRC32C.checksum(w.bytes))
        return w.bytes
    }

    /// Parses and checks a record: magic, format version, lengths, checksum, then the name.
    public init(decoding bytes: [UInt8]) throws(DriverRecordError) {
        var r = Reader(bytes)
        let magic = try r.bytes(4)
        guard magic == Self.magic else { throw .badMagic(found: magic) }
        let format = try r.read(UInt16.self)
        guard format <= Self.formatVersion else { throw .formatFromTheFuture(found: format, newest: Self.formatVersion) }
        guard format >= 1 else { throw .unknownFormat(format) }
        let name = try r.bytes(Int(try r.read(UInt16.self)))
        let stateVersion = try r.read(UInt32.self)
        let payload = try r.bytes(Int(try r.read(UInt32.self)))
        let stored = try r.read(UInt32.self)
        guard r.remaining == 0 else { throw .trailingBytes(r.remaining) }
        let computed = CRC32C.checksum(bytes.dropLast(4))
        guard stored == computed else { throw .checksumMismatch(stored: stored, computed: computed) }
        guard let driver = String(validating: name, as: UTF8.self) else { throw .nameNotUTF8 }
        self.init(driver: driver, stateVersion: stateVersion, payload: payload)
    }

    /// Checks that the record is `driver`'s, in a payload layout it reads (`stateVersion` or
    /// older, but not older than `oldest`).
    public func check(driver expected: String, stateVersion newest: UInt32, oldest: UInt32? = nil) throws(DriverRecordError) {
        guard driver == expected else { throw .otherDriver(found: driver, expected: expected) }
        guard stateVersion <= newest else { throw .stateFromTheFuture(driver: driver, found: stateVersion, newest: newest) }
        let oldest = oldest ?? newest
        guard stateVersion >= oldest else { throw .stateTooOld(driver: driver, found: stateVersion, oldest: oldest) }
    }

    /// Appends little-endian fields to a payload (or a record).
    public struct Writer: Sendable {
        /// What was appended so far.
        public private(set) var bytes: [UInt8] = []

        /// An empty payload.
        public init() {}

        /// Appends `value`, little-endian.
        public mutating func append<T: FixedWidthInteger>(_ value: T) {
            withUnsafeBytes(of: value.littleEndian) { bytes.append(contentsOf: $0) }
        }

        /// Appends raw bytes.
        public mutating func append(bytes more: some Sequence<UInt8>) { bytes.append(contentsOf: more) }
    }

    /// Reads little-endian fields in order; running out is ``DriverRecordError/truncated(needed:remaining:)``.
    public struct Reader: Sendable {
        private let bytes: [UInt8]
        private var at = 0

        /// A reader at the first of `bytes`.
        public init(_ bytes: [UInt8]) { self.bytes = bytes }

        /// Bytes not read yet.
        public var remaining: Int { bytes.count - at }

        /// The next field of type `T`.
        public mutating func read<T: FixedWidthInteger>(_ type: T.Type = T.self) throws(DriverRecordError) -> T {
            let raw = try self.bytes(MemoryLayout<T>.size)
            var value = T.zero
            for (i, b) in raw.enumerated() { value |= T(truncatingIfNeeded: b) << (8 * i) }
            return value
        }

        /// The next `count` raw bytes.
        public mutating func bytes(_ count: Int) throws(DriverRecordError) -> [UInt8] {
            guard count <= remaining else { throw .truncated(needed: count, remaining: remaining) }
            defer { at += count }
            return Array(bytes[at..<at + count])
        }
    }
}

/// Why a ``DriverStateRecord`` was not believed. A driver that gets one starts afresh, with a
/// reset, and says which of these it was.
public enum DriverRecordError: Error, Equatable, CustomStringConvertible {
    /// There is no record at all (none was handed over).
    case missing
    /// The driver does not implement adoption, so no record of it is believed.
    case notAdoptable(driver: String)
    /// The bytes do not start with `VFKR`.
    case badMagic(found: [UInt8])
    /// The record ends early: a field needs `needed` bytes and `remaining` are left.
    case truncated(needed: Int, remaining: Int)
    /// Bytes follow the checksum.
    case trailingBytes(Int)
    /// The record's layout is newer than this code reads.
    case formatFromTheFuture(found: UInt16, newest: UInt16)
    /// The record's layout version is one no release wrote (0).
    case unknownFormat(UInt16)
    /// The CRC-32C stored does not match the bytes: they were damaged.
    case checksumMismatch(stored: UInt32, computed: UInt32)
    /// The driver name is not UTF-8.
    case nameNotUTF8
    /// The record is another driver's.
    case otherDriver(found: String, expected: String)
    /// The driver's payload layout is newer than this driver reads (a downgrade).
    case stateFromTheFuture(driver: String, found: UInt32, newest: UInt32)
    /// The driver's payload layout is older than this driver still reads.
    case stateTooOld(driver: String, found: UInt32, oldest: UInt32)
    /// The payload parsed but does not describe this device as it is (`reason` says how).
    case stale(driver: String, reason: String)

    /// What is wrong, in words an operator's log can carry after "reset, because".
    public var description: String {
        switch self {
        case .missing: "no driver state record was handed over"
        case let .notAdoptable(driver): "the \(driver) driver cannot be adopted"
        case let .badMagic(found):
            "the record does not start with VFKR (it starts with \(found.map { String($0, radix: 16) }.joined(separator: " ")))"
        case let .truncated(needed, remaining): "the record is cut short: a field needs \(needed) bytes and \(remaining) are left"
        case let .trailingBytes(n): "\(n) bytes follow the record's checksum"
        case let .formatFromTheFuture(found, newest):
            "the record's format version \(found) is from the future (this build reads up to \(newest)): was it written by a newer vfiokit?"
        case let .unknownFormat(v): "the record's format version \(v) was never written by any vfiokit"
        case let .checksumMismatch(stored, computed):
            "the record's CRC-32C is 0x\(String(stored, radix: 16)) but its bytes sum to 0x\(String(computed, radix: 16)): it was damaged"
        case .nameNotUTF8: "the record's driver name is not UTF-8"
        case let .otherDriver(found, expected): "the record is the \(found) driver's, not the \(expected) driver's"
        case let .stateFromTheFuture(driver, found, newest):
            "the \(driver) state version \(found) is from the future (this driver reads up to \(newest)): was it written by a newer driver?"
        case let .stateTooOld(driver, found, oldest):
            "the \(driver) state version \(found) is older than the oldest this driver reads (\(oldest))"
        case let .stale(driver, reason): "the \(driver) record does not match the device: \(reason)"
        }
    }
}
