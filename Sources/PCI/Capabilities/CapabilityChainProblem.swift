/// The two capability chains a function can have.
public enum CapabilityChain: String, Hashable, Sendable, Encodable {
    /// The conventional chain: 8-bit pointers, entries at 0x40–0xff.
    case standard
    /// The PCI Express extended chain: 12-bit pointers, entries at 0x100–0xfff.
    case extended
}

/// Why a capability walk stopped early. The entries walked before the problem are kept.
///
/// "Pointer" cases name `pointerOffset`, the config offset of the register holding the bad
/// pointer (the header's capability pointer, or the previous entry), and `target`, where it leads.
public enum CapabilityChainProblem: Hashable, Sendable, CustomStringConvertible {
    /// The pointer leads back to an entry already walked: the chain is a loop.
    case loop(CapabilityChain, pointerOffset: Int, target: Int)
    /// The pointer leads below the chain's area (0x40 standard, 0x100 extended), into the header.
    case pointerIntoHeader(CapabilityChain, pointerOffset: Int, target: Int)
    /// The pointer leads past the `size` bytes the source holds.
    case pointerOutOfBounds(CapabilityChain, pointerOffset: Int, target: Int, size: Int)
    /// A byte needed to go on, at `offset`, is not held by the source.
    case unavailable(CapabilityChain, offset: Int)
    /// The entry at `offset` is not a capability: an all-ones standard ID (0xff), or an extended
    /// header of 0 or 0xffffffff after the first.
    case invalidEntry(CapabilityChain, offset: Int, value: UInt32)
    /// The header type defines no capability pointer, so the standard chain cannot be found.
    case unknownHeaderLayout(type: UInt8)

    public var description: String {
        func hex(_ value: Int) -> String { "0x" + hexString(value, width: 2) }
        switch self {
        case let .loop(chain, pointerOffset, target):
            return "\(chain) capability chain loops: the pointer at \(hex(pointerOffset)) leads back to \(hex(target)); "
                + "the walk stopped there"
        case let .pointerIntoHeader(chain, pointerOffset, target):
            let floor = chain == .standard ? "0x40" : "0x100"
            return "\(chain) capability pointer at \(hex(pointerOffset)) leads to \(hex(target)), below \(floor); "
                + "the chain is malformed and the walk stopped there"
        case let .pointerOutOfBounds(chain, pointerOffset, target, size):
            return "\(chain) capability pointer at \(hex(pointerOffset)) leads to \(hex(target)), past the \(size) "
                + "config bytes held; the walk stopped there (a fuller dump, lspci -xxxx, would go on)"
        case let .unavailable(chain, offset):
            return "\(chain) capability walk needs config byte \(hex(offset)), which the source does not hold; "
                + "the walk stopped there"
        case let .invalidEntry(chain, offset, value):
            return "\(chain) capability entry at \(hex(offset)) reads 0x\(String(value, radix: 16)), "
                + "which is not a capability; the walk stopped there"
        case let .unknownHeaderLayout(type):
            return "header type 0x\(hexString(type, width: 2)) is not defined, so there is no capability pointer to follow"
        }
    }
}
