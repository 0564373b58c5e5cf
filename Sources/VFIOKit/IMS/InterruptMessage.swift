/// An interrupt message: the 32-bit `data` a device writes to the 64-bit `address` to interrupt.
///
/// In VFIOKit it is the framework, never the device driver, that chooses a slot's message: the
/// address of the slot's word in an ``InterruptStatusArea`` and the slot's tag as the data.
public struct InterruptMessage: Sendable, Hashable, CustomStringConvertible {
    /// The device address the message is written to.
    public let address: UInt64
    /// The 32-bit value written.
    public let data: UInt32

    /// A message with the given address and data; nothing is checked (see ``targetsMSIWindow``).
    public init(address: UInt64, data: UInt32) {
        self.address = address
        self.data = data
    }

    /// The x86 interrupt window 0xfee00000–0xfeefffff: a write there is an interrupt for the
    /// platform's remapping unit, which only the kernel may program.
    public static let msiWindow: ClosedRange<UInt64> = 0xfee0_0000...0xfeef_ffff

    /// True when the message targets the interrupt window rather than memory.
    public var targetsMSIWindow: Bool { Self.msiWindow.contains(address) }

    /// `message 0x1a → 0x10000040`: the data, then the address.
    public var description: String { "message 0x\(String(data, radix: 16)) → 0x\(String(address, radix: 16))" }
}
