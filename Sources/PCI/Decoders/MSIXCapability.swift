/// The MSI-X capability (ID 0x11): a table of vectors and a pending-bit array, each in a BAR.
public struct MSIXCapability: Hashable, Sendable, Encodable, CustomStringConvertible {
    /// Where a structure lives: a BAR (by its BAR Indicator Register value) and an offset in it.
    public struct Location: Hashable, Sendable, Encodable, CustomStringConvertible {
        /// The BIR, 0–5 for BARs 0–5; 6 and 7 are reserved and name no BAR.
        public let bar: Int
        /// Byte offset from the BAR's base, a multiple of 8.
        public let offset: UInt32

        /// `BAR0+0x2000`.
        public var description: String { "BAR\(bar)+0x\(String(offset, radix: 16))" }
    }

    /// Config offset of the capability.
    public let offset: Int
    /// Vectors in the table: Table Size (Message Control bits 10:0) + 1, so 1–2048.
    public let tableSize: Int
    /// Message Control bit 15.
    public let isEnabled: Bool
    /// Message Control bit 14: every vector is masked regardless of its own mask bit.
    public let isFunctionMasked: Bool
    public let table: Location
    public let pendingBitArray: Location

    /// Bytes per table entry: address low, address high, data, vector control.
    public static let tableEntrySize = 16
    /// Message Control bit 15, enable.
    public static let enableBit: UInt16 = 1 << 15
    /// Message Control bit 14, function mask.
    public static let functionMaskBit: UInt16 = 1 << 14

    /// Offset of Message Control.
    public var controlOffset: Int { offset + 2 }
    /// Bytes the table spans in its BAR.
    public var tableByteCount: Int { tableSize * Self.tableEntrySize }
    /// Bytes the pending-bit array spans in its BAR: one bit per vector, in whole 64-bit words.
    public var pendingBitArrayByteCount: Int { (tableSize + 63) / 64 * 8 }

    /// Decodes the MSI-X capability at `offset`; throws if it is another capability or not held.
    public init(_ config: ConfigSpace, at offset: Int) throws(ConfigSpaceError) {
        try config.expectCapability(.msix, at: offset)
        self.offset = offset
        let control = try config.uint16(at: offset + 2)
        tableSize = Int(control & 0x7ff) + 1
        isEnabled = control.bit(15)
        isFunctionMasked = control.bit(14)
        let tableRegister = try config.uint32(at: offset + 4)
        let pbaRegister = try config.uint32(at: offset + 8)
        table = Location(bar: Int(tableRegister & 7), offset: tableRegister & ~7)
        pendingBitArray = Location(bar: Int(pbaRegister & 7), offset: pbaRegister & ~7)
    }

    public var description: String {
        "MSI-X: \(isEnabled ? "enabled" : "disabled"), \(tableSize) vectors, table at \(table), PBA at \(pendingBitArray)"
            + (isFunctionMasked ? ", function masked" : "")
    }
}
