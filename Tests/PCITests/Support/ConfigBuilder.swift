@testable import PCI

/// Builds synthetic config spaces for tests: a header, then capabilities linked in the order
/// they are added.
struct ConfigBuilder {
    var bytes: [UInt8]
    private var lastStandard: Int?
    private var lastExtended: Int?

    init(
        size: Int = 256, vendorID: UInt16 = 0x1af4, deviceID: UInt16 = 0x1041, headerType: UInt8 = 0,
        classCode: UInt32 = 0x02_00_00, revision: UInt8 = 1
    ) {
        bytes = [UInt8](repeating: 0, count: size)
        set16(0x00, vendorID)
        set16(0x02, deviceID)
        bytes[0x08] = revision
        set8(0x09, UInt8(classCode & 0xff))
        set8(0x0a, UInt8(classCode >> 8 & 0xff))
        set8(0x0b, UInt8(classCode >> 16))
        bytes[0x0e] = headerType
    }

    mutating func set8(_ offset: Int, _ value: UInt8) { bytes[offset] = value }
    mutating func set16(_ offset: Int, _ value: UInt16) {
        for i in 0..<2 { bytes[offset + i] = UInt8(truncatingIfNeeded: value >> (8 * i)) }
    }
    mutating func set32(_ offset: Int, _ value: UInt32) {
        for i in 0..<4 { bytes[offset + i] = UInt8(truncatingIfNeeded: value >> (8 * i)) }
    }

    /// Where this header type keeps its capability pointer.
    private var pointerRegister: Int { bytes[0x0e] & 0x7f == 2 ? 0x14 : 0x34 }

    /// Adds a standard capability at `offset` with `body` after its ID/next bytes, links it after
    /// the previous one, and sets Status bit 4.
    mutating func addCapability(_ id: UInt8, at offset: Int, body: [UInt8] = []) {
        bytes[0x06] |= 0x10
        bytes[offset] = id
        bytes[offset + 1] = 0
        for (i, byte) in body.enumerated() { bytes[offset + 2 + i] = byte }
        bytes[lastStandard.map { $0 + 1 } ?? pointerRegister] = UInt8(offset)
        lastStandard = offset
    }

    /// Adds an extended capability at `offset` (the first must be 0x100) with `body` after its
    /// header, linked after the previous one.
    mutating func addExtendedCapability(_ id: UInt16, version: UInt8 = 1, at offset: Int, body: [UInt8] = []) {
        set32(offset, UInt32(id) | UInt32(version) << 16)
        for (i, byte) in body.enumerated() { bytes[offset + 4 + i] = byte }
        if let last = lastExtended {
            set32(last, header(at: last) & 0x000f_ffff | UInt32(offset) << 20)
        }
        lastExtended = offset
    }

    func header(at offset: Int) -> UInt32 {
        (0..<4).reduce(0) { $0 | UInt32(bytes[offset + $1]) << (8 * $1) }
    }

    /// Adds a minimal PCI Express capability (an endpoint, v2) so the extended chain is walked.
    mutating func addPCIExpress(at offset: Int = 0x40, type: UInt8 = 0, version: UInt8 = 2) {
        addCapability(0x10, at: offset, body: [version | type << 4, 0])
    }

    var config: ConfigSpace { get throws { try ConfigSpace(bytes: bytes) } }

    /// The config space of these bytes, but with the byte at `offset` unavailable.
    func config(without offset: Int) throws -> ConfigSpace {
        var partial = bytes.map { UInt8?($0) }
        partial[offset] = nil
        return try ConfigSpace(partialBytes: partial)
    }
}

/// Little-endian bytes of a value, for capability bodies.
func le16(_ value: UInt16) -> [UInt8] { [UInt8(value & 0xff), UInt8(value >> 8)] }
func le32(_ value: UInt32) -> [UInt8] { (0..<4).map { UInt8(truncatingIfNeeded: value >> (8 * $0)) } }
