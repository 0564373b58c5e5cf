/// One base address register as the header holds it: what kind of window it is and where it
/// starts. The window's size is not here: finding it needs the write-ones probe on a live device.
public struct BaseAddressRegister: Hashable, Sendable, Encodable, CustomStringConvertible {
    public enum Kind: String, Hashable, Sendable, Encodable {
        /// I/O space (bit 0 set).
        case io
        /// 32-bit memory (type 00).
        case memory32
        /// 64-bit memory (type 10), taking this slot and the next one.
        case memory64
        /// Legacy memory below 1 MiB (type 01, PCI 2.x only).
        case memoryBelow1MiB
    }

    /// The BAR number, 0–5, as VFIO's region indices and lspci's "Region N" count them.
    public let index: Int
    public let kind: Kind
    /// Bit 3 of a memory BAR; always `false` for I/O.
    public let isPrefetchable: Bool
    /// The bus address the window starts at, with the flag bits cleared.
    public let base: UInt64

    /// `BAR0: memory64 prefetchable at 0x206ffff40000`.
    public var description: String {
        "BAR\(index): \(kind.rawValue)\(isPrefetchable ? " prefetchable" : "") at 0x\(String(base, radix: 16))"
    }
}

extension ConfigSpace {
    /// The first BAR register, at 0x10.
    public static let firstBAROffset = 0x10

    /// The BARs the header layout defines (six for endpoints, two for PCI bridges, one for
    /// CardBus bridges), in slot order.
    ///
    /// A slot reading 0 is left out: it is either unimplemented or unassigned, and only sizing
    /// can tell. The upper half of a 64-bit BAR is part of that BAR, not a BAR of its own.
    ///
    /// - Throws: ``ConfigSpaceError/unavailable(offset:width:)`` when a slot is not held;
    ///   ``ConfigSpaceError/malformed(offset:reason:)`` for the reserved memory type or a 64-bit
    ///   BAR in the last slot.
    public func baseAddressRegisters() throws(ConfigSpaceError) -> [BaseAddressRegister] {
        let slots = try headerType.barCount
        var result: [BaseAddressRegister] = []
        var index = 0
        while index < slots {
            let bar = try baseAddressRegister(index: index, slots: slots)
            if let bar { result.append(bar) }
            index += bar?.kind == .memory64 ? 2 : 1
        }
        return result
    }

    /// Decodes slot `index` of `slots`; `nil` when the slot reads 0.
    private func baseAddressRegister(index: Int, slots: Int) throws(ConfigSpaceError) -> BaseAddressRegister? {
        let offset = Self.firstBAROffset + 4 * index
        let low = try uint32(at: offset)
        guard low != 0 else { return nil }
        if low & 1 == 1 {
            return BaseAddressRegister(index: index, kind: .io, isPrefetchable: false, base: UInt64(low & ~3))
        }
        let prefetchable = low & 0x8 != 0
        let base = UInt64(low & ~0xf)
        switch (low >> 1) & 3 {
        case 0:
            return BaseAddressRegister(index: index, kind: .memory32, isPrefetchable: prefetchable, base: base)
        case 1:
            return BaseAddressRegister(index: index, kind: .memoryBelow1MiB, isPrefetchable: prefetchable, base: base)
        case 2:
            guard index + 1 < slots else {
                throw .malformed(offset: offset, reason: "BAR\(index) is 64-bit but is the last BAR slot")
            }
            let high = UInt64(try uint32(at: offset + 4))
            return BaseAddressRegister(index: index, kind: .memory64, isPrefetchable: prefetchable, base: high << 32 | base)
        default:
            throw .malformed(offset: offset, reason: "BAR\(index) uses the reserved memory type 11b")
        }
    }
}
