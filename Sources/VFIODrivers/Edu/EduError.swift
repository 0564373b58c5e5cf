import PCI

/// What the edu driver reports; framework failures arrive as `VFIOError` unchanged.
public enum EduError: Error, Equatable, CustomStringConvertible {
    /// The device's IDs are not edu's (1234:11e8).
    case notEdu(PCIAddress)
    /// The identification register does not read 0x..ed.
    case badIdentification(PCIAddress, UInt32)
    /// A DMA request does not fit the device's buffer.
    case transferTooLarge(PCIAddress, count: Int, offset: Int)
    /// An operation's interrupt did not arrive in time.
    case timeout(PCIAddress, operation: String, milliseconds: Int)
    /// The device broke its contract.
    case misbehaved(PCIAddress, String)

    public var description: String {
        switch self {
        case let .notEdu(a):
            return "probing \(a): not an edu device (1234:11e8); pick the driver that matches its IDs"
        case let .badIdentification(a, id):
            return
                "probing \(a): the identification register reads 0x\(String(id, radix: 16)), expected 0x..ed; is BAR 0 mapped to the right device?"
        case let .transferTooLarge(a, count, offset):
            return
                "edu DMA on \(a): \(count) bytes at buffer offset \(offset) do not fit the \(EduRegisters.bufferSize)-byte buffer (full-size transfers crash QEMU 7.2); split the transfer"
        case let .timeout(a, operation, ms):
            return "\(operation) on \(a): no interrupt within \(ms) ms; check bus mastering and interrupts, or reset the device"
        case let .misbehaved(a, what):
            return "\(a) misbehaved: \(what); reset the device"
        }
    }
}
