/// The MSI capability (ID 0x05): up to 32 vectors from one address/data pair.
///
/// Decoding reads the whole structure, whose length depends on the 64-bit and per-vector-masking
/// bits; it throws ``ConfigSpaceError/unavailable(offset:width:)`` if any of it is not held.
public struct MSICapability: Hashable, Sendable, Encodable, CustomStringConvertible {
    /// Config offset of the capability.
    public let offset: Int
    /// Message Control bit 0.
    public let isEnabled: Bool
    /// Vectors the function can request: 1 << Multiple Message Capable (bits 3:1). The encodings
    /// 6 and 7 are reserved; they are reported as 64 and 128, as lspci does.
    public let multipleMessageCapable: Int
    /// Vectors software enabled: 1 << Multiple Message Enable (bits 6:4).
    public let multipleMessageEnable: Int
    /// Bit 7: the message address has an upper 32-bit half.
    public let is64Bit: Bool
    /// Bit 8: the structure has Mask Bits and Pending Bits registers.
    public let hasPerVectorMasking: Bool
    /// Bit 9: the function can send 32-bit message data.
    public let hasExtendedMessageData: Bool
    public let messageAddress: UInt64
    public let messageData: UInt16
    /// The Mask Bits register (bit n masks vector n), `nil` without per-vector masking.
    public let maskBits: UInt32?
    /// The Pending Bits register, `nil` without per-vector masking.
    public let pendingBits: UInt32?

    /// Offset of Message Control.
    public var controlOffset: Int { offset + 2 }
    /// Offset of Message Address (the lower half when 64-bit).
    public var addressOffset: Int { offset + 4 }
    /// Offset of Message Upper Address, `nil` when 32-bit.
    public var upperAddressOffset: Int? { is64Bit ? offset + 8 : nil }
    /// Offset of Message Data.
    public var dataOffset: Int { offset + (is64Bit ? 0x0c : 0x08) }
    /// Offset of Mask Bits, `nil` without per-vector masking.
    public var maskBitsOffset: Int? { hasPerVectorMasking ? offset + (is64Bit ? 0x10 : 0x0c) : nil }
    /// Offset of Pending Bits, `nil` without per-vector masking.
    public var pendingBitsOffset: Int? { maskBitsOffset.map { $0 + 4 } }

    /// Message Control bit 0, enable.
    public static let enableBit: UInt16 = 1 << 0

    /// Decodes the MSI capability at `offset`; throws if it is another capability or not held.
    public init(_ config: ConfigSpace, at offset: Int) throws(ConfigSpaceError) {
        try config.expectCapability(.msi, at: offset)
        self.offset = offset
        let control = try config.uint16(at: offset + 2)
        isEnabled = control.bit(0)
        multipleMessageCapable = 1 << Int(control >> 1 & 7)
        multipleMessageEnable = 1 << Int(control >> 4 & 7)
        is64Bit = control.bit(7)
        hasPerVectorMasking = control.bit(8)
        hasExtendedMessageData = control.bit(9)
        let low = UInt64(try config.uint32(at: offset + 4))
        let high = is64Bit ? UInt64(try config.uint32(at: offset + 8)) : 0
        messageAddress = high << 32 | low
        messageData = try config.uint16(at: offset + (is64Bit ? 0x0c : 0x08))
        if hasPerVectorMasking {
            let maskOffset = offset + (is64Bit ? 0x10 : 0x0c)
            maskBits = try config.uint32(at: maskOffset)
            pendingBits = try config.uint32(at: maskOffset + 4)
        } else {
            maskBits = nil
            pendingBits = nil
        }
    }

    public var description: String {
        var text =
            "MSI: \(isEnabled ? "enabled" : "disabled"), \(multipleMessageEnable)/\(multipleMessageCapable) vectors, "
            + (is64Bit ? "64-bit" : "32-bit")
        if let maskBits, let pendingBits {
            text += ", per-vector masking (mask 0x\(String(maskBits, radix: 16)), pending 0x\(String(pendingBits, radix: 16)))"
        }
        return text + ", address 0x\(String(messageAddress, radix: 16)) data 0x\(hexString(messageData, width: 4))"
    }
}
